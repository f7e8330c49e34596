"""TCP transport with TLS 1.3 and mutual certificate authentication.

Every pair of participants shares one TLS connection (full mesh): the
participant with the **lower id listens**, the higher id connects.  Both sides
present a certificate signed by the federation CA (``ssl`` with
``CERT_REQUIRED`` on both ends, TLS 1.3 only), and both check that the peer's
certificate names the participant they expect (subjectAltName
``urn:ppboost:<federation>:<id>``, see :mod:`ppboost.transport.certs`):

* the connecting side knows whom it dialled and refuses a listener whose
  certificate names anybody else;
* the listening side reads the id from the client certificate, checks that the
  ``hello`` message claims the same id, that the id is higher than its own and
  not yet connected, and answers ``ok`` or a ``reject`` with the reason.

So a participant cannot impersonate another without that participant's key.

Wire format: every message is an 8-byte little-endian length followed by a
frame body.  Data frames are exactly :func:`ppboost.transport.base.encode`
(kind byte 0 or 1), so the byte counts in :class:`Stats` and the transcript are
identical to the in-process transport; the length prefix, TLS records and the
few control frames (kind ``0xFD`` set-up, ``0xFE`` bye, ``0xFF`` abort) are
not counted.

Threads: one daemon reader thread per peer decrypts incoming frames into a
queue; ``recv`` waits on that queue.  TLS runs over ``ssl.MemoryBIO`` with a
lock around the ``SSLObject``, so reading and writing the same connection from
two threads is safe (OpenSSL objects must not be used concurrently), while the
raw socket is read and written without holding that lock (full duplex: two
parties may both send 100 MB to each other before either receives).

Failures, all naming the participant concerned:

* ``recv`` waits longer than ``timeout`` -> :class:`TransportTimeout`, after a short
  grace (:func:`_grace`) in which an abort from any peer still wins: a participant
  that times out tells the others why, so in a chain (``h3`` waits on ``h1``, which
  waits on the stalled ``h2``) everyone reports the stalled one, not the nearest waiter;
* a peer's connection drops without a goodbye (the process died) or a peer
  sends an abort (its function raised) -> :class:`PeerFailed` on this and every
  later ``recv`` from anyone (messages already received are still delivered),
  as in the in-process transport;
* a ``send`` that makes no progress for ``timeout`` seconds -> :class:`TransportTimeout`;
  a send still under way when a failure arrives stops within 0.2 s with
  :class:`PeerFailed` (a large frame to a slow reader never outlives the others' abort);
* set-up problems (peer not listening, certificate from another CA, identity
  mismatch, set-up slower than ``connect_timeout``) -> :class:`HandshakeError`.

``send`` does not wait for the receiver's ``recv``: the receiver's reader
thread queues incoming frames in memory (unbounded, like the in-process
transport), so only a peer whose process is stopped or unreachable can block
a sender, and then for at most ``timeout`` seconds without progress.

Call :meth:`TLSEndpoint.close` when done (it says goodbye so peers do not
mistake a finished participant for a dead one) or :meth:`TLSEndpoint.abort`
on failure; :func:`ppboost.transport.launch.run_processes` does both.

Modules: this one holds :func:`connect_tls` and :class:`TLSEndpoint` (the
reader threads, ``send`` / ``recv``, goodbye and abort);
:mod:`ppboost.transport.tls_mesh` the mesh set-up (TLS contexts, listening,
connecting, the identity checks, :class:`HandshakeError`);
:mod:`ppboost.transport.tls_channel` one connection's TLS over
``ssl.MemoryBIO`` and its frames.
"""
from __future__ import annotations

import queue
import socket
import ssl
import threading
import time

from .base import Endpoint, PeerFailed, Stats, TransportError, TransportTimeout, decode
from .config import FederationConfig
from .tls_channel import ABORT, BYE, SETUP, encode_parts
from .tls_channel import Cancelled as _Cancelled
from .tls_mesh import HandshakeError, connect_mesh

__all__ = ["TLSEndpoint", "HandshakeError", "connect_tls"]

_POLL = 0.05                    # how often a waiting recv looks at the failure flag
_LINGER = 0.5                   # close(): how long to wait for peers' goodbyes


