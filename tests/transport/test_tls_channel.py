"""One TLS connection's data path (ppboost.transport.tls_channel): the receive-buffer
pool and the framing over two Channels on a socket pair."""
from __future__ import annotations

import socket
import ssl
import threading
import time

import numpy as np
import pytest

from ppboost.transport import make_federation
from ppboost.transport.base import decode
from ppboost.transport.tls_channel import SEND_PIECE, BufferPool, Channel, encode_parts

MiB = 1 << 20


# ---------------------------------------------------------------------------- BufferPool
def _frame_array(buf, n=None):
    """What the TLS endpoint hands out: an array viewing a memoryview slice of ``buf``."""
    return decode(memoryview(buf)[:n if n is not None else buf.size], copy=False)


def test_pool_reuses_a_buffer_only_once_nothing_views_it():
    pool = BufferPool(min_bytes=1024)
    a = pool.get(4 * MiB)
    a[0] = 0                                      # kind byte: bytes payload
    held = _frame_array(a)                        # a received payload viewing the buffer
    del a
    b = pool.get(4 * MiB)
    assert b.ctypes.data != np.frombuffer(held, np.uint8).ctypes.data   # busy: not handed out again
    del held
    c = pool.get(4 * MiB)
    assert pool.reused == 1
    del b, c


@pytest.mark.parametrize("derive", [
    lambda x: x[::2],                                          # a view
    lambda x: x.reshape(-1, 1),
    memoryview,                                                # a buffer export
    lambda x: [x],                                             # held in a container
])
def test_pool_sees_every_kind_of_reference(derive):
    pool = BufferPool(min_bytes=1024)
    buf = pool.get(2 * MiB)
    buf[:] = 7
    arr = np.frombuffer(memoryview(buf)[8:], dtype=np.uint64)
    keep = derive(arr)
    addr = buf.ctypes.data
    del buf, arr
    other = pool.get(2 * MiB)                     # must be a different buffer
    assert other.ctypes.data != addr
    other[:] = 0
    got = np.asarray(keep[0] if isinstance(keep, list) else keep)
    assert (got == np.uint64(0x0707070707070707)).all()   # the kept data was not overwritten


def test_pool_fits_sizes_and_bounds_idle_memory():
    pool = BufferPool(min_bytes=1024, idle_bytes=8 * MiB, max_buffers=4, max_bytes=64 * MiB)
    big = pool.get(8 * MiB)
    del big
    small = pool.get(1 * MiB)                     # an 8 MiB buffer is too large for 1 MiB
    assert small.size == 1 * MiB and pool.allocated == 2
    del small
    bufs = [pool.get(3 * MiB) for _ in range(4)]
    del bufs                                      # 4 x 3 MiB idle now, more than 8 MiB
    pool.get(3 * MiB)
    assert len(pool._bufs) <= 4
    idle = pool.pooled_bytes - 3 * MiB            # all but the one just handed out (kept by nobody)
    assert idle <= 8 * MiB
    assert pool.get(100).size == 100             # below min_bytes: not pooled
    pool.clear()
    assert pool.pooled_bytes == 0


# ---------------------------------------------------------------------------- two channels
@pytest.fixture
def channels(tmp_path):
    """A connected (client, server) pair of Channels over a socket pair, real TLS 1.3."""
    cfg, keys = make_federation(tmp_path, 2)
    ctxs = []
    for me, purpose in ((0, ssl.PROTOCOL_TLS_SERVER), (1, ssl.PROTOCOL_TLS_CLIENT)):
        ctx = ssl.SSLContext(purpose)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(cfg.participant(me).cert, keys[me])
        ctx.load_verify_locations(cfg.ca)
        ctxs.append(ctx)
    a, b = socket.socketpair()
    server, client = Channel(a, ctxs[0], server_side=True), Channel(b, ctxs[1], server_side=False)
    t = threading.Thread(target=server.handshake, args=(time.monotonic() + 10,), daemon=True)
    t.start()
    client.handshake(time.monotonic() + 10)
    t.join(10)
    for s in (a, b):
        s.settimeout(10)
    yield client, server
    client.close()
    server.close()


def _receive(ch, n):
    frames = []
    while len(frames) < n:
        frames.extend(ch.receive())
    return frames


def test_frames_arrive_whole_in_order_and_in_place(channels):
    client, server = channels
    rng = np.random.default_rng(0)
    payloads = [rng.integers(0, 2**63, size=k, dtype=np.uint64)
                for k in (1, 100, SEND_PIECE // 8 - 3, SEND_PIECE // 8 + 5, 3 * SEND_PIECE // 8 + 1)]
    payloads.insert(2, np.zeros(0, dtype=np.int32))
    payloads.append(b"tail")
    out = []

    def send():
        for p in payloads:
            client.send_frame(*encode_parts(p))

    t = threading.Thread(target=send, daemon=True)
    t.start()
    frames = _receive(server, len(payloads))
    t.join(10)
    for p, f in zip(payloads, frames):
        got = decode(f, copy=not isinstance(f, memoryview))
        out.append(got)
        if isinstance(p, bytes):
            assert bytes(got) == p
        else:
            assert got.dtype == p.dtype and np.array_equal(got, p)
            if p.nbytes > 512:
                assert got.ctypes.data % 64 == 0


def test_parts_and_one_buffer_make_the_same_frame(channels):
    """The body is the concatenation of the parts however they are cut (what goes on the
    wire is a byte stream: older and newer senders interoperate)."""
    client, server = channels
    body = np.random.default_rng(1).integers(0, 256, size=2 * SEND_PIECE + 77, dtype=np.uint8)
    cuts = [body[:3], body[3:100], body[100:SEND_PIECE + 9], body[SEND_PIECE + 9:]]
    t = threading.Thread(target=lambda: (client.send_frame(body), client.send_frame(*cuts)),
                         daemon=True)
    t.start()
    one, many = _receive(server, 2)
    t.join(10)
    assert bytes(one) == bytes(many) == body.tobytes()


def test_kept_frames_survive_later_frames_and_dropped_buffers_are_reused(channels):
    client, server = channels
    n, size = 12, 2 * MiB

    def send():
        for k in range(n):
            client.send_frame(*encode_parts(np.full(size // 8, k, dtype=np.uint64)))

    t = threading.Thread(target=send, daemon=True)
    t.start()
    kept = []
    got = 0
    while got < n:
        for f in server.receive():
            arr = decode(f, copy=False)
            del f
            if got % 3 == 0:
                kept.append((got, arr))             # still in use while later frames arrive
            got += 1
            del arr
    t.join(10)
    for k, arr in kept:
        assert (arr == k).all()
    assert server.pool.reused > 0
