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

* ``recv`` waits longer than ``timeout`` -> :class:`TransportTimeout`;
* a peer's connection drops without a goodbye (the process died) or a peer
  sends an abort (its function raised) -> :class:`PeerFailed` on this and every
  later ``recv`` from anyone (messages already received are still delivered),
  as in the in-process transport;
* a ``send`` that makes no progress for ``timeout`` seconds -> :class:`TransportTimeout`;
* set-up problems (peer not listening, certificate from another CA, identity
  mismatch, set-up slower than ``connect_timeout``) -> :class:`HandshakeError`.

``send`` does not wait for the receiver's ``recv``: the receiver's reader
thread queues incoming frames in memory (unbounded, like the in-process
transport), so only a peer whose process is stopped or unreachable can block
a sender, and then for at most ``timeout`` seconds per 256 KiB chunk.

Call :meth:`TLSEndpoint.close` when done (it says goodbye so peers do not
mistake a finished participant for a dead one) or :meth:`TLSEndpoint.abort`
on failure; :func:`ppboost.transport.launch.run_processes` does both.
"""
from __future__ import annotations

import json
import queue
import socket
import ssl
import struct
import threading
import time

import numpy as np

from .base import (Endpoint, PeerFailed, Stats, TransportError, TransportTimeout, array_header,
                   decode, encode)
from .config import FederationConfig
from .identity import identity_from_peercert

__all__ = ["TLSEndpoint", "HandshakeError", "connect_tls"]

_LEN = struct.Struct("<Q")
_SETUP, _BYE, _ABORT = 0xFD, 0xFE, 0xFF
_MAX_FRAME = 1 << 36            # 64 GiB: refuse absurd lengths instead of allocating them
_CHUNK = 1 << 18                # raw socket reads and TLS writes, 256 KiB
_POLL = 0.05                    # how often a waiting recv looks at the failure flag
_LINGER = 0.5                   # close(): how long to wait for peers' goodbyes
_HEAD = 512                     # frames up to this size arrive as bytes; larger ones are placed
_ALIGN = 64                     # ... so that their array data starts 64-byte aligned


class HandshakeError(TransportError):
    """Connection set-up failed: peer not listening, bad certificate, identity mismatch, timeout."""


class _Closed(Exception):
    """The TLS stream ended (EOF or close_notify)."""


# --------------------------------------------------------------------------
class _Channel:
    """One TLS connection to one peer, over a plain TCP socket and ``ssl.MemoryBIO``.

    The ``SSLObject`` is only touched under ``ssl_lock``; encrypted output is
    put on the wire under ``send_lock`` (held across encrypt + send, so records
    leave in the order they were made).  Lock order: send_lock -> ssl_lock.
    """

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server_side: bool):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=server_side)
        self.ssl_lock = threading.Lock()
        self.send_lock = threading.Lock()
        # incoming frame parser: stage 0 length prefix, 1 first _HEAD bytes, 2 rest of the body
        self._hdr = bytearray(_LEN.size)
        self._head = bytearray(_HEAD)
        self._stage, self._pos, self._size, self._head_len, self._off = 0, 0, 0, 0, 0
        self._body = None
        self.pending: list = []           # frames read during set-up but not yet consumed

    # ---------------------------------------------------------------- raw I/O
    def _settimeout(self, deadline):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline passed")
            self.sock.settimeout(left)

    def _flush_locked(self, deadline=None) -> None:
        """Send whatever TLS produced.  Caller holds send_lock."""
        with self.ssl_lock:
            data = self.out.read()
        if data:
            self._settimeout(deadline)
            self.sock.sendall(data)

    def handshake(self, deadline: float) -> None:
        while True:
            try:
                with self.ssl_lock:
                    self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                with self.send_lock:
                    self._flush_locked(deadline)
                self._settimeout(deadline)
                data = self.sock.recv(_CHUNK)
                if not data:
                    raise _Closed("connection closed during the TLS handshake")
                with self.ssl_lock:
                    self.inc.write(data)
            except ssl.SSLError:
                # send our alert (e.g. "unknown ca") so the peer learns why
                try:
                    with self.send_lock:
                        self._flush_locked(time.monotonic() + 1.0)
                except OSError:
                    pass
                raise
        with self.send_lock:
            self._flush_locked(deadline)

    def peer_identity(self):
        """``(federation, id)`` named by the peer's verified certificate, or ``None``."""
        return identity_from_peercert(self.obj.getpeercert())

    # ---------------------------------------------------------------- frames
    def send_frame(self, *parts, deadline=None) -> None:
        """Length-prefix and send one frame whose body is the concatenation of ``parts``.

        Parts are bytes-like; they are encrypted in place (no concatenation copy)
        in records of at most ``_CHUNK`` bytes.
        """
        views = [memoryview(p).cast("B") for p in parts]
        n = sum(v.nbytes for v in views)
        small = bytearray(_LEN.pack(n))
        pieces = []
        for v in views:                       # coalesce small parts with the length prefix
            if v.nbytes <= 4096 and len(small) + v.nbytes <= _CHUNK:
                small += v
                continue
            if small:
                pieces.append(small)
                small = bytearray()
            pieces.extend(v[i:i + _CHUNK] for i in range(0, v.nbytes, _CHUNK))
        if small:
            pieces.append(small)
        with self.send_lock:
            for piece in pieces:
                with self.ssl_lock:
                    self.obj.write(piece)
                    data = self.out.read()
                self._settimeout(deadline)
                self.sock.sendall(data)

    def _target(self) -> memoryview:
        """Where the next plaintext bytes go: length prefix, frame head, or frame body."""
        if self._stage == 0:
            return memoryview(self._hdr)
        if self._stage == 1:
            return memoryview(self._head)[:self._head_len]
        return memoryview(self._body)[self._off + self._head_len:self._off + self._size]

    def feed(self, data: bytes) -> list:
        """Decrypt ``data`` (raw bytes from the socket); return the complete frames.

        A frame is ``bytes`` (small frames) or a ``memoryview`` into a fresh
        buffer laid out so that array data starts 64-byte aligned; the caller
        owns it, so :func:`decode` may view it without copying.
        """
        frames = []
        with self.ssl_lock:
            if data:
                self.inc.write(data)
            while True:
                with self._target() as target:
                    try:
                        n = self.obj.read(len(target) - self._pos, target[self._pos:])
                    except ssl.SSLWantReadError:
                        break
                    except ssl.SSLZeroReturnError:
                        raise _Closed("peer closed the TLS stream") from None
                    if n == 0:
                        raise _Closed("peer closed the TLS stream")
                    self._pos += n
                    if self._pos < len(target):
                        continue
                self._pos = 0
                if self._stage == 0:                       # length prefix complete
                    (size,) = _LEN.unpack(self._hdr)
                    if not (1 <= size <= _MAX_FRAME):
                        raise TransportError(f"malformed frame length {size}")
                    self._size, self._head_len, self._stage = size, min(size, _HEAD), 1
                elif self._stage == 1 and self._size == self._head_len:   # small frame
                    frames.append(bytes(self._head[:self._size]))
                    self._stage = 0
                elif self._stage == 1:                     # head of a large frame: place the body
                    h = _array_header_len(self._head)
                    self._body = np.empty(self._size + _ALIGN, dtype=np.uint8)
                    self._off = (-(self._body.ctypes.data + h)) % _ALIGN
                    self._body[self._off:self._off + _HEAD] = np.frombuffer(self._head, np.uint8)
                    self._stage = 2
                else:                                      # large frame complete
                    frames.append(memoryview(self._body)[self._off:self._off + self._size])
                    self._body, self._stage = None, 0
            pending_out = self.out.pending
        # Post-handshake TLS messages may need an answer (e.g. a KeyUpdate).  Never
        # block on send_lock here (the owner may be stuck in sendall to this very
        # peer): if it is busy, its next write drains the BIO in order anyway.
        if pending_out and self.send_lock.acquire(blocking=False):
            try:
                self._flush_locked()
            finally:
                self.send_lock.release()
        return frames

    def read_frame(self, deadline: float):
        """Blocking read of one frame (set-up only, before the reader thread runs)."""
        self.pending.extend(self.feed(b""))    # records already in the BIO (e.g. after the handshake)
        while not self.pending:
            self._settimeout(deadline)
            data = self.sock.recv(_CHUNK)
            if not data:
                raise _Closed("connection closed")
            self.pending.extend(self.feed(data))
        return self.pending.pop(0)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes a reader blocked in recv
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _array_header_len(head) -> int:
    """Length of the array header at the start of a frame (0 if not an array frame / too long)."""
    if len(head) < 2 or head[0] != 1 or 2 + head[1] >= len(head):
        return 0
    h = 3 + head[1] + 8 * head[2 + head[1]]
    return h if h <= len(head) else 0


