"""Fixed-point encoding between float64 and the ring Z_2^64.

A real ``x`` is stored as the integer ``round(x * 2**f)`` in two's
complement, held in a ``uint64`` (so ring arithmetic is plain wrapping
uint64 arithmetic).  ``f`` is the number of fractional bits (default 16).
Identity: ``decode(encode(x, f), f) == x`` up to ``2**-(f+1)``, and
``encode(a) + encode(b) == encode(a + b)`` in the ring (up to rounding).

The product of two encodings carries ``2f`` fractional bits and must be
truncated by ``f`` (see ``ppboost.mpc.truncation``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_FRAC_BITS", "encode", "decode", "max_abs", "check_frac_bits"]

DEFAULT_FRAC_BITS = 16


def check_frac_bits(frac_bits) -> int:
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)):
        raise TypeError(f"frac_bits must be an int, got {type(frac_bits).__name__}")
    if not 0 <= frac_bits <= 62:
        raise ValueError(f"frac_bits == {frac_bits}, must be in 0..62")
    return int(frac_bits)


def max_abs(frac_bits: int = DEFAULT_FRAC_BITS, bound_bits: int = 63) -> float:
    """Largest magnitude a value may have so that |x * 2**f| < 2**bound_bits."""
    return float(2.0 ** (bound_bits - check_frac_bits(frac_bits)))


def encode(x, frac_bits: int = DEFAULT_FRAC_BITS, bound_bits: int = 63) -> np.ndarray:
    """float array -> uint64 ring elements ``round(x * 2**f) mod 2**64``.

    Raises ``ValueError`` if any value is not finite or if
    ``|x| * 2**f >= 2**bound_bits`` (default 63: the signed range of the ring).
    """
    f = check_frac_bits(frac_bits)
    if not 1 <= bound_bits <= 63:
        raise ValueError(f"bound_bits == {bound_bits}, must be in 1..63")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot encode NaN or infinite values")
    scaled = np.rint(x * (2.0 ** f))
    limit = 2.0 ** bound_bits
    if scaled.size and np.max(np.abs(scaled)) >= limit:
        raise ValueError(
            f"value of magnitude {np.max(np.abs(x)):.6g} exceeds the bound: with "
            f"frac_bits={f} and bound_bits={bound_bits}, |x| must be < {limit / 2.0 ** f:.6g}")
    return scaled.astype(np.int64).view(np.uint64)


def decode(u, frac_bits: int = DEFAULT_FRAC_BITS) -> np.ndarray:
    """uint64 ring elements -> float64, reading them as signed two's complement."""
    f = check_frac_bits(frac_bits)
    u = np.asarray(u)
    if u.dtype != np.uint64:
        raise TypeError(f"decode expects a uint64 array, got dtype {u.dtype}")
    return u.view(np.int64).astype(np.float64) / (2.0 ** f)
