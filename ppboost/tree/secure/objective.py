"""Labels, intercepts and gradients of the objectives on shares.

* binary:logistic / multi:softprob: labels (one-hot for softprob) at the
  margins' fg bits; p = sigmoid(m) or softmax(M) in MPC.
* reg:squarederror: labels are normalised by a **secret** power of two
  2^-e with max|y| <= 2^e (secure max + comparisons with public powers of
  two, never opened): y_s = y 2^-e.  Split choice is invariant under this
  scaling once gamma and kRtEps are scaled by 2^-2e (secret thresholds,
  local); weights are multiplied back by 2^e (a secret factor) before the
  analyst opens them.
"""
from __future__ import annotations

import math

import numpy as np

from ...mpc.argmax import rowmax
from ...mpc.nonlinear import exp_neg, reciprocal, sigmoid, softmax
from ...mpc.shares import AShare
from ..params import TreeParams
from ..split_rule import threshold_units
from .ops import Ops, enc, frac_bits
from .precision import REG_BITS, PrecisionPlan

__all__ = ["SecureObjective", "secure_log", "LABEL_BITS", "SCALE_RANGE"]

#: fractional bits of labels / label means as shared by the label holders
LABEL_BITS = 36
#: exponents e tried for the secret label scale 2^e (reg:squarederror)
SCALE_RANGE = (-6, 24)
_LOG_BITS = 24          # fractional bits inside the secure log (intercepts)


def secure_log(ops: Ops, f, lo):
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
    party = ops.p
    F = _LOG_BITS
    K = max(1, int(math.ceil(math.log2(1.0 / lo))))
    ks = np.arange(1, K + 1)
    shifted = np.stack([f - ops.const(np.full(f.shape, np.uint64(1 << (F - int(k)))))
                        for k in ks])
    c = ops.ltz(shifted)                                            # (K, size)
    scale = ops.const(np.ones(f.shape, np.uint64)) \
        + (c * np.array([1 << (int(k) - 1) for k in ks], np.uint64)[:, None]).sum(
            axis=0, dtype=np.uint64)
    t = c.sum(axis=0, dtype=np.uint64)
    fp = ops.mul(f, scale)                                          # in [1/2, 1)
    b = np.zeros(f.shape, np.uint64)
    one = enc(np.ones(f.shape), F)
    with frac_bits(party, F):
        for _ in range(5):
            e = exp_neg(AShare(party, b)).value
            # exp(b) >= f' >= 1/2 in truth; a converged b with f' = 1/2 can give
            # exp(b) a few ulps below 1/2, so the declared range starts at 1/4
            r = reciprocal(AShare(party, e), 0.25, 1.0).value
            q = ops.trunc(ops.mul(fp, r), F, 2 * F + 2)              # f' / exp(b) <= 1
            b = b - ops.const(one) + q
    return b - t * enc([math.log(2.0)], F)[0]


