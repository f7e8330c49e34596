"""Comparisons on additive shares (edaBit + log-depth borrow circuit + daBit), bit decomposition.

Comparisons are exact (no probabilistic error), so every check is equality.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppboost.crypto import fixed
from ppboost.mpc.boolean import _open_xor, unpack_bits
from ppboost.mpc.compare import (
    _ks_level1_kernel,
    _level1_kernel,
    a2b,
    bit_decompose,
    greater_than,
    less_than,
    less_than_public,
    less_than_thresholds,
    ltz,
    planes_to_bits,
    prefetch_ltz,
)
from ppboost.mpc.shares import AShare
from ppboost.mpc.simulate import run_parties

from .helpers import _bits, _split

EDGES = np.array([0, 1, -1, 2**62, -2**62, 2**63 - 1, -2**63, 12345, -12345], dtype=np.int64)


@pytest.mark.nojit
@pytest.mark.parametrize("k", [1, 2, 3, 26])
def test_ks_level1_kernel_matches_and_layer(k):
    """The local d=1 Kogge-Stone layer equals the AND-based one (one share holds everything)."""
    rng = np.random.default_rng(k)
    c = rng.integers(0, 2**64, size=(k, 3), dtype=np.uint64)
    r = rng.integers(0, 2**64, size=(k, 3), dtype=np.uint64)
    rq = r[1:] & r[:-1]
    G, P, praw = (np.empty((k, 3), np.uint64) for _ in range(3))
    _ks_level1_kernel(c, r, rq, True, G, P, praw)
    g = c & ~r
    p = c ^ ~r
    g[0] ^= p[0]                                   # carry-in 1 folded into position 0
    np.testing.assert_array_equal(praw, p)
    np.testing.assert_array_equal(G[0], g[0])
    np.testing.assert_array_equal(G[1:], g[1:] ^ (p[1:] & g[:-1]))
    np.testing.assert_array_equal(P[2:], p[2:] & p[1:-1])


def test_planes_to_bits_matches_unpack():
    rng = np.random.default_rng(1)
    planes = rng.integers(0, 2**64, size=(3, 2), dtype=np.uint64)
    vals = unpack_bits(planes, 100)
    bits = planes_to_bits(planes, 100)
    for j in range(3):
        np.testing.assert_array_equal(bits[j], (vals >> np.uint64(j)) & np.uint64(1))


@pytest.mark.nojit
@pytest.mark.parametrize("kb", [1, 2, 31, 32, 63])
def test_level1_kernel_matches_and_layer(kb):
    """The local first layer equals the AND-based (g, p) combination on random bit patterns
    (one share holding everything: first=True and r given in clear)."""
    rng = np.random.default_rng(kb)
    c = rng.integers(0, 2**64, size=(64, 3), dtype=np.uint64)
    r = rng.integers(0, 2**64, size=(64, 3), dtype=np.uint64)
    c[:, 0] = 0
    r[:, 0] = ~np.uint64(0)
    pairs = kb // 2
    rr = r[1:2 * pairs:2] & r[0:2 * pairs:2]
    ng = (kb + 1) // 2
    G = np.empty((ng, 3), np.uint64)
    P = np.empty_like(G)
    _level1_kernel(c, r, rr, kb, True, G, P)
    g = c & ~r
    p = c ^ ~r
    g[0] ^= p[0]                                   # carry-in 1 folded into position 0
    np.testing.assert_array_equal(G[:pairs], g[1:2 * pairs:2] ^ (p[1:2 * pairs:2] & g[0:2 * pairs:2]))
    np.testing.assert_array_equal(P[1:pairs], p[3:2 * pairs:2] & p[2:2 * pairs:2])
    if kb % 2:
        np.testing.assert_array_equal(G[pairs], g[kb - 1])
        np.testing.assert_array_equal(P[pairs], p[kb - 1])


@pytest.mark.nojit
def test_ltz_small_runs_kernels():
    """Small end-to-end ltz (2 parties): exercises the AND / g-p / b2a kernels without JIT too."""
    rng = np.random.default_rng(11)
    x = np.concatenate([EDGES, rng.integers(-2**63, 2**63, size=61, dtype=np.int64)])
    xs = _split(rng, x.view(np.uint64), 2)
    res, _, _ = run_parties(2, lambda P: ltz(P, AShare(P, xs[P.id])).reveal())
    np.testing.assert_array_equal(res[0], (x < 0).astype(np.uint64))


@pytest.mark.parametrize("n_parties", [2, 3])
def test_ltz_and_comparisons_exact(n_parties):
    rng = np.random.default_rng(n_parties)
    n = 500
    x = np.concatenate([EDGES, rng.integers(-2**63, 2**63, size=n, dtype=np.int64),
                        rng.integers(-1000, 1000, size=n, dtype=np.int64)])
    y = np.concatenate([EDGES[::-1], rng.integers(-2**62, 2**62, size=n, dtype=np.int64),
                        rng.integers(-1000, 1000, size=n, dtype=np.int64)])
    y[len(EDGES):len(EDGES) + 50] = x[len(EDGES):len(EDGES) + 50]     # some ties
    xs = _split(rng, x.view(np.uint64), n_parties)
    ys = _split(rng, y.view(np.uint64), n_parties)
    t = np.int64(-7)

    def fn(P):
        a = AShare(P, xs[P.id])
        b = AShare(P, ys[P.id])
        return (ltz(P, a).reveal(), ltz(P, a.reshape(-1, 1)).reveal(),
                greater_than(P, a, b).reveal(), less_than_public(P, a, np.uint64(t.view(np.uint64))).reveal())

    res, _, _ = run_parties(n_parties, fn)
    out = res[-1]
    np.testing.assert_array_equal(out[0], (x < 0).astype(np.uint64))
    assert out[1].shape == (x.size, 1)
    # x > y compares x - y as a signed 64-bit value: exact while |x - y| < 2**63
    ok = np.abs(x.astype(object) - y.astype(object)) < 2**63
    ok = ok.astype(bool)
    np.testing.assert_array_equal(out[2][ok], (x > y)[ok].astype(np.uint64))
    small = np.abs(x) < 2**62
    np.testing.assert_array_equal(out[3][small], (x < t)[small].astype(np.uint64))


@pytest.mark.parametrize("n_parties", [2, 3])
def test_less_than_thresholds_one_mask_many_comparisons(n_parties):
    rng = np.random.default_rng(30 + n_parties)
    x = np.concatenate([EDGES, rng.integers(-2**40, 2**40, size=200, dtype=np.int64), [5, -3, 100]])
    ts = np.array([0, 5, -3, 2**40, -2**62], dtype=np.int64)
    xs = _split(rng, x.view(np.uint64), n_parties)

    def fn(P):
        a = AShare(P, xs[P.id].reshape(-1, 2) if x.size % 2 == 0 else xs[P.id])
        return less_than_thresholds(a, ts.view(np.uint64)).reveal(), P.ep.stats.rounds

    res, _, _ = run_parties(n_parties, fn)
    out = res[0][0].reshape(ts.size, -1)
    diff = x[None, :].astype(object) - ts[:, None].astype(object)
    ok = (np.abs(diff) < 2**63).astype(bool)                # exact within the signed range
    np.testing.assert_array_equal(out[ok], (x[None, :] < ts[:, None])[ok].astype(np.uint64))


@pytest.mark.parametrize("n_parties", [2, 3])
@pytest.mark.parametrize("bound_bits", [2, 3, 4, 17, 32, 33, 63, 64])
def test_ltz_with_declared_bound_exact_on_the_whole_range(n_parties, bound_bits):
    """With -2**(l-1) <= x < 2**(l-1) the shorter circuit is exact, edges included."""
    rng = np.random.default_rng(bound_bits * 10 + n_parties)
    lo, hi = -(2 ** (bound_bits - 1)), 2 ** (bound_bits - 1)
    edges = np.array([lo, lo + 1, -1, 0, 1, hi - 1], dtype=np.int64)
    x = np.concatenate([edges, rng.integers(lo, hi, size=300, dtype=np.int64)])
    xs = _split(rng, x.view(np.uint64), n_parties)
    t = np.array([0, 1], np.int64).view(np.uint64)

    def fn(P):
        a = AShare(P, xs[P.id])
        return (ltz(P, a, bound_bits=bound_bits).reveal(),
                less_than_thresholds(a, t, bound_bits=bound_bits).reveal())

    res, _, _ = run_parties(n_parties, fn)
    np.testing.assert_array_equal(res[0][0], (x < 0).astype(np.uint64))
    # x < 1 is the sign of x - 1, inside the declared range except for x = lo
    ok = x.astype(object) - 1 >= lo
    ok = ok.astype(bool)
    np.testing.assert_array_equal(res[0][1][0], (x < 0).astype(np.uint64))
    np.testing.assert_array_equal(res[0][1][1][ok], (x < 1)[ok].astype(np.uint64))


@pytest.mark.statistical
def test_declared_bound_transcript_uniform_and_cheaper():
    """bound_bits = 32: same transcript for different inputs, c still uniform on 64 bits,
    and fewer bytes and rounds than the full 64-bit circuit."""
    n = 2048
    rng = np.random.default_rng(8)
    sent = {}
    for l in (32, 64):
        runs = []
        for x in (np.zeros(n, np.int64), rng.integers(-2**31, 2**31, size=n, dtype=np.int64)):
            xs = _split(rng, x.view(np.uint64), 2)
            res, _, eps = run_parties(2, lambda P: (ltz(P, AShare(P, xs[P.id]), bound_bits=l), P.opened)[1],
                                      keep_opened=True)
            runs.append([(e.stats.transcript, e.stats.rounds) for e in eps])
        assert runs[0] == runs[1]
        sent[l] = (eps[0].stats.total_sent, eps[0].stats.rounds)
        c = res[0][0]                       # the first opening: c = x + 2**(l-1) + r
        per_pos = np.array([((c >> np.uint64(j)) & np.uint64(1)).mean() for j in range(64)])
        assert np.all(np.abs(per_pos - 0.5) < 6 * np.sqrt(0.25 / n)), per_pos
    assert sent[32][0] < 0.8 * sent[64][0] and sent[32][1] < sent[64][1]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vals=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=70),
       n_parties=st.sampled_from([2, 3]))
def test_less_than_fixed_point_hypothesis(vals, n_parties):
    """Fixed-point x < y on random floats (hypothesis), against numpy on the encodings."""
    x = fixed.encode(np.array(vals))
    y = fixed.encode(np.array(vals[::-1]) * 0.5)
    rng = np.random.default_rng(len(vals))
    xs = _split(rng, x, n_parties)
    ys = _split(rng, y, n_parties)
    res, _, _ = run_parties(n_parties, lambda P: less_than(P, AShare(P, xs[P.id]), AShare(P, ys[P.id])).reveal())
    np.testing.assert_array_equal(res[0], (x.view(np.int64) < y.view(np.int64)).astype(np.uint64))


@pytest.mark.parametrize("n_parties", [2, 3])
@pytest.mark.parametrize("nbits", [1, 13, 64])
def test_bit_decompose_and_a2b(n_parties, nbits):
    rng = np.random.default_rng(nbits + n_parties)
    x = np.concatenate([EDGES.view(np.uint64), rng.integers(0, 2**64, size=130, dtype=np.uint64)])
    xs = _split(rng, x, n_parties)

    def fn(P):
        planes = bit_decompose(P, AShare(P, xs[P.id]), nbits)
        opened = _open_xor(P, planes.reshape(-1)).reshape(planes.shape)
        return unpack_bits(opened, x.size), a2b(AShare(P, xs[P.id]), nbits).reveal()

    res, _, _ = run_parties(n_parties, fn)
    mask = np.uint64(2**64 - 1) if nbits == 64 else np.uint64((1 << nbits) - 1)
    np.testing.assert_array_equal(res[0][0], x & mask)
    np.testing.assert_array_equal(res[1][1], x & mask)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_ltz_transcript_identical_for_different_inputs(n_parties):
    rng = np.random.default_rng(9)
    n = 300
    runs = []
    for x in (np.zeros(n, np.uint64), rng.integers(0, 2**64, size=n, dtype=np.uint64)):
        xs = _split(rng, x, n_parties)
        _, _, eps = run_parties(n_parties, lambda P: ltz(P, AShare(P, xs[P.id])))
        runs.append([(e.stats.transcript, e.stats.rounds) for e in eps])
    assert runs[0] == runs[1]
    # 7 rounds between the parties (+ dealer requests): 1 open, 5 AND layers, 1 b2a
    assert runs[0][0][1] >= 7


@pytest.mark.statistical
@pytest.mark.parametrize("n_parties", [2, 3])
def test_ltz_opened_values_uniform_on_zero_input(n_parties):
    """Every array party 0 sees opened (c = x + r, AND masks, b2a bits) on x = 0 has
    uniform bits: per array |fraction of ones - 1/2| < 6 sigma, and per bit position of c."""
    n = 4096
    res, _, _ = run_parties(n_parties, lambda P: (ltz(P, P.zeros(n)), P.opened)[1], keep_opened=True)
    opened = res[0]
    assert len(opened) == 1 + 5 + 1
    for arr in opened:
        bits = _bits(arr)
        z = abs(bits.mean() - 0.5) / np.sqrt(0.25 / bits.size)
        assert z < 6, f"opened array of {arr.size} words has {bits.mean():.4f} ones"
    c = opened[0]
    assert c.size == n
    per_pos = np.array([((c >> np.uint64(j)) & np.uint64(1)).mean() for j in range(64)])
    assert np.all(np.abs(per_pos - 0.5) < 6 * np.sqrt(0.25 / n)), per_pos


def test_prefetch_ltz_matches_protocol():
    """Material fetched ahead (offline) is consumed by the protocol in the same order."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2**64, size=1000, dtype=np.uint64)
    xs = _split(rng, x, 2)

    def fn(P):
        prefetch_ltz(P, x.size)
        assert len(P.dealer._ahead) == 2          # the ltz bundle and the daBits
        out = ltz(P, AShare(P, xs[P.id])).reveal()
        assert len(P.dealer._ahead) == 0
        return out

    res, _, _ = run_parties(2, fn)
    np.testing.assert_array_equal(res[0], (x.view(np.int64) < 0).astype(np.uint64))


