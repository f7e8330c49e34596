"""Order-preserving map from float32 to uint32 (the "bit trick").

For IEEE-754 binary32 values a and b that are not NaN::

    a < b  (as float32)   <=>   to_ordered_uint32(a) < to_ordered_uint32(b)  (as uint32)
    a == b (as float32)   <=>   to_ordered_uint32(a) == to_ordered_uint32(b)

The map flips every bit of a negative number (so that more negative numbers
get smaller integers) and sets the sign bit of a non-negative number (so that
every non-negative number lands above every negative one).  ``-0.0`` is
normalised to ``+0.0`` first, because the two compare equal as floats
(IEEE-754: -0.0 == +0.0) and xgboost's ``x < t`` must not tell them apart.
NaN has no place in the order: callers handle it (as "missing") before
calling, and :func:`to_ordered_uint32` raises if it meets one.

The inverse, :func:`from_ordered_uint32`, is exact for every non-NaN float32
(with -0.0 coming back as +0.0).
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_ordered_uint32", "from_ordered_uint32"]

_SIGN = np.uint32(0x80000000)


def to_ordered_uint32(x) -> np.ndarray:
    """Map float32 values (array-like, any shape) to order-preserving uint32.

    Inputs of another float dtype are first rounded to float32 exactly as
    ``numpy.asarray(x, dtype=np.float32)`` does (round to nearest even), which
    is also what xgboost does when it builds a DMatrix.  Raises ``ValueError``
    on NaN.
    """
    a = np.asarray(x, dtype=np.float32)
    if np.isnan(a).any():
        raise ValueError("NaN has no order-preserving image; mark it as missing instead")
    a = a + np.float32(0.0)  # -0.0 + 0.0 == +0.0 under round-to-nearest
    bits = a.view(np.uint32)
    neg = (bits & _SIGN) != 0
    return np.where(neg, ~bits, bits | _SIGN).astype(np.uint32)


def from_ordered_uint32(u) -> np.ndarray:
    """Inverse of :func:`to_ordered_uint32` (uint32 array-like -> float32 array)."""
    b = np.asarray(u, dtype=np.uint32)
    pos = (b & _SIGN) != 0
    bits = np.where(pos, b & ~_SIGN, ~b).astype(np.uint32)
    return bits.view(np.float32)
