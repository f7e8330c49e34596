"""The per-participant context (:class:`Party`) and additive shares (:class:`AShare`).

There are no global singletons: every protocol takes the ``Party`` of the
participant running it (or an ``AShare``, which knows its party).

``AShare`` holds this party's additive share of a uint64 array over
Z_2^64: the secret is ``sum_p x_p mod 2**64``.  Operators dispatch on the
type of the other operand, like ``phe.EncryptedNumber``:

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
``ppboost.mpc.truncation.truncate`` (or use ``arith.mul_fixed``).
Public operands must be integers (or uint64 ring elements); floats raise
``TypeError`` because their encoding must be explicit.

Example (every party runs ``fn``; see ``ppboost.mpc.simulate``)::

    from ppboost.mpc import run_parties
    from ppboost.mpc.arith import mul_fixed

    def fn(party):
        x = party.share_float(X if party.id == 0 else None, owner=0, shape=X.shape)
        y = party.share_float(Y if party.id == 1 else None, owner=1, shape=Y.shape)
        return party.reveal_float(mul_fixed(x, y) + party.encode(1.0), to=0)

    results, dealer_stats, endpoints = run_parties(2, fn)   # results[0] ~ X * Y + 1
"""
from __future__ import annotations

import numpy as np

from ..crypto import fixed
from ..crypto.prg import PRG
from . import ring
from .dealer import DealerClient

__all__ = ["Party", "AShare"]


class Party:
    """One data party: endpoint, id, fixed-point config, PRGs and the dealer client.

    ``Party(endpoint, frac_bits=16)`` must be built on every data party at
    the same time as :func:`ppboost.mpc.dealer.run_dealer` runs on the
    dealer: construction receives this party's seed.  ``keep_opened=True``
    records every value this party sees opened (``party.opened``), for audits
    and tests of masking.

    Attributes: ``ep`` (the Endpoint), ``id``, ``n_parties``, ``frac_bits``,
    ``prg`` (private local randomness), ``dealer`` (:class:`DealerClient`).
    """

    def __init__(self, endpoint, frac_bits: int = fixed.DEFAULT_FRAC_BITS, *,
                 seed: bytes | None = None, keep_opened: bool = False):
        if endpoint.is_dealer:
            raise ValueError(f"participant {endpoint.me} is the dealer, not a data party; "
                             f"run ppboost.mpc.dealer.run_dealer on it")
        if endpoint.n_parties < 2:
            raise ValueError(f"n_parties == {endpoint.n_parties}, must be >= 2")
        self.ep = endpoint
        self.id = endpoint.me
        self.n_parties = endpoint.n_parties
        self.frac_bits = fixed.check_frac_bits(frac_bits)
        self.prg = PRG(seed)
        self.dealer = DealerClient(endpoint)
        self.opened = [] if keep_opened else None

    def __repr__(self):
        return f"Party({self.id} of {self.n_parties}, frac_bits={self.frac_bits})"

    # ------------------------------------------------------------ fixed point
    def encode(self, x, bound_bits: int = 63) -> np.ndarray:
        """float -> ring with this party's ``frac_bits`` (``crypto.fixed.encode``)."""
        return fixed.encode(x, self.frac_bits, bound_bits)

    def decode(self, u, frac_bits: int | None = None) -> np.ndarray:
        """ring -> float (``frac_bits`` defaults to this party's)."""
        return fixed.decode(u, self.frac_bits if frac_bits is None else frac_bits)

    # ------------------------------------------------------------ input / output
    def share(self, values=None, owner: int = 0, shape=None, bound_bits: int | None = None):
        """Secret-share the owner's integer array; see :func:`ppboost.mpc.arith.share`."""
        from .arith import share
        return share(self, values, owner=owner, shape=shape, bound_bits=bound_bits)

    def share_float(self, values=None, owner: int = 0, shape=None):
        """Encode floats with ``frac_bits`` on the owner, then :meth:`share`."""
        if self.id == owner and values is not None:
            values = self.encode(values)
        return self.share(values, owner=owner, shape=shape)

    def reveal(self, x: "AShare", to: int | None = None):
        """Open ``x`` to everyone (``to=None``) or to party ``to`` (others get None)."""
        from .arith import reveal
        return reveal(x, to=to)

    def reveal_float(self, x: "AShare", to: int | None = None, frac_bits: int | None = None):
        out = self.reveal(x, to=to)
        return None if out is None else self.decode(out, frac_bits)

    def zeros(self, shape) -> "AShare":
        """A sharing of zeros (all shares 0), local."""
        return AShare(self, np.zeros(shape, dtype=np.uint64))

    def public(self, value) -> "AShare":
        """A trivial sharing of a public integer array (party 0 holds it), local."""
        v = np.asarray(ring.as_ring(value, "public value"))
        return AShare(self, v.copy() if self.id == 0 else np.zeros(v.shape, np.uint64))

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the dealer (sent by party 0).  Call once when the protocol is done."""
        self.dealer.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()


def _wraps(method):
    """Ring arithmetic wraps mod 2**64: silence numpy's overflow warnings, which
    numpy raises for 0-d (scalar) operands only."""
    import functools

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
    def concatenate(shares, axis: int = 0) -> "AShare":
        shares = list(shares)
        party = _same_party(shares)
        return AShare(party, np.concatenate([s.value for s in shares], axis=axis))

    @staticmethod
    def stack(shares, axis: int = 0) -> "AShare":
        shares = list(shares)
        party = _same_party(shares)
        return AShare(party, np.stack([s.value for s in shares], axis=axis))

    def reveal(self, to: int | None = None):
        return self.party.reveal(self, to=to)

    # ------------------------------------------------------------ dispatch helpers
    def _check_share(self, other: "AShare", op: str) -> None:
        if other.party is not self.party:
            raise ValueError(f"cannot {op} shares that belong to different Party objects")
        if other.shape != self.shape:
            raise ValueError(f"shape mismatch: {self.shape} {op} {other.shape}; "
                             f"share operands must have equal shapes")

    @_wraps
    def _add_share(self, other: "AShare") -> "AShare":
        self._check_share(other, "+")
        return AShare(self.party, self.value + other.value)

    @_wraps
    def _add_public(self, k) -> "AShare":
        k = ring.as_ring(k, "public operand")
        if self.party.id == 0:
            return AShare(self.party, np.asarray(self.value + k))
        shape = np.broadcast_shapes(self.shape, np.shape(k))
        return AShare(self.party, np.array(np.broadcast_to(self.value, shape)))

    @_wraps
    def _mul_public(self, k) -> "AShare":
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
            self._check_share(other, "-")
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
