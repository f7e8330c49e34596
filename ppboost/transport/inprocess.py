"""In-process transport: one thread per participant, one queue per ordered pair.

Used for simulation (the default federation) and for tests.  Arrays are
copied on send, so no participant can see another's memory.  If any
participant raises, every other participant's next (or current) ``recv``
raises :class:`PeerFailed` naming it, and :func:`run_inprocess` re-raises
the first failure in the caller.  A participant that calls
:meth:`InProcessEndpoint.close` (it is done, or it leaves: a simulated
dropout) fails only the ``recv`` calls that wait for *it*, once its queued
messages are read, as a goodbye does over TLS; everyone else goes on.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from .base import Endpoint, PeerFailed, Stats, TransportTimeout, encoded_size
from .link import Shaper

__all__ = ["InProcessEndpoint", "Hub", "run_inprocess"]

_POLL = 0.05


class Hub:
    """The shared mailboxes of one in-process federation."""

    def __init__(self, n_parties: int, timeout: float = 60.0, names: list | None = None,
                 n_participants: int | None = None, link=None):
        if n_parties < 2:
            raise ValueError(f"n_parties == {n_parties}, must be >= 2")
        self.n_participants = n_parties + 1 if n_participants is None else int(n_participants)
        if self.n_participants not in (n_parties + 1, n_parties + 2):
            raise ValueError(f"n_participants == {n_participants}: the parties, the dealer and "
                             "at most one analyst of its own")
        if names is not None and len(names) != self.n_participants:
            raise ValueError(f"{len(names)} names for {self.n_participants} participants")
        self.n_parties = n_parties
        self.timeout = timeout
        self.shaper = None if link is None else Shaper(link)   # an emulated link (link.py)
        self.names = None if names is None else list(names)
        n = self.n_participants
        self.queues = {(a, b): queue.Queue() for a in range(n) for b in range(n) if a != b}
        self.failed = threading.Event()
        self.failure: str | None = None
        self.closed: set = set()          # ids of endpoints that called close()
        self._lock = threading.Lock()

    def fail(self, who: str, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = f"{who} failed: {type(exc).__name__}: {exc}"
            self.failed.set()

    def endpoint(self, me: int) -> InProcessEndpoint:
        return InProcessEndpoint(self, me)


class InProcessEndpoint(Endpoint):
    def __init__(self, hub: Hub, me: int):
        self.hub = hub
        self.me = me
        self.n_parties = hub.n_parties
        self.n_participants = hub.n_participants
        self.timeout = hub.timeout
        self.names = hub.names
        self.stats = Stats(me)

    def _send(self, to, payload, move: bool = False):
        n = encoded_size(payload)
        if isinstance(payload, np.ndarray):
            if not move:                # the sender may change its array later
                payload = payload.copy()
        else:
            payload = bytes(payload)
        shaper = self.hub.shaper
        at = 0.0 if shaper is None else shaper.arrival((self.me, to), n)
        self.hub.queues[(self.me, to)].put((at, payload))
        return n

    def close(self) -> None:
        """Leave: peers waiting for a message from this endpoint get :class:`PeerFailed`
        (after the messages already sent), instead of waiting for the timeout."""
        self.hub.closed.add(self.me)

    def _recv(self, frm):
        q = self.hub.queues[(frm, self.me)]
        waited = 0.0
        while True:
            try:
                at, payload = q.get(timeout=_POLL)
                wait = at - time.monotonic()
                if wait > 0:                  # an emulated link: not arrived yet
                    time.sleep(wait)
                return payload, encoded_size(payload)
            except queue.Empty:
                pass
            if self.hub.failed.is_set():
                raise PeerFailed(f"{self.name(self.me)} stopped: {self.hub.failure}")
            if frm in self.hub.closed and q.empty():
                exc = PeerFailed(f"{self.name(self.me)} waited for a message from {self.name(frm)}, "
                                 f"which already closed its endpoint and will send nothing more")
                exc.peer = frm
                raise exc
            waited += _POLL
            if waited >= self.timeout:
                raise TransportTimeout(
                    f"{self.name(self.me)} waited {self.timeout:.1f}s for a message from "
                    f"{self.name(frm)}, which sent nothing (stalled or dead)")


def run_inprocess(
    n_parties: int,
    party_fn: Callable[[Endpoint], object] | Sequence[Callable[[Endpoint], object]],
    dealer_fn: Callable[[Endpoint], object] | None = None,
    timeout: float = 60.0,
    names: list | None = None,
    analyst_fn: Callable[[Endpoint], object] | None = None,
    link=None,
):
    """Run one function per participant in its own thread and return their results.

    ``party_fn`` is one callable used by every data party, or a list with one
    callable per party.  ``dealer_fn`` (optional) runs as participant
    ``n_parties``.  ``names``: every participant's name by id, used in
    messages (default ``party <id>`` / ``dealer``).  ``analyst_fn`` (needs
    ``dealer_fn``) runs as participant ``n_parties + 1``, an analyst that is
    not a data party.  Returns ``(party_results, dealer_result, endpoints)``,
    and the analyst's result as a fourth item when ``analyst_fn`` is given.
    ``link``: a :class:`~ppboost.transport.link.Link` every channel is shaped
    to (bandwidth and one-way delay), or None.
    The first exception raised by any participant is re-raised here (the
    others stop with :class:`PeerFailed`).
    """
    if analyst_fn is not None and dealer_fn is None:
        raise ValueError("an analyst_fn needs a dealer_fn (the analyst's id comes after the dealer)")
    hub = Hub(n_parties, timeout, names, n_parties + 1 + (analyst_fn is not None), link)
    fns = list(party_fn) if isinstance(party_fn, (list, tuple)) else [party_fn] * n_parties
    if len(fns) != n_parties:
        raise ValueError(f"{len(fns)} party functions for {n_parties} parties")
    if dealer_fn is not None:
        fns.append(dealer_fn)
    if analyst_fn is not None:
        fns.append(analyst_fn)
    eps = [hub.endpoint(i) for i in range(len(fns))]
    results: list = [None] * len(fns)
    errors: list = [None] * len(fns)

    def runner(i):
        try:
            results[i] = fns[i](eps[i])
        except BaseException as exc:  # re-raised in the caller
            errors[i] = exc
            hub.fail(eps[i].name(i), exc)

    threads = [threading.Thread(target=runner, args=(i,), name=eps[i].name(i), daemon=True)
               for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Prefer the root cause over the PeerFailed it triggered elsewhere.
    root = [e for e in errors if e is not None and not isinstance(e, PeerFailed)]
    if root:
        raise root[0]
    others = [e for e in errors if e is not None]
    if others:
        raise others[0]
    dealer_result = results[n_parties] if dealer_fn is not None else None
    if analyst_fn is not None:
        return results[:n_parties], dealer_result, eps, results[n_parties + 1]
    return results[:n_parties], dealer_result, eps
