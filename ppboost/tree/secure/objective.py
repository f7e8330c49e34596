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

from ...crypto import fixed
from ...mpc import raw
from ...mpc.argmax import rowmax
from ...mpc.nonlinear import exp_neg, reciprocal, sigmoid, softmax
from ...mpc.party import Party
from ...mpc.shares import AShare
from ..params import TreeParams
from ..split_rule import threshold_units
from .precision import REG_BITS, PrecisionPlan

__all__ = ["SecureObjective", "secure_log", "LABEL_BITS", "SCALE_RANGE"]

#: fractional bits of labels / label means as shared by the label holders
LABEL_BITS = 36
#: exponents e tried for the secret label scale 2^e (reg:squarederror)
SCALE_RANGE = (-6, 24)
_LOG_BITS = 24          # fractional bits inside the secure log (intercepts)


def secure_log(party: Party, f, lo):
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
    F = _LOG_BITS
    K = max(1, int(math.ceil(math.log2(1.0 / lo))))
    ks = np.arange(1, K + 1)
    shifted = np.stack([f - raw.const(party, np.full(f.shape, np.uint64(1 << (F - int(k)))))
                        for k in ks])
    c = raw.ltz(party, shifted)                                     # (K, size)
    scale = raw.const(party, np.ones(f.shape, np.uint64)) \
        + (c * np.array([1 << (int(k) - 1) for k in ks], np.uint64)[:, None]).sum(
            axis=0, dtype=np.uint64)
    t = c.sum(axis=0, dtype=np.uint64)
    fp = raw.mul(party, f, scale)                                   # in [1/2, 1)
    b = np.zeros(f.shape, np.uint64)
    one = fixed.encode(np.ones(f.shape), F)
    for _ in range(5):
        e = exp_neg(AShare(party, b), frac_bits=F).value
        # exp(b) >= f' >= 1/2 in truth; a converged b with f' = 1/2 can give
        # exp(b) a few ulps below 1/2, so the declared range starts at 1/4
        r = reciprocal(AShare(party, e), 0.25, 1.0, frac_bits=F).value
        q = raw.trunc(party, raw.mul(party, fp, r), F, 2 * F + 2)    # f' / exp(b) <= 1
        b = b - raw.const(party, one) + q
    return b - t * fixed.encode([math.log(2.0)], F)[0]


