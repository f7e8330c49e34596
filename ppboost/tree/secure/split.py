"""Secret split choice and node / leaf weights (the split rule of
:mod:`ppboost.tree.split_rule` on fixed-point shares).

For every node x candidate, w = G * reciprocal(H + lambda)
(:mod:`ppboost.mpc.nonlinear`, Catrina-Saxena Newton), gain = G * w,
loss = gain_L + gain_R - gain_P; validity masks [H_L >= mcw], [H_R >= mcw]
and, for the backward (missing goes left) scan, [node has a missing row] are
secret comparison bits; invalid candidates get -2^61; a tournament argmax
with a secret per-candidate tie tolerance gives the secret one-hot of the
best candidate, taken iff its loss clears max(gamma, kRtEps) by more than
its tolerance.

Ties.  xgboost keeps the first of equal best losses; with fixed-point noise
two candidates with the same true loss (e.g. two bins that split a node's
rows the same way) differ by a few ulps, so the argmax treats candidates
within a bound of that noise as ties and keeps the lowest index.  The bound
is per candidate and mostly relative (2^-23 of gain_L + gain_R, about
float32's own resolution, which is what xgboost compares in), so distinct
losses are told apart as finely as xgboost tells them apart.  (A public
absolute bound from worst-case magnitudes grows with n and chose a worse
split at 10k rows.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...crypto import fixed
from ...mpc import raw, ring
from ...mpc.argmax import argmax
from ...mpc.arith import matmul as matmul_share
from ...mpc.nonlinear import reciprocal
from ...mpc.party import Party
from ...mpc.shares import AShare
from ...mpc.truncation import mul_trunc
from ..backend import KIND_BACKWARD, KIND_CAT_MISSING_RIGHT, KIND_FORWARD, TreeLayout
from .histogram import Hist
from .precision import PrecisionPlan, bits_for

__all__ = ["CandidateMaps", "Splits", "Leaves", "node_weights", "choose_splits",
           "leaf_values"]

_BIG = np.uint64(1 << 61)


@dataclass(frozen=True)
class CandidateMaps:
    """Public maps from a :class:`Hist` to every candidate's sums (vectorised
    over candidates; pure functions of the public layout).

    ``idx``/``coef`` (C, 4): G_L = sum_q coef[c, q] cum[idx[c, q]] (index
    Btot is an appended zero row); ``tot`` (C,): the node total row;
    ``miss`` (C, 2): missing count = cum[a] - cum[b]; ``bwd`` (C,): backward
    scan candidates (eligible only in a node with a missing row).
    """

    idx: np.ndarray
    coef: np.ndarray
    tot: np.ndarray
    miss: np.ndarray
    bwd: np.ndarray

    @classmethod
    def from_layout(cls, lay: TreeLayout) -> CandidateMaps:
        offs = np.asarray(lay.bin_offsets, dtype=np.int64)
        nbins = np.asarray(lay.n_bins, dtype=np.int64)
        zero = int(offs[-1])                   # index of the appended zero row
        C = lay.n_candidates
        f = np.asarray(lay.cand_feature, dtype=np.int64)
        kind = np.asarray(lay.cand_kind, dtype=np.int64)
        t = np.asarray(lay.cand_bin, dtype=np.int64)
        o, b = offs[f], nbins[f]

        def cum(k):                            # row of C[k] (k < 0: the zero row)
            return np.where(k >= 0, o + k, zero)

        idx = np.full((C, 4), zero, np.int64)
        coef = np.zeros((C, 4), np.int64)
        tot = o + b
        miss = np.stack([o + b, cum(b - 1)], axis=1)      # count of missing = cum[a] - cum[b]
        fw = kind == KIND_FORWARD
        bw = kind == KIND_BACKWARD                        # GL = C[t] + M
        cmr = kind == KIND_CAT_MISSING_RIGHT
        cat = ~(fw | bw | cmr)
        idx[fw, 0], coef[fw, 0] = cum(t)[fw], 1
        idx[bw, 0], idx[bw, 1], idx[bw, 2] = cum(t)[bw], (o + b)[bw], cum(b - 1)[bw]
        coef[bw, :3] = (1, 1, -1)
        # categorical, right = {t}: GL = C[b] - C[t] + C[t-1]
        idx[cat, 0], idx[cat, 1], idx[cat, 2] = (o + b)[cat], cum(t)[cat], cum(t - 1)[cat]
        coef[cat, :3] = (1, -1, 1)
        # right = {t} + missing: GL = -C[t] + C[t-1] + C[b-1]
        idx[cmr, 0], idx[cmr, 1], idx[cmr, 2] = cum(t)[cmr], cum(t - 1)[cmr], cum(b - 1)[cmr]
        coef[cmr, :3] = (-1, 1, 1)
        return cls(idx, ring.as_ring(coef), tot, miss, bw)


@dataclass
class Splits:
    """Shares of one level's choices: ``onehot`` (L, C + 1; the last column
    "do not split") and the node weights ``weight`` (L,) at ``fo`` bits.

    ``hist`` is the level's :class:`Hist`, which the children's histograms
    need (right = parent - left); :func:`ppboost.tree.secure.route.route`
    hands it on to the children's nodes and clears it here, so a finished
    tree keeps only its choices and weights.
    """

    onehot: np.ndarray
    weight: np.ndarray
    hist: Hist | None = None


@dataclass(frozen=True)
class Leaves:
    """Shares of the last level's leaf weights w and values eta * w (L,), at fo bits."""

    weight: np.ndarray
    value: np.ndarray


