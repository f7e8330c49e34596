"""Fixed-point truncation of additive shares over Z_2^64, with no wrap-around errors.

Protocol (one round).  Dealer material (kind ``trunc``): shares of a
uniform r in Z_2^64, of r_hi = r >> f and of r_msb = r >> 63.  With the
public offset 2**62, the parties open

    c = x + 2**62 + r  (mod 2**64)

and each party computes locally

    y_p = [p == 0] * ((c >> f) - 2**(62-f)) - r_hi_p + 2**(64-f) * r_msb_p * (1 - msb(c)).

Why it is exact up to one ulp.  For |x| < 2**62, x' = x + 2**62 lies in
[0, 2**63).  Over the integers x' = c - r + w * 2**64 where w is the
wrap-around bit of the addition x' + r.  Because x' < 2**63, w = 1 exactly
when msb(r) = 1 and msb(c) = 0, so w = r_msb * (1 - msb(c)) is *linear* in
the shared bit r_msb (c is public): the wrap is cancelled exactly, never
guessed.  Then floor(x'/2**f) = (c >> f) - r_hi + w * 2**(64-f) - borrow,
where borrow = [c mod 2**f < r mod 2**f] is the only error left:
y = floor(x / 2**f) + borrow, so |y - x / 2**f| <= 1 ulp, and never more.
This is truncation in Z_2^k with a one-bit gap, where the wrap is read off
the top bits of r and c, in the style of Escudero, Ghosh, Keller, Rachuri,
Scholl, "Improved primitives for MPC over mixed arithmetic-binary circuits",
CRYPTO 2020 (probabilistic truncation) and Dalskov, Escudero, Keller, "Secure
evaluation of quantized neural networks", PETS 2020; the low-bit borrow is
left as in SecureML (Mohassel, Zhang, S&P 2017).

**Magnitude budget.**  |x| < 2**62 ring units, i.e. a fixed-point value
with F fractional bits must satisfy |value| < 2**(62 - F).  For the product
of two f-bit numbers (F = 2f) with the default f = 16: |value| < 2**30.
A caller declares ``bound_bits`` (|x| < 2**bound_bits); anything over 62
raises ``ValueError``.  Values over the declared bound give garbage, so
declare honestly.

**Masking.**  r is uniform over the whole ring, so c is uniform: the opened
value reveals nothing (perfect, not statistical, masking).  This is why the
statistical-masking variant (r < 2**(bound+1+sigma), which with sigma = 40
leaves a budget of only 22 bits, too small for f = 16 products) is not used.

Cost: 1 round, N elements sent to each other party; offline 2N elements
(dealer -> last party).
"""
from __future__ import annotations

import numpy as np

from . import ring
from .arith import mul, open_flat
from .shares import AShare

__all__ = ["truncate", "mul_fixed", "mul_trunc", "MAX_BOUND_BITS"]

#: Largest declared magnitude bound (in bits) :func:`truncate` accepts.
MAX_BOUND_BITS = 62
_OFFSET = np.uint64(1 << 62)


def truncate(x: AShare, f: int | None = None, bound_bits: int = MAX_BOUND_BITS) -> AShare:
    """[floor(x / 2**f) + e], e in {0, 1}, for a share with |x| < 2**bound_bits.

    Inputs: a share ``x`` (any shape) read as signed; ``f`` the number of bits
    to drop (default ``party.frac_bits``, 0..62); ``bound_bits`` the caller's
    declared bound on |x|, at most 62 (see the module docstring).
    Opened: c = x + 2**62 + r with r uniform in Z_2^64 (so c is uniform).
    Identity: result = floor(x / 2**f) + borrow, borrow in {0, 1}: error at
    most 1 ulp, no wrap-around error for any |x| < 2**62.
    Cost: 1 round, N elements to each other party; offline 2N elements.
    """
    if not isinstance(x, AShare):
        raise TypeError(f"truncate expects an AShare, got {type(x).__name__}")
    party = x.party
    f = party.frac_bits if f is None else f
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or not 0 <= f <= 62:
        raise ValueError(f"f == {f!r}, must be an int in 0..62")
    if isinstance(bound_bits, bool) or not isinstance(bound_bits, (int, np.integer)):
        raise TypeError(f"bound_bits must be an int, got {type(bound_bits).__name__}")
    if not 1 <= bound_bits <= MAX_BOUND_BITS:
        raise ValueError(
            f"bound_bits == {bound_bits}, must be in 1..{MAX_BOUND_BITS}: truncation is exact "
            f"only for |x| < 2**{MAX_BOUND_BITS} ring units "
            f"(|value| < 2**{MAX_BOUND_BITS - 2 * party.frac_bits} "
            f"for a product of two {party.frac_bits}-bit fixed-point numbers)")
    f = int(f)
    if f == 0:
        return x.copy()
    return AShare(party, _truncate_many(party, x.value.reshape(-1), [f], x.shape)[0])


