"""The transport interface: moves payloads between participants, counts them.

Participants are numbered ``0 .. n_parties-1`` (the data parties) and
``n_parties`` (the dealer).  Every transport gives each participant an
:class:`Endpoint`; protocol code only ever calls ``send`` / ``recv`` on it,
so the same code runs on in-process threads and on TLS sockets.

Payloads are ``bytes`` or numpy arrays.  Both are framed the same way by
:func:`encode` on every transport, so the byte counts (and therefore the
transcript shape) are identical whether a run is simulated or real.

Rounds are counted per endpoint: a round starts with the first ``send`` that
follows a ``recv`` (or the very first send), control messages aside.  The count depends only on the
order of calls, which protocols keep data-independent.
"""
from __future__ import annotations

import struct
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import TransportError  # the transport branch of ppboost.errors, re-exported

__all__ = [
    "Endpoint", "Stats", "TransportError", "TransportTimeout", "PeerFailed",
    "encode", "decode", "encoded_size", "array_header",
]


class TransportTimeout(TransportError):
    """A receive waited longer than the configured timeout."""


class PeerFailed(TransportError):
    """Another participant died, disconnected or raised."""


# --------------------------------------------------------------------------
# framing: 1 byte kind, then for arrays: dtype str (len-prefixed), ndim, shape
_BYTES, _ARRAY = 0, 1


def array_header(arr: np.ndarray) -> bytes:
    """The frame header of an array payload: kind, dtype, ndim and shape (before its bytes)."""
    dt = arr.dtype.str.encode()
    return (struct.pack("<BB", _ARRAY, len(dt)) + dt
            + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}Q", *arr.shape))


def encode(payload) -> bytes:
    """Serialise ``bytes`` or a numpy array into one frame body."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes([_BYTES]) + bytes(payload)
    if isinstance(payload, np.ndarray):
        if payload.dtype == object:
            raise TypeError("object arrays cannot be sent; use a numeric dtype")
        # not np.ascontiguousarray: it turns a 0-d array into shape (1,)
        arr = payload if payload.flags.c_contiguous else payload.copy(order="C")
        return array_header(arr) + arr.tobytes()
    raise TypeError(f"cannot send a {type(payload).__name__}; send bytes or a numpy array")


def encoded_size(payload) -> int:
    """Length of ``encode(payload)`` without building it."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return 1 + len(payload)
    if isinstance(payload, np.ndarray):
        if payload.dtype == object:
            raise TypeError("object arrays cannot be sent; use a numeric dtype")
        return len(array_header(payload)) + payload.nbytes
    raise TypeError(f"cannot send a {type(payload).__name__}; send bytes or a numpy array")


def decode(frame: bytes, copy: bool = True):
    """Inverse of :func:`encode`.

    ``copy=False`` returns an array that views ``frame`` (only for a writable
    buffer that nobody else holds, e.g. a freshly received ``bytearray``).
    """
    kind = frame[0]
    if kind == _BYTES:
        return frame[1:]
    if kind != _ARRAY:
        raise TransportError(f"malformed frame: unknown kind byte {kind}")
    dlen = frame[1]
    dt = np.dtype(bytes(frame[2:2 + dlen]).decode())
    pos = 2 + dlen
    ndim = frame[pos]
    pos += 1
    shape = struct.unpack_from(f"<{ndim}Q", frame, pos)
    pos += 8 * ndim
    arr = np.frombuffer(frame, dtype=dt, offset=pos,
                        count=int(np.prod(shape, dtype=np.int64))).reshape(shape)
    return arr.copy() if copy else arr


