"""One TLS connection to one peer and the frames on it (:mod:`ppboost.transport.tls`).

:class:`Channel` runs TLS 1.3 over a plain TCP socket through
``ssl.MemoryBIO``: every message is an 8-byte little-endian length followed
by a frame body.  Data frames are exactly :func:`ppboost.transport.base.encode`
(kind byte 0 or 1); control frames are ``SETUP`` (``0xFD``, JSON set-up
messages), ``BYE`` (``0xFE``) and ``ABORT`` (``0xFF``, with a reason).
Large incoming frames are placed so that their array data starts 64-byte
aligned, and :func:`encode_parts` sends arrays without copying them.

The data path, per direction: a frame is encrypted in pieces of ``SEND_PIECE``
bytes (TLS records of 16 KiB) and each piece's records are written to the
socket at once; the reader receives into one reusable buffer
(``recv_into``) and decrypts a frame's body straight into its final place.
That place comes from :class:`BufferPool`: a body buffer is reused once no
received array views it any more, so the gigabytes a party receives per tree
do not each cost fresh pages from the kernel (page faults and zeroing were
the largest share of a receiver's system time).
"""
from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import threading
import time

import numpy as np

from .base import TransportError, array_header, encode
from .identity import identity_from_peercert

__all__ = ["BufferPool", "Cancelled", "Channel", "ChannelClosed", "encode_parts", "setup_frame",
           "parse_setup", "ssl_reason", "CHUNK", "SEND_PIECE", "SETUP", "BYE", "ABORT"]

_LEN = struct.Struct("<Q")
#: control frame kinds (data frames are kind 0 or 1, :func:`ppboost.transport.base.encode`)
SETUP, BYE, ABORT = 0xFD, 0xFE, 0xFF
_MAX_FRAME = 1 << 36            # 64 GiB: refuse absurd lengths instead of allocating them
#: raw socket reads during set-up, 256 KiB
CHUNK = 1 << 18
#: plaintext encrypted per step and written to the socket at once, 64 KiB (4 TLS records):
#: its ciphertext is a fresh bytes object (``MemoryBIO.read``), and at 64 KiB the allocator
#: reuses that memory; 256 KiB and 1 MiB pieces made the sender grow and shrink its heap
#: (brk, page faults) on every piece in the stream benchmark
SEND_PIECE = 1 << 16
_RECV = 1 << 20                 # the reader's reusable receive buffer, 1 MiB
_HEAD = 512                     # frames up to this size arrive as bytes; larger ones are placed
_ALIGN = 64                     # ... so that their array data starts 64-byte aligned


_POLL = 0.2                     # seconds between a blocked send's looks at cancel()


class Cancelled(Exception):
    """A frame's sending stopped part-way (:meth:`Channel.send_frame`'s ``cancel``)."""


class ChannelClosed(Exception):
    """The TLS stream ended (EOF or close_notify)."""


def _refs_when_idle() -> int:
    """``sys.getrefcount`` of a buffer that only a pool list holds, read as
    :class:`BufferPool` reads it (``buf = bufs[i]``; the list, ``buf``, the argument)."""
    bufs = [np.empty(1, dtype=np.uint8)]
    i = 0
    buf = bufs[i]
    return sys.getrefcount(buf)


_IDLE_REFS = _refs_when_idle()


