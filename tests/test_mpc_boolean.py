"""Bit-sliced XOR shares: packing kernels (plaintext) and the secure AND / carry circuits."""
import numpy as np
import pytest

from ppboost.mpc.boolean import (
    n_words, pack_bits, unpack_bits, pack_bitvector, unpack_bitvector,
)


def _naive_pack(v, nbits):
    out = np.zeros((nbits, n_words(v.size)), dtype=np.uint64)
    for j in range(nbits):
        for i, x in enumerate(v.tolist()):
            if (x >> j) & 1:
                out[j, i // 64] |= np.uint64(1 << (i % 64))
    return out


@pytest.mark.nojit
@pytest.mark.parametrize("n,nbits", [(1, 64), (63, 7), (64, 64), (130, 13), (200, 1)])
def test_pack_matches_definition(n, nbits):
    rng = np.random.default_rng(n * 100 + nbits)
    v = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    planes = pack_bits(v, nbits)
    assert planes.shape == (nbits, n_words(n))
    np.testing.assert_array_equal(planes, _naive_pack(v, nbits))
    mask = np.uint64((1 << nbits) - 1) if nbits < 64 else np.uint64(2**64 - 1)
    np.testing.assert_array_equal(unpack_bits(planes, n), v & mask)


@pytest.mark.nojit
def test_bitvector_roundtrip():
    rng = np.random.default_rng(3)
    b = rng.integers(0, 2, size=150)
    w = pack_bitvector(b)
    assert w.shape == (3,)
    np.testing.assert_array_equal(unpack_bitvector(w, 150), b.astype(np.uint64))


def test_pack_bad_input():
    with pytest.raises(TypeError, match="uint64"):
        pack_bits(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="nbits == 65"):
        pack_bits(np.zeros(3, dtype=np.uint64), 65)
    with pytest.raises(ValueError, match="ndim == 2"):
        pack_bits(np.zeros((2, 3), dtype=np.uint64))
    with pytest.raises(ValueError, match="n == 200"):
        unpack_bits(np.zeros((4, 2), dtype=np.uint64), 200)