class SecureObjective:
    """The labels of one run as shares, and what the objective computes from them.

    Construction shares the labels (and their means, computed locally by each
    holder): ``labels`` {label block index: float labels} for the blocks this
    party holds.  For reg:squarederror it then finds the secret label scale
    (:meth:`_label_scale`).  Opened: nothing (masks only).
    Cost: one input sharing per label block; reg adds a secure max of n
    elements and about 31 comparisons.
    """

    def __init__(self, party: Party, params: TreeParams, prec: PrecisionPlan, plan, labels: dict):
        self.party, self.params, self.prec = party, params, prec
        self.n_rows = int(plan.n_rows)
        self.reg = params.objective == "reg:squarederror"
        self.fm = prec.fg                                # margin bits
        self._base_margin = None
        p, n, K = params, self.n_rows, params.n_groups
        me = party.id
        if p.objective == "multi:softprob":
            Y = np.zeros((n, K), np.uint64)
            fr = np.zeros(K, np.uint64)
            for bi, (owner, rows) in enumerate(plan.label_blocks):
                vals = mean = None
                if owner == me:
                    y = np.asarray(labels[bi]).astype(np.int64)
                    oh = (y[:, None] == np.arange(K)[None, :]).astype(np.float64)
                    vals = fixed.encode(oh, self.fm)
                    mean = fixed.encode(oh.sum(axis=0) / n, LABEL_BITS)
                Y[rows] = raw.share_from(party, owner, vals, (rows.shape[0], K))
                fr = fr + raw.share_from(party, owner, mean, (K,))
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
                vals = fixed.encode(y, bits)
                mean = fixed.encode(np.array([y.sum() / n]), LABEL_BITS)
            y_all[rows] = raw.share_from(party, owner, vals, (rows.shape[0],))
            ybar = ybar + raw.share_from(party, owner, mean, (1,))
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
        party = self.party
        y = self._y
        s = raw.ltz(party, y)
        absy = y - raw.mul(party, s, y) * np.uint64(2)
        mx = rowmax(party, AShare(party, absy)).value.reshape(1)
        lo, hi = SCALE_RANGE
        ks = np.arange(lo, hi + 1)
        pw = np.array([1 << (k + LABEL_BITS) for k in ks], dtype=np.uint64)
        le = raw.ge0(party, raw.const(party, pw) - np.repeat(mx, ks.shape[0]))  # [max|y| <= 2^k]
        onehot = le.copy()
        onehot[1:] = le[1:] - le[:-1]

        def lin(consts):
            return (onehot * np.asarray(consts, dtype=np.uint64)).sum(dtype=np.uint64)

        # y_s = y 2^-e at REG_BITS: y(36) * 2^(24-k) >> 30
        S = lin([1 << (hi - k) for k in ks])
        shift = LABEL_BITS + hi - REG_BITS
        self._y = raw.trunc(party, raw.mul(party, self._y, np.full(self._y.shape, S, np.uint64)),
                            shift, 62)
        self._ybar_s = raw.trunc(party, raw.mul(party, self._ybar, np.array([S])), shift, 62)[0]
        self._unscale = lin([1 << (k - lo) for k in ks])             # 2^(k+6)
        Fl, g = self.prec.Fl, self.params.gamma
        self._thr_scaled = lin([threshold_units(g, Fl - 2 * int(k)) for k in ks])
        if self.params.base_score is not None:
            self._base_scaled = lin([int(fixed.encode(self.params.base_score * 2.0 ** -int(k),
                                                      REG_BITS))
                                     for k in ks])

    def split_threshold(self, L: int) -> np.ndarray:
        """Shares (L,) of the split threshold in loss units (Fl bits): secret
        for scaled labels (gamma, kRtEps at 2^-2e), else public.  Local."""
        if self.reg:
            return np.full(L, self._thr_scaled, np.uint64)
        t = threshold_units(self.params.gamma, self.prec.Fl)
        return raw.const(self.party, np.full(L, t, np.uint64))

    def unscale(self, ws):
        """Weights (fo bits, scaled labels) -> label units: ws 2^e (reg only).
        Opened: masks only.  Cost: 1 product and 1 truncation on ws.size elements."""
        lo = SCALE_RANGE[0]
        return raw.trunc(self.party, raw.mul(self.party, ws, np.full(ws.shape, self._unscale,
                                                                   np.uint64)),
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
        p, party, n = self.params, self.party, self.n_rows
        if self.reg:
            b = self._base_scaled if p.base_score is not None else self._ybar_s
            return np.full((n, 1), 0, np.uint64) + b
        if p.objective == "binary:logistic":
            if p.base_score is not None:
                logit = np.log(p.base_score / (1 - p.base_score))
                b = raw.const(party, fixed.encode(logit, self.fm))
                return np.tile(b.reshape(1, 1), (n, 1))
            pbar = raw.trunc(party, self._ybar.reshape(1), LABEL_BITS - _LOG_BITS, 62)
            one = raw.const(party, fixed.encode([1.0], _LOG_BITS))
            lg = secure_log(party, np.concatenate([pbar, one - pbar]), 1.0 / (2 * n))
            b = lg[0:1] - lg[1:2]                                  # logit, 24 bits
            b = raw.trunc(party, b, _LOG_BITS - self.fm, 40)
            return np.tile(b.reshape(1, 1), (n, 1))
        K = p.n_groups
        if p.base_score is not None:
            b = raw.const(party, fixed.encode(np.full(K, p.base_score), self.fm))
            return np.tile(b.reshape(1, K), (n, 1))
        fr = raw.trunc(party, self._ybar, LABEL_BITS - _LOG_BITS, 62)
        lg = secure_log(party, fr, 1.0 / (2 * n))
        lgc = raw.trunc(party, lg, _LOG_BITS - self.fm, 40)
        total = lgc.sum(dtype=np.uint64).reshape(1)
        mean = raw.trunc(party, total * fixed.encode([1.0 / K], 24), 24, self.fm + 30)
        b = lgc - mean
        self._base_margin = b
        return np.tile(b.reshape(1, K), (n, 1))

    def gradients(self, margins, hessian: bool = True):
        """[(g, h)] per group.  reg: g = m - y_s, h = 1 (None), local.
        logistic: p = sigmoid(m) (33 rounds), g = p - y, h = p (1 - p)
        (1 product + 1 truncation).  softprob: P = softmax(M), g = P - onehot(y),
        h = 2 P (1 - P).  ``hessian=False``: h is not computed (None; unit
        hessians, for differential privacy).  Opened: Beaver / comparison /
        truncation masks only.  Elements: O(n K) per round.
        [Chen & Guestrin 2016, sec. 2.2]
        """
        p, party = self.params, self.party
        if self.reg:
            return [(margins[:, 0] - self._y, None)]
        F = self.fm
        one = raw.const(party, fixed.encode(np.ones(margins.shape), F))
        if p.objective == "binary:logistic":
            pr = sigmoid(AShare(party, np.ascontiguousarray(margins[:, 0])), frac_bits=F).value
            g = pr - self._y
            if not hessian:
                return [(g, None)]
            h = raw.trunc(party, raw.mul(party, pr, one[:, 0] - pr), F, 2 * F + 2)
            return [(g, h)]
        P = softmax(AShare(party, np.ascontiguousarray(margins)), frac_bits=F).value
        G = P - self._y
        if not hessian:
            return [(np.ascontiguousarray(G[:, k]), None) for k in range(P.shape[1])]
        H = raw.trunc(party, raw.mul(party, P, one - P), F, 2 * F + 2) * np.uint64(2)
        return [(np.ascontiguousarray(G[:, k]), np.ascontiguousarray(H[:, k]))
                for k in range(P.shape[1])]

    def base_score_share(self) -> tuple:
        """(share, frac bits) of what xgboost stores as base_score.  softprob
        without an explicit base_score: the intercept :meth:`init_margins` made."""
        p = self.params
        if p.objective == "multi:softprob":
            if p.base_score is not None:
                b = fixed.encode(np.full(p.n_groups, p.base_score), self.fm)
                return raw.const(self.party, b), self.fm
            return self._base_margin, self.fm
        if p.base_score is not None:
            return raw.const(self.party, fixed.encode([p.base_score], LABEL_BITS)), LABEL_BITS
        return self._ybar.copy(), LABEL_BITS