def _grace(timeout: float) -> float:
    """Seconds a timed-out ``recv`` still waits for a peer's abort (see the module notes)."""
    return min(3.0, 0.25 * timeout)


def connect_tls(config: FederationConfig | str, me: int, key: str, *, cert: str | None = None,
                listen_sock: socket.socket | None = None, timeout: float | None = None,
                connect_timeout: float | None = None) -> TLSEndpoint:
    """Join the federation as participant ``me``; return its :class:`TLSEndpoint`.

    ``config``: a :class:`FederationConfig` or the path of its JSON file.
    ``key``: this participant's private key (PEM); ``cert`` defaults to the
    config's certificate for ``me`` (tests pass another to play an impostor).
    ``listen_sock``: an already bound listening socket for ``me``'s address
    (the launcher pre-binds ports so that port 0 can mean "any free port");
    otherwise ``config``'s host:port is bound here.  ``timeout`` /
    ``connect_timeout`` override the config's values.

    Returns once a verified connection to every other participant is up, or
    raises :class:`HandshakeError` within ``connect_timeout`` seconds.
    """
    return TLSEndpoint(*connect_mesh(config, me, key, cert=cert, listen_sock=listen_sock,
                                     timeout=timeout, connect_timeout=connect_timeout))


class TLSEndpoint(Endpoint):
    """:class:`Endpoint` over mutually authenticated TLS connections; build it with :func:`connect_tls`."""

    connect = staticmethod(connect_tls)

    #: Set by a protocol that outlives a peer (federated mode's secure aggregation): a
    #: peer that dies or aborts then fails only the receives that wait for it, once its
    #: queued frames are read; by default it fails every later receive.
    isolate_failures = False

    def __init__(self, config: FederationConfig, me: int, channels: dict, timeout: float):
        self.config = config
        self.me = me
        self.n_parties = config.n_parties
        self.n_participants = config.n_participants
        self.names = config.names()
        self.timeout = float(timeout)
        self.stats = Stats(me)
        self._ch = channels
        self._q = {p: queue.Queue() for p in channels}
        self._failed = threading.Event()
        self._failure: str | None = None
        self._peer_failure: dict = {}            # peer -> why it failed
        self._bye: set = set()
        self._lock = threading.Lock()
        self._closing = False
        self._closed = False
        self._readers = {}
        for p, ch in channels.items():
            ch.sock.settimeout(self.timeout)     # bounds every sendall chunk; readers just retry
            for frame in ch.pending:
                self._dispatch(p, frame)
            ch.pending.clear()
            t = threading.Thread(target=self._reader, args=(p,), daemon=True,
                                 name=f"ppboost-{me}-reads-{p}")
            self._readers[p] = t
        for t in self._readers.values():
            t.start()

    # ---------------------------------------------------------------- incoming
    def _fail(self, msg: str, peer: int | None = None) -> None:
        with self._lock:
            if peer is not None:
                self._peer_failure.setdefault(peer, msg)
            if peer is None or not self.isolate_failures:
                if self._failure is None:
                    self._failure = msg
                self._failed.set()

    def _dispatch(self, p: int, frame) -> bool:
        """Route one frame; return False when the peer will send nothing more."""
        kind = frame[0]
        if kind == BYE:
            with self._lock:
                self._bye.add(p)
            self._q[p].put(None)
            return False
        if kind == ABORT:
            self._fail(f"{self.name(p)} failed: {bytes(frame[1:]).decode(errors='replace')}", p)
            return False
        if kind == SETUP:
            self._fail(f"{self.name(p)} sent a set-up message after set-up (protocol error)", p)
            return False
        self._q[p].put(frame)
        return True

    def _reader(self, p: int) -> None:
        ch = self._ch[p]
        try:
            for frame in ch.feed(b""):           # records left in the BIO by the set-up reads
                if not self._dispatch(p, frame):
                    return
            while True:
                try:
                    frames = ch.receive()
                except TimeoutError:
                    if self._closing:
                        return
                    continue
                for frame in frames:
                    if not self._dispatch(p, frame):
                        return
        except BaseException as exc:  # turned into PeerFailed for recv
            if self._closing:
                return
            what = exc if str(exc) else type(exc).__name__
            self._fail(f"{self.name(p)} disconnected without closing its endpoint ({what}): "
                       "it died or the connection broke", p)

    def _recv(self, frm: int):
        q = self._q[frm]
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                frame = q.get(timeout=_POLL)
            except queue.Empty:
                frame = False
            if frame is None:
                q.put(None)                     # later recvs see the goodbye too
                raise PeerFailed(f"{self.name(self.me)} waited for a message from {self.name(frm)}, "
                                 f"which already closed its endpoint (finished) and will send nothing more")
            if frame is not False:
                # a memoryview frame is a fresh aligned buffer owned by us: no copy needed
                payload = decode(frame, copy=not isinstance(frame, memoryview))
                if isinstance(payload, (bytearray, memoryview)):
                    payload = bytes(payload)
                return payload, len(frame)
            if self._failed.is_set():
                raise PeerFailed(f"{self.name(self.me)} stopped: {self._failure}")
            why = self._peer_failure.get(frm)
            if why is not None and q.empty():
                exc = PeerFailed(f"{self.name(self.me)} stopped waiting for {self.name(frm)}: {why}")
                exc.peer = frm
                raise exc
            if self._closed:
                raise TransportError(f"{self.name(self.me)}: recv on a closed endpoint")
            if time.monotonic() >= deadline + _grace(self.timeout):
                raise TransportTimeout(
                    f"{self.name(self.me)} waited {self.timeout:.1f}s for a message from "
                    f"{self.name(frm)}, which sent nothing (stalled or dead)")

    # ---------------------------------------------------------------- outgoing
    def _send(self, to: int, payload, move: bool = False) -> int:   # serialised now: no copy
        if self._closed:
            raise TransportError(f"{self.name(self.me)}: send on a closed endpoint")
        parts = encode_parts(payload)
        try:
            self._ch[to].send_frame(*parts, cancel=lambda: self._send_cancelled(to),
                                    stall=self.timeout)
        except _Cancelled:
            why = self._failure if self._failed.is_set() else self._peer_failure.get(to)
            raise PeerFailed(f"{self.name(self.me)} stopped sending to {self.name(to)}: "
                             f"{why}") from None
        except TimeoutError:
            raise TransportTimeout(
                f"{self.name(self.me)} could not send to {self.name(to)} for {self.timeout:.1f}s: "
                f"{self.name(to)} is not reading (stalled)") from None
        except (OSError, ssl.SSLError) as exc:
            raise PeerFailed(f"{self.name(self.me)} could not send to {self.name(to)}: {exc} "
                             f"({self.name(to)} died or closed its endpoint)") from None
        return sum(memoryview(p).nbytes for p in parts)

    def _send_cancelled(self, to: int) -> bool:
        """A frame being sent stops between records once a failure would stop a receive:
        a large send to a slow reader never outlives the others' abort."""
        return self._failed.is_set() or to in self._peer_failure

    def peer_info(self, p: int) -> dict:
        """TLS version, cipher suite and certificate identity of the connection to ``p``."""
        self._check_peer(p)
        ch = self._ch[p]
        with ch.ssl_lock:
            return {"version": ch.obj.version(), "cipher": ch.obj.cipher()[0],
                    "identity": ch.peer_identity()}

    # ---------------------------------------------------------------- shutdown
    def _say(self, frame: bytes, wait: float) -> None:
        for ch in self._ch.values():
            try:
                ch.send_frame(frame, deadline=time.monotonic() + wait)
            except (OSError, ssl.SSLError):
                pass
            try:
                ch.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _teardown(self, linger: float) -> None:
        end = time.monotonic() + linger
        for t in self._readers.values():
            t.join(max(0.0, end - time.monotonic()))
        self._closing = True
        for ch in self._ch.values():
            ch.close()

    def close(self) -> None:
        """Say goodbye to every peer, wait briefly for theirs, close the sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._say(bytes([BYE]), wait=min(2.0, self.timeout))
        self._teardown(min(_LINGER, self.timeout))

    def abort(self, reason: str) -> None:
        """Tell every peer that this participant failed (their recvs raise PeerFailed), then close."""
        if self._closed:
            return
        self._closed = True
        self._say(bytes([ABORT]) + reason.encode()[:4000], wait=min(0.5, self.timeout))
        self._teardown(min(0.2, self.timeout))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.close()
        else:
            self.abort(f"{type(exc).__name__}: {exc}")
        return False