class SecureObjective:
    """The labels of one run as shares, and what the objective computes from them.

    Construction shares the labels (and their means, computed locally by each
    holder): ``labels`` {label block index: float labels} for the blocks this
    party holds.  For reg:squarederror it then finds the secret label scale
    (:meth:`_label_scale`).  Opened: nothing (masks only).
    Cost: one input sharing per label block; reg adds a secure max of n
    elements and about 31 comparisons.
    """

    def __init__(self, ops: Ops, params: TreeParams, prec: PrecisionPlan, plan, labels: dict):
        self.ops, self.params, self.prec = ops, params, prec
        self.n_rows = int(plan.n_rows)
        self.reg = params.objective == "reg:squarederror"
        self.fm = prec.fg                                # margin bits
        self._base_margin = None
        p, n, K = params, self.n_rows, params.n_groups
        me = ops.p.id
        if p.objective == "multi:softprob":
            Y = np.zeros((n, K), np.uint64)
            fr = np.zeros(K, np.uint64)
            for bi, (owner, rows) in enumerate(plan.label_blocks):
                vals = mean = None
                if owner == me:
                    y = np.asarray(labels[bi]).astype(np.int64)
                    oh = (y[:, None] == np.arange(K)[None, :]).astype(np.float64)
                    vals = enc(oh, self.fm)
                    mean = enc(oh.sum(axis=0) / n, LABEL_BITS)
                Y[rows] = ops.share_from(owner, vals, (rows.shape[0], K))
                fr = fr + ops.share_from(owner, mean, (K,))
            self._y, self._ybar = Y, fr
            return
        y_all = np.zeros(n, np.uint64)
        ybar = np.zeros(1, np.uint64)
        bits = LABEL_BITS if self.reg else self.fm
        for bi, (owner, rows) in enumerate(plan.label_blocks):
            vals = mean = None
            if owner == me:
                y = np.asarray(labels[bi], dtype=np.float64)
                if self.reg and np.any(np.abs(y) >= 2.0 ** SCALE_RANGE[1]):
                    raise ValueError(f"labels must satisfy |y| < 2**{SCALE_RANGE[1]} for "
                                     f"secure reg:squarederror")
                vals = enc(y, bits)
                mean = enc(np.array([y.sum() / n]), LABEL_BITS)
            y_all[rows] = ops.share_from(owner, vals, (rows.shape[0],))
            ybar = ybar + ops.share_from(owner, mean, (1,))
        self._y, self._ybar = y_all, ybar
        if self.reg:
            self._label_scale()

    def _label_scale(self):
        """Secret one-hot of e = min{k : max|y| <= 2^k}, the scaled labels
        y_s = y 2^-e and mean, and the secret linear functions of e the run
        needs (2^e to unscale weights, the split threshold at 2^-2e, the
        scaled base_score).  Opened: masks only.  Cost: a sign comparison and
        a product on n elements, a secure max of n elements, one comparison
        batch on |SCALE_RANGE| elements, two products and truncations."""
        ops, party = self.ops, self.ops.p
        y = self._y
        s = ops.ltz(y)
        absy = y - ops.mul(s, y) * np.uint64(2)
        mx = rowmax(party, AShare(party, absy)).value.reshape(1)
        lo, hi = SCALE_RANGE
        ks = np.arange(lo, hi + 1)
        pw = np.array([1 << (k + LABEL_BITS) for k in ks], dtype=np.uint64)
        le = ops.ge0(ops.const(pw) - np.repeat(mx, ks.shape[0]))     # [max|y| <= 2^k]
        onehot = le.copy()
        onehot[1:] = le[1:] - le[:-1]

        def lin(consts):
            return (onehot * np.asarray(consts, dtype=np.uint64)).sum(dtype=np.uint64)

        # y_s = y 2^-e at REG_BITS: y(36) * 2^(24-k) >> 30
        S = lin([1 << (hi - k) for k in ks])
        shift = LABEL_BITS + hi - REG_BITS
        self._y = ops.trunc(ops.mul(self._y, np.full(self._y.shape, S, np.uint64)), shift, 62)
        self._ybar_s = ops.trunc(ops.mul(self._ybar, np.array([S])), shift, 62)[0]
        self._unscale = lin([1 << (k - lo) for k in ks])             # 2^(k+6)
        Fl, g = self.prec.Fl, self.params.gamma
        self._thr_scaled = lin([threshold_units(g, Fl - 2 * int(k)) for k in ks])
        if self.params.base_score is not None:
            self._base_scaled = lin([int(enc(self.params.base_score * 2.0 ** -int(k), REG_BITS))
                                     for k in ks])

    def split_threshold(self, L: int) -> np.ndarray:
        """Shares (L,) of the split threshold in loss units (Fl bits): secret
        for scaled labels (gamma, kRtEps at 2^-2e), else public.  Local."""
        if self.reg:
            return np.full(L, self._thr_scaled, np.uint64)
        t = threshold_units(self.params.gamma, self.prec.Fl)
        return self.ops.const(np.full(L, t, np.uint64))

    def unscale(self, ws):
        """Weights (fo bits, scaled labels) -> label units: ws 2^e (reg only).
        Opened: masks only.  Cost: 1 product and 1 truncation on ws.size elements."""
        lo = SCALE_RANGE[0]
        return self.ops.trunc(self.ops.mul(ws, np.full(ws.shape, self._unscale, np.uint64)),
                              -lo, self.prec.fo + 2 + SCALE_RANGE[1] - lo + 1)

    def init_margins(self):
        """Intercept margins (n, K), as xgboost's fitted base_score.

        reg: mean(y) (label holders' local sums / public n, shared), scaled by
        the secret 2^-e.  logistic: logit(mean y) = log p - log(1 - p) and
        softprob: log f_k - mean_k log f_k, with :func:`secure_log`.
        Opened: only masks inside the protocols.  Cost: reg 0 rounds;
        logistic / softprob about (ln 2n + 5) Newton iterations of ~60 rounds
        on 2 (K) elements.  An explicit base_score is public: local.
        """
        p, ops, n = self.params, self.ops, self.n_rows
        if self.reg:
            b = self._base_scaled if p.base_score is not None else self._ybar_s
            return np.full((n, 1), 0, np.uint64) + b
        if p.objective == "binary:logistic":
            if p.base_score is not None:
                b = ops.const(enc(np.log(p.base_score / (1 - p.base_score)), self.fm))
                return np.tile(b.reshape(1, 1), (n, 1))
            pbar = ops.trunc(self._ybar.reshape(1), LABEL_BITS - _LOG_BITS, 62)
            one = ops.const(enc([1.0], _LOG_BITS))
            lg = secure_log(ops, np.concatenate([pbar, one - pbar]), 1.0 / (2 * n))
            b = lg[0:1] - lg[1:2]                                  # logit, 24 bits
            b = ops.trunc(b, _LOG_BITS - self.fm, 40)
            return np.tile(b.reshape(1, 1), (n, 1))
        K = p.n_groups
        if p.base_score is not None:
            b = ops.const(enc(np.full(K, p.base_score), self.fm))
            return np.tile(b.reshape(1, K), (n, 1))
        fr = ops.trunc(self._ybar, LABEL_BITS - _LOG_BITS, 62)
        lg = secure_log(ops, fr, 1.0 / (2 * n))
        lgc = ops.trunc(lg, _LOG_BITS - self.fm, 40)
        mean = ops.trunc(lgc.sum(dtype=np.uint64).reshape(1) * enc([1.0 / K], 24), 24,
                         self.fm + 30)
        b = lgc - mean
        self._base_margin = b
        return np.tile(b.reshape(1, K), (n, 1))

    def gradients(self, margins):
        """[(g, h)] per group.  reg: g = m - y_s, h = 1 (None), local.
        logistic: p = sigmoid(m) (33 rounds), g = p - y, h = p (1 - p)
        (1 product + 1 truncation).  softprob: P = softmax(M), g = P - onehot(y),
        h = 2 P (1 - P).  Opened: Beaver / comparison / truncation masks only.
        Elements: O(n K) per round.  [Chen & Guestrin 2016, sec. 2.2]
        """
        p, ops, party = self.params, self.ops, self.ops.p
        if self.reg:
            return [(margins[:, 0] - self._y, None)]
        F = self.fm
        one = ops.const(enc(np.ones(margins.shape), F))
        if p.objective == "binary:logistic":
            with frac_bits(party, F):
                pr = sigmoid(AShare(party, np.ascontiguousarray(margins[:, 0]))).value
            g = pr - self._y
            h = ops.trunc(ops.mul(pr, one[:, 0] - pr), F, 2 * F + 2)
            return [(g, h)]
        with frac_bits(party, F):
            P = softmax(AShare(party, np.ascontiguousarray(margins))).value
        G = P - self._y
        H = ops.trunc(ops.mul(P, one - P), F, 2 * F + 2) * np.uint64(2)
        return [(np.ascontiguousarray(G[:, k]), np.ascontiguousarray(H[:, k]))
                for k in range(P.shape[1])]

    def base_score_share(self) -> tuple:
        """(share, frac bits) of what xgboost stores as base_score.  softprob
        without an explicit base_score: the intercept :meth:`init_margins` made."""
        p = self.params
        if p.objective == "multi:softprob":
            if p.base_score is not None:
                return self.ops.const(enc(np.full(p.n_groups, p.base_score), self.fm)), self.fm
            return self._base_margin, self.fm
        if p.base_score is not None:
            return self.ops.const(enc([p.base_score], LABEL_BITS)), LABEL_BITS
        return self._ybar.copy(), LABEL_BITS
