"""Bit-sliced XOR shares: packing kernels (plaintext) and the secure AND / carry circuits."""
import numpy as np
import pytest

from ppboost.mpc.boolean import (
    n_words,
    pack_bits,
    pack_bitvector,
    unpack_bits,
    unpack_bitvector,
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


# ---------------------------------------------------------------------------
# secure protocols: 2 and 3 parties over the in-process transport with the dealer

from ppboost.mpc.boolean import (  # noqa: E402
    BShare,
    _open_xor,
    band_planes,
    carry_out,
    carry_out_plan,
    prefix_carries,
    prefix_or,
    share_bits,
)
from ppboost.mpc.simulate import run_parties  # noqa: E402


def _xor_split(rng, planes, n_parties):
    """Plaintext planes -> n XOR shares (test-side input; protocols use the dealer)."""
    parts = [rng.integers(0, 2**64, size=planes.shape, dtype=np.uint64) for _ in range(n_parties - 1)]
    last = planes.copy()
    for q in parts:
        last ^= q
    return parts + [last]


def _open(party, planes):
    return _open_xor(party, np.ascontiguousarray(planes).reshape(-1)).reshape(planes.shape)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_bshare_ops_match_plaintext(n_parties):
    rng = np.random.default_rng(10 + n_parties)
    n = 150
    a = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    pub = pack_bits(rng.integers(0, 2**64, size=n, dtype=np.uint64), 8)

    def fn(P):
        x = share_bits(P, a if P.id == 0 else None, 8, owner=0, n=n)
        y = share_bits(P, b if P.id == n_parties - 1 else None, 8, owner=n_parties - 1, n=n)
        return ((x & y).reveal(), (x ^ y).reveal(), (~x).reveal(), (x & pub).reveal(),
                (x ^ pub).reveal(), x[3].reveal())

    res, _, _ = run_parties(n_parties, fn)
    m8 = np.uint64(255)
    pv = unpack_bits(pub, n)
    for out in res:  # every party opens the same values
        np.testing.assert_array_equal(out[0], a & b & m8)
        np.testing.assert_array_equal(out[1], (a ^ b) & m8)
        np.testing.assert_array_equal(out[2], ~a & m8)
        np.testing.assert_array_equal(out[3], a & pv & m8)
        np.testing.assert_array_equal(out[4], (a ^ pv) & m8)
        np.testing.assert_array_equal(out[5], (a >> np.uint64(3)) & np.uint64(1))


@pytest.mark.parametrize("n_parties", [2, 3])
@pytest.mark.parametrize("k", [1, 2, 7, 16, 63])
def test_carry_circuits_match_addition(n_parties, k):
    """carry_out / prefix_carries of (g, p) = (a & b, a ^ b) are the carries of a + b."""
    rng = np.random.default_rng(k * 7 + n_parties)
    n = 100
    mask = np.uint64((1 << k) - 1)
    a = rng.integers(0, 2**64, size=n, dtype=np.uint64) & mask
    b = rng.integers(0, 2**64, size=n, dtype=np.uint64) & mask
    a[:3] = [0, mask, mask]
    b[:3] = [0, 0, 1]
    g_sh = _xor_split(rng, pack_bits(a & b, k), n_parties)
    p_sh = _xor_split(rng, pack_bits(a ^ b, k), n_parties)
    z_sh = _xor_split(rng, pack_bits(a, k), n_parties)

    def fn(P):
        co = carry_out(P, g_sh[P.id], p_sh[P.id])
        pc = prefix_carries(P, g_sh[P.id], p_sh[P.id])
        po = prefix_or(P, z_sh[P.id])
        return _open(P, co.reshape(1, -1)), _open(P, pc), _open(P, po)

    res, _, _ = run_parties(n_parties, fn)
    co, pc, po = res[0]
    # reference carries: carry out of position i of a + b (no carry-in)
    carries = np.zeros((k, n), dtype=np.uint64)
    for i in range(k):
        lowmask = np.uint64((1 << (i + 1)) - 1) if i < 63 else np.uint64(2**64 - 1)
        s = (a & lowmask).astype(object) + (b & lowmask).astype(object)
        carries[i] = np.array([int(v) >> (i + 1) for v in s], dtype=np.uint64)
    np.testing.assert_array_equal(unpack_bits(co, n), carries[k - 1])
    got = unpack_bits(pc, n)
    for i in range(k):
        np.testing.assert_array_equal((got >> np.uint64(i)) & np.uint64(1), carries[i])
    # prefix OR from the top: bit i = any bit >= i set  <=>  (a >> i) != 0
    got = unpack_bits(po, n)
    for i in range(k):
        np.testing.assert_array_equal((got >> np.uint64(i)) & np.uint64(1),
                                      ((a >> np.uint64(i)) != 0).astype(np.uint64))


def test_carry_out_plan_matches_requests():
    for k, expect_rounds in [(63, 6), (64, 6), (2, 1), (1, 0), (5, 3)]:
        assert len(carry_out_plan(k, 1)) == expect_rounds


@pytest.mark.statistical
@pytest.mark.parametrize("n_parties", [2, 3])
def test_and_transcript_same_shape_and_opened_uniform(n_parties):
    """Transcripts of two different inputs are identical; on all-zero inputs the
    opened d, e words are uniform bits (z-score of the fraction of ones < 6)."""
    n = 64 * 64

    def make(values):
        def fn(P):
            x = share_bits(P, values if P.id == 0 else None, 64, owner=0, n=n)
            y = share_bits(P, values if P.id == 0 else None, 64, owner=0, n=n)
            x & y
        return fn

    rng = np.random.default_rng(5)
    runs = []
    for values in (np.zeros(n, np.uint64), rng.integers(0, 2**64, size=n, dtype=np.uint64)):
        _, _, eps = run_parties(n_parties, make(values))
        runs.append([(e.stats.transcript, e.stats.rounds) for e in eps])
    assert runs[0] == runs[1]

    res, _, _ = run_parties(n_parties, lambda P: (make(np.zeros(n, np.uint64))(P), P.opened)[1],
                            keep_opened=True)
    opened = res[0]
    assert len(opened) == 1 and opened[0].size == 2 * 64 * 64
    bits = np.unpackbits(opened[0].view(np.uint8))
    z = abs(bits.mean() - 0.5) / np.sqrt(0.25 / bits.size)
    assert z < 6, f"opened bits are not uniform: fraction of ones {bits.mean():.4f}"


def test_bshare_bad_input():
    def fn(P):
        x = share_bits(P, np.arange(10, dtype=np.uint64) if P.id == 0 else None, 4, n=10)
        y = share_bits(P, np.arange(70, dtype=np.uint64) if P.id == 0 else None, 4, n=70)
        with pytest.raises(ValueError, match="shapes differ"):
            x & y
        with pytest.raises(TypeError, match="uint64"):
            band_planes(P, np.zeros(3, np.int64), np.zeros(3, np.int64))
        with pytest.raises(ValueError, match="differ"):
            band_planes(P, np.zeros(3, np.uint64), np.zeros(4, np.uint64))
        with pytest.raises(ValueError, match="words for n == 10"):
            BShare(P, np.zeros((4, 2), np.uint64), 10)
        with pytest.raises(ValueError, match="owner == 5"):
            share_bits(P, None, 4, owner=5, n=10)
        return True

    res, _, _ = run_parties(2, fn)
    assert res == [True, True]