def _encode_parts(payload) -> list:
    """:func:`encode` as a list of buffers (header, data) without copying array data."""
    if isinstance(payload, np.ndarray) and payload.dtype != object:
        arr = payload if payload.flags.c_contiguous else payload.copy(order="C")   # keeps 0-d arrays 0-d
        return [array_header(arr), arr.reshape(-1).view(np.uint8)]
    return [encode(payload)]


def _setup_frame(obj: dict) -> bytes:
    return bytes([_SETUP]) + json.dumps(obj).encode()


def _parse_setup(frame) -> dict:
    if not frame or frame[0] != _SETUP:
        raise TransportError("peer sent data before the set-up finished")
    try:
        return json.loads(bytes(frame[1:]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TransportError("malformed set-up message") from None


def _ssl_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    return exc.reason or str(exc)


# --------------------------------------------------------------------------
def _contexts(config: FederationConfig, me: int, cert: str, key: str):
    ctxs = []
    for purpose in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
        ctx = ssl.SSLContext(purpose)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False          # identity is checked by participant id instead
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_cert_chain(cert, key)
        except FileNotFoundError as exc:
            raise HandshakeError(f"{config.name(me)}: certificate or key file not found: "
                                 f"{exc.filename}") from None
        except ssl.SSLError as exc:
            raise HandshakeError(f"{config.name(me)}: cannot load certificate {cert} with key {key}: "
                                 f"{_ssl_reason(exc)} (does the key belong to the certificate?)") from None
        try:
            ctx.load_verify_locations(config.ca)
        except (FileNotFoundError, ssl.SSLError) as exc:
            raise HandshakeError(f"{config.name(me)}: cannot load the federation CA {config.ca}: {exc}") from None
        if purpose == ssl.PROTOCOL_TLS_SERVER:
            ctx.num_tickets = 0             # no session resumption
        ctxs.append(ctx)
    return ctxs


def _bind_listener(config: FederationConfig, me: int) -> socket.socket:
    part = config.participant(me)
    try:
        sock = socket.create_server((part.host, part.port), backlog=64, reuse_port=False)
    except OSError as exc:
        raise HandshakeError(f"{config.name(me)}: cannot listen on {part.host}:{part.port}: {exc}") from None
    return sock


def connect_tls(config: FederationConfig | str, me: int, key: str, *, cert: str | None = None,
                listen_sock: socket.socket | None = None, timeout: float | None = None,
                connect_timeout: float | None = None) -> "TLSEndpoint":
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
    if not isinstance(config, FederationConfig):
        config = FederationConfig.load(config)
    n = config.n_parties
    if not isinstance(me, int) or not (0 <= me <= n):
        raise ValueError(f"me == {me!r}, must be a participant id in 0..{n} (dealer = {n})")
    timeout = config.timeout if timeout is None else float(timeout)
    connect_timeout = config.connect_timeout if connect_timeout is None else float(connect_timeout)
    if not timeout > 0:
        raise ValueError(f"timeout == {timeout}, must be > 0 seconds")
    if not connect_timeout > 0:
        raise ValueError(f"connect_timeout == {connect_timeout}, must be > 0 seconds")
    name = config.name
    cert = config.participant(me).cert if cert is None else cert
    server_ctx, client_ctx = _contexts(config, me, cert, key)
    deadline = time.monotonic() + connect_timeout

    channels: dict = {}
    inflight: list = []                   # every accepted channel, closed if set-up fails
    reserved: set = set()                 # ids being answered "ok" right now
    rejected: list = []
    lock = threading.Lock()
    higher = set(range(me + 1, n + 1))
    all_in = threading.Event()
    stop = threading.Event()
    if not higher:
        all_in.set()

    if higher and listen_sock is None and config.participant(me).port == 0:
        raise ValueError(f"{name(me)}'s port is 0 in the config, but {name(me)} must listen on a "
                         "known port: set it, or pass listen_sock (run_processes does that)")
    zero = [name(p) for p in range(me) if config.participant(p).port == 0]
    if zero:
        raise ValueError(f"port 0 in the config for {', '.join(zero)}: {name(me)} cannot connect there; "
                         "write the real ports into the config (run_processes does that)")
    listener = None
    if higher:
        listener = listen_sock if listen_sock is not None else _bind_listener(config, me)
    elif listen_sock is not None:
        listen_sock.close()

    def handle(conn: socket.socket, addr):
        where = f"{addr[0]}:{addr[1]}"
        ch = _Channel(conn, server_ctx, server_side=True)
        with lock:
            inflight.append(ch)
        try:
            ch.handshake(deadline)
            ident = ch.peer_identity()
            hello = _parse_setup(ch.read_frame(deadline))
            claimed = hello.get("id")
            if ident is None:
                reason = "its certificate names no ppboost participant"
            elif ident[0] != config.federation:
                reason = (f"its certificate belongs to federation {ident[0]!r}, "
                          f"not {config.federation!r}")
            elif claimed != ident[1]:
                reason = (f"its certificate identifies {name(ident[1])}, but it claims to be "
                          f"{name(claimed) if isinstance(claimed, int) else repr(claimed)}")
            elif ident[1] not in higher:
                reason = (f"{name(ident[1])} must not connect to {name(me)} "
                          "(the lower id listens, the higher id connects)")
            else:
                with lock:
                    dup = ident[1] in channels or ident[1] in reserved
                    if not dup:
                        reserved.add(ident[1])
                if dup:
                    reason = f"{name(ident[1])} is already connected (duplicate connection)"
                else:
                    try:
                        # answer before declaring the mesh complete: once connect_tls returns,
                        # this process may stop or exit, and the peer must not be left waiting
                        ch.send_frame(_setup_frame({"ok": True}), deadline=deadline)
                    finally:
                        with lock:
                            reserved.discard(ident[1])
                    with lock:
                        channels[ident[1]] = ch
                        if higher <= set(channels):
                            all_in.set()
                    return
            with lock:
                rejected.append(f"connection from {where} rejected: {reason}")
            try:
                ch.send_frame(_setup_frame({"ok": False, "reason": reason}), deadline=deadline)
            except OSError:
                pass
            ch.close()
        except ssl.SSLError as exc:
            with lock:
                rejected.append(f"connection from {where} failed the TLS handshake: {_ssl_reason(exc)}")
            ch.close()
        except (OSError, _Closed, TransportError) as exc:
            with lock:
                rejected.append(f"connection from {where} dropped during set-up: {exc}")
            ch.close()

    def accept_loop():
        while not stop.is_set() and not all_in.is_set():
            listener.settimeout(0.1)
            try:
                conn, addr = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=handle, args=(conn, addr), daemon=True,
                             name=f"ppboost-accept-{me}").start()

    acceptor = None
    if listener is not None:
        acceptor = threading.Thread(target=accept_loop, daemon=True, name=f"ppboost-listen-{me}")
        acceptor.start()

    def fail(msg):
        stop.set()
        if listener is not None:
            listener.close()
        with lock:
            for ch in list(channels.values()) + inflight:
                ch.close()
        raise HandshakeError(msg)

    me_name = name(me)
    for p in range(me):
        part = config.participant(p)
        where = f"{part.host}:{part.port}"
        last = None
        sock = None
        while sock is None:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"{me_name} could not connect to {name(p)} at {where} within "
                     f"{connect_timeout:.1f}s: {last} (is {name(p)} running and listening there?)")
            try:
                sock = socket.create_connection((part.host, part.port), timeout=min(left, 5.0))
            except OSError as exc:
                last = exc
                time.sleep(min(0.05, max(left, 0)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ch = _Channel(sock, client_ctx, server_side=False)
        try:
            ch.handshake(deadline)
        except ssl.SSLCertVerificationError as exc:
            ch.close()
            fail(f"{me_name}: the participant at {where} (expected {name(p)}) presented a "
                 f"certificate that does not verify against the federation CA: {exc.verify_message}")
        except ssl.SSLError as exc:
            ch.close()
            fail(f"{me_name}: TLS handshake with {name(p)} at {where} failed: {_ssl_reason(exc)}")
        except (OSError, _Closed) as exc:
            ch.close()
            fail(f"{me_name}: connection to {name(p)} at {where} failed during the TLS handshake: "
                 f"{exc or type(exc).__name__}")
        ident = ch.peer_identity()
        if ident != (config.federation, p):
            ch.close()
            who = (f"{name(ident[1])} of federation {ident[0]!r}" if ident else "no ppboost participant")
            fail(f"{me_name} expected {name(p)} at {where}, but its certificate identifies {who}: "
                 "refusing to talk to it")
        try:
            ch.send_frame(_setup_frame({"id": me, "federation": config.federation}), deadline=deadline)
            reply = _parse_setup(ch.read_frame(deadline))
        except ssl.SSLError as exc:
            ch.close()
            fail(f"{name(p)} rejected the certificate of {me_name} during the TLS handshake "
                 f"({_ssl_reason(exc)}): it is not signed by the federation CA or is otherwise invalid")
        except (OSError, _Closed, TransportError) as exc:
            ch.close()
            fail(f"{me_name}: {name(p)} at {where} dropped the connection during set-up "
                 f"({exc or type(exc).__name__}); it probably rejected {me_name}'s certificate")
        if not reply.get("ok"):
            ch.close()
            fail(f"{name(p)} rejected {me_name}: {reply.get('reason', 'no reason given')}")
        with lock:
            channels[p] = ch

    if not all_in.wait(max(0.0, deadline - time.monotonic())):
        with lock:
            missing = sorted(higher - set(channels))
            why = list(rejected)
        fail(f"{me_name}: {', '.join(name(q) for q in missing)} did not connect within "
             f"{connect_timeout:.1f}s" + (f"; rejected attempts: {'; '.join(why)}" if why else
                                          " (no connection attempt was seen)"))
    stop.set()
    if listener is not None:
        listener.close()
    return TLSEndpoint(config, me, channels, timeout)


# --------------------------------------------------------------------------
class TLSEndpoint(Endpoint):
    """:class:`Endpoint` over mutually authenticated TLS connections; build it with :func:`connect_tls`."""

    connect = staticmethod(connect_tls)

    def __init__(self, config: FederationConfig, me: int, channels: dict, timeout: float):
        self.config = config
        self.me = me
        self.n_parties = config.n_parties
        self.names = config.names()
        self.timeout = float(timeout)
        self.stats = Stats(me)
        self._ch = channels
        self._q = {p: queue.Queue() for p in channels}
        self._failed = threading.Event()
        self._failure: str | None = None
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
    def _fail(self, msg: str) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = msg
            self._failed.set()

    def _dispatch(self, p: int, frame) -> bool:
        """Route one frame; return False when the peer will send nothing more."""
        kind = frame[0]
        if kind == _BYE:
            with self._lock:
                self._bye.add(p)
            self._q[p].put(None)
            return False
        if kind == _ABORT:
            self._fail(f"{self.name(p)} failed: {bytes(frame[1:]).decode(errors='replace')}")
            return False
        if kind == _SETUP:
            self._fail(f"{self.name(p)} sent a set-up message after set-up (protocol error)")
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
                    data = ch.sock.recv(_CHUNK)
                except socket.timeout:
                    if self._closing:
                        return
                    continue
                if not data:
                    raise _Closed("connection closed")
                for frame in ch.feed(data):
                    if not self._dispatch(p, frame):
                        return
        except BaseException as exc:  # noqa: BLE001 - turned into PeerFailed for recv
            if self._closing:
                return
            what = exc if str(exc) else type(exc).__name__
            self._fail(f"{self.name(p)} disconnected without closing its endpoint ({what}): "
                       "it died or the connection broke")

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
            if self._closed:
                raise TransportError(f"{self.name(self.me)}: recv on a closed endpoint")
            if time.monotonic() >= deadline:
                raise TransportTimeout(
                    f"{self.name(self.me)} waited {self.timeout:.1f}s for a message from "
                    f"{self.name(frm)}, which sent nothing (stalled or dead)")

    # ---------------------------------------------------------------- outgoing
    def _send(self, to: int, payload, move: bool = False) -> int:   # serialised now: no copy
        if self._closed:
            raise TransportError(f"{self.name(self.me)}: send on a closed endpoint")
        parts = _encode_parts(payload)
        try:
            self._ch[to].send_frame(*parts)
        except socket.timeout:
            raise TransportTimeout(
                f"{self.name(self.me)} could not send to {self.name(to)} for {self.timeout:.1f}s: "
                f"{self.name(to)} is not reading (stalled)") from None
        except (OSError, ssl.SSLError) as exc:
            raise PeerFailed(f"{self.name(self.me)} could not send to {self.name(to)}: {exc} "
                             f"({self.name(to)} died or closed its endpoint)") from None
        return sum(memoryview(p).nbytes for p in parts)

    def peer_info(self, p: int) -> dict:
        """TLS version, cipher suite and certificate identity of the connection to ``p``."""
        self._check_peer(p)
        ch = self._ch[p]
        with ch.ssl_lock:
            return {"version": ch.obj.version(), "cipher": ch.obj.cipher()[0],
                    "identity": ch.peer_identity()}

    # ---------------------------------------------------------------- shutdown
    def _say(self, frame: bytes, wait: float) -> None:
        for p, ch in self._ch.items():
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
        self._say(bytes([_BYE]), wait=min(2.0, self.timeout))
        self._teardown(min(_LINGER, self.timeout))

    def abort(self, reason: str) -> None:
        """Tell every peer that this participant failed (their recvs raise PeerFailed), then close."""
        if self._closed:
            return
        self._closed = True
        self._say(bytes([_ABORT]) + reason.encode()[:4000], wait=min(0.5, self.timeout))
        self._teardown(min(0.2, self.timeout))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.close()
        else:
            self.abort(f"{type(exc).__name__}: {exc}")
        return False
