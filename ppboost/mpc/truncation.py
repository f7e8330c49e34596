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
from .arith import open_flat
from .context import AShare

__all__ = ["truncate", "MAX_BOUND_BITS"]

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
            f"only for |x| < 2**{MAX_BOUND_BITS} ring units (|value| < 2**{MAX_BOUND_BITS - 2 * party.frac_bits} "
            f"for a product of two {party.frac_bits}-bit fixed-point numbers)")
    f = int(f)
    if f == 0:
        return x.copy()
    r, r_hi, r_msb = party.dealer.get("trunc", shape=x.shape, f=f)
    c_share = (x.value + r).reshape(-1)  # a fresh buffer: opened in place
    if party.id == 0:
        c_share += _OFFSET
    c = open_flat(party, c_share)
    y = ring.truncate_finish(c, r_hi, r_msb, f, party.id == 0, 1 << (62 - f))
    return AShare(party, y.reshape(x.shape))
