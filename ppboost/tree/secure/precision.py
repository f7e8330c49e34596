"""The fixed-point budget of secure training: every bit count, from public bounds.

* binary:logistic / multi:softprob: margins, g and h at fg = 24
  fractional bits (sigmoid / softmax in MPC at fg bits); |g| <= 1, h <= 1/2.
* reg:squarederror: labels are normalised by a secret power of two 2^-e
  (:mod:`ppboost.tree.secure.objective`); margins and g = m - y at 30
  fractional bits, |g| <= 2 (about); h = 1, so H is an integer row count.
* r' = 2^s / (H + lambda) comes from the reciprocal at ``fr`` (<= 28)
  bits; w = G r' / 2^s (``fw`` bits) and gain = G w (``Fl`` bits) are limb
  products (:func:`ppboost.mpc.truncation.mul_trunc`) so that G is never
  truncated.  lambda + min_child_weight must be >= 2^-8.

:func:`precision_plan` picks the bits from n and the bounds (all public
and worst case) and returns a :class:`PrecisionPlan`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...mpc.nonlinear import INTERNAL_BITS
from ..params import TreeParams

__all__ = ["PrecisionPlan", "precision_plan", "REG_BITS", "CLS_BITS", "bits_for", "limbs"]

#: margins and gradients of reg:squarederror (scaled units)
REG_BITS = 30
#: at most this many bits for logistic / softprob margins and gradients
CLS_BITS = 24


def bits_for(v: float) -> int:
    """ceil(log2 v), at least 1: the bits of a magnitude bound v."""
    return int(math.ceil(math.log2(max(float(v), 2.0))))


def limbs(xy_bits: int, y_bits: int) -> int:
    """Limbs :func:`ppboost.mpc.truncation.mul_trunc` cuts x into for these bounds."""
    return 1 + max(0, -(-(xy_bits - 60) // (61 - y_bits)))


def _lambda_bits(lam: float, cap: int) -> int:
    """Fewest fractional bits (<= cap) that hold lambda exactly."""
    for f in range(cap + 1):
        if float(lam * 2.0 ** f).is_integer():
            return f
    return cap


@dataclass(frozen=True)
class PrecisionPlan:
    """Public fixed-point plan of the split search for ``n_rows`` rows.

    * ``fg``/``fh``: bits of g and h (reg: g of the scaled labels, h = 1 is
      an integer count); ``fx``: bits of H + lambda fed to the reciprocal
      (the fewest that hold lambda exactly for reg, ``fh`` otherwise: never
      a truncation, so equal sums give equal inputs);
    * ``s``, ``fr``: r' = 2^s / (H + lambda) at ``fr`` bits (2^s >= hi);
    * ``fw``: w = G r' / 2^s; ``Fl``: gains and losses; ``fo``: the node and
      leaf weights kept for the model;
    * the limb products as ``w_mul`` / ``gain_mul`` = (shift, x_bits, y_bits,
      xy_bits) and their limb counts ``limbs`` = (w, gain);
    * the tie tolerance: a candidate's tolerance is
      ``(S + tol_per_row * count_parent) >> tol_shift + tol_const`` ring units
      (S = gain_L + gain_R), which bounds the difference of the fixed-point
      errors of two candidates with equal true loss
      (:func:`ppboost.tree.secure.split.choose_splits`);
    * ``lo``/``hi`` (range of H + lambda), ``h_thr`` (min_child_weight in
      ring units of H), ``Gmax``, ``Wmax``, ``Qmax`` (bounds of |G|, |w|, |G w|).
    """

    n_rows: int
    fg: int
    fh: int
    fx: int
    fr: int
    fw: int
    Fl: int
    fo: int
    s: int
    w_mul: tuple
    gain_mul: tuple
    limbs: tuple
    tol_shift: int
    tol_per_row: int
    tol_const: int
    lo: float
    hi: float
    h_thr: int
    Gmax: float
    Wmax: float
    Qmax: float

    @property
    def w_bits(self) -> int:
        """Bound (bits, with sign) of a weight w at ``fw`` fractional bits."""
        return self.fw + bits_for(self.Wmax) + 1

    @property
    def cmp_bits(self) -> int:
        """Declared bound of the H / missing-count comparisons: the values lie
        in [-h_thr, hi 2^fh + n], plus one sign bit and one bit of slack."""
        return bits_for(self.hi * 2.0 ** self.fh + self.n_rows + self.h_thr) + 2


def precision_plan(params: TreeParams, n: int, unit_hessian: bool = False) -> PrecisionPlan:
    """The :class:`PrecisionPlan` for ``n`` rows; raises ValueError if the
    64-bit ring cannot hold these parameters (every bound is public and
    worst case, module docstring).

    ``unit_hessian`` (differential privacy, :mod:`ppboost.tree.secure.dp`):
    binary:logistic / multi:softprob with every h = 1, so H is an integer
    row count as for reg:squarederror; g at fg = 24 bits, |g| <= 1; nodes
    may be empty (H = 0), so the reciprocal's range starts at lambda, which
    must be >= 2^-8.
    """
    lam, mcw = params.reg_lambda, params.min_child_weight
    if unit_hessian:
        if params.objective == "reg:squarederror":
            raise ValueError("unit_hessian is for binary:logistic and multi:softprob "
                             "(reg:squarederror has h = 1 already)")
        fg, fh = CLS_BITS, 0                        # H = row count (integer)
        gmax, hmax = 1.0, 1.0
        h_thr = max(int(math.ceil(mcw - 1e-12)), 1)
        lo = lam
        fx = _lambda_bits(lam, 20)
        if lo < 2.0 ** -8:
            raise ValueError(f"lambda == {lam}, must be >= 2**-8 for differentially private "
                             f"secure training (an empty node has H + lambda = lambda)")
    elif params.objective == "reg:squarederror":
        fg, fh = REG_BITS, 0                        # H = row count (integer)
        gmax, hmax = 4.0, 1.0
        h_thr = max(int(math.ceil(mcw - 1e-12)), 1)
        lo = lam + h_thr
        fx = _lambda_bits(lam, 20)
    else:
        fg = fh = fx = CLS_BITS
        gmax, hmax = 1.0, 0.5
        h_thr = max(int(math.ceil(mcw * 2.0 ** fh - 1e-9)), 1)
        lo = lam + h_thr * 2.0 ** -fh
    if lo < 2.0 ** -8:
        raise ValueError(f"lambda + min_child_weight == {lam + mcw}, must be >= 2**-8 for "
                         f"secure training (the reciprocal of H + lambda needs a lower bound)")
    hi = n * hmax + lam
    Gmax = gmax * n
    # |G| / (H + lambda) <= max|g| when h = 1; else <= |G| / lo
    Wmax = gmax if params.objective == "reg:squarederror" or unit_hessian else Gmax / lo
    Qmax = Gmax * Wmax
    s = int(math.ceil(math.log2(hi)))
    fr = int(min(28, math.floor(59 - s + math.log2(lo))))
    g_bits = fg + bits_for(Gmax) + 1
    r_bits = fr + s - int(math.floor(math.log2(lo))) + 1
    fw = w_mul = None
    for max_limbs, cand in [(k, c) for k in (3, 4) for c in range(44, 15, -1)]:
        # the most w bits with at most 3 limbs per product (4 if 3 cannot do)
        wm = (fg + fr + s - cand, g_bits, r_bits, fg + fr + s + bits_for(Wmax) + 1)
        y_bits = cand + bits_for(Wmax) + 1
        if y_bits > 59 or wm[0] < 0:
            continue
        xy = fg + cand + bits_for(Qmax) + 1
        if limbs(xy, y_bits) <= max_limbs and limbs(wm[3], wm[2]) <= max_limbs:
            fw, w_mul, gain_xy, gain_y = cand, wm, xy, y_bits
            break
    Fl = None if fw is None else min(fg + fw, 60 - bits_for(3 * Qmax))
    fo = None if fw is None else min(fw, 60 - fg - bits_for(Wmax))
    if fw is None or fr < 20 or Fl < 16 or fo < 16 or r_bits > 59 or w_mul[2] > 59:
        raise ValueError(
            f"secure training: n == {n} rows with lambda == {lam} and min_child_weight == "
            f"{mcw} leave too few fixed-point bits in the 64-bit ring (fr={fr}, fw={fw}, "
            f"Fl={Fl}); raise lambda or min_child_weight or use fewer rows")
    gain_mul = (fg + fw - Fl, g_bits, gain_y, gain_xy)
    lw, lg = limbs(w_mul[3], w_mul[2]), limbs(gain_xy, gain_y)
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
    return PrecisionPlan(n_rows=int(n), fg=fg, fh=fh, fx=fx, fr=fr, fw=fw, Fl=Fl, fo=fo, s=s,
                         w_mul=w_mul, gain_mul=gain_mul, limbs=(lw, lg), tol_shift=tol_shift,
                         tol_per_row=tol_per_row, tol_const=tol_const, lo=lo, hi=hi,
                         h_thr=h_thr, Gmax=Gmax, Wmax=Wmax, Qmax=Qmax)
