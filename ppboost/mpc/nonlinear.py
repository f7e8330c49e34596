"""Reciprocal, division, sigmoid and exp on additively shared fixed-point values.

All functions take :class:`AShare` values with ``f`` fractional bits (the
keyword ``frac_bits``, by default ``party.frac_bits``) and return the same
encoding.  Internally they work at ``F`` (up to 30) fractional bits so
that the final result is within a few ulps of ``2**-f`` (see each
docstring for the accuracy measured in tests).
Truncations use :func:`ppboost.mpc.truncation.truncate` (exact up to one
ulp, any ``|x| < 2**62`` ring units); every call declares its bound.

* :func:`reciprocal` -- Newton-Raphson [Catrina & Saxena, "Secure
  computation with fixed-point numbers", FC 2010, sec. 3.4; CrypTen] after a
  *secure normalisation*: the bits of ``x`` are computed with an edaBit bit
  decomposition (:func:`ppboost.mpc.compare.bit_decompose`), a prefix-OR
  finds the top bit ``t`` as a secret one-hot vector, and
  ``S = 2**(K + f - 1 - t)`` scales ``x`` into ``[0.5, 1)``: the binary
  digits of ``u = m - 1 - t`` are local XORs of the one-hot planes, only
  those ``ceil(log2(m - t_min))`` bits become additive shares (daBits), and
  ``S = 2**(K+f-m) prod_j (1 + u_j (2**(2**j) - 1))`` (exact products).  The linear initial guess
  ``48/17 - 32/17 x~`` has relative error <= 1/17; three iterations bring it
  below ``2**-32``.  Nothing about ``t`` is opened.
* :func:`sigmoid` / :func:`exp_neg` -- piecewise polynomials on octaves
  ``[0,1), [1,2), [2,4), [4,8), [8,16)`` of ``|x|`` plus an exact saturation
  segment ``|x| >= 16``: one batched comparison picks the segment (a secret
  one-hot), the segment's Chebyshev-fitted degree-6 coefficients, centre
  and 1/half-width are selected locally (one-hot times public constants),
  and Horner's rule runs on ``u = (|x| - centre) / half-width`` in
  ``[-1, 1]``.  ``sigmoid(-x) = 1 - sigmoid(x)`` handles the sign.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.polynomial import chebyshev as _cheb

from ..crypto import fixed
from . import raw
from .argmax import rowmax
from .arith import mul
from .boolean import prefix_or
from .compare import b2a_planes, bit_decompose, less_than_thresholds
from .shares import AShare
from .truncation import MAX_BOUND_BITS, truncate

__all__ = ["reciprocal", "divide", "sigmoid", "exp_neg", "softmax", "INTERNAL_BITS"]

#: Fractional bits used inside the approximations (products stay < 2**62).
INTERNAL_BITS = 28
_DEGREE = 6
_OCTAVES = [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0)]
_SATURATE = 16.0


def _enc(v, bits: int) -> np.ndarray:
    """Public float(s) -> ring at ``bits`` fractional bits (two's complement uint64)."""
    return np.asarray(np.rint(np.asarray(v, dtype=np.float64) * 2.0 ** bits)).astype(np.int64).view(np.uint64)


def _fractional_bits(party, frac_bits) -> int:
    """The fractional bits ``f`` of a call: ``frac_bits``, or the party's if None."""
    return party.frac_bits if frac_bits is None else fixed.check_frac_bits(frac_bits)


def _check_bound(f: int, bound_bits) -> None:
    """Declared input bound of sigmoid / exp: |x| < 2**(bound_bits - 1) ring units."""
    if isinstance(bound_bits, bool) or not isinstance(bound_bits, (int, np.integer)) \
            or not f + 6 <= bound_bits <= 64:
        raise ValueError(f"bound_bits == {bound_bits!r}, must be an int in {f + 6}..64 with "
                         f"frac_bits == {f} (|x| < 2**(bound_bits-1) ring units; the segment "
                         f"thresholds up to 16 must fit)")


def _check_share(x, name="x") -> None:
    if not isinstance(x, AShare):
        raise TypeError(f"{name} must be an AShare, got {type(x).__name__}")


# --------------------------------------------------------------------------
# reciprocal / division

def reciprocal(x: AShare, lo: float, hi: float, iterations: int = 3,
               out_bits: int | None = None, *, frac_bits: int | None = None) -> AShare:
    """``[1 / x]`` for a secret fixed-point ``x`` declared in ``[lo, hi]``, ``0 < lo <= hi``.

    Inputs: ``x`` (AShare at ``f = frac_bits`` bits, default ``party.frac_bits``;
    the result at ``out_bits``, default ``f``); the public declared
    range ``lo <= x <= hi`` with ``lo >= 2**-f``.  Outside it the result is
    meaningless (it is never checked: that would leak).  ``iterations`` of
    Newton-Raphson (3 reach the internal precision).
    Opened: ``c = x + r`` of the bit decomposition (uniform), Beaver- and
    daBit-masked values, truncation masks: all uniform.  ``t`` (the
    magnitude of ``x``) is never opened.
    Identity: with ``X = x 2**f`` in ``[2**t, 2**(t+1))`` and
    ``S = 2**(K + f - 1 - t)``, ``x~ = X S / 2**(K + f - F)`` is ``x / 2**(t+1-f)``
    in ``[0.5, 1)`` at ``F`` bits; ``y <- y (2 - x~ y)`` converges
    quadratically to ``1/x~`` [Catrina-Saxena FC 2010]; ``1/x = y 2**(f-1-t)``
    = ``Y S / 2**(K + F - f)``.
    Accuracy: relative error of the Newton step ``< 2**-32``; against ``1/x``
    of the encoded ``x`` the result is within 1 ulp (``2**-f``, the final
    truncation) plus ``2**-(F-2) / x`` (the normalised ``x~`` carries ``F``
    bits); tests assert this bound, measured max below 1 ulp.
    Cost: rounds ``ceil(log2 m)`` (open + bit decomposition) ``+ ceil(log2 m')``
    (prefix-OR) ``+ 1`` (b2a of ``nb = bitlen(m' - 1)`` bits) ``+ ceil(log2 nb)``
    (S) ``+ 2`` (normalise) ``+ 1`` (initial guess) ``+ 4 * iterations + 2``
    (30 for ``[0.01, 1000]`` and f = 16), with ``m = bits of hi 2**f``,
    ``m' = m - t_min``; per value and peer about ``2 m (log2 m - 1) + m' log2 m'``
    AND bits, ``nb`` daBit bits and ``2 nb + 6 + 6 iterations`` ring elements
    (about 310 bytes for ``[0.01, 1000]``).
    """
    _check_share(x)
    party = x.party
    f = _fractional_bits(party, frac_bits)
    if not (isinstance(iterations, (int, np.integer)) and 1 <= iterations <= 6):
        raise ValueError(f"iterations == {iterations!r}, must be an int in 1..6")
    if not (math.isfinite(lo) and math.isfinite(hi)) or not 0 < lo <= hi:
        raise ValueError(f"reciprocal: declared range [lo, hi] == [{lo}, {hi}], must satisfy 0 < lo <= hi")
    fo = f if out_bits is None else out_bits
    L = int(math.floor(lo * 2.0 ** f))
    H = int(math.ceil(hi * 2.0 ** f))
    if L < 1:
        raise ValueError(f"reciprocal: lo == {lo}, must be >= 2**-frac_bits == {2.0 ** -f}")
    m = H.bit_length()                    # X < 2**m
    t_min = L.bit_length() - 1            # X >= 2**t_min
    K = max(0, m - f)                     # keeps every exponent K + f - 1 - t >= 0
    F = min(INTERNAL_BITS, MAX_BOUND_BITS - 1 - K - f + t_min)
    if F < f or m > 62:
        raise ValueError(
            f"reciprocal: declared range [{lo}, {hi}] is too wide for frac_bits == {f}: "
            f"the result 1/lo and the scale need {K + 2 * f - t_min} of the {MAX_BOUND_BITS} "
            f"ring bits; narrow [lo, hi] (e.g. raise lo) or lower frac_bits")
    if isinstance(fo, bool) or not isinstance(fo, (int, np.integer)) or not 0 <= fo <= K + F \
            or math.log2(1.0 / lo) + fo >= MAX_BOUND_BITS - 1:
        raise ValueError(f"reciprocal: out_bits == {out_bits!r}, must be an int in 0..{K + F} "
                         f"with 2**out_bits / lo < 2**{MAX_BOUND_BITS - 1} (lo == {lo})")
    shape = x.shape
    n = x.size
    # --- secure normalisation: one-hot of the top bit t of X (never opened)
    bits = bit_decompose(party, x, m)                    # (m, W) XOR shares
    z = prefix_or(party, bits[t_min:], from_top=True)    # z_i = OR of bits i.. m-1
    onehot = z.copy()
    onehot[:-1] ^= z[1:]                                 # h_i = z_i ^ z_{i+1}: t = t_min + i
    # u = (m - 1) - t in binary: bit j of u is the XOR (= OR, one-hot) of the h_i whose
    # u has bit j set -- local.  Only nb = bitlen(m - 1 - t_min) bits need converting.
    us = (m - 1 - t_min) - np.arange(m - t_min)
    nb = max(1, int(us.max()).bit_length())
    ubits = np.zeros((nb, onehot.shape[1]), np.uint64)
    for j in range(nb):
        for i in np.flatnonzero((us >> j) & 1):
            ubits[j] ^= onehot[i]
    U = b2a_planes(party, ubits, n)                      # (nb, n) integer bits
    # S = 2**(K + f - m) * prod_j (1 + u_j (2**(2**j) - 1)) = 2**(K + f - 1 - t), exact
    factors = [AShare(party, raw.const(party, np.ones(n, np.uint64)) + U[j] * np.uint64((1 << (1 << j)) - 1))
               for j in range(nb)]
    S = (_product(factors) * np.uint64(1 << (K + f - m))).reshape(shape)
    XS = mul(x, S)                                       # = X 2**(K+f-1-t) < 2**(K+f)
    drop = K + f - F
    xt = truncate(XS, drop, bound_bits=K + f + 1) if drop > 0 else XS << (F - K - f)
    # --- Newton-Raphson on x~ in [0.5, 1) at F bits [Catrina-Saxena 2010]
    y = truncate(xt * _enc(-32.0 / 17.0, F), F, bound_bits=F + F + 2) + _enc(48.0 / 17.0, F)
    two = _enc(2.0, F)
    for _ in range(iterations):
        e = truncate(mul(xt, y), F, bound_bits=2 * F + 2)
        y = truncate(mul(y, (-e) + two), F, bound_bits=2 * F + 2)
    # --- undo the normalisation: 1/x = Y S / 2**(K + F - out_bits)
    YS = mul(y, S)
    return truncate(YS, K + F - fo, bound_bits=F + 1 + K + f - t_min)


def _product(factors: list) -> AShare:
    """Exact product of equal-shape AShares by a balanced tree: ceil(log2 len) rounds,
    one batched Beaver product per round (no truncation: integer factors)."""
    while len(factors) > 1:
        h = len(factors) // 2
        left = AShare.concatenate(factors[0:2 * h:2])
        right = AShare.concatenate(factors[1:2 * h:2])
        prod = mul(left, right)
        size = factors[0].size
        nxt = [prod[i * size:(i + 1) * size] for i in range(h)]
        if len(factors) % 2:
            nxt.append(factors[-1])
        factors = nxt
    return factors[0]


def divide(a: AShare, b: AShare, lo: float, hi: float, bound: float, *,
           frac_bits: int | None = None) -> AShare:
    """``[a / b]``: ``a * reciprocal(b)`` with ``b`` declared in ``[lo, hi]`` and ``|a / b| < bound``.

    Cost: :func:`reciprocal` plus one Beaver product and one truncation.
    Accuracy: that of :func:`reciprocal` times ``|a|``, plus 1 ulp.
    """
    _check_share(a, "a")
    _check_share(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"divide: shapes {a.shape} and {b.shape} differ, must be equal")
    f = _fractional_bits(a.party, frac_bits)
    need = int(math.ceil(math.log2(max(bound, 2.0 ** -f)))) + 2 * f + 1
    if need > MAX_BOUND_BITS:
        raise ValueError(f"divide: bound == {bound} needs {need} ring bits, at most {MAX_BOUND_BITS} "
                         f"with frac_bits == {f}")
    return truncate(mul(a, reciprocal(b, lo, hi, frac_bits=f)), f, bound_bits=need)


# --------------------------------------------------------------------------
# piecewise polynomials on octaves of |x|

def _fit(fn, degree=_DEGREE):
    """Per octave: monomial coefficients in u = (t - centre)/half-width (Chebyshev fit)."""
    rows = []
    u = np.cos(np.linspace(0.0, np.pi, 4001))
    for a, b in _OCTAVES:
        c, w = (a + b) / 2.0, (b - a) / 2.0
        coefs = _cheb.cheb2poly(_cheb.chebfit(u, fn(c + w * u), degree))
        rows.append(np.pad(coefs, (0, degree + 1 - coefs.size)))
    return np.array(rows)                                # (segments, degree+1)


_SIG_COEFS = _fit(lambda t: 1.0 / (1.0 + np.exp(-t)))
_EXPNEG_COEFS = _fit(lambda t: np.exp(-t))


@njit(cache=True, nogil=True)
def _select_kernel(consts, ind, out):
    """out[r, i] = sum_j consts[r, j] * ind[j, i] mod 2**64: public constants picked by
    one-hot (integer 0/1) shares; local and exact since exactly one ind[j, i] is 1."""
    R, J = consts.shape
    n = ind.shape[1]
    for i in range(n):
        for r in range(R):
            acc = np.uint64(0)
            for j in range(J):
                acc += consts[r, j] * ind[j, i]
            out[r, i] = acc


def _octave_poly(t: AShare, coefs: np.ndarray, saturate_value: float, bound_bits: int,
                 f: int) -> AShare:
    """Evaluate the octave-wise polynomial at ``t >= 0`` (``f`` bits); result at ``F`` bits.

    One batched comparison ``[t < 2**j]`` for every octave boundary gives the
    segment one-hot; ``t >= 16`` selects the constant ``saturate_value``.
    Cost: 7 (comparison) + 2 (u) + 2 * degree (Horner) rounds.
    """
    party = t.party
    F = INTERNAL_BITS
    shape = t.shape
    bounds = [b for _, b in _OCTAVES]                    # 1, 2, 4, 8, 16
    # below[j] = [t < bounds[j]]: one edaBit serves the 5 thresholds
    below = less_than_thresholds(t, _enc(bounds, f), bound_bits).value   # (5, ...) integer bits
    nseg = len(_OCTAVES) + 1
    ind = np.empty((nseg,) + shape, np.uint64)
    ind[0] = below[0]
    for j in range(1, len(bounds)):
        ind[j] = below[j] - below[j - 1]
    ind[-1] = (np.uint64(1) if party.id == 0 else np.uint64(0)) - below[-1]
    # per-segment public constants (the saturation segment: u = 0, p = saturate_value)
    centres = [(a + b) / 2.0 for a, b in _OCTAVES] + [0.0]
    invw = [2.0 / (b - a) for a, b in _OCTAVES] + [0.0]
    table = np.vstack([coefs, np.eye(1, coefs.shape[1]) * saturate_value])   # (nseg, d+1)

    # every per-segment constant selected at once: sel = consts^T @ ind (local: the
    # one-hot shares times public constants), one ring matrix product
    consts = np.vstack([_enc(centres, f), _enc(invw, F), _enc(table.T, F)])   # (2 + d + 1, nseg)
    flat = np.ascontiguousarray(ind.reshape(nseg, -1))
    sel = np.empty((consts.shape[0], flat.shape[1]), np.uint64)
    _select_kernel(consts, flat, sel)
    sel = sel.reshape((consts.shape[0],) + shape)
    c_sel = AShare(party, sel[0])
    w_sel = AShare(party, sel[1])
    coef = sel[2:]                                       # coefficient k of the segment's polynomial
    # u = (t - centre) / half-width in [-1, 1], at F bits: product has f + F bits
    u = truncate(mul(t - c_sel, w_sel), f, bound_bits=f + F + 2)
    # Horner [each step: Beaver product + truncation], partial sums stay below 4
    y = AShare(party, coef[-1])
    for k in range(coef.shape[0] - 2, -1, -1):
        y = truncate(mul(y, u), F, bound_bits=2 * F + 3) + AShare(party, coef[k])
    return y


def sigmoid(x: AShare, bound_bits: int = 64, *, frac_bits: int | None = None) -> AShare:
    """``[1 / (1 + exp(-x))]`` for any shared fixed-point ``x`` (no range restriction).

    Method: ``s = [x < 0]``, ``|x| = x - 2 s x``, octave-wise degree-6
    polynomial on ``|x| < 16`` (Chebyshev fit, approximation error < 1e-6),
    exact saturation to 1 for ``|x| >= 16`` (true error < 1.2e-7), then
    ``sigmoid(x) = p + s (1 - 2p)``.  An optional declared bound
    ``|x| < 2**(bound_bits - 1)`` ring units (``bound_bits >= f + 6``; e.g. 32
    for ``|x| < 32768`` at f = 16) shortens every comparison circuit (see
    :func:`ppboost.mpc.compare.ltz`); inputs beyond it give wrong results.
    Opened: comparison and Beaver/truncation masks only (uniform).
    Accuracy: absolute error below ``2**-f + 1.1e-6`` against the sigmoid of
    the encoded input (final truncation 1 ulp, fit < 1e-6, F-bit Horner
    truncations < 1e-7): 1.64e-5 for f = 16, asserted in tests on
    [-20, 20] and at +-1e4 (measured max 1.55e-5).  Saturation is exact.
    Cost: 7 (sign) + 1 (|x|) + 7 (segments) + 2 (u) + 12 (Horner) + 1 (sign
    fix) + 1 (final truncation) = 31 rounds; 6 comparisons (5 of them on one
    edaBit) + 9 Beaver products + 8 truncations per element.
    """
    _check_share(x)
    party = x.party
    f = _fractional_bits(party, frac_bits)
    F = INTERNAL_BITS
    _check_bound(f, bound_bits)
    s = AShare(party, raw.ltz(party, x.value, bound_bits))
    absx = x - AShare(party, raw.mul(party, s.value, x.value)) * 2
    p = _octave_poly(absx, _SIG_COEFS, 1.0, bound_bits, f)   # F bits
    one = _enc(1.0, F)
    res = p + AShare(party, raw.mul(party, s.value, ((-p) * 2 + one).value))
    return truncate(res, F - f, bound_bits=F + 2)


def exp_neg(x: AShare, bound_bits: int = 64, *, frac_bits: int | None = None) -> AShare:
    """``[exp(x)]`` for a shared fixed-point ``x <= 0`` (e.g. softmax after subtracting the max).

    Method: ``t = -x >= 0``, octave-wise degree-6 polynomial of ``exp(-t)``
    on ``t < 16`` (approximation error < 2e-6), saturation to 0 for
    ``t >= 16`` (true value < 1.2e-7).  Inputs ``x > 0`` are outside the
    declared range and give meaningless results (not checked: that would leak).
    ``bound_bits`` as in :func:`sigmoid` (``|x| < 2**(bound_bits - 1)`` ring units).
    Accuracy: absolute error below ``2**-f + 2.1e-6`` (asserted in tests on [-20, 0]).
    Cost: 7 + 2 + 12 + 1 = 22 rounds; 5 comparisons (one edaBit) + 7 products
    + 8 truncations per element.
    """
    _check_share(x)
    party = x.party
    f = _fractional_bits(party, frac_bits)
    _check_bound(f, bound_bits)
    p = _octave_poly(-x, _EXPNEG_COEFS, 0.0, bound_bits, f)
    return truncate(p, INTERNAL_BITS - f, bound_bits=INTERNAL_BITS + 2)


def softmax(x: AShare, *, frac_bits: int | None = None) -> AShare:
    """Row-wise softmax of a shared fixed-point ``(k, c)`` (or ``(c,)``) matrix, e.g. for multi:softprob.

    Method: ``m = rowmax(x)`` (tournament), ``e = exp_neg(x - m)`` (every
    argument <= 0, one of them 0), ``s = sum_j e_j`` in ``[1, c]``,
    ``p = e * reciprocal(s, 0.5, c)``.  No range restriction on ``x`` beyond
    differences ``< 2**(62 - f)``.
    Opened: comparison, Beaver, daBit and truncation masks only (uniform).
    Accuracy: absolute error below ``3 * 2**-f + 2e-6`` per probability
    (exp: 1 ulp + 2e-6; reciprocal: 1 ulp + 2**-26; product truncation: 1 ulp).
    Cost: rowmax (8 ceil(log2 c) rounds) + exp_neg (22) + reciprocal + 2 rounds.
    """
    _check_share(x)
    party = x.party
    f = _fractional_bits(party, frac_bits)
    if x.ndim not in (1, 2) or x.shape[-1] < 1:
        raise ValueError(f"softmax: x.shape == {x.shape}, must be (c,) or (k, c) with c >= 1")
    vec = x.ndim == 1
    xm = x.reshape(1, -1) if vec else x
    k, c = xm.shape
    m = rowmax(party, xm)
    e = exp_neg(xm - AShare(party, np.repeat(m.value.reshape(k, 1), c, axis=1)), frac_bits=f)
    r = reciprocal(e.sum(axis=1), 0.5, float(c), frac_bits=f)
    p = truncate(mul(e, AShare(party, np.repeat(r.value.reshape(k, 1), c, axis=1))), f,
                 bound_bits=2 * f + 2)
    return p.reshape(-1) if vec else p