def mul_fixed(x: AShare, y: AShare, bound_bits: int = 62) -> AShare:
    """Fixed-point product: Beaver product (:func:`ppboost.mpc.arith.mul`) then
    :func:`truncate` by ``frac_bits``.

    Inputs: fixed-point shares x, y with ``|x*y| * 2**(2f) < 2**bound_bits``
    (see :func:`truncate`).  Cost: 2 rounds, 3N elements per peer.
    """
    return truncate(mul(x, y), bound_bits=bound_bits)


def mul_trunc(x: AShare, y: AShare, shift: int, x_bits: int, y_bits: int,
              xy_bits: int) -> AShare:
    """[x * y / 2**shift] for a product wider than the ring: ``x`` is cut into limbs.

    Inputs: shares ``x``, ``y`` of equal shape, with the caller's declared
    bounds |x| < 2**x_bits, |y| < 2**y_bits and |x * y| < 2**xy_bits (ring
    units, read as signed; x_bits <= 62, y_bits <= 59), and the number of
    bits ``shift`` to drop, with |x * y| / 2**shift < 2**62.  Values over a
    declared bound give garbage: declare honestly.
    Method: with a = 61 - y_bits and k = 1 + ceil(max(0, xy_bits - 60) / a)
    limbs, t_i = truncate(x, a i) (i = 1 .. k-1, one batched truncation) and
    x_i = t_i - 2**a t_(i+1), x_(k-1) = t_(k-1): then x = sum_i x_i 2**(a i)
    *exactly* (the sum telescopes, whatever the truncation borrows were),
    |x_i| <= 2**a below the top limb and |x_(k-1) y| < 2**61, so every limb
    product fits the ring; the result is sum_i truncate(x_i y, shift - a i)
    (a left shift where shift <= a i).  This is the classic limb
    multiplication of multi-precision arithmetic [Knuth, TAOCP vol. 2,
    4.3.1] on shares, with the truncation of
    :func:`truncate` [Escudero et al., CRYPTO 2020].
    Opened: the truncation masks and the Beaver masks, all uniform.
    Identity: result = x * y / 2**shift + e with |e| < k (ring units): each
    truncation adds less than one ulp; the limb split itself is exact.
    Cost: 3 rounds (2 when k == 1); (k - 1) N + 2 k N + k N elements to each
    other party (truncations of x, Beaver masks, output truncations).
    """
    if not isinstance(x, AShare) or not isinstance(y, AShare):
        raise TypeError("mul_trunc expects two AShares")
    for name, v, hi in (("shift", shift, 124), ("x_bits", x_bits, MAX_BOUND_BITS),
                        ("y_bits", y_bits, 59), ("xy_bits", xy_bits, 124)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= hi:
            raise ValueError(f"mul_trunc: {name} == {v!r}, must be an int in 0..{hi}")
    if xy_bits - shift > MAX_BOUND_BITS:
        raise ValueError(f"mul_trunc: the result needs {xy_bits - shift} bits (xy_bits - shift), "
                         f"at most {MAX_BOUND_BITS} fit the ring")
    a = 61 - int(y_bits)
    k = 1 + max(0, -(-(int(xy_bits) - 60) // a))
    party = x.party
    if k == 1:
        t = [x.value]
    else:
        flat = np.concatenate([x.value.reshape(-1)] * (k - 1))
        t = [x.value] + _truncate_many(party, flat, [a * i for i in range(1, k)], x.shape)
    limbs = [t[i] - (t[i + 1] << np.uint64(a)) for i in range(k - 1)] + [t[k - 1]]
    ys = np.concatenate([y.value.reshape(-1)] * k)
    prod = mul(AShare(party, np.concatenate([lb.reshape(-1) for lb in limbs])),
               AShare(party, ys)).value.reshape(k, -1)
    drops = [int(shift) - a * i for i in range(k)]
    out = np.zeros(prod.shape[1], np.uint64)
    down = [i for i in range(k) if drops[i] > 0]
    for i in range(k):
        if drops[i] <= 0:
            out += prod[i] << np.uint64(-drops[i])
    if down:
        res = _truncate_many(party, np.concatenate([prod[i] for i in down]),
                             [drops[i] for i in down], (prod.shape[1],))
        for r in res:
            out += r.reshape(-1)
    return AShare(party, out.reshape(x.shape))


def _truncate_many(party, flat: np.ndarray, fs: list, shape) -> list:
    """Truncate consecutive equal-size blocks of ``flat`` by ``fs[i]`` bits each
    (the protocol of :func:`truncate`), in one round: one opened message for
    every block.  Returns the blocks reshaped to ``shape``."""
    size = flat.size // len(fs)
    parts = [party.dealer.get("trunc", shape=(size,), f=int(f)) for f in fs]
    c_share = flat + np.concatenate([p[0] for p in parts])
    if party.id == 0:
        c_share += _OFFSET
    c = open_flat(party, c_share)
    out = []
    for i, f in enumerate(fs):
        ci = c[i * size:(i + 1) * size]
        _, r_hi, r_msb = parts[i]
        out.append(ring.truncate_finish(ci, r_hi, r_msb, int(f), party.id == 0,
                                        1 << (62 - int(f))).reshape(shape))
    return out
