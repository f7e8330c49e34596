"""The dealer: a participant of its own that hands out correlated randomness.

Semi-honest trusted dealer as in XORBoost (Deforth et al., PoPETs 2022) and
CrypTen's trusted first party.  It is participant ``n_parties`` on the
transport and runs :func:`run_dealer`; data parties talk to it through their
:class:`~ppboost.mpc.dealer_client.DealerClient` (``party.dealer``, the party
side, in :mod:`ppboost.mpc.dealer_client`).  Nothing it computes depends on
data, and it never sees data: requests carry only a kind name and public
parameters (shapes, owner ids, fractional bits).

**Compressed dealer.**  At start the dealer sends every party a fresh
16-byte seed.  For each correlation every party expands its share from its
seed's AES-CTR stream (``ppboost.crypto.prg``), in the same order as the
dealer does; only the values that cannot be random (e.g. ``c`` in a Beaver
triple) cost a message, and only to one party (by default the last one):
the "correction" ``value - sum(other shares)``.  A Beaver triple of N
elements thus costs N elements of traffic instead of 3nN.

**Requests.**  Party 0 alone sends ``(kind, params)`` (JSON of public
values, so its size depends only on public shapes).  Every party calls
:meth:`DealerClient.get` with the same arguments in the same order; a party
that passes other shapes gets a clear error when a correction's shape does
not match.  :meth:`DealerClient.prefetch` (one correlation) and
:meth:`DealerClient.prefetch_many` (a batch in one request message) let the
parties fetch material ahead of time (the offline phase), so the online
phase never waits on the dealer.

**Bounded run-ahead.**  Requested-ahead material travels to the parties
as soon as the dealer makes it and waits in their receive queues, so a
whole round's corrections (gigabytes at 100,000 rows x 300 features)
could pile up.  The dealer therefore keeps at most ``window_bytes``
(:data:`WINDOW_BYTES`, 256 MiB) of unread material per party in flight:
every party acknowledges what it has read in steps of a quarter window (a
small ``__ack__`` control message, counted in bytes but not as a round),
and the dealer waits for an acknowledgement before a message that would
overfill a party's window (at most the transport's timeout: a party that
reads nothing for that long has stalled, and the dealer stops naming it).
It always sends while less than a quarter window is unacknowledged, so a
party waiting for material is never left without it (no deadlock, even for
one message larger than the window).
The acknowledgement points depend only on the public message sizes, so the
transcript stays data-independent.

**Kinds.**  A kind is a :class:`Correlation` subclass with a ``name`` and
two methods that consume the PRGs in the same order:

* ``deal(self, d: DealerSession, **params)`` runs on the dealer;
* ``expand(self, c: DealerClient, **params)`` runs on every party and
  returns that party's material.

The kinds a run knows are a :class:`Registry` held by the dealer's
:class:`DealerSession` and by every party's :class:`DealerClient` (one
registry per dealer; there is no module-level registry).
:func:`ppboost.mpc.kinds.standard_kinds` builds the registry of every
kind ppboost's protocols use, from plain imports of the kind classes: the
core kinds of :mod:`ppboost.mpc.correlations` (Beaver and matrix triples,
truncation pairs, daBits, zero sharings, permutation correlations) and
those defined next to their protocols (boolean AND triples, edaBits, the
owner-matrix masks).  A protocol with kinds of its own adds them to a
registry (:meth:`Registry.add`) and passes that registry to both sides.
"""
from __future__ import annotations

import collections
import json
import os
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ..crypto.prg import PRG, SEED_BYTES
from ..errors import ProtocolError
from ..transport.base import TransportTimeout
from . import ring

if TYPE_CHECKING:
    from .dealer_client import DealerClient

__all__ = ["Correlation", "Registry", "DealerSession", "run_dealer", "DealerError",
           "WINDOW_BYTES", "encode_request", "check_window", "STOP", "BATCH", "MARK", "ACK"]

# The wire format both sides speak (the party side is :mod:`ppboost.mpc.dealer_client`):
# party 0's requests are JSON ``[kind, params]`` of public values (:func:`encode_request`),
# and these kinds are the control messages.
STOP = "__stop__"
BATCH = "__batch__"
MARK = "__mark__"       # a point in the request stream (checkpoints: DealerClient.mark)
ACK = "__ack__"         # a party has read this many bytes of material (bounded run-ahead)
#: Unread dealer material allowed in flight per party (see "Bounded run-ahead").
WINDOW_BYTES = 256 * 2 ** 20