# --------------------------------------------------------------------------
@dataclass
class Stats:
    """What one endpoint sent and received.

    ``transcript`` lists ``(sender, receiver, nbytes)`` for every message this
    endpoint sent or received, in order; two runs on data of the same shape
    must produce equal transcripts.

    ``times`` holds, for every transcript entry, ``(start, end)`` on the
    monotonic clock: when the send or the receive was called and when it
    returned (a receive waits for its message).  It is not part of the
    transcript (it differs from run to run); the link model replays it
    (:func:`ppboost.transport.link.replayed_seconds`).

    ``by_step`` breaks the bytes sent and the rounds down by protocol step:
    ``{step: {"bytes": ..., "rounds": ...}}`` for whatever code ran inside
    :meth:`step` (a round counts for the step in which it starts).
    """
    me: int
    bytes_sent: dict = field(default_factory=dict)
    bytes_recv: dict = field(default_factory=dict)
    messages_sent: int = 0
    rounds: int = 0
    transcript: list = field(default_factory=list)
    times: list = field(default_factory=list)
    by_step: dict = field(default_factory=dict)
    _received_since_send: bool = True
    _step: str = "other"

    def on_send(self, to: int, n: int, control: bool = False) -> None:
        acc = self.by_step.setdefault(self._step, {"bytes": 0, "rounds": 0})
        if self._received_since_send and not control:
            self.rounds += 1
            acc["rounds"] += 1
            self._received_since_send = False
        self.bytes_sent[to] = self.bytes_sent.get(to, 0) + n
        acc["bytes"] += n
        self.messages_sent += 1
        self.transcript.append((self.me, to, n))

    @contextmanager
    def step(self, name: str):
        """Count what is sent inside the block under ``name`` (see ``by_step``)."""
        outer, self._step = self._step, name
        try:
            yield
        finally:
            self._step = outer

    def on_recv(self, frm: int, n: int) -> None:
        self._received_since_send = True
        self.bytes_recv[frm] = self.bytes_recv.get(frm, 0) + n
        self.transcript.append((frm, self.me, n))

    @property
    def total_sent(self) -> int:
        return sum(self.bytes_sent.values())

    @property
    def total_recv(self) -> int:
        return sum(self.bytes_recv.values())

    def snapshot(self) -> dict:
        return {"sent": self.total_sent, "recv": self.total_recv,
                "messages": self.messages_sent, "rounds": self.rounds}


class Endpoint(ABC):
    """One participant's view of the network.

    Attributes: ``me`` (this participant's id), ``n_parties`` (data parties),
    ``dealer_id`` (== n_parties), ``timeout`` (seconds a recv may wait),
    ``stats`` (:class:`Stats`).
    """

    me: int
    n_parties: int
    timeout: float
    stats: Stats
    #: every participant: the data parties, the dealer, and an analyst of its own if any
    n_participants: int | None = None

    @property
    def dealer_id(self) -> int:
        return self.n_parties

    @property
    def is_dealer(self) -> bool:
        return self.me == self.n_parties

    #: participants' names by id (e.g. from the federation file); None: "party <id>" / "dealer"
    names: list | None = None

    def name(self, pid: int) -> str:
        if self.names is not None and 0 <= pid < len(self.names):
            return self.names[pid]
        return "dealer" if pid == self.n_parties else f"party {pid}"

    def _check_peer(self, pid: int) -> None:
        last = (self.n_participants or self.n_parties + 1) - 1
        if not (0 <= pid <= last) or pid == self.me:
            raise ValueError(f"{self.name(self.me)}: invalid peer id {pid} "
                             f"(ids are 0..{last}, dealer={self.n_parties})")

    def send(self, to: int, payload, *, move: bool = False, control: bool = False) -> None:
        """Send ``payload`` (bytes or ndarray) to participant ``to``. Never blocks for long.

        ``move=True``: the caller hands the array over and never reads or
        changes it again, so a transport that passes objects in memory may
        skip its defensive copy (a socket transport serialises anyway).
        ``control=True``: a message nobody waits for (e.g. the dealer's flow
        control): counted in the bytes and the transcript, but it starts no round.
        """
        self._check_peer(to)
        t0 = time.monotonic()
        n = self._send(to, payload, move)
        self.stats.on_send(to, n, control)
        self.stats.times.append((t0, time.monotonic()))

    def recv(self, frm: int):
        """Receive the next payload from ``frm``.

        Raises :class:`TransportTimeout` naming ``frm`` after ``timeout``
        seconds, or :class:`PeerFailed` if ``frm`` (or anyone) failed.
        """
        self._check_peer(frm)
        t0 = time.monotonic()
        payload, n = self._recv(frm)
        self.stats.on_recv(frm, n)
        self.stats.times.append((t0, time.monotonic()))
        return payload

    def broadcast(self, payload, to=None) -> None:
        """Send the same payload to every data party except me (or to ``to``)."""
        for p in (range(self.n_parties) if to is None else to):
            if p != self.me:
                self.send(p, payload)

    @abstractmethod
    def _send(self, to: int, payload, move: bool) -> int:
        """Deliver; return the encoded size in bytes (``move``: see :meth:`send`)."""

    @abstractmethod
    def _recv(self, frm: int):
        """Return ``(payload, encoded_size)``."""

    def close(self) -> None:  # noqa: B027 - pragma: no cover; an optional hook, no-op by default
        """Release the connections (a no-op for transports that hold none)."""