def test_compare_bad_input():
    def fn(P):
        a = P.zeros(5)
        with pytest.raises(ValueError, match="shapes"):
            less_than(P, a, P.zeros(6))
        with pytest.raises(TypeError, match="AShare"):
            ltz(P, np.zeros(5, np.uint64))
        with pytest.raises(TypeError, match="uint64 ring elements"):
            less_than_public(P, a, 0.5)
        with pytest.raises(ValueError, match="nbits == 0"):
            bit_decompose(P, a, 0)
        with pytest.raises(TypeError, match="thresholds must be a non-empty 1-D uint64"):
            less_than_thresholds(a, np.array([0.5]))
        with pytest.raises(ValueError, match="bound_bits == 1, must be an int in 2..64"):
            ltz(P, a, bound_bits=1)
        with pytest.raises(ValueError, match="bound_bits == 65"):
            less_than(P, a, a, bound_bits=65)
        return True

    res, _, _ = run_parties(2, fn)
    assert res == [True, True]


def _tls_ltz_and_argmax(P):
    """Module-level (picklable) party function for the TLS test: inputs from a fixed seed."""
    from ppboost.mpc.argmax import argmax
    x = np.random.default_rng(42).integers(-1000, 1000, size=(3, 50)).astype(np.int64).view(np.uint64)
    a = P.share(x if P.id == 0 else None, owner=0, shape=x.shape)
    return ltz(P, a).reveal(), argmax(P, a).reveal()


def test_ltz_and_argmax_over_tls_between_processes():
    """End to end over mutual-TLS sockets, one OS process per party and for the dealer."""
    from ppboost.mpc.simulate import run_parties_tls
    res, _, _ = run_parties_tls(2, _tls_ltz_and_argmax, timeout=60)
    x = np.random.default_rng(42).integers(-1000, 1000, size=(3, 50))
    onehot = np.zeros(x.shape, np.uint64)
    onehot[np.arange(3), x.argmax(axis=1)] = 1
    for lt, oh in res:
        np.testing.assert_array_equal(lt, (x < 0).astype(np.uint64))
        np.testing.assert_array_equal(oh, onehot)
