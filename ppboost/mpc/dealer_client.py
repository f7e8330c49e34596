"""The party side of the dealer (:mod:`ppboost.mpc.dealer`): a party's
:class:`DealerClient` (``party.dealer``).

It receives this party's seed, sends party 0's requests (one at a time,
ahead of use with :meth:`DealerClient.prefetch_many`, or a checkpoint
:meth:`DealerClient.mark`), expands this party's share of every correlation
from its seed's stream in the dealer's order, and acknowledges what it has
read (the dealer's bounded run-ahead).  The kinds it may request are the
dealer's :class:`~ppboost.mpc.dealer.Registry`.
"""
from __future__ import annotations

import collections
import json
import time

import numpy as np

from ..crypto.prg import PRG, SEED_BYTES
from ..transport.base import TransportError
from . import ring
from .dealer import ACK, BATCH, MARK, STOP, WINDOW_BYTES, DealerError, Registry, check_window, encode_request

__all__ = ["DealerClient"]

_PENDING = object()      # requested ahead, not expanded yet (DealerClient.prefetch_many)


class DealerClient:
    """A party's handle on the dealer (``party.dealer``).

    ``DealerClient(endpoint, kinds)``: ``kinds`` is the :class:`Registry` of
    the kinds it may request (the dealer's).  Construction receives this
    party's seed from the dealer (one message).  ``get(kind, **params)``
    returns this party's material of a correlation.  ``expand_seconds``
    accumulates the party-side (offline) expansion time.
    """

    def __init__(self, endpoint, kinds: Registry, window_bytes: int = WINDOW_BYTES):
        if not isinstance(kinds, Registry):
            raise TypeError(f"DealerClient needs a Registry of correlation kinds, got "
                            f"{type(kinds).__name__}")
        self.ep = endpoint
        self.kinds = kinds
        self.me = endpoint.me
        self.n_parties = endpoint.n_parties
        seed = endpoint.recv(endpoint.dealer_id)
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
            raise DealerError(f"party {self.me}: expected a {SEED_BYTES}-byte seed from the dealer")
        self.prg = PRG(bytes(seed))
        #: mirror of :attr:`DealerSession.state` (same kinds, same order)
        self.state: dict = {}
        self.expand_seconds = 0.0
        self.requests = 0
        self._ahead = collections.deque()
        self._closed = False
        self._log = None
        self._window = check_window(window_bytes)
        self._read = self._acked = 0              # material bytes read / acknowledged

    # ---------------------------------------------------------------- requests
    def get(self, kind: str, **params):
        """This party's material for correlation ``kind`` with public ``params``.

        Every party must call it with the same arguments in the same order.
        Returns prefetched material if :meth:`prefetch` queued exactly this
        request, otherwise asks the dealer now.
        """
        key = self._key(kind, params)
        if self._log is not None:
            self._log.append((kind, params))
        if self._ahead:
            head_key, material = self._ahead.popleft()
            if head_key != key:
                raise DealerError(f"party {self.me}: prefetched {head_key.decode()} but the "
                                  f"protocol asked for {key.decode()} (prefetch order must "
                                  f"match use order)")
            if material is _PENDING:
                material = self._expand(kind, key)
            return material
        return self._fetch(kind, key, params)

    def prefetch(self, kind: str, **params) -> None:
        """Fetch and expand material now (offline); a later ``get`` with the same
        arguments returns it.  Prefetched requests are consumed in FIFO order."""
        key = self._key(kind, params)
        self._expand_pending()
        self._ahead.append((key, self._fetch(kind, key, params)))

    def record(self) -> None:
        """Start recording the ``(kind, params)`` of every :meth:`get`, in order."""
        self._log = []

    def recorded(self) -> list:
        """Stop recording; the requests seen since :meth:`record`.  A protocol
        whose requests depend only on public shapes asks for the same list
        every time it runs, so the list can be requested ahead
        (``prefetch_many(recorded, expand=False)``) the next time."""
        log, self._log = self._log or [], None
        return log

    def _expand_pending(self) -> None:
        """Expand requested-ahead material now (the dealer's messages arrive in
        request order, so nothing later may be expanded before it)."""
        for i, (key, material) in enumerate(self._ahead):
            if material is _PENDING:
                self._ahead[i] = (key, self._expand(json.loads(key.decode())[0], key))

    def prefetch_many(self, requests, expand: bool = True) -> None:
        """:meth:`prefetch` several correlations with one request message.

        ``requests`` is a list of ``(kind, params_dict)``; the material is
        queued in that order.  This is the offline phase in one go: the
        dealer generates everything while the parties expand their shares.
        ``expand=False`` only sends the request: the dealer generates the
        material in the background while the parties go on, and each party
        expands its share when a ``get`` asks for it (a request ahead).
        """
        requests = [(kind, dict(params)) for kind, params in requests]
        keys = [self._key(kind, params) for kind, params in requests]
        if self._closed:
            raise DealerError(f"party {self.me}: the dealer connection is closed")
        if self.me == 0:
            batch = [json.loads(k.decode()) for k in keys]
            self.ep.send(self.ep.dealer_id, json.dumps([BATCH, batch],
                                                       separators=(",", ":")).encode())
        if expand:
            self._expand_pending()
        for (kind, _), key in zip(requests, keys):
            self._ahead.append((key, self._expand(kind, key) if expand else _PENDING))

    def mark(self, tag: str) -> None:
        """Put a named point into the request stream (party 0 sends it; every party calls it).

        The dealer reaches it after every earlier request and before any
        later one, and calls its ``on_mark`` there: the place where a
        checkpoint records (or a resumed run restores) where the dealer's
        streams stand.  Nothing may be requested ahead across a mark.
        Cost: one small message from party 0 to the dealer.
        """
        if self._ahead:
            raise DealerError(f"party {self.me}: mark({tag!r}) with {len(self._ahead)} "
                              "correlation(s) requested ahead and not used")
        if self.me == 0:
            self.ep.send(self.ep.dealer_id, encode_request(MARK, {"tag": str(tag)}))

    def positions(self) -> dict:
        """Where this party's dealer stream stands (mirror of :meth:`DealerSession.positions`)."""
        return {"prg": int(self.prg.pos), "requests": int(self.requests)}

    def restore(self, positions: dict) -> None:
        self.prg.pos = int(positions["prg"])
        self.requests = int(positions["requests"])

    def close(self) -> None:
        """Tell the dealer to stop (party 0 sends it; a no-op elsewhere)."""
        if not self._closed:
            self._closed = True
            if self.me == 0:
                self.ep.send(self.ep.dealer_id, encode_request(STOP, {}))

    def _key(self, kind, params):
        self.kinds[kind]                    # an unknown kind raises DealerError here
        return encode_request(kind, params)

    def _fetch(self, kind, key, params):
        if self._closed:
            raise DealerError(f"party {self.me}: the dealer connection is closed")
        if self.me == 0:
            self.ep.send(self.ep.dealer_id, key)
        return self._expand(kind, key)

    def _expand(self, kind, key):
        t0 = time.perf_counter()
        with np.errstate(over="ignore"):
            material = self.kinds[kind].expand(self, **json.loads(key.decode())[1])
        self.expand_seconds += time.perf_counter() - t0
        self.requests += 1
        return material

    # ---------------------------------------------------------------- mirrored helpers
    def random(self, shape) -> np.ndarray:
        """My share of a random value (mirror of :meth:`DealerSession.random`)."""
        return self.prg.uint64(ring.as_shape(shape))

    def share(self, shape, to: int | None = None) -> np.ndarray:
        """My share of a dealer-chosen value (mirror of :meth:`DealerSession.share`)."""
        shape = ring.as_shape(shape)
        to = self.n_parties - 1 if to is None else to
        if self.me != to:
            return self.prg.uint64(shape)
        return self.recv(shape, np.uint64)

    def share_bits(self, shape, to: int | None = None) -> np.ndarray:
        """My XOR share (uint8 0/1) of dealer-chosen bits (mirror of ``share_bits``)."""
        shape = ring.as_shape(shape)
        to = self.n_parties - 1 if to is None else to
        if self.me != to:
            return self.prg.bits(shape)
        count = int(np.prod(shape, dtype=np.int64))
        packed = self.recv(((count + 7) // 8,), np.uint8)
        return np.unpackbits(packed, bitorder="little", count=count).reshape(shape)

    def recv(self, shape=None, dtype=None) -> np.ndarray:
        """An explicit message from the dealer, checked against (and reshaped to) the
        expected shape."""
        arr = self.ep.recv(self.ep.dealer_id)
        if not isinstance(arr, np.ndarray):
            raise DealerError(f"party {self.me}: expected an array from the dealer")
        self._read += arr.nbytes
        if self._read - self._acked >= self._window // 4 and not self._closed:
            self._acked = self._read
            try:
                self.ep.send(self.ep.dealer_id, encode_request(ACK, {"bytes": self._read}),
                             control=True)
            except TransportError:    # the dealer has finished (or failed: the next
                pass                  # receive from it says so); nothing waits for this
        if shape is not None:
            shape = ring.as_shape(shape)
            if arr.size != int(np.prod(shape, dtype=np.int64)):
                raise DealerError(f"party {self.me}: the dealer sent {arr.size} elements but "
                                  f"this party expected shape {shape}: the parties disagree "
                                  f"on a shape (party 0's request decides)")
            arr = arr.reshape(shape)
        if dtype is not None and arr.dtype != np.dtype(dtype):
            raise DealerError(f"party {self.me}: dealer sent dtype {arr.dtype}, expected "
                              f"{np.dtype(dtype)}")
        return arr
