"""The per-participant context: :class:`Party`.

There are no global singletons: every protocol takes the ``Party`` of the
participant running it (or an :class:`~ppboost.mpc.shares.AShare`, which
knows its party).  A ``Party`` holds the endpoint, the party's id, its
fixed-point configuration, its private PRG and its handle on the dealer
(``party.dealer``, a :class:`~ppboost.mpc.dealer_client.DealerClient`, which may
be passed in).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..crypto import fixed
from ..crypto.prg import PRG
from . import ring
from .dealer_client import DealerClient

if TYPE_CHECKING:                      # shares.py imports this module
    from .shares import AShare

__all__ = ["Party"]

# AShare and the protocols (arith) import Party, so the convenience methods
# below that return shares import them when they are called.


class Party:
    """One data party: endpoint, id, fixed-point config, PRGs and the dealer client.

    ``Party(endpoint, frac_bits=16)`` must be built on every data party at
    the same time as :func:`ppboost.mpc.dealer.run_dealer` runs on the
    dealer: construction receives this party's seed.  ``keep_opened=True``
    records every value this party sees opened (``party.opened``), for audits
    and tests of masking.

    ``dealer``: this party's :class:`DealerClient` on ``endpoint``, if the
    caller builds it (e.g. with a registry of its own correlation kinds);
    by default the party builds one with
    :func:`ppboost.mpc.kinds.standard_kinds`.

    Attributes: ``ep`` (the Endpoint), ``id``, ``n_parties``, ``frac_bits``,
    ``prg`` (private local randomness), ``dealer`` (:class:`DealerClient`).
    """

    def __init__(self, endpoint, frac_bits: int = fixed.DEFAULT_FRAC_BITS, *,
                 seed: bytes | None = None, keep_opened: bool = False,
                 dealer: DealerClient | None = None):
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
        if dealer is not None and dealer.ep is not endpoint:
            raise ValueError("the DealerClient passed as dealer= belongs to another endpoint")
        if dealer is None:
            # the modules that define kinds import Party, so they are imported here
            from .kinds import standard_kinds
            dealer = DealerClient(endpoint, standard_kinds())
        self.dealer = dealer
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

    def reveal(self, x: AShare, to: int | None = None):
        """Open ``x`` to everyone (``to=None``) or to party ``to`` (others get None)."""
        from .arith import reveal
        return reveal(x, to=to)

    def reveal_float(self, x: AShare, to: int | None = None, frac_bits: int | None = None):
        out = self.reveal(x, to=to)
        return None if out is None else self.decode(out, frac_bits)

    def zeros(self, shape) -> AShare:
        """A sharing of zeros (all shares 0), local."""
        from .shares import AShare
        return AShare(self, np.zeros(shape, dtype=np.uint64))

    def public(self, value) -> AShare:
        """A trivial sharing of a public integer array (party 0 holds it), local."""
        from .shares import AShare
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
