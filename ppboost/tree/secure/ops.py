"""Raw-array protocol shorthands used throughout the secure backend.

The backend keeps its shares as bare uint64 arrays (one party's additive
shares over Z_2^64).  :class:`Ops` wraps the mpc entry points it needs on
such arrays (Beaver products, truncation, comparisons, public constants,
input sharing).  It goes away once ppboost.mpc offers a raw layer of its
own (issue 10, item 4).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ...crypto import fixed
from ...mpc.compare import const_raw, ltz_raw, mul_raw
from ...mpc.party import Party
from ...mpc.shares import AShare
from ...mpc.truncation import truncate

__all__ = ["Ops", "enc", "signed", "frac_bits"]


def enc(v, bits: int) -> np.ndarray:
    """Public floats -> ring at ``bits`` fractional bits."""
    return fixed.encode(np.asarray(v, dtype=np.float64), bits)


def signed(x) -> np.ndarray:
    """Python / numpy signed integers -> ring (two's complement)."""
    return np.asarray(x, dtype=np.int64).view(np.uint64)


@contextmanager
def frac_bits(party: Party, bits: int):
    """Run mpc.nonlinear at ``bits`` fractional bits (it reads party.frac_bits)."""
    old = party.frac_bits
    party.frac_bits = bits
    try:
        yield
    finally:
        party.frac_bits = old


class Ops:
    """Raw-array protocol shorthands for one party (every party calls them in lockstep)."""

    def __init__(self, party: Party):
        self.p = party

    def mul(self, x, y):
        """Shares of x * y (elementwise Beaver product: 1 round, 2 size elements)."""
        return mul_raw(self.p, np.ascontiguousarray(x), np.ascontiguousarray(y))

    def trunc(self, x, f, bound):
        """Shares of x / 2^f for |x| < 2^bound (f < 0: a local left shift)."""
        if f <= 0:
            return x << np.uint64(-f) if f < 0 else x
        return truncate(AShare(self.p, np.ascontiguousarray(x)), int(f),
                        bound_bits=int(min(bound, 62))).value

    def ge0(self, x, bound_bits: int = 64):
        """Shares of [x >= 0] (integer bits); ``bound_bits``: the public bound
        -2**(bound_bits-1) <= x < 2**(bound_bits-1) (a smaller edaBit)."""
        return const_raw(self.p, np.ones(np.shape(x), np.uint64)) \
            - ltz_raw(self.p, np.ascontiguousarray(x), int(min(bound_bits, 64)))

    def ltz(self, x, bound_bits: int = 64):
        """Shares of [x < 0] (integer bits)."""
        return ltz_raw(self.p, np.ascontiguousarray(x), int(min(bound_bits, 64)))

    def const(self, v):
        """A trivial sharing of the public ring array ``v`` (local)."""
        return const_raw(self.p, np.asarray(v, dtype=np.uint64))

    def share_from(self, owner, values, shape):
        """``owner`` secret-shares ``values`` (None elsewhere) of public ``shape``."""
        return self.p.share(values if self.p.id == owner else None, owner=owner,
                            shape=shape).value
