"""Framing and counting (ppboost.transport.base)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppboost.transport.base import Stats, TransportError, decode, encode, encoded_size


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.uint64, np.int32, np.float64, np.bool_, np.uint8, np.float32]),
                  shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
def test_array_roundtrip(arr):
    frame = encode(arr)
    assert len(frame) == encoded_size(arr)
    out = decode(frame)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable and out.flags.c_contiguous


@given(st.binary(max_size=200))
def test_bytes_roundtrip(b):
    frame = encode(b)
    assert len(frame) == encoded_size(b) == len(b) + 1
    assert decode(frame) == b


def test_noncontiguous_and_zero_dim():
    a = np.arange(20, dtype=np.int64).reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(decode(encode(a)), a)
    z = np.array(7, dtype=np.uint64)
    assert decode(encode(z)).shape == ()
    assert encoded_size(z) == len(encode(z))


def test_decode_without_copy_views_the_buffer():
    buf = bytearray(encode(np.arange(4, dtype=np.uint32)))
    out = decode(buf, copy=False)
    out[0] = 9
    assert decode(bytes(buf))[0] == 9


def test_bad_payloads():
    with pytest.raises(TypeError, match="cannot send a list; send bytes or a numpy array"):
        encode([1, 2])
    with pytest.raises(TypeError, match="object arrays cannot be sent"):
        encode(np.array([None]))
    with pytest.raises(TransportError, match="unknown kind byte 7"):
        decode(b"\x07abc")


def test_rounds_count_send_after_recv():
    s = Stats(0)
    s.on_send(1, 10)
    s.on_send(2, 10)       # same round
    s.on_recv(1, 5)
    s.on_send(1, 3)        # new round
    assert s.rounds == 2 and s.total_sent == 23 and s.total_recv == 5
    assert s.transcript == [(0, 1, 10), (0, 2, 10), (1, 0, 5), (0, 1, 3)]