class BufferPool:
    """Receive buffers for large frames, reused once nobody views them any more.

    :meth:`get` returns a uint8 array of at least ``nbytes``: a pooled one that
    no received array views any more (its only reference is the pool's, by
    ``sys.getrefcount``) and that is at most twice the size asked for, else a
    new one.  A frame handed out views its buffer (``decode(copy=False)``), so
    a buffer is busy while any array made from the frame lives, and is never
    handed out twice at once.  Only buffers of ``min_bytes`` or more are
    pooled (smaller ones come from the allocator's own free lists).  The pool
    tracks at most ``max_buffers`` buffers of at most ``max_bytes`` in all
    (the least recently used are dropped first) and keeps at most
    ``idle_bytes`` of idle ones, so it holds on to at most about that much
    memory that nobody uses.
    """

    def __init__(self, min_bytes: int = 1 << 18, max_buffers: int = 32,
                 max_bytes: int = 1 << 30, idle_bytes: int = 1 << 27):
        self.min_bytes, self.max_buffers = min_bytes, max_buffers
        self.max_bytes, self.idle_bytes = max_bytes, idle_bytes
        self._bufs: list = []             # least recently used first
        self.reused = self.allocated = 0

    def get(self, nbytes: int) -> np.ndarray:
        if nbytes < self.min_bytes:
            return np.empty(nbytes, dtype=np.uint8)
        bufs, best = self._bufs, -1
        for i in range(len(bufs)):
            buf = bufs[i]
            if (nbytes <= buf.size <= 2 * nbytes and (best < 0 or buf.size < bufs[best].size)
                    and sys.getrefcount(buf) <= _IDLE_REFS):
                best = i
        if best >= 0:
            buf = bufs.pop(best)
            self.reused += 1
        else:
            buf = np.empty(nbytes, dtype=np.uint8)
            self.allocated += 1
        self._trim(buf.size)
        bufs.append(buf)
        return buf

    def _trim(self, adding: int) -> None:
        """Make room for one more buffer of ``adding`` bytes: drop the least recently
        used beyond ``max_buffers`` / ``max_bytes`` (a busy one stays with whoever
        views it), then idle ones beyond ``idle_bytes`` (the most recent are kept)."""
        bufs = self._bufs
        total = sum(b.size for b in bufs) + adding
        while bufs and (len(bufs) >= self.max_buffers or total > self.max_bytes):
            total -= bufs.pop(0).size
        idle = 0
        for i in range(len(bufs) - 1, -1, -1):
            buf = bufs[i]
            if sys.getrefcount(buf) <= _IDLE_REFS:
                idle += buf.size
                if idle > self.idle_bytes:
                    idle -= buf.size
                    del bufs[i]

    @property
    def pooled_bytes(self) -> int:
        return sum(b.size for b in self._bufs)

    def clear(self) -> None:
        self._bufs.clear()


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
        self._body = self._view = None    # stage 2: the body's buffer and a view of it
        self._end = 0
        self.pool = BufferPool()          # where large bodies are placed
        self._rbuf = bytearray(_RECV)     # receive(): raw bytes from the socket
        self._rview = memoryview(self._rbuf)
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

        Parts are bytes-like; they are encrypted in place (no concatenation copy),
        ``SEND_PIECE`` bytes at a time (TLS records of 16 KiB), and each piece's
        records go to the socket together (small parts and the length prefix
        share one piece).  With ``cancel`` (a callable) and ``stall`` (seconds),
        ``cancel()`` is asked before every piece and the socket is written in
        polls of ``_POLL`` seconds: ``cancel()`` saying True raises
        :class:`Cancelled` (the connection is then unusable, which only happens
        when the run has failed), and no progress for ``stall`` seconds raises
        ``TimeoutError``.
        """
        views = [memoryview(p).cast("B") for p in parts]
        small = bytearray(_LEN.pack(sum(v.nbytes for v in views)))
        pieces = []
        for v in views:                       # coalesce small parts with the length prefix
            if v.nbytes <= 4096 and len(small) + v.nbytes <= SEND_PIECE:
                small += v
                continue
            if small:
                pieces.append(small)
                small = bytearray()
            pieces.extend(v[i:i + SEND_PIECE] for i in range(0, v.nbytes, SEND_PIECE))
        if small:
            pieces.append(small)
        last = len(pieces) - 1
        with self.send_lock:
            queued = 0
            for k, piece in enumerate(pieces):
                if cancel is not None and cancel():
                    raise Cancelled("the send was cancelled")
                with self.ssl_lock:
                    self.obj.write(piece)
                    queued += len(piece)
                    if queued < SEND_PIECE and k < last:
                        continue                   # small pieces travel with the next one
                    data = self.out.read()
                queued = 0
                if cancel is None:
                    self._settimeout(deadline)
                    self.sock.sendall(data)
                else:
                    self._send_polled(data, cancel, stall)

    def _send_polled(self, data, cancel, stall: float) -> None:
        view, last = memoryview(data), time.monotonic()
        if self.sock.gettimeout() != _POLL:
            self.sock.settimeout(_POLL)
        while view.nbytes:
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

    def receive(self) -> list:
        """Wait for bytes from the peer and return the frames they complete (maybe none).

        Reads into the channel's reusable buffer (``recv_into``); the socket's
        timeout bounds the wait (``TimeoutError``); the end of the stream raises
        :class:`ChannelClosed`.  For the one reader thread of the channel.
        """
        n = self.sock.recv_into(self._rbuf)
        if not n:
            raise ChannelClosed("connection closed")
        return self.feed(self._rview[:n])

    def feed(self, data) -> list:
        """Decrypt ``data`` (raw bytes from the socket); return the complete frames.

        A frame is ``bytes`` (small frames) or a ``memoryview`` into a buffer
        from :attr:`pool`, laid out so that array data starts 64-byte aligned;
        nobody else uses that buffer while the frame or any view of it lives,
        so :func:`decode` may view it without copying.
        """
        frames = []
        with self.ssl_lock:
            if data:
                self.inc.write(data)
            read = self.obj.read
            while True:
                try:
                    if self._stage == 2:                   # a large body: straight into place
                        view, pos, end = self._view, self._pos, self._end
                        try:
                            while pos < end:
                                n = read(end - pos, view[pos:end])
                                if n == 0:
                                    raise ChannelClosed("peer closed the TLS stream")
                                pos += n
                        finally:
                            self._pos = pos
                        frames.append(memoryview(self._body)[self._off:self._off + self._size])
                        self._body = self._view = None
                        self._stage, self._pos = 0, 0
                        continue
                    target = memoryview(self._hdr) if self._stage == 0 else \
                        memoryview(self._head)[:self._head_len]
                    n = read(len(target) - self._pos, target[self._pos:])
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
                elif self._size == self._head_len:         # small frame complete
                    frames.append(bytes(self._head[:self._size]))
                    self._stage = 0
                else:                                      # head of a large frame: place the body
                    h = _array_header_len(self._head)
                    self._body = self.pool.get(self._size + _ALIGN)
                    self._off = (-(self._body.ctypes.data + h)) % _ALIGN
                    self._body[self._off:self._off + _HEAD] = np.frombuffer(self._head, np.uint8)
                    self._view = memoryview(self._body)
                    self._pos, self._end = self._off + _HEAD, self._off + self._size
                    self._stage = 2
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
        self.pool.clear()
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