class DealerError(ProtocolError, RuntimeError):
    """A malformed or unknown request, or parties that disagree about one."""


class Correlation(ABC):
    """Base class of a correlation kind (see the module docstring).

    A subclass sets ``name``, the kind's name in requests.  Kinds keep no
    state: anything a later request refers to lives in
    :attr:`DealerSession.state` / :attr:`DealerClient.state`.
    """

    name = ""

    @abstractmethod
    def deal(self, d: DealerSession, **params) -> None:
        """Dealer side: generate the material and send the corrections."""

    @abstractmethod
    def expand(self, c: DealerClient, **params):
        """Party side: expand this party's share of the material (mirror of ``deal``)."""


class Registry:
    """The correlation kinds one dealer serves and its parties expand, by name.

    ``Registry(kinds)`` with an iterable of :class:`Correlation` subclasses;
    :meth:`add` adds one more.  The dealer's :class:`DealerSession` and every
    party's :class:`DealerClient` hold a registry with the same kinds.
    """

    def __init__(self, kinds=()):
        self._kinds: dict = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: type) -> type:
        """Register the :class:`Correlation` subclass ``kind`` under ``kind.name``;
        returns ``kind``.  A name taken by another class raises ``ValueError``."""
        if not (isinstance(kind, type) and issubclass(kind, Correlation)):
            raise TypeError(f"a correlation kind is a Correlation subclass, got {kind!r}")
        name = kind.name
        if not isinstance(name, str) or not name or name in (STOP, BATCH, MARK, ACK):
            raise ValueError(f"invalid correlation name {name!r} (class {kind.__qualname__})")
        have = self._kinds.get(name)
        if have is not None and type(have) is not kind:
            raise ValueError(f"correlation kind {name!r} is already registered "
                             f"by {type(have).__qualname__}")
        self._kinds[name] = kind()
        return kind

    def __contains__(self, name) -> bool:
        return name in self._kinds

    def __getitem__(self, name: str) -> Correlation:
        try:
            return self._kinds[name]
        except KeyError:
            raise DealerError(f"unknown correlation kind {name!r}; registered kinds: "
                              f"{', '.join(self.names())}") from None

    def names(self) -> list:
        """Names of the registered kinds, sorted."""
        return sorted(self._kinds)

    def __repr__(self):
        return f"Registry({', '.join(self.names())})"


