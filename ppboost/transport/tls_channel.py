"""One TLS connection to one peer and the frames on it (:mod:`ppboost.transport.tls`).

:class:`Channel` runs TLS 1.3 over a plain TCP socket through
``ssl.MemoryBIO``: every message is an 8-byte little-endian length followed
by a frame body.  Data frames are exactly :func:`ppboost.transport.base.encode`
(kind byte 0 or 1); control frames are ``SETUP`` (``0xFD``, JSON set-up
messages), ``BYE`` (``0xFE``) and ``ABORT`` (``0xFF``, with a reason).
Large incoming frames are placed so that their array data starts 64-byte
aligned, and :func:`encode_parts` sends arrays without copying them.
"""
from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time

import numpy as np

from .base import TransportError, array_header, encode
from .identity import identity_from_peercert

__all__ = ["Cancelled", "Channel", "ChannelClosed", "encode_parts", "setup_frame", "parse_setup",
           "ssl_reason", "CHUNK", "SETUP", "BYE", "ABORT"]

_LEN = struct.Struct("<Q")
#: control frame kinds (data frames are kind 0 or 1, :func:`ppboost.transport.base.encode`)
SETUP, BYE, ABORT = 0xFD, 0xFE, 0xFF
_MAX_FRAME = 1 << 36            # 64 GiB: refuse absurd lengths instead of allocating them
#: raw socket reads and TLS writes, 256 KiB
CHUNK = 1 << 18
_HEAD = 512                     # frames up to this size arrive as bytes; larger ones are placed
_ALIGN = 64                     # ... so that their array data starts 64-byte aligned


_POLL = 0.2                     # seconds between a blocked send's looks at cancel()


class Cancelled(Exception):
    """A frame's sending stopped part-way (:meth:`Channel.send_frame`'s ``cancel``)."""


class ChannelClosed(Exception):
    """The TLS stream ended (EOF or close_notify)."""


class Channel:
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
                raise TimeoutError("deadline passed")
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
                data = self.sock.recv(CHUNK)
                if not data:
                    raise ChannelClosed("connection closed during the TLS handshake") from None
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
    def send_frame(self, *parts, deadline=None, cancel=None, stall=None) -> None:
        """Length-prefix and send one frame whose body is the concatenation of ``parts``.

        Parts are bytes-like; they are encrypted in place (no concatenation copy)
        in records of at most ``CHUNK`` bytes.  With ``cancel`` (a callable) and
        ``stall`` (seconds), the socket is written in polls of ``_POLL`` seconds:
        ``cancel()`` saying True raises :class:`Cancelled` (the connection is then
        unusable, which only happens when the run has failed), and no progress for
        ``stall`` seconds raises ``TimeoutError``.
        """
        views = [memoryview(p).cast("B") for p in parts]
        n = sum(v.nbytes for v in views)
        small = bytearray(_LEN.pack(n))
        pieces = []
        for v in views:                       # coalesce small parts with the length prefix
            if v.nbytes <= 4096 and len(small) + v.nbytes <= CHUNK:
                small += v
                continue
            if small:
                pieces.append(small)
                small = bytearray()
            pieces.extend(v[i:i + CHUNK] for i in range(0, v.nbytes, CHUNK))
        if small:
            pieces.append(small)
        with self.send_lock:
            for piece in pieces:
                with self.ssl_lock:
                    self.obj.write(piece)
                    data = self.out.read()
                if cancel is None:
                    self._settimeout(deadline)
                    self.sock.sendall(data)
                else:
                    self._send_polled(data, cancel, stall)

    def _send_polled(self, data, cancel, stall: float) -> None:
        view, last = memoryview(data), time.monotonic()
        while view.nbytes:
            self.sock.settimeout(_POLL)
            try:
                n = self.sock.send(view)
            except TimeoutError:
                n = 0
            if n:
                view, last = view[n:], time.monotonic()
            elif cancel():
                raise Cancelled("the send was cancelled")
            elif time.monotonic() - last >= stall:
                raise TimeoutError(f"no progress for {stall:.1f}s")

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
                        raise ChannelClosed("peer closed the TLS stream") from None
                    if n == 0:
                        raise ChannelClosed("peer closed the TLS stream")
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
            data = self.sock.recv(CHUNK)
            if not data:
                raise ChannelClosed("connection closed")
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


def encode_parts(payload) -> list:
    """:func:`encode` as a list of buffers (header, data) without copying array data."""
    if isinstance(payload, np.ndarray) and payload.dtype != object:
        arr = payload if payload.flags.c_contiguous else payload.copy(order="C")   # keeps 0-d arrays 0-d
        return [array_header(arr), arr.reshape(-1).view(np.uint8)]
    return [encode(payload)]


def setup_frame(obj: dict) -> bytes:
    return bytes([SETUP]) + json.dumps(obj).encode()


def parse_setup(frame) -> dict:
    if not frame or frame[0] != SETUP:
        raise TransportError("peer sent data before the set-up finished")
    try:
        return json.loads(bytes(frame[1:]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TransportError("malformed set-up message") from None


def ssl_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    return exc.reason or str(exc)
