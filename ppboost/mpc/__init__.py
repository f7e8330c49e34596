"""L2: secret-shared computation over Z_2^64.

Every participant holds a :class:`Party` (endpoint, id, fixed-point config,
PRGs, ``party.dealer``); additive shares are :class:`AShare` objects with
operators (``+ - * @``; ``*`` and ``@`` between shares are Beaver products).
The dealer is participant ``n_parties`` running :func:`run_dealer`;
:func:`run_parties` / :func:`run_parties_tls` run a protocol function on
in-process threads or on OS processes over mutual TLS.

=========================================  =======  ==============================
protocol                                   rounds   elements sent per party (N)
=========================================  =======  ==============================
``arith.share`` (owner input)              0        0 (dealer: N to the owner)
``arith.reveal`` to all / to one           1        (n-1) N / N to ``to``
``x * y`` (``arith.mul``, Beaver)          1        2N to each other party
``x @ y`` (``arith.matmul``)               1        mk + kn to each other party
``truncation.truncate``                    1        N to each other party
``truncation.mul_fixed``                   2        3N to each other party
``b2a.b2a`` (daBits)                       1        N/8 bytes to each other party
``permutation.permute(_many)``, inverse    1        non-owner: N; owner: n indices
``shuffle.shuffle`` (oblivious)            P        N per non-owner per round
``sort.sort`` (L = ``sort_levels(N)``)     P + 8L   shuffle + L N comparisons
``ownermat.OwnerMatrix.matmul`` (A @ E)    1        non-owner: k c (setup n k once)
``compare.ltz`` / ``less_than`` (edaBits)  7        N words opened + 57 bit-ANDs/elt
``argmax.argmax`` (tournament, one-hot)    ~8 lg n  lg n comparisons + products
``nonlinear.reciprocal`` / ``sigmoid``     ~30      see each docstring
=========================================  =======  ==============================

Each protocol's own docstring is authoritative for its cost (the comparison
rows above are for 64-bit inputs; a declared ``bound_bits`` makes them cheaper).

Correlated randomness always comes from ``party.dealer.get(kind, ...)``;
the kinds are :class:`Correlation` classes in a :class:`Registry` held by
the dealer and by every party's :class:`DealerClient`
(:func:`standard_kinds` builds the built-in one; see ``dealer``).
Code that keeps its shares as bare uint64 arrays calls the same protocols
through :mod:`ppboost.mpc.raw`.
"""
from .dealer import Correlation, Registry, run_dealer
from .dealer_client import DealerClient
from .kinds import standard_kinds
from .party import Party
from .shares import AShare
from .simulate import run_parties, run_parties_tls

__all__ = ["AShare", "Party", "DealerClient", "Correlation", "Registry", "standard_kinds",
           "run_dealer", "run_parties", "run_parties_tls"]