def _public(v):
    """Normalise public parameters to JSON values (tuples -> lists, numpy ints -> int)."""
    if isinstance(v, (tuple, list)):
        return [_public(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    raise TypeError(f"dealer request parameters must be public ints/strings/shapes, "
                    f"got {type(v).__name__}")


def encode_request(kind: str, params: dict) -> bytes:
    """A request (or control message) as it travels: canonical JSON of public values."""
    return json.dumps([kind, {k: _public(v) for k, v in sorted(params.items())}],
                      separators=(",", ":")).encode()


# ========================================================================= dealer side
class DealerSession:
    """The dealer's view while serving: one PRG per party, mirrored on the parties.

    ``kinds`` is the :class:`Registry` it serves.  Helpers come in mirrored
    pairs with :class:`DealerClient` (same names, same PRG consumption):
    ``random`` / ``random``, ``share`` / ``share``, ``share_bits`` /
    ``share_bits``, ``send`` / ``recv``.
    """

    def __init__(self, endpoint, prgs, kinds: Registry, own_seed: bytes | None = None,
                 window_bytes: int = WINDOW_BYTES):
        self.ep = endpoint
        self.n_parties = endpoint.n_parties
        self.prgs = prgs
        self.kinds = kinds
        self.own = PRG(own_seed)  # the dealer's private randomness (e.g. the bits of daBits)
        self.elements_sent = 0
        self.window = check_window(window_bytes)
        self._sent = [0] * self.n_parties         # material bytes sent / acknowledged per party
        self._acked = [0] * self.n_parties
        self.max_unread = 0                       # the most ever in flight to one party
        self.requests = collections.deque()       # party 0's requests read while waiting for acks
        self.ack_wait = 0.0                       # seconds spent waiting for acknowledgements
        #: state kept across requests by kinds that refer to an earlier one
        #: (e.g. ``omat_setup`` / ``omat_mul``, :mod:`ppboost.mpc.ownermat`)
        self.state: dict = {}

    def positions(self) -> dict:
        """Where every stream stands: ``{"prgs": [pos per party], "own": pos, "elements_sent"}``."""
        return {"prgs": [int(p.pos) for p in self.prgs], "own": int(self.own.pos),
                "elements_sent": int(self.elements_sent)}

    def restore(self, positions: dict) -> None:
        """Move every stream to ``positions`` (from :meth:`positions` of a run with the same seeds)."""
        if len(positions["prgs"]) != len(self.prgs):
            raise DealerError(f"dealer: saved positions for {len(positions['prgs'])} parties, "
                              f"this run has {len(self.prgs)}")
        for prg, pos in zip(self.prgs, positions["prgs"]):
            prg.pos = int(pos)
        self.own.pos = int(positions["own"])
        self.elements_sent = int(positions["elements_sent"])

    def random(self, shape) -> list:
        """Every party's next PRG words of ``shape``; the shared value is their sum."""
        shape = ring.as_shape(shape)
        return [prg.uint64(shape) for prg in self.prgs]

    def share(self, value, to: int | None = None) -> None:
        """Additively share ``value`` (uint64): parties other than ``to`` draw from
        their PRG, party ``to`` (default the last) receives the correction."""
        to = self.n_parties - 1 if to is None else to
        value = np.asarray(value, dtype=np.uint64)
        corr = value.copy()
        for p, prg in enumerate(self.prgs):
            if p != to:
                corr -= prg.uint64(value.shape)
        self.send(to, corr)

    def share_bits(self, bits, to: int | None = None) -> None:
        """XOR-share 0/1 ``bits``: the correction goes to ``to`` (bit-packed)."""
        to = self.n_parties - 1 if to is None else to
        bits = np.asarray(bits, dtype=np.uint8)
        corr = bits.copy()
        for p, prg in enumerate(self.prgs):
            if p != to:
                corr ^= prg.bits(bits.shape)
        self.send(to, np.packbits(corr.reshape(-1), bitorder="little"))

    def send(self, to: int, array) -> None:
        """Send an explicit message (flattened: the receiver restores the shape it
        expects, so 0-d values travel the same way on every transport).  The
        array is handed over (``move``): kinds send freshly made arrays and
        never touch them again."""
        arr = np.asarray(array).reshape(-1)
        self.elements_sent += arr.size
        unread = self._sent[to] - self._acked[to]
        while unread >= self.window // 4 and unread + arr.nbytes > self.window:
            self._take_ack(to)
            unread = self._sent[to] - self._acked[to]
        self._sent[to] += arr.nbytes
        self.max_unread = max(self.max_unread, self._sent[to] - self._acked[to])
        self.ep.send(to, arr, move=True)

    def _take_ack(self, p: int) -> None:
        """Wait for party ``p``'s next acknowledgement (party 0's requests that come
        first are kept for the request loop)."""
        t0 = time.perf_counter()
        while True:
            try:        # the transport's timeout, as for any peer: a party reads its material
                msg = self.ep.recv(p)          # as it computes, so a silent one has stalled
            except TransportTimeout:
                raise TransportTimeout(
                    f"dealer: {self.ep.name(p)} read none of its pending material for "
                    f"{self.ep.timeout:.1f}s (stalled or dead)") from None
            self.ack_wait += time.perf_counter() - t0
            t0 = time.perf_counter()
            kind, params = _parse(msg, p)
            if kind == ACK:
                self._acked[p] = max(self._acked[p], int(params["bytes"]))
                return
            if p != 0:
                raise DealerError(f"dealer: party {p} sent {kind!r}; only party 0 sends requests")
            self.requests.append((kind, params))

    def ack(self, p: int, params: dict) -> None:
        """Record an acknowledgement that arrived in the request stream (party 0)."""
        self._acked[p] = max(self._acked[p], int(params["bytes"]))


def run_dealer(endpoint, *, kinds: Registry | None = None, idle_timeout: float = 3600.0,
               seeds=None, own_seed=None, on_mark=None, window_bytes: int = WINDOW_BYTES) -> dict:
    """Serve correlation requests until party 0 says stop; return the dealer's stats.

    ``endpoint`` is participant ``n_parties``.  ``kinds``: the
    :class:`Registry` of the kinds it serves (default
    :func:`ppboost.mpc.kinds.standard_kinds`; the parties' clients must hold
    the same kinds).  The loop waits at most
    ``idle_timeout`` seconds for the next request (parties may compute
    locally for longer than the transport timeout); a failed or
    disconnected party still stops it at once (``PeerFailed``).  ``seeds``
    (a list of 16-byte seeds) and ``own_seed`` (the dealer's private
    stream) replace fresh random seeds: a deployment derives them from a
    saved master seed so that a resumed run draws the same material.
    ``on_mark(tag, session)`` is called when the parties' request stream
    reaches a :meth:`DealerClient.mark` (checkpoints save and restore
    :meth:`DealerSession.positions` there).  ``window_bytes``: the unread
    material allowed in flight per party (module docstring, "Bounded
    run-ahead"; the parties' clients must use the same value).

    Returns ``{"offline_seconds", "requests", "by_kind", "seconds_by_kind",
    "elements_sent", "bytes_sent", "messages", "max_unread_bytes"}`` where
    ``offline_seconds`` is the time spent generating material (waiting time,
    for requests or acknowledgements, excluded) and ``max_unread_bytes`` the
    most material ever in flight to one party.
    """
    if not endpoint.is_dealer:
        raise ValueError(f"run_dealer needs the dealer's endpoint (id {endpoint.n_parties}), "
                         f"got participant {endpoint.me}")
    if kinds is None:
        # the modules that define kinds import this one, so they are imported here
        from .kinds import standard_kinds
        kinds = standard_kinds()
    n = endpoint.n_parties
    if seeds is None:
        seeds = [os.urandom(SEED_BYTES) for _ in range(n)]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} parties")
    for p in range(n):
        endpoint.send(p, bytes(seeds[p]))
    session = DealerSession(endpoint, [PRG(s) for s in seeds], kinds, own_seed,
                            window_bytes)
    stats = {"offline_seconds": 0.0, "requests": 0, "by_kind": {}, "seconds_by_kind": {}}
    while True:
        if session.requests:
            kind, params = session.requests.popleft()
        else:
            kind, params = _parse(_wait_message(endpoint, 0, idle_timeout, "request"), 0)
        t0, w0 = time.perf_counter(), session.ack_wait
        if kind == ACK:
            session.ack(0, params)
            continue
        if kind == STOP:
            break
        if kind == MARK:
            if on_mark is not None:
                on_mark(str(params.get("tag", "")), session)
            continue
        for kind, params in (params if kind == BATCH else [(kind, params)]):  # noqa: B020 - one request or a batch
            if kind not in kinds:
                raise DealerError(f"dealer: unknown correlation kind {kind!r}; registered "
                                  f"kinds: {', '.join(kinds.names())}")
            t1, w1 = time.perf_counter(), session.ack_wait
            try:
                with np.errstate(over="ignore"):  # ring arithmetic wraps (0-d values warn)
                    kinds[kind].deal(session, **params)
            except TypeError as exc:
                raise DealerError(f"dealer: bad parameters {params} for kind {kind!r}: "
                                  f"{exc}") from exc
            stats["seconds_by_kind"][kind] = (stats["seconds_by_kind"].get(kind, 0.0)
                                              + time.perf_counter() - t1
                                              - (session.ack_wait - w1))
            stats["requests"] += 1
            stats["by_kind"][kind] = stats["by_kind"].get(kind, 0) + 1
        stats["offline_seconds"] += time.perf_counter() - t0 - (session.ack_wait - w0)
    stats["elements_sent"] = session.elements_sent
    stats.update({"bytes_sent": endpoint.stats.total_sent,
                  "messages": endpoint.stats.messages_sent,
                  "max_unread_bytes": session.max_unread})
    return stats


def check_window(window_bytes) -> int:
    """The run-ahead window in bytes (an int >= 1024; both sides must use the same)."""
    if isinstance(window_bytes, bool) or not isinstance(window_bytes, (int, np.integer)) \
            or window_bytes < 1024:
        raise ValueError(f"window_bytes == {window_bytes!r}, must be an int >= 1024")
    return int(window_bytes)


def _parse(msg, p: int) -> tuple:
    try:
        kind, params = json.loads(bytes(msg).decode())
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise DealerError(f"dealer: malformed message from party {p}: {exc}") from None
    return kind, params


def _wait_message(endpoint, p: int, idle_timeout: float, what: str):
    """The next message from party ``p``, waiting up to ``idle_timeout`` (parties may
    compute locally for longer than the transport timeout)."""
    start = time.monotonic()
    while True:
        try:
            return endpoint.recv(p)
        except TransportTimeout:
            if time.monotonic() - start >= idle_timeout:
                raise TransportTimeout(f"dealer: no {what} from {endpoint.name(p)} for "
                                       f"{idle_timeout:.0f}s (idle_timeout)") from None