def node_weights(party: Party, prec: PrecisionPlan, reg_lambda: float, G, H):
    """w = G / (H + lambda) at fw bits (not negated), for shared G (fg bits), H (fh bits).

    x = H + lambda at fx bits (H shifted, never truncated: equal sums give
    equal inputs); r' = 2^s / (H + lambda) at fr bits by the reciprocal
    with ``out_bits = fr + s`` (mpc.nonlinear; its normalisation keeps
    every significant bit of a large H + lambda); w = G r' / 2^s by a limb
    product (mpc.truncation.mul_trunc), so G is never truncated.
    Opened: masks only.  Cost: the reciprocal, then 3 rounds of the limb product.
    """
    pr = prec
    x = H << np.uint64(pr.fx - pr.fh)
    x = x + (fixed.encode([reg_lambda], pr.fx)[0] if party.id == 0 else np.uint64(0))
    r = reciprocal(AShare(party, np.ascontiguousarray(x)), pr.lo, pr.hi,
                   out_bits=pr.fr + pr.s, frac_bits=pr.fx)
    return mul_trunc(AShare(party, np.ascontiguousarray(G)), r, *pr.w_mul).value


def choose_splits(party: Party, prec: PrecisionPlan, maps: CandidateMaps, reg_lambda: float,
                  hist: Hist, threshold) -> Splits:
    """Secret one-hot split choice over C + 1 outcomes and node weights.

    Inputs: the level's :class:`Hist`; ``threshold`` (L,) shares of the
    split threshold in loss units (:func:`ppboost.tree.split_rule.threshold_units`).
    Candidate sums (G_L, H_L, G_R, H_R, missing count) are public linear maps
    of the histograms (local).  Gains G^2 / (H + lambda) = G w with w from
    :func:`node_weights` and a second limb product [Chen & Guestrin 2016,
    eq. 7; Catrina & Saxena FC 2010 reciprocal]; validity bits by
    comparisons (edaBits, Escudero et al. CRYPTO 2020); invalid -> -2^61.
    Ties: every candidate carries a secret tolerance, a bound on the
    difference between the fixed-point errors of two candidates with the
    same true loss (relative to S = gain_L + gain_R, plus the ulps of w
    scaled by the parent's row count, :class:`PrecisionPlan`); the
    tournament argmax (:func:`ppboost.mpc.argmax.argmax` with that ``tol``)
    keeps the lowest index among candidates within it, as xgboost keeps its
    first best split.  The best candidate is taken iff its loss exceeds the
    threshold by more than its tolerance (one comparison per node), else
    "do not split".
    Opened: masks only.
    Cost: the reciprocal (~25 rounds) + 2 limb products (6 rounds) +
    1 comparison batch + 2 products + 1 truncation + ceil(log2 C)
    tournament levels, on L (2C + 1) elements; then 1 comparison on L and
    1 product on L C elements.
    """
    pr = prec
    cum, tot = hist.cum, hist.tot
    ncol, L = tot.shape
    C = maps.tot.shape[0]
    cumz = np.concatenate([cum, np.zeros((1, ncol, L), np.uint64)], axis=0)
    GL = (cumz[maps.idx] * maps.coef[:, :, None, None]).sum(axis=1, dtype=np.uint64)
    T = cumz[maps.tot]
    GR = T - GL                                                   # (C, ncol, L)
    hcol = 1                       # [G, count] (reg, h = 1) or [G, H, count]
    ccol = ncol - 1
    miss = cumz[maps.miss[:, 0], ccol] - cumz[maps.miss[:, 1], ccol]    # (C, L)
    gl, hl = GL[:, 0].T, GL[:, hcol].T                            # (L, C)
    gr, hr = GR[:, 0].T, GR[:, hcol].T
    gp, hp = tot[0], tot[hcol]
    Gall = np.concatenate([gl.ravel(), gr.ravel(), gp])
    Hall = np.concatenate([hl.ravel(), hr.ravel(), hp])
    step = party.ep.stats.step                  # the breakdown of Stats.by_step
    with step("split: weights"):
        w = node_weights(party, pr, reg_lambda, Gall, Hall)
    with step("split: gains"):
        gain = mul_trunc(AShare(party, Gall), AShare(party, w), *pr.gain_mul).value
    LC = L * C
    S = gain[:LC].reshape(L, C) + gain[LC:2 * LC].reshape(L, C)
    loss = S - gain[2 * LC:][:, None]
    # the tolerance before its final shift: S + tol_per_row * count_parent
    Tn = S + tot[ccol][:, None] * np.uint64(pr.tol_per_row)
    thr = np.uint64(pr.h_thr)
    cmp = np.concatenate([Hall - raw.const(party, np.full(Hall.shape, thr)),
                          miss.T.ravel() - raw.const(party, np.ones(LC, np.uint64))])
    # declared bound of the compared values: |H| <= hi 2^fh (+ 1 ulp of h's
    # truncation per row), h_thr, |miss - 1| <= n -> a shorter comparison circuit
    with step("split: validity"):
        ge = raw.ge0(party, cmp, pr.cmp_bits)
    geL, geR, geP = ge[:LC], ge[LC:2 * LC], ge[2 * LC:2 * LC + L]
    geM = ge[2 * LC + L:]
    wP = raw.trunc(party, w[2 * LC:], pr.fw - pr.fo, pr.w_bits)
    v1 = raw.mul(party, np.concatenate([geL, geP]), np.concatenate([geR, np.uint64(0) - wP]))
    valid, wnode = v1[:LC], v1[LC:]
    bwd = np.tile(maps.bwd, L)
    vb = raw.mul(party, valid, np.where(bwd, geM, raw.const(party, np.ones(LC, np.uint64))))
    # invalid candidates: loss -2^61 and tolerance 0 (their S is garbage)
    both = raw.mul(party, np.concatenate([vb, vb]),
                   np.concatenate([loss.ravel() + raw.const(party, np.full(LC, _BIG)), Tn.ravel()]))
    masked = both[:LC] - raw.const(party, np.full(LC, _BIG))
    tol = raw.trunc(party, both[LC:], pr.tol_shift, 62) \
        + raw.const(party, np.full(LC, np.uint64(pr.tol_const)))
    if C == 0:
        return Splits(raw.const(party, np.ones((L, 1), np.uint64)), wnode, hist)
    with step("split: argmax"):
        oh, best, btol = argmax(party, AShare(party, masked.reshape(L, C)), return_max=True,
                                tol=AShare(party, tol.reshape(L, C)))
    # split iff the best loss exceeds the threshold by more than its tolerance
    split = raw.ge0(party, best.value - btol.value - threshold)
    chosen = raw.mul(party, oh.value, np.repeat(split[:, None], C, axis=1))
    onehot = np.concatenate([chosen, (raw.const(party, np.ones(L, np.uint64)) - split)[:, None]],
                            axis=1)
    return Splits(onehot, wnode, hist)


