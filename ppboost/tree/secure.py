"""The secure backend: the tree grower's interface on additive shares (ppboost.mpc).

One mechanism serves horizontal, vertical and mixed data (DESIGN.md "Secure
training"; XORBoost, Deforth et al., PoPETs 2022).  The pooled table is a
grid of **cells** (a block of rows x a block of columns), each owned by one
party who knows that cell's bins in plaintext:

* horizontal split: one cell per party (its rows x all columns);
* vertical split: one cell per party (all rows x its columns);
* mixed: one cell per row-holding party, and one cell (all rows x its
  columns) per column-adding party; rows it does not cover are missing.

Everything the parties hold about the model is secret-shared over Z_2^64:
gradients, node indicators N (n x L, 0/1), histograms, gains, the one-hot
split choices, the routing bits, the weights.  Public: n, the cells' shapes,
bins per feature, the parameters and the objective.  Nothing is opened
except uniformly masked values inside the mpc protocols; the finished trees
are only opened (summed) by the analyst (:class:`SharedTree`, see
``ppboost.training.SecretSharedModel.reveal``).

Histograms (per level, for the **left children only**; right = parent -
left).  For a cell with n_c rows and m_c features let n' = n_c + B where
B = max_j (bins_j + 1).  The owner pads the cell with B zero "dummy" rows,
one per bin, so that every bin is non-empty, and sorts the padded rows of
feature j by bin (dummy first within its bin): sigma_j.

1. V = [g * N_left, h * N_left, N_left]  (Beaver products, 1 round).
2. ``permute_many(V_cell, [sigma_j])``: one masked message serves all m_c
   features (DESIGN "one mask serves every column"), 1 round.
3. Local prefix sums along the sorted rows.
4. One stacked owner permutation moves each feature's bin-end rows to the
   top: the cumulative histograms G_L(<= k), H_L(<= k), count(<= k), 1 round.
   Cells of the same feature in different row blocks are summed.

Split choice (Chen & Guestrin 2016 eq. 7 as xgboost computes it): for every
node x candidate, w = G * reciprocal(H + lambda) (ppboost.mpc.nonlinear,
Catrina-Saxena Newton), gain = G * w, loss = gain_L + gain_R - gain_P;
validity masks [H_L >= mcw], [H_R >= mcw] and, for the backward (missing
goes left) scan, [node has a missing row] are secret comparison bits;
invalid candidates get -2^61; a tournament argmax with a secret
per-candidate tie tolerance gives the secret one-hot of the best candidate,
taken iff its loss clears max(gamma, kRtEps) by more than its tolerance.

Ties.  xgboost keeps the first of equal best losses; with fixed-point noise
two candidates with the same true loss (e.g. two bins that split a node's
rows the same way) differ by a few ulps, so the argmax treats candidates
within a bound of that noise as ties and keeps the lowest index.  The bound
is per candidate and mostly relative (2^-23 of gain_L + gain_R, about
float32's own resolution, which is what xgboost compares in), so distinct
losses are told apart as finely as xgboost tells them apart.  A public
absolute bound derived from worst-case magnitudes was used before; it grew
with n and chose a worse split at 10k rows.

Routing (:meth:`SecureBackend.route`): each cell owner sets up, once, its
matrix of per-entry codes (bin + 1, 0 if missing) as an owner-private matrix
(:class:`ppboost.mpc.ownermat.OwnerMatrix`); per level, every node's chosen
feature (its one-hot summed per feature) is multiplied by it, giving each
row its bin in the node's feature (1 round, m_c L elements per non-owner);
three small comparisons against the node's secret threshold and two Beaver
rounds give N_left.  Before, the route sorted and unsorted an
m_c x (n_c + B) x L array with two owner permutations per level.

Fixed point and the magnitude budget (every bound below is public):

* binary:logistic / multi:softprob: margins, g and h at fg = 24
  fractional bits (sigmoid / softmax in MPC at fg bits); |g| <= 1, h <= 1/2.
* reg:squarederror: labels are normalised by a **secret** power of two
  2^-e with max|y| <= 2^e (secure max + comparisons with public powers of
  two, never opened): y_s = y 2^-e, margins and g = m - y at 30 fractional
  bits, |g| <= 2 (about).  Split choice is invariant under this scaling once
  gamma and kRtEps are scaled by 2^-2e (secret thresholds, local); weights are
  multiplied back by 2^e (a secret factor) before the analyst opens them.
* r' = 2^s / (H + lambda) comes from the reciprocal at ``fr`` (<= 28)
  bits; w = G r' / 2^s (``fw`` bits) and gain = G w (``Fl`` bits) are limb
  products (:func:`ppboost.mpc.truncation.mul_trunc`) so that G is never
  truncated; :func:`precision_plan` picks the bits from n and the bounds.
  lambda + min_child_weight must be >= 2^-8.

Binning of features split across row blocks: cuts by an oblivious sort of
the pooled rows (:func:`agree_bins`, :func:`ppboost.tree.secure_binning.shared_cuts`);
only the cuts and the aggregates named there are opened.

Not done (documented gaps): histograms run in Z_2^64 (no 32-bit ring); the
histogram's bin-end selection still costs O(n m L) elements per level and
non-owner (the dealer cannot stand in for the non-owner: it knows pi).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..crypto import fixed
from ..mpc import ring
from ..mpc.argmax import argmax, rowmax
from ..mpc.arith import matmul as _matmul_share
from ..mpc.compare import const_raw, ltz_raw, mul_raw
from ..mpc.context import AShare, Party
from ..mpc.nonlinear import INTERNAL_BITS, exp_neg, reciprocal, sigmoid, softmax
from ..mpc.ownermat import OwnerMatrix
from ..mpc.permutation import dealer_request, permute, permute_many
from ..mpc.truncation import mul_trunc, truncate
from .backend import (KIND_BACKWARD, KIND_CAT_MISSING_RIGHT, KIND_FORWARD, TreeBackend,
                      TreeLayout)
from .binning import BinMapper, fit_bins
from .params import TreeParams
from .secure_binning import shared_cuts

__all__ = ["Cell", "SecurePlan", "SharedTree", "SecureBackend", "agree_bins",
           "precision_plan", "open_tree", "LABEL_BITS", "SCALE_RANGE"]

_KRT_EPS = 1e-6
_BIG = np.uint64(1 << 61)
#: fractional bits of labels / label means as shared by the label holders
LABEL_BITS = 36
#: exponents e tried for the secret label scale 2^e (reg:squarederror)
SCALE_RANGE = (-6, 24)
_REG_BITS = 30          # margins and gradients of reg:squarederror (scaled units)
_LOG_BITS = 24          # fractional bits inside the secure log (intercepts)
_CLS_BITS = 24          # at most this many bits for logistic / softprob margins and gradients


# ----------------------------------------------------------------------------- public plan
@dataclass(frozen=True)
class Cell:
    """A block of the pooled table owned by one party (public: owner, rows, columns)."""

    owner: int
    rows: np.ndarray        # int64, global row indices, increasing
    features: np.ndarray    # int64, global feature indices, increasing


@dataclass
class SecurePlan:
    """Everything public about a secure training run (the same on every party)."""

    n_rows: int
    n_features: int
    categorical: np.ndarray              # bool (m,)
    cells: list                          # [Cell]
    label_blocks: list                   # [(owner, rows int64)]
    n_bins: np.ndarray | None = None     # int64 (m,), set by agree_bins


@dataclass
class SharedTree:
    """One party's shares of one finished complete tree (ring elements).

    ``onehot[k]`` (2^k, C+1) one-hot split choices of level k; ``cond[k]``
    (2^k,) float32 bit patterns of the chosen split conditions;
    ``weight[k]`` (2^k,) node weights and ``leaf`` (2^d,) leaf weights,
    unscaled, at ``weight_bits`` fractional bits.  Summing the parties'
    shares (the analyst) gives the tree; see :func:`open_tree`.
    """

    group: int
    onehot: list
    cond: list
    weight: list
    leaf: np.ndarray
    weight_bits: int


def _limbs(xy_bits: int, y_bits: int) -> int:
    """Limbs :func:`ppboost.mpc.truncation.mul_trunc` cuts x into for these bounds."""
    return 1 + max(0, -(-(xy_bits - 60) // (61 - y_bits)))


def _lambda_bits(lam: float, cap: int) -> int:
    """Fewest fractional bits (<= cap) that hold lambda exactly."""
    for f in range(cap + 1):
        if float(lam * 2.0 ** f).is_integer():
            return f
    return cap


def precision_plan(params: TreeParams, n: int) -> dict:
    """Public fixed-point plan of the split search for ``n`` rows.

    Every bound is public and worst case (module docstring).  Returns:

    * ``fg``/``fh``: bits of g and h (reg: g of the scaled labels, h = 1 is
      an integer count); ``fx``: bits of H + lambda fed to the reciprocal
      (the fewest that hold lambda exactly for reg, ``fh`` otherwise: never
      a truncation, so equal sums give equal inputs);
    * ``s``, ``fr``: r' = 2^s / (H + lambda) at ``fr`` bits (2^s >= hi);
    * ``fw``: w = G r' / 2^s; ``Fl``: gains and losses; ``fo``: the node and
      leaf weights kept for the model;
    * the limb products (:func:`ppboost.mpc.truncation.mul_trunc`) as
      ``w_mul`` / ``gain_mul`` = (shift, x_bits, y_bits, xy_bits) and their
      limb counts;
    * the tie tolerance: a candidate's tolerance is
      ``(S + tol_per_row * count_parent) >> tol_shift + tol_const`` ring units
      (S = gain_L + gain_R), which bounds the difference of the fixed-point
      errors of two candidates with equal true loss (see ``choose_splits``);
    * ``lo``/``hi`` (range of H + lambda), ``h_thr`` (ring units), ``Gmax``,
      ``Wmax``, ``Qmax``.
    """
    lam, mcw = params.reg_lambda, params.min_child_weight
    if params.objective == "reg:squarederror":
        fg, fh = _REG_BITS, 0                       # H = row count (integer)
        gmax, hmax = 4.0, 1.0
        h_thr = max(int(math.ceil(mcw - 1e-12)), 1)
        lo = lam + h_thr
        fx = _lambda_bits(lam, 20)
    else:
        fg = fh = fx = _CLS_BITS
        gmax, hmax = 1.0, 0.5
        h_thr = max(int(math.ceil(mcw * 2.0 ** fh - 1e-9)), 1)
        lo = lam + h_thr * 2.0 ** -fh
    if lo < 2.0 ** -8:
        raise ValueError(f"lambda + min_child_weight == {lam + mcw}, must be >= 2**-8 for "
                         f"secure training (the reciprocal of H + lambda needs a lower bound)")
    hi = n * hmax + lam
    Gmax = gmax * n
    # |G| / (H + lambda) <= max|g| when h = 1; else <= |G| / lo
    Wmax = gmax if params.objective == "reg:squarederror" else Gmax / lo
    Qmax = Gmax * Wmax
    s = int(math.ceil(math.log2(hi)))
    fr = int(min(28, math.floor(59 - s + math.log2(lo))))
    g_bits = fg + _bits_for(Gmax) + 1
    r_bits = fr + s - int(math.floor(math.log2(lo))) + 1
    fw = w_mul = None
    for max_limbs, cand in [(k, c) for k in (3, 4) for c in range(44, 15, -1)]:
        # the most w bits with at most 3 limbs per product (4 if 3 cannot do)
        wm = (fg + fr + s - cand, g_bits, r_bits, fg + fr + s + _bits_for(Wmax) + 1)
        y_bits = cand + _bits_for(Wmax) + 1
        if y_bits > 59 or wm[0] < 0:
            continue
        xy = fg + cand + _bits_for(Qmax) + 1
        if _limbs(xy, y_bits) <= max_limbs and _limbs(wm[3], wm[2]) <= max_limbs:
            fw, w_mul, gain_xy, gain_y = cand, wm, xy, y_bits
            break
    Fl = None if fw is None else min(fg + fw, 60 - _bits_for(3 * Qmax))
    fo = None if fw is None else min(fw, 60 - fg - _bits_for(Wmax))
    if fw is None or fr < 20 or Fl < 16 or fo < 16 or r_bits > 59 or w_mul[2] > 59:
        raise ValueError(
            f"secure training: n == {n} rows with lambda == {lam} and min_child_weight == "
            f"{mcw} leave too few fixed-point bits in the 64-bit ring (fr={fr}, fw={fw}, "
            f"Fl={Fl}); raise lambda or min_child_weight or use fewer rows")
    gain_mul = (fg + fw - Fl, g_bits, gain_y, gain_xy)
    lw, lg = _limbs(w_mul[3], w_mul[2]), _limbs(gain_xy, gain_y)
    # tie tolerance.  Per candidate, loss = gain_L + gain_R - gain_P with
    # gain = G w, G exact (limb products), w = G r' / 2^s (1 + rho) + < lw ulps
    # of 2^-fw, and the gain product adds < lg ulps of 2^-Fl; rho <= the
    # reciprocal's relative error (mpc.nonlinear: 2^-(F-2) + 2^-fr).  So
    # |error| < rho S + (|G_L| + |G_R|) lw 2^-fw + 2 lg 2^-Fl, with
    # |G_L| + |G_R| <= gmax count_parent.  Two candidates: twice that.
    rho = 2.0 ** -(INTERNAL_BITS - 2) + 2.0 ** -fr
    tol_shift = int(math.floor(-math.log2(2 * rho))) - 1
    tol_per_row = int(math.ceil(2 * gmax * lw * 2.0 ** (Fl - fw + tol_shift)))
    tol_const = 4 * lg + 2
    return {"fg": fg, "fh": fh, "fx": fx, "fr": fr, "fw": fw, "Fl": Fl, "fo": fo, "s": s,
            "w_mul": w_mul, "gain_mul": gain_mul, "limbs": (lw, lg),
            "tol_shift": tol_shift, "tol_per_row": tol_per_row, "tol_const": tol_const,
            "lo": lo, "hi": hi, "h_thr": h_thr, "Gmax": Gmax, "Wmax": Wmax, "Qmax": Qmax}


# ----------------------------------------------------------------------------- helpers
def _enc(v, bits: int) -> np.ndarray:
    return fixed.encode(np.asarray(v, dtype=np.float64), bits)


def _signed(x) -> np.ndarray:
    """Python / numpy signed integers -> ring (two's complement)."""
    return np.asarray(x, dtype=np.int64).view(np.uint64)


def _bits_for(v: float) -> int:
    return int(math.ceil(math.log2(max(float(v), 2.0))))


@contextmanager
def _frac_bits(party: Party, bits: int):
    """Run mpc.nonlinear at ``bits`` fractional bits (they read party.frac_bits)."""
    old = party.frac_bits
    party.frac_bits = bits
    try:
        yield
    finally:
        party.frac_bits = old


class _Ops:
    """Raw-array protocol shorthands for one party."""

    def __init__(self, party: Party):
        self.p = party

    def mul(self, x, y):
        return mul_raw(self.p, np.ascontiguousarray(x), np.ascontiguousarray(y))

    def trunc(self, x, f, bound):
        if f <= 0:
            return x << np.uint64(-f) if f < 0 else x
        return truncate(AShare(self.p, np.ascontiguousarray(x)), int(f),
                        bound_bits=int(min(bound, 62))).value

    def ge0(self, x, bound_bits: int = 64):
        """Shares of [x >= 0] (integer bits); ``bound_bits``: the public bound
        -2**(bound_bits-1) <= x < 2**(bound_bits-1) (a smaller edaBit)."""
        return const_raw(self.p, np.ones(np.shape(x), np.uint64)) \
            - ltz_raw(self.p, np.ascontiguousarray(x), int(min(bound_bits, 64)))

    def const(self, v):
        return const_raw(self.p, np.asarray(v, dtype=np.uint64))

    def share_from(self, owner, values, shape):
        return self.p.share(values if self.p.id == owner else None, owner=owner,
                            shape=shape).value


# ----------------------------------------------------------------------------- binning
def agree_bins(party: Party, plan: SecurePlan, my_X: dict, max_bin: int):
    """Every party learns the public bin counts; owners bin their cells.

    ``my_X``: {cell index: float32 (n_c, m_c)} for the cells this party owns.
    A feature held by one cell is binned by its owner alone with xgboost's own
    sketch (its cuts stay private).  A feature held by several cells (rows
    split across parties: horizontal / mixed) gets its cuts from
    :func:`ppboost.tree.secure_binning.shared_cuts`: every owner secret-shares
    its rows of the feature, the pooled rows are obliviously sorted
    (:func:`ppboost.mpc.sort.sort`) and only the cuts are opened.  **What every
    party learns** about such a feature: whether it has more than max_bin + 1
    distinct values (numerical); if not, its distinct values (one bin each, as
    xgboost ``hist``); if so, its cuts (the distinct values at xgboost's
    SetPrune ranks, not which rank gave which),
    its minimum and maximum, the pooled number of non-missing rows, the number
    of rows holding the minimum and the number below the maximum (the ranks
    depend on them); for a categorical feature, its largest code.  Not which
    cell holds which value, no count per value, no cell's summary.  The cuts
    are identical to ``cuts_from_summary(merge_summaries(exact summaries of
    the cells))``, hence to xgboost's while its sketch is exact.  Cost: about
    2P + 24 + 7 L rounds for all shared features (L = :func:`ppboost.mpc.sort.sort_levels`
    of the largest pooled row count), O(L n) elements per shared feature;
    every message size depends only on the public cell shapes and max_bin.
    Returns (binned {cell: int32 (n_c, m_c)}, cuts {feature: FeatureCuts} for
    the features this party is the cut owner of); sets ``plan.n_bins``.
    """
    ep, me = party.ep, party.id
    m = plan.n_features
    cells_of = [[ci for ci, c in enumerate(plan.cells) if j in set(c.features.tolist())]
                for j in range(m)]
    # --- shared features (rows split across cells): cuts by an oblivious sort of
    # the pooled rows (tree.secure_binning.shared_cuts); every party takes part and
    # learns the cuts, nobody a cell's rows or counts
    shared_feats = [j for j in range(m) if len(cells_of[j]) > 1]
    cuts: dict = {}
    if shared_feats:
        layout = [(j, [(plan.cells[ci].owner, plan.cells[ci].rows.shape[0])
                       for ci in cells_of[j]]) for j in shared_feats]
        mine = {}
        for j in shared_feats:
            for r, ci in enumerate(cells_of[j]):
                cell = plan.cells[ci]
                if cell.owner == me:
                    t = int(np.flatnonzero(cell.features == j)[0])
                    mine[(j, r)] = my_X[ci][:, t]
        cuts.update(shared_cuts(party, layout, mine,
                                {j: bool(plan.categorical[j]) for j in shared_feats}, max_bin))
    # --- cuts for the features this party can bin alone: xgboost's own sketch
    # on the owner's column (fit_bins: the cuts of xgboost.train(tree_method="hist")
    # for any n)
    for ci, cell in enumerate(plan.cells):
        if cell.owner != me:
            continue
        single = [t for t, j in enumerate(cell.features.tolist()) if len(cells_of[j]) == 1]
        if single:
            mapper = fit_bins(my_X[ci][:, single], max_bin,
                              plan.categorical[cell.features[single]])
            for t, fc in zip(single, mapper.features):
                cuts[int(cell.features[t])] = fc
    for j in range(m):
        if not cells_of[j]:
            raise ValueError(f"feature {j} is held by no party")
    # --- public bin counts (from each feature's cut owner = owner of its first cell)
    counts = np.full(m, -1, np.int64)
    cut_owner = np.array([plan.cells[cells_of[j][0]].owner for j in range(m)])
    for j in range(m):
        if cut_owner[j] == me:
            counts[j] = cuts[j].n_bins
    for q in range(party.n_parties):
        if q != me:
            ep.send(q, counts)
    for q in range(party.n_parties):
        if q != me:
            other = ep.recv(q)
            counts = np.where(cut_owner == q, other, counts)
    plan.n_bins = counts
    binned = {}
    for ci, cell in enumerate(plan.cells):
        if cell.owner == me:
            mapper = BinMapper(tuple(cuts[j] for j in cell.features.tolist()))
            binned[ci] = mapper.transform(my_X[ci])
    return binned, {j: cuts[j] for j in range(m) if cut_owner[j] == me}


# ----------------------------------------------------------------------------- backend
class SecureBackend(TreeBackend):
    """One party's side of the secure backend (all parties run it in lockstep).

    Parameters
    ----------
    party : the mpc :class:`~ppboost.mpc.context.Party` of this data party
    plan : the public :class:`SecurePlan` (``n_bins`` set by :func:`agree_bins`)
    params : TreeParams
    binned : {cell index: int (n_c, m_c)} bins of this party's cells
    cuts : {feature: FeatureCuts} for the features this party is cut owner of
    labels : {label block index: float labels} for the blocks this party holds
    offline : ``"overlap"`` or ``"before"`` (:meth:`_ahead_round`)
    """

    def __init__(self, party: Party, plan: SecurePlan, params: TreeParams, binned: dict,
                 cuts: dict, labels: dict, offline: str = "overlap"):
        self.party = party
        self.ops = _Ops(party)
        self.plan = plan
        self.params = params
        self.layout = TreeLayout(plan.n_bins, plan.categorical)
        self.n_rows = int(plan.n_rows)
        self.prec = precision_plan(params, self.n_rows)
        self.reg = params.objective == "reg:squarederror"
        self.fm = self.prec["fg"]                        # margin bits
        # bound_bits of the H / missing-count comparisons (public): values lie in
        # [-h_thr, hi 2^fh + n], one sign bit and one bit of slack on top
        pr = self.prec
        self._cmp_bits = _bits_for(pr["hi"] * 2.0 ** pr["fh"] + self.n_rows + pr["h_thr"]) + 2
        # route comparisons: |t + 1 - v| <= max bins + 2
        self._route_bits = _bits_for(int(np.max(plan.n_bins, initial=0)) + 2) + 2
        self._build_candidate_maps()
        self._prepare_cells(binned)
        self._share_conditions(cuts)
        self._share_labels(labels)
        self._parent = None
        if offline not in ("overlap", "before"):
            raise ValueError(f"offline == {offline!r}, must be 'overlap' or 'before'")
        self._rounds, self._round_requests = 0, None     # :meth:`_ahead_round`
        self._offline = offline

    # ------------------------------------------------------------------ public maps
    def _build_candidate_maps(self):
        """Public maps from the cumulative histograms to every candidate's sums
        (vectorised over candidates; pure functions of the public layout).

        ``_idx``/``_coef`` (C, 4): G_L = sum_q coef[c, q] cum[idx[c, q]] (index
        ``Btot`` is an appended zero row); ``_tot`` (C,): the node total row;
        ``_miss`` (C, 2): missing count = cum[a] - cum[b]; ``_route_codes``
        (C, 4): what :meth:`route` needs of each candidate.
        """
        lay = self.layout
        offs = np.asarray(lay.bin_offsets, dtype=np.int64)
        nbins = np.asarray(lay.n_bins, dtype=np.int64)
        self.Btot = int(offs[-1])
        zero = self.Btot                       # index of the appended zero row
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
        self.cand_start = np.zeros(lay.n_features + 1, np.int64)
        self.cand_start[1:] = np.cumsum(2 * nbins)
        self._idx, self._coef, self._tot, self._miss = idx, _signed(coef), tot, miss
        self._bwd = kind == KIND_BACKWARD
        # routing codes per candidate: [t, numeric - categorical, categorical, default left]
        # (a node's secret code is its one-hot times this public matrix, :meth:`route`)
        numeric = (fw | bw).astype(np.int64)
        dleft = np.asarray(lay.cand_default_left, dtype=np.int64)
        self._route_codes = _signed(np.stack([t, 2 * numeric - 1, 1 - numeric, dleft], axis=1))

    # ------------------------------------------------------------------ owner preparation
    def _prepare_cells(self, binned):
        nb = self.layout.n_bins
        self._cells = []
        for ci, cell in enumerate(self.plan.cells):
            nc, feats = int(cell.rows.shape[0]), cell.features
            B = int((nb[feats] + 1).max())
            npad = nc + B
            info = {"B": B, "npad": npad, "feats": feats, "mc": int(feats.shape[0])}
            if cell.owner == self.party.id:
                bins = np.asarray(binned[ci], dtype=np.int64)
                sig_stack, sel = [], []
                used = np.zeros(info["mc"] * npad, bool)
                for t, j in enumerate(feats.tolist()):
                    b = int(nb[j])
                    padded = np.concatenate([bins[:, t], np.minimum(np.arange(B), b)])
                    real = np.concatenate([np.ones(nc, np.int64), np.zeros(B, np.int64)])
                    sigma = np.argsort(padded * 2 + real, kind="stable")
                    sb = padded[sigma]
                    ends = np.searchsorted(sb, np.arange(b + 1), side="right") - 1
                    sig_stack.append(sigma + t * npad)
                    sel.append(ends + t * npad)
                    used[ends + t * npad] = True
                sig_stack = np.concatenate(sig_stack)
                # selection permutation: bin ends of block t at rows t*B .. t*B + b_j,
                # unused filler rows for k > b_j, then everything else
                free = np.flatnonzero(~used)
                top, pos = [], 0
                for t, j in enumerate(feats.tolist()):
                    k = B - int(nb[j]) - 1
                    top += [sel[t], free[pos:pos + k]]
                    pos += k
                top = np.concatenate(top).astype(np.int64)
                rest_mask = np.ones(info["mc"] * npad, bool)
                rest_mask[top] = False
                rest = np.flatnonzero(rest_mask)        # increasing, as setdiff1d gave
                info["sigmas"] = [s - t * npad for t, s in
                                  enumerate(np.split(sig_stack, info["mc"]))]
                info["select"] = np.concatenate([top, rest])
                # routing code per entry: bin + 1, 0 if missing (the missing bin)
                code = np.where(bins == nb[feats][None, :], 0, bins + 1)
            else:
                code = None
            info["codes"] = OwnerMatrix(self.party, code, cell.owner, shape=(nc, info["mc"]))
            self._cells.append(info)

    def _share_conditions(self, cuts):
        """Shares of the float32 split condition of every candidate (bit patterns)."""
        lay = self.layout
        C = lay.n_candidates
        cond = np.zeros(C, np.uint64)
        owners = {}
        for ci, cell in enumerate(self.plan.cells):
            for j in cell.features.tolist():
                owners.setdefault(j, cell.owner)
        for q in range(self.party.n_parties):
            mine = None
            if q == self.party.id:
                mine = np.zeros(C, np.uint64)
                for j, fc in cuts.items():
                    for c in range(int(self.cand_start[j]), int(self.cand_start[j + 1])):
                        t = int(lay.cand_bin[c])
                        v = fc.cuts[t] if (fc.categorical or t >= 0) else fc.min_value
                        mine[c] = np.float32(v).view(np.uint32)
            if any(o == q for o in owners.values()):
                cond = cond + self.ops.share_from(q, mine, (C,))
        self._cond = cond

    def _share_labels(self, labels):
        """Labels (and the label means, computed locally by each holder) as shares."""
        p, ops = self.params, self.ops
        n, K = self.n_rows, p.n_groups
        me = self.party.id
        if p.objective == "multi:softprob":
            Y = np.zeros((n, K), np.uint64)
            fr = np.zeros(K, np.uint64)
            for bi, (owner, rows) in enumerate(self.plan.label_blocks):
                vals = mean = None
                if owner == me:
                    y = np.asarray(labels[bi]).astype(np.int64)
                    oh = (y[:, None] == np.arange(K)[None, :]).astype(np.float64)
                    vals = _enc(oh, self.fm)
                    mean = _enc(oh.sum(axis=0) / n, LABEL_BITS)
                Y[rows] = ops.share_from(owner, vals, (rows.shape[0], K))
                fr = fr + ops.share_from(owner, mean, (K,))
            self._y, self._ybar = Y, fr
            return
        y_all = np.zeros(n, np.uint64)
        ybar = np.zeros(1, np.uint64)
        bits = LABEL_BITS if self.reg else self.fm
        for bi, (owner, rows) in enumerate(self.plan.label_blocks):
            vals = mean = None
            if owner == me:
                y = np.asarray(labels[bi], dtype=np.float64)
                if self.reg and np.any(np.abs(y) >= 2.0 ** SCALE_RANGE[1]):
                    raise ValueError(f"labels must satisfy |y| < 2**{SCALE_RANGE[1]} for "
                                     f"secure reg:squarederror")
                vals = _enc(y, bits)
                mean = _enc(np.array([y.sum() / n]), LABEL_BITS)
            y_all[rows] = ops.share_from(owner, vals, (rows.shape[0],))
            ybar = ybar + ops.share_from(owner, mean, (1,))
        self._y, self._ybar = y_all, ybar
        if self.reg:
            self._label_scale()

    def _label_scale(self):
        """Secret one-hot of e = min{k : max|y| <= 2^k} and the scaled labels."""
        ops, party = self.ops, self.party
        y = self._y
        s = ltz_raw(party, y)
        absy = y - ops.mul(s, y) * np.uint64(2)
        mx = rowmax(party, AShare(party, absy)).value.reshape(1)
        lo, hi = SCALE_RANGE
        ks = np.arange(lo, hi + 1)
        pw = np.array([1 << (k + LABEL_BITS) for k in ks], dtype=np.uint64)
        le = ops.ge0(ops.const(pw) - np.repeat(mx, ks.shape[0]))     # [max|y| <= 2^k]
        onehot = le.copy()
        onehot[1:] = le[1:] - le[:-1]
        self._scale_bits = onehot                                    # (len(ks),)
        self._ks = ks

        def lin(consts):
            return (onehot * np.asarray(consts, dtype=np.uint64)).sum(dtype=np.uint64)

        # y_s = y 2^-e at _REG_BITS: y(36) * 2^(24-k) >> 30
        S = lin([1 << (hi - k) for k in ks])
        shift = LABEL_BITS + hi - _REG_BITS
        self._y = ops.trunc(ops.mul(self._y, np.full(self._y.shape, S, np.uint64)),
                            shift, 62)
        self._ybar_s = ops.trunc(ops.mul(self._ybar, np.array([S])), shift, 62)[0]
        self._unscale = lin([1 << (k - lo) for k in ks])             # 2^(k+6)
        Fl = self.prec["Fl"]
        g = self.params.gamma
        thr = []
        for k in ks:
            sc = 2.0 ** (Fl - 2 * int(k))
            t = max(math.ceil(g * sc), math.floor(_KRT_EPS * sc) + 1)
            thr.append(min(t, (1 << 61) - 1))
        self._thr_scaled = lin(thr)
        if self.params.base_score is not None:
            self._base_scaled = lin([int(_enc(self.params.base_score * 2.0 ** -int(k),
                                              _REG_BITS)) for k in ks])

    # ------------------------------------------------------------------ margins
    def init_margins(self):
        """Intercept margins (n, K), as xgboost's fitted base_score.

        reg: mean(y) (label holders' local sums / public n, shared), scaled by
        the secret 2^-e.  logistic: logit(mean y) = log p - log(1 - p) and
        softprob: log f_k - mean_k log f_k, with :meth:`_secure_log`.
        Opened: only masks inside the protocols.  Cost: reg 0 rounds;
        logistic / softprob about (ln 2n + 5) Newton iterations of ~60 rounds
        on 2 (K) elements.  An explicit base_score is public: local.
        """
        p, ops, n = self.params, self.ops, self.n_rows
        if self.reg:
            b = self._base_scaled if p.base_score is not None else self._ybar_s
            return np.tile(ops.const(np.zeros(1, np.uint64)) + b, (n, 1)).astype(np.uint64) \
                if False else np.full((n, 1), 0, np.uint64) + b
        if p.objective == "binary:logistic":
            if p.base_score is not None:
                b = self.ops.const(_enc(np.log(p.base_score / (1 - p.base_score)), self.fm))
                return np.tile(b.reshape(1, 1), (n, 1))
            pbar = ops.trunc(self._ybar.reshape(1), LABEL_BITS - _LOG_BITS, 62)
            one = ops.const(_enc([1.0], _LOG_BITS))
            lg = self._secure_log(np.concatenate([pbar, one - pbar]), 1.0 / (2 * n))
            b = lg[0:1] - lg[1:2]                                  # logit, 24 bits
            b = ops.trunc(b, _LOG_BITS - self.fm, 40)
            return np.tile(b.reshape(1, 1), (n, 1))
        K = p.n_groups
        if p.base_score is not None:
            b = ops.const(_enc(np.full(K, p.base_score), self.fm))
            return np.tile(b.reshape(1, K), (n, 1))
        fr = ops.trunc(self._ybar, LABEL_BITS - _LOG_BITS, 62)
        lg = self._secure_log(fr, 1.0 / (2 * n))
        lgc = ops.trunc(lg, _LOG_BITS - self.fm, 40)
        mean = ops.trunc(lgc.sum(dtype=np.uint64).reshape(1) * _enc([1.0 / K], 24), 24,
                         self.fm + 30)
        b = lgc - mean
        self._base_margin = b
        return np.tile(b.reshape(1, K), (n, 1))

    def _secure_log(self, f, lo):
        """[log f] for shared f in [lo, 1] at _LOG_BITS bits (f at _LOG_BITS bits).

        Range reduction: bits c_k = [f < 2^-k], k = 1..K (one batched
        comparison, K = ceil(log2(1/lo))); t = sum_k c_k and
        2^t = 1 + sum_k c_k 2^(k-1) are linear in the bits (they are monotone),
        so f' = f 2^t in [1/2, 1) takes one product (no truncation).  Then
        Newton on exp(b) = f' from b = 0, monotone from above [b <- b - 1 +
        f' / exp(b)], 5 iterations (quadratic from |b*| <= ln 2), and
        log f = b - t ln 2.  Opened: masks only.
        Cost: 8 + 1 rounds + 5 x (exp_neg + reciprocal + 2) rounds.
        """
        party, ops = self.party, self.ops
        F = _LOG_BITS
        K = max(1, int(math.ceil(math.log2(1.0 / lo))))
        ks = np.arange(1, K + 1)
        shifted = np.stack([f - ops.const(np.full(f.shape, np.uint64(1 << (F - int(k)))))
                            for k in ks])
        c = ltz_raw(party, np.ascontiguousarray(shifted))               # (K, size)
        scale = ops.const(np.ones(f.shape, np.uint64)) \
            + (c * np.array([1 << (int(k) - 1) for k in ks], np.uint64)[:, None]).sum(
                axis=0, dtype=np.uint64)
        t = c.sum(axis=0, dtype=np.uint64)
        fp = ops.mul(f, scale)                                          # in [1/2, 1)
        b = np.zeros(f.shape, np.uint64)
        one = _enc(np.ones(f.shape), F)
        with _frac_bits(party, F):
            for _ in range(5):
                e = exp_neg(AShare(party, b)).value
                # exp(b) >= f' >= 1/2 in truth; a converged b with f' = 1/2 can give
                # exp(b) a few ulps below 1/2, so the declared range starts at 1/4
                r = reciprocal(AShare(party, e), 0.25, 1.0).value
                q = ops.trunc(ops.mul(fp, r), F, 2 * F + 2)              # f' / exp(b) <= 1
                b = b - ops.const(one) + q
        return b - t * _enc([math.log(2.0)], F)[0]

    def gradients(self, margins):
        """[(g, h)] per group.  reg: g = m - y_s, h = 1 (None), local.
        logistic: p = sigmoid(m) (33 rounds), g = p - y, h = p (1 - p)
        (1 product + 1 truncation).  softprob: P = softmax(M), g = P - onehot(y),
        h = 2 P (1 - P).  Opened: Beaver / comparison / truncation masks only.
        Elements: O(n K) per round.  [Chen & Guestrin 2016, sec. 2.2]
        """
        p, ops, party = self.params, self.ops, self.party
        self._ahead_round()
        if self.reg:
            return [(margins[:, 0] - self._y, None)]
        F = self.fm
        one = ops.const(_enc(np.ones(margins.shape), F))
        if p.objective == "binary:logistic":
            with _frac_bits(party, F):
                pr = sigmoid(AShare(party, np.ascontiguousarray(margins[:, 0]))).value
            g = pr - self._y
            h = ops.trunc(ops.mul(pr, one[:, 0] - pr), F, 2 * F + 2)
            return [(g, h)]
        with _frac_bits(party, F):
            P = softmax(AShare(party, np.ascontiguousarray(margins))).value
        G = P - self._y
        H = ops.trunc(ops.mul(P, one - P), F, 2 * F + 2) * np.uint64(2)
        return [(np.ascontiguousarray(G[:, k]), np.ascontiguousarray(H[:, k]))
                for k in range(P.shape[1])]

    def _ahead_round(self):
        """The offline phase of a boosting round, requested at its start.

        Every round asks the dealer for the same correlations in the same order
        (their shapes are public).  The first round records them
        (``DealerClient.record``); every later round requests all of them ahead
        at its start: with ``offline="overlap"`` lazily
        (``prefetch_many(expand=False)``), so the dealer generates the round's
        material while the parties work and each party expands its share when
        it uses it; with ``offline="before"`` in full before the round goes on
        (a separate offline phase).  In the first round only each level's
        permutation material is requested ahead (:meth:`histograms`).
        """
        dealer = self.party.dealer
        if self._rounds == 0:
            dealer.record()
        elif self._rounds == 1:
            self._round_requests = dealer.recorded()
        if self._round_requests:
            dealer.prefetch_many(self._round_requests, expand=self._offline == "before")
        self._rounds += 1

    def root_nodes(self):
        self._parent = None
        return self.ops.const(np.ones((self.n_rows, 1), np.uint64))

    # ------------------------------------------------------------------ histograms
    def histograms(self, nodes, gh):
        """Cumulative (node, bin) sums of [g, h, 1] (module docstring, steps 1-4).

        Inputs: N (n, L) shares, g, h shares.  Left children only (columns
        0, 2, ...), right = parent - left from the previous level.
        Opened: the Beaver masks of g*N, h*N; to each cell owner X + a
        (uniform) and to everyone the uniformly random tau of the owner
        permutations.  Identity: cum[o_j + k, :, l] = sum over rows of node l
        with bin_j <= k (missing bin last).
        Cost: 1 + 2 rounds per cell; per non-owner (n_c + B)(m_c + 1) cols
        elements, per owner m_c (n_c + B + B) int32 indices to each other
        party (the selection publishes only the m_c B kept rows, perm_select);
        offline (dealer -> owner) 2 m_c (n_c + B) cols elements.  Measured
        (25k x 300, 2 parties): the selection message is the O(n m L) term,
        about 260 MB per party at L = 8; the route's two stacked permutations
        cost twice that.
        """
        g, h = gh
        ops = self.ops
        n, L = nodes.shape
        left = nodes if L == 1 else np.ascontiguousarray(nodes[:, 0::2])
        Lh = left.shape[1]
        ncol = 2 if h is None else 3
        if h is None:
            gN = ops.mul(np.repeat(g[:, None], Lh, axis=1), left)
            V = np.concatenate([gN, left], axis=1)
        else:
            gh2 = np.concatenate([np.repeat(g[:, None], Lh, axis=1),
                                  np.repeat(h[:, None], Lh, axis=1)], axis=1)
            prod = ops.mul(gh2, np.concatenate([left, left], axis=1))
            V = np.concatenate([prod, left], axis=1)
        if not self._round_requests:
            # first round (nothing recorded yet, :meth:`_ahead_round`): ask for the
            # level's permutation material at once, so the dealer generates the later
            # cells' correlations while the parties work on the first cells
            self.party.dealer.prefetch_many(
                [dealer_request(shape, cell.owner, count, rows)
                 for cell, info in zip(self.plan.cells, self._cells)
                 for shape, count, rows in [((info["npad"], ncol * Lh), info["mc"], None),
                                            ((info["mc"] * info["npad"], ncol * Lh), 1,
                                             info["mc"] * info["B"])]],
                expand=False)
        cum = np.zeros((self.Btot, ncol * Lh), np.uint64)
        for ci, cell in enumerate(self.plan.cells):
            info = self._cells[ci]
            out = self._cell_hist(ci, cell, info, V[cell.rows])
            offs = self.layout.bin_offsets
            for t, j in enumerate(info["feats"].tolist()):
                bj = int(self.layout.n_bins[j]) + 1
                cum[int(offs[j]):int(offs[j]) + bj] += out[t, :bj]
        cum = cum.reshape(self.Btot, ncol, Lh)
        tot = V.sum(axis=0, dtype=np.uint64).reshape(ncol, Lh)
        if L > 1:
            pc, pt = self._parent
            full = np.empty((self.Btot, ncol, L), np.uint64)
            full[:, :, 0::2] = cum
            full[:, :, 1::2] = pc - cum
            ft = np.empty((ncol, L), np.uint64)
            ft[:, 0::2] = tot
            ft[:, 1::2] = pt - tot
            cum, tot = full, ft
        return {"cum": cum, "tot": tot}

    def _cell_hist(self, ci, cell, info, Vc):
        """Cumulative histograms at the bin ends of one cell: (m_c, B, cols)."""
        party = self.party
        B, mc = info["B"], info["mc"]
        cols = Vc.shape[1]
        X = np.concatenate([Vc, np.zeros((B, cols), np.uint64)], axis=0)
        owner = cell.owner
        mine = party.id == owner
        sorted_ = permute_many(AShare(party, X), info["sigmas"] if mine else None, owner,
                               count=mc)
        npad = info["npad"]
        stacked = np.empty((mc * npad, cols), np.uint64)
        for t, s in enumerate(sorted_):
            ring.prefix_sum(s.value, out=stacked[t * npad:(t + 1) * npad])
        # only the mc * B bin-end rows are kept: the owner publishes mc * B
        # indices (not mc * npad) and non-owners expand only those rows of
        # their output masks (perm_select)
        sel = permute(AShare(party, stacked), info["select"] if mine else None, owner,
                      rows=mc * B)
        return sel.value.reshape(mc, B, cols)

    # ------------------------------------------------------------------ split choice
    def _weights(self, G, H):
        """w = G / (H + lambda) at fw bits (not negated), for shared G (fg bits), H (fh bits).

        x = H + lambda at fx bits (H shifted, never truncated: equal sums give
        equal inputs); r' = 2^s / (H + lambda) at fr bits by the reciprocal
        with ``out_bits = fr + s`` (mpc.nonlinear; its normalisation keeps
        every significant bit of a large H + lambda); w = G r' / 2^s by a limb
        product (mpc.truncation.mul_trunc), so G is never truncated.
        Cost: the reciprocal, then 3 rounds of the limb product.
        """
        pr, party = self.prec, self.party
        fx = pr["fx"]
        x = H << np.uint64(fx - pr["fh"])
        x = x + (_enc([self.params.reg_lambda], fx)[0] if party.id == 0 else np.uint64(0))
        with _frac_bits(party, fx):
            r = reciprocal(AShare(party, np.ascontiguousarray(x)), pr["lo"], pr["hi"],
                           out_bits=pr["fr"] + pr["s"])
        return mul_trunc(AShare(party, np.ascontiguousarray(G)), r, *pr["w_mul"]).value

    def choose_splits(self, hist):
        """Secret one-hot split choice over C + 1 outcomes and node weights.

        Inputs: cumulative histograms.  Candidate sums (G_L, H_L, G_R, H_R,
        missing count) are public linear maps of them (local).  Gains
        G^2 / (H + lambda) = G w with w from :meth:`_weights` and a second
        limb product [Chen & Guestrin 2016, eq. 7; Catrina & Saxena FC 2010
        reciprocal]; validity bits by comparisons (edaBits, Escudero et al.
        CRYPTO 2020); invalid -> -2^61.  Ties: every candidate carries a
        secret tolerance, a bound on the difference between the fixed-point
        errors of two candidates with the same true loss (relative to
        S = gain_L + gain_R, plus the ulps of w scaled by the parent's row
        count, :func:`precision_plan`); the tournament argmax
        (:func:`ppboost.mpc.argmax.argmax` with that ``tol``) then keeps the
        lowest index among candidates within it, as xgboost keeps its first
        best split.  The best candidate is taken iff its loss exceeds
        max(gamma, 1e-6) by more than its tolerance (one comparison per
        node), else "do not split".
        Opened: masks only.
        Cost: the reciprocal (~25 rounds) + 2 limb products (6 rounds) +
        1 comparison batch + 2 products + 1 truncation + ceil(log2 C)
        tournament levels, on L (2C + 1) elements; then 1 comparison on L and
        1 product on L C elements.
        """
        pr, ops, party = self.prec, self.ops, self.party
        lay = self.layout
        cum, tot = hist["cum"], hist["tot"]
        ncol, L = tot.shape
        C = lay.n_candidates
        cumz = np.concatenate([cum, np.zeros((1, ncol, L), np.uint64)], axis=0)
        GL = (cumz[self._idx] * self._coef[:, :, None, None]).sum(axis=1, dtype=np.uint64)
        T = cumz[self._tot]
        GR = T - GL                                                   # (C, ncol, L)
        hcol = 1                       # [G, count] (reg, h = 1) or [G, H, count]
        ccol = ncol - 1
        miss = cumz[self._miss[:, 0], ccol] - cumz[self._miss[:, 1], ccol]    # (C, L)
        gl, hl = GL[:, 0].T, GL[:, hcol].T                            # (L, C)
        gr, hr = GR[:, 0].T, GR[:, hcol].T
        gp, hp = tot[0], tot[hcol]
        Gall = np.concatenate([gl.ravel(), gr.ravel(), gp])
        Hall = np.concatenate([hl.ravel(), hr.ravel(), hp])
        w = self._weights(Gall, Hall)
        gain = mul_trunc(AShare(party, Gall), AShare(party, w), *pr["gain_mul"]).value
        LC = L * C
        S = gain[:LC].reshape(L, C) + gain[LC:2 * LC].reshape(L, C)
        loss = S - gain[2 * LC:][:, None]
        # the tolerance before its final shift: S + tol_per_row * count_parent
        Tn = S + tot[ccol][:, None] * np.uint64(pr["tol_per_row"])
        thr = np.uint64(pr["h_thr"])
        cmp = np.concatenate([Hall - ops.const(np.full(Hall.shape, thr)),
                              miss.T.ravel() - ops.const(np.ones(LC, np.uint64))])
        # declared bound of the compared values: |H| <= hi 2^fh (+ 1 ulp of h's
        # truncation per row), h_thr, |miss - 1| <= n -> a shorter comparison circuit
        ge = ops.ge0(cmp, self._cmp_bits)
        geL, geR, geP = ge[:LC], ge[LC:2 * LC], ge[2 * LC:2 * LC + L]
        geM = ge[2 * LC + L:]
        wP = ops.trunc(w[2 * LC:], pr["fw"] - pr["fo"], pr["fw"] + _bits_for(pr["Wmax"]) + 1)
        v1 = ops.mul(np.concatenate([geL, geP]), np.concatenate([geR, np.uint64(0) - wP]))
        valid, wnode = v1[:LC], v1[LC:]
        bwd = np.tile(self._bwd, L)
        vb = ops.mul(valid, np.where(bwd, geM, ops.const(np.ones(LC, np.uint64))))
        # invalid candidates: loss -2^61 and tolerance 0 (their S is garbage)
        both = ops.mul(np.concatenate([vb, vb]),
                       np.concatenate([loss.ravel() + ops.const(np.full(LC, _BIG)), Tn.ravel()]))
        masked = both[:LC] - ops.const(np.full(LC, _BIG))
        tol = ops.trunc(both[LC:], pr["tol_shift"], 62) \
            + ops.const(np.full(LC, np.uint64(pr["tol_const"])))
        if self.reg:
            thr_col = np.full(L, self._thr_scaled, np.uint64)
        else:
            sc = 2.0 ** pr["Fl"]
            t = max(math.ceil(self.params.gamma * sc), math.floor(_KRT_EPS * sc) + 1)
            thr_col = ops.const(np.full(L, min(t, (1 << 61) - 1), np.uint64))
        self._parent = (cum, tot)
        if C == 0:
            return {"onehot": ops.const(np.ones((L, 1), np.uint64)), "weight": wnode}
        oh, best, btol = argmax(party, AShare(party, masked.reshape(L, C)), return_max=True,
                                tol=AShare(party, tol.reshape(L, C)))
        # split iff the best loss exceeds the threshold by more than its tolerance
        split = ops.ge0(best.value - btol.value - thr_col)
        chosen = ops.mul(oh.value, np.repeat(split[:, None], C, axis=1))
        onehot = np.concatenate([chosen, (ops.const(np.ones(L, np.uint64)) - split)[:, None]],
                                axis=1)
        return {"onehot": onehot, "weight": wnode}

    # ------------------------------------------------------------------ routing
    def route(self, nodes, splits):
        """Children indicators (n, 2L): N_left = N * left, N_right = N - N_left.

        Inputs: N and the one-hot choices o (L x (C + 1), the last column "do
        not split").  Local: each node's chosen feature e = o summed per
        feature (L x m), and its code [t, num - cat, cat, dl] = o @ (public
        per-candidate codes).  Per cell, the owner's code matrix A (bin + 1,
        0 if missing; set up once, :class:`ppboost.mpc.ownermat.OwnerMatrix`)
        gives v = A @ e^T: the row's bin + 1 in the node's chosen feature, 0 if
        it is missing there (or the node does not split).  Three comparisons
        give z = [v <= 0], le = [bin <= t], lt = [bin < t]; then
        q = cat + (num - cat) le + cat lt (numerical: bin <= t; categorical:
        bin != t) and N_left = N (dns + q + z (dl - q)).
        Opened: E_q - R_q (uniform) to each cell owner, the comparisons' and
        the Beaver products' masks.
        Identity: N_left[i, l] = N[i, l] [row i goes left under node l's choice].
        Cost: 1 round per cell with m_c L elements per non-owner (offline n_c L
        from the dealer), one comparison batch on 3 n L elements of
        ``_route_bits`` bits, 2 Beaver rounds on 4 n L and 2 n L elements.
        """
        party, ops = self.party, self.ops
        lay = self.layout
        n, L = nodes.shape
        onehot = splits["onehot"]
        C = lay.n_candidates
        oc = np.ascontiguousarray(onehot[:, :C])
        csum = np.zeros((L, C + 1), np.uint64)
        np.cumsum(oc, axis=1, dtype=np.uint64, out=csum[:, 1:])
        E = csum[:, self.cand_start[1:]] - csum[:, self.cand_start[:-1]]       # (L, m)
        t, nc_, cat, dl = ring.matmul(oc, self._route_codes).T                  # (L,) each
        dns = onehot[:, C]
        v = np.zeros((n, L), np.uint64)
        for ci, cell in enumerate(self.plan.cells):
            info = self._cells[ci]
            ec = np.ascontiguousarray(E[:, info["feats"]].T)                     # (m_c, L)
            v[cell.rows] += info["codes"].matmul(AShare(party, ec)).value
        one = ops.const(np.ones((n, L), np.uint64))
        cmp = np.concatenate([(np.uint64(0) - v).ravel(),          # z  = [v <= 0]
                              (t[None, :] + one - v).ravel(),      # le = [v - 1 <= t]
                              (t[None, :] - v).ravel()])           # lt = [v - 1 < t]
        z, le, lt = ops.ge0(cmp, self._route_bits).reshape(3, n, L)
        full = (n, L)
        p = ops.mul(np.concatenate([np.broadcast_to(nc_, full), np.broadcast_to(cat, full),
                                    nodes, nodes]),
                    np.concatenate([le, lt, z, np.broadcast_to(dns, full)]))
        p1, p2, nz, ndns = p[:n], p[n:2 * n], p[2 * n:3 * n], p[3 * n:]
        q = cat[None, :] + p1 + p2
        r = ops.mul(np.concatenate([nodes, nz]), np.concatenate([q, dl[None, :] - q]))
        nl = ndns + r[:n] + r[n:]
        out = np.empty((n, 2 * L), np.uint64)
        out[:, 0::2] = nl
        out[:, 1::2] = nodes - nl
        return out

    # ------------------------------------------------------------------ leaves, margins
    def leaf_values(self, nodes, gh):
        """Leaf weights w = -G / (H + lambda) (0 if H < max(mcw, ulp)) and
        eta * w.  Sums by a matrix Beaver product [g; h]^T N (1 round,
        (2n + nL) elements); then the reciprocal, one comparison, one product
        and one truncation on L elements.  Opened: masks only.
        """
        g, h = gh
        ops, pr = self.ops, self.prec
        cnt = nodes.sum(axis=0, dtype=np.uint64)
        rows = [g] if h is None else [g, h]
        S = _matmul_share(AShare(self.party, np.stack(rows)),
                          AShare(self.party, np.ascontiguousarray(nodes))).value
        G = S[0]
        H = cnt if h is None else S[1]
        w = ops.trunc(self._weights(G, H), pr["fw"] - pr["fo"],
                      pr["fw"] + _bits_for(pr["Wmax"]) + 1)
        ok = ops.ge0(H - ops.const(np.full(H.shape, np.uint64(pr["h_thr"]))), self._cmp_bits)
        wl = ops.mul(ok, np.uint64(0) - w)
        eta = _enc([self.params.eta], self.fm)[0]
        value = ops.trunc(wl * eta, pr["fo"], pr["fo"] + self.fm + _bits_for(pr["Wmax"]) + 2)
        return {"weight": wl, "value": value}

    def update_margins(self, margins, nodes, leaves, group):
        """margins[:, group] += N @ (eta w): one matrix Beaver product (exact:
        N is 0/1), 1 round, n L + L elements.  Opened: Beaver masks."""
        d = _matmul_share(AShare(self.party, np.ascontiguousarray(nodes)),
                          AShare(self.party, leaves["value"])).value
        out = margins.copy()
        out[:, group] = out[:, group] + d
        return out

    def reveal_tree(self, splits, leaves, group):
        """This party's shares of the finished tree (nothing is opened here)."""
        ops, pr = self.ops, self.prec
        C = self.layout.n_candidates
        conds = []
        flat = np.concatenate([s["onehot"][:, :C] for s in splits], axis=0)
        prod = ops.mul(flat, np.broadcast_to(self._cond, flat.shape))
        cond_all = prod.sum(axis=1, dtype=np.uint64)
        pos = 0
        for s in splits:
            L = s["onehot"].shape[0]
            conds.append(cond_all[pos:pos + L])
            pos += L
        ws = np.concatenate([s["weight"] for s in splits] + [leaves["weight"]])
        if self.reg:
            lo = SCALE_RANGE[0]
            ws = ops.trunc(ops.mul(ws, np.full(ws.shape, self._unscale, np.uint64)), -lo,
                           pr["fo"] + 2 + SCALE_RANGE[1] - lo + 1)
        weights, pos = [], 0
        for s in splits:
            L = s["onehot"].shape[0]
            weights.append(ws[pos:pos + L])
            pos += L
        return SharedTree(group, [s["onehot"].copy() for s in splits], conds, weights,
                          ws[pos:], pr["fo"])

    def base_score_share(self) -> tuple:
        """(share, frac bits) of what xgboost stores as base_score."""
        p = self.params
        if p.objective == "multi:softprob":
            if p.base_score is not None:
                return self.ops.const(_enc(np.full(p.n_groups, p.base_score), self.fm)), \
                    self.fm
            return self._base_margin, self.fm
        if p.base_score is not None:
            return self.ops.const(_enc([p.base_score], LABEL_BITS)), LABEL_BITS
        return self._ybar.copy(), LABEL_BITS


# ----------------------------------------------------------------------------- analyst side
def open_tree(shares: list, layout: TreeLayout):
    """Sum the parties' :class:`SharedTree` shares of one tree -> RevealedTree (analyst)."""
    from .backend import RevealedTree
    C = layout.n_candidates
    first = shares[0]
    d = len(first.onehot)

    def total(get):
        acc = None
        for s in shares:
            v = np.asarray(get(s), dtype=np.uint64)
            acc = v.copy() if acc is None else acc + v
        return acc

    is_split, feat, sbin, dleft, iscat, cond, w = [], [], [], [], [], [], []
    fw = first.weight_bits
    for k in range(d):
        oh = total(lambda s: s.onehot[k])
        if not np.all((oh == 0) | (oh == 1)) or not np.all(oh.sum(axis=1) == 1):
            raise ValueError("opened split choice is not one-hot: the shares are inconsistent")
        ch = np.argmax(oh, axis=1)
        sp = ch != C
        chc = np.where(sp, ch, 0)
        f = layout.cand_feature[chc] if C else np.zeros_like(ch)
        c_bits = total(lambda s: s.cond[k]).astype(np.uint32)
        is_split.append(sp)
        feat.append(np.where(sp, f, 0))
        sbin.append(np.where(sp, layout.cand_bin[chc] if C else 0, 0))
        dleft.append(sp & (layout.cand_default_left[chc] if C else False))
        iscat.append(sp & (layout.categorical[f] if C else False))
        cond.append(c_bits.view(np.float32))
        w.append(fixed.decode(total(lambda s: s.weight[k]), fw))
    leaf = fixed.decode(total(lambda s: s.leaf), fw)
    return RevealedTree(is_split, feat, sbin, dleft, iscat, cond, w, leaf, first.group)
