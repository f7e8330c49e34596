"""Additive shares over Z_2^64 (:class:`AShare`) and their operators.

``AShare`` holds this party's additive share of a uint64 array over
Z_2^64: the secret is ``sum_p x_p mod 2**64``.  Every share knows the
:class:`~ppboost.mpc.party.Party` it belongs to (there are no global
singletons).  Operators dispatch on the type of the other operand, like
``phe.EncryptedNumber``:

====================  =====================================  ==============
expression            meaning                                cost
====================  =====================================  ==============
``x + y``, ``x - y``  shares add                             local
``x + k``             party 0 adds the public ``k``          local
``x * k``, ``k * x``  public integer (array) factor          local
``x * y``             Beaver product (``arith.mul``)         1 round
``x @ y``             matrix Beaver product                  1 round
``x @ K``, ``K @ x``  public matrix                          local
``-x``                negation                               local
====================  =====================================  ==============

All arithmetic is on raw ring elements.  Fixed-point values (``party.encode``)
multiply to ``2f`` fractional bits: truncate the product with
``ppboost.mpc.truncation.truncate`` (or use ``truncation.mul_fixed``).
Public operands must be integers (or uint64 ring elements); floats raise
``TypeError`` because their encoding must be explicit.

Example (every party runs ``fn``; see ``ppboost.mpc.simulate``)::

    from ppboost.mpc import run_parties
    from ppboost.mpc.truncation import mul_fixed

    def fn(party):
        x = party.share_float(X if party.id == 0 else None, owner=0, shape=X.shape)
        y = party.share_float(Y if party.id == 1 else None, owner=1, shape=Y.shape)
        return party.reveal_float(mul_fixed(x, y) + party.encode(1.0), to=0)

    results, dealer_stats, endpoints = run_parties(2, fn)   # results[0] ~ X * Y + 1
"""
from __future__ import annotations

import functools

import numpy as np

from . import ring
from .party import Party

__all__ = ["AShare", "share_array"]


def _wraps(method):
    """Ring arithmetic wraps mod 2**64: silence numpy's overflow warnings, which
    numpy raises for 0-d (scalar) operands only."""
    @functools.wraps(method)
    def inner(*args, **kwargs):
        with np.errstate(over="ignore"):
            return method(*args, **kwargs)
    return inner


class AShare:
    """This party's additive share over Z_2^64 of an array of any shape.

    ``AShare(party, value)`` with ``value`` a uint64 array (this party's share).
    """

    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, party: Party, value):
        if not isinstance(party, Party):
            raise TypeError(f"AShare needs a Party, got {type(party).__name__}")
        value = np.asarray(value)
        if value.dtype != np.uint64:
            raise TypeError(f"an AShare holds uint64 ring elements, got dtype {value.dtype}")
        self.party = party
        self.value = value

    # ------------------------------------------------------------ array-like
    @property
    def shape(self):
        return self.value.shape

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def size(self):
        return self.value.size

    def __len__(self):
        return len(self.value)

    def __repr__(self):
        return f"AShare(party={self.party.id}, shape={self.shape})"

    def __getitem__(self, key):
        return AShare(self.party, np.asarray(self.value[key]))

    def reshape(self, *shape):
        return AShare(self.party, self.value.reshape(*shape))

    def ravel(self):
        return AShare(self.party, self.value.ravel())

    @property
    def T(self):
        return AShare(self.party, self.value.T)

    def transpose(self, *axes):
        return AShare(self.party, self.value.transpose(*axes))

    def copy(self):
        return AShare(self.party, self.value.copy())

    @_wraps
    def sum(self, axis=None):
        """Sum of entries (local; wraps mod 2**64)."""
        return AShare(self.party, np.asarray(self.value.sum(axis=axis, dtype=np.uint64)))

    @staticmethod
    def concatenate(shares, axis: int = 0) -> AShare:
        shares = list(shares)
        party = _same_party(shares)
        return AShare(party, np.concatenate([s.value for s in shares], axis=axis))

    @staticmethod
    def stack(shares, axis: int = 0) -> AShare:
        shares = list(shares)
        party = _same_party(shares)
        return AShare(party, np.stack([s.value for s in shares], axis=axis))

    def reveal(self, to: int | None = None):
        return self.party.reveal(self, to=to)

    # ------------------------------------------------------------ dispatch helpers
    def check_compatible(self, other: AShare, op: str) -> None:
        """ValueError unless ``other`` is a share of the same Party and shape (for ``op``)."""
        if other.party is not self.party:
            raise ValueError(f"cannot {op} shares that belong to different Party objects")
        if other.shape != self.shape:
            raise ValueError(f"shape mismatch: {self.shape} {op} {other.shape}; "
                             f"share operands must have equal shapes")

    @_wraps
    def _add_share(self, other: AShare) -> AShare:
        self.check_compatible(other, "+")
        return AShare(self.party, self.value + other.value)

    @_wraps
    def _add_public(self, k) -> AShare:
        k = ring.as_ring(k, "public operand")
        if self.party.id == 0:
            return AShare(self.party, np.asarray(self.value + k))
        shape = np.broadcast_shapes(self.shape, np.shape(k))
        return AShare(self.party, np.array(np.broadcast_to(self.value, shape)))

    @_wraps
    def _mul_public(self, k) -> AShare:
        k = ring.as_ring(k, "public factor")
        return AShare(self.party, np.asarray(self.value * k))

    # ------------------------------------------------------------ operators
    def __add__(self, other):
        if isinstance(other, AShare):
            return self._add_share(other)
        return self._add_public(other)

    __radd__ = __add__

    def __neg__(self):
        with np.errstate(over="ignore"):
            return AShare(self.party, np.asarray(np.uint64(0) - self.value))

    @_wraps
    def __sub__(self, other):
        if isinstance(other, AShare):
            self.check_compatible(other, "-")
            return AShare(self.party, self.value - other.value)
        with np.errstate(over="ignore"):
            neg = np.uint64(0) - ring.as_ring(other, "public operand")
        return self._add_public(neg)

    def __rsub__(self, other):
        return (-self)._add_public(other)

    def __mul__(self, other):
        if isinstance(other, AShare):
            from .arith import mul
            return mul(self, other)
        return self._mul_public(other)

    __rmul__ = __mul__

    def __matmul__(self, other):
        if isinstance(other, AShare):
            from .arith import matmul
            return matmul(self, other)
        return AShare(self.party, ring.matmul(self.value, ring.as_ring(other, "public matrix")))

    def __rmatmul__(self, other):
        return AShare(self.party, ring.matmul(ring.as_ring(other, "public matrix"), self.value))

    @_wraps
    def __lshift__(self, k: int):
        """Multiply by 2**k (local)."""
        return AShare(self.party, self.value << np.uint64(k))


def _same_party(shares) -> Party:
    if not shares:
        raise ValueError("need at least one AShare")
    for s in shares:
        if not isinstance(s, AShare):
            raise TypeError(f"expected AShare, got {type(s).__name__}")
    party = shares[0].party
    if any(s.party is not party for s in shares):
        raise ValueError("cannot combine shares that belong to different Party objects")
    return party


def share_array(x, name: str = "x") -> np.ndarray:
    """The uint64 array of an :class:`AShare` (``TypeError`` for anything else)."""
    if isinstance(x, AShare):
        return x.value
    raise TypeError(f"{name} must be an AShare, got {type(x).__name__}")