def leaf_values(party: Party, prec: PrecisionPlan, reg_lambda: float, eta: float, fm: int,
                nodes: np.ndarray, gh) -> Leaves:
    """Leaf weights w = -G / (H + lambda) (0 if H < max(mcw, ulp)) and eta * w.

    Inputs: N (n, L) shares of the last level, g and h (h None: h = 1);
    ``fm``: the margins' fractional bits.  Sums by a matrix Beaver product
    [g; h]^T N (1 round, (2n + nL) elements); then the reciprocal, one
    comparison, one product and one truncation on L elements.
    Opened: masks only.
    """
    g, h = gh
    pr = prec
    cnt = nodes.sum(axis=0, dtype=np.uint64)
    rows = [g] if h is None else [g, h]
    S = matmul_share(AShare(party, np.stack(rows)),
                     AShare(party, np.ascontiguousarray(nodes))).value
    G = S[0]
    H = cnt if h is None else S[1]
    w = raw.trunc(party, node_weights(party, pr, reg_lambda, G, H), pr.fw - pr.fo, pr.w_bits)
    ok = raw.ge0(party, H - raw.const(party, np.full(H.shape, np.uint64(pr.h_thr))), pr.cmp_bits)
    wl = raw.mul(party, ok, np.uint64(0) - w)
    value = raw.trunc(party, wl * fixed.encode([eta], fm)[0], pr.fo,
                      pr.fo + fm + bits_for(pr.Wmax) + 2)
    return Leaves(wl, value)
