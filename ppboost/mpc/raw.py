"""The protocols on raw share arrays: one party's additive shares as bare uint64 arrays.

Code that keeps its shares as numpy arrays (the secure tree backend, the
argmax tournament, the nonlinear approximations) calls these instead of
wrapping every array in an :class:`~ppboost.mpc.shares.AShare`.  Each
function takes the :class:`~ppboost.mpc.party.Party` first and is exactly
the AShare protocol it names: same dealer requests, same messages, same
result; its docstring points to that protocol for what is opened and what
it costs.  Every party calls them in lockstep with equal public shapes.
"""
from __future__ import annotations

import numpy as np

from . import arith
from .compare import b2a_planes, ltz_planes
from .party import Party
from .shares import AShare
from .truncation import MAX_BOUND_BITS, truncate

__all__ = ["const", "mul", "trunc", "ltz", "ge0", "share_from"]


def _contiguous(x) -> np.ndarray:
    """``x`` as a C-contiguous array (a 0-d array stays 0-d)."""
    x = np.asarray(x)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def const(party: Party, value) -> np.ndarray:
    """This party's share of the public ring array ``value``: party 0 holds it,
    the others 0 (local)."""
    value = np.asarray(value, dtype=np.uint64)
    return value.copy() if party.id == 0 else np.zeros(value.shape, np.uint64)


def mul(party: Party, x, y) -> np.ndarray:
    """Shares of ``x * y``, elementwise: the Beaver product :func:`ppboost.mpc.arith.mul`
    (no truncation).  Cost: 1 round, 2N elements to each other party."""
    return arith.mul(AShare(party, _contiguous(x)),
                      AShare(party, _contiguous(y))).value


def trunc(party: Party, x, f: int, bound_bits: int) -> np.ndarray:
    """Shares of ``x / 2**f`` for ``|x| < 2**bound_bits`` ring units.

    ``f > 0``: :func:`ppboost.mpc.truncation.truncate` (1 round, N elements,
    at most 1 ulp of error), with the bound capped at the 62 bits the
    truncation accepts; ``f == 0``: ``x`` itself; ``f < 0``: a local left
    shift by ``-f``.
    """
    if f <= 0:
        return x << np.uint64(-f) if f < 0 else x
    return truncate(AShare(party, _contiguous(x)), int(f),
                    bound_bits=int(min(bound_bits, MAX_BOUND_BITS))).value


def ltz(party: Party, x, bound_bits: int = 64) -> np.ndarray:
    """Shares of ``[x < 0]`` (integer 0/1), elementwise, same shape as ``x``.

    The comparison of :func:`ppboost.mpc.compare.ltz` (edaBits, then one
    daBit conversion), for ``-2**(l-1) <= x < 2**(l-1)`` with
    ``l = min(bound_bits, 64)``.  Cost: 7 rounds for ``l = 64``.
    """
    x = _contiguous(x)
    sign = ltz_planes(party, x.reshape(-1), bound_bits=int(min(bound_bits, 64)))
    return b2a_planes(party, sign, x.size).reshape(x.shape)


def ge0(party: Party, x, bound_bits: int = 64) -> np.ndarray:
    """Shares of ``[x >= 0]`` = 1 - :func:`ltz` (integer 0/1); same cost."""
    return const(party, np.ones(np.shape(x), np.uint64)) - ltz(party, x, bound_bits)


def share_from(party: Party, owner: int, values, shape) -> np.ndarray:
    """``owner`` secret-shares its integer ``values`` (ignored elsewhere) of the
    public ``shape``: :func:`ppboost.mpc.arith.share` (0 online rounds)."""
    return party.share(values if party.id == owner else None, owner=owner, shape=shape).value
