"""ppboost.mpc.ring: uint64 kernels against Python big-int arithmetic mod 2**64."""
import numpy as np
import pytest

from ppboost.mpc import ring

M = 2 ** 64


def _rand(rng, shape):
    return rng.integers(0, M, shape, dtype=np.uint64)


def _obj(a):
    return a.astype(object)


@pytest.mark.nojit
def test_beaver_finish():
    rng = np.random.default_rng(0)
    c, a, b, d, e = (_rand(rng, (3, 4)) for _ in range(5))
    for add in (False, True):
        want = (_obj(c) + _obj(d) * _obj(b) + _obj(e) * _obj(a) + add * _obj(d) * _obj(e)) % M
        assert np.array_equal(ring.beaver_finish(c, a, b, d, e, add), want.astype(np.uint64))


@pytest.mark.nojit
def test_beaver_finish_opened_equals_unfused():
    rng = np.random.default_rng(9)
    c, a, b = (_rand(rng, (2, 3)) for _ in range(3))
    mine, other = _rand(rng, 12), _rand(rng, 12)
    de = mine + other
    for add in (False, True):
        assert np.array_equal(ring.beaver_finish_opened(c, a, b, mine, other, add),
                              ring.beaver_finish(c, a, b, de[:6].reshape(2, 3), de[6:].reshape(2, 3), add))


@pytest.mark.nojit
@pytest.mark.parametrize("sa,sb", [((5, 7), (7, 3)), ((1, 9), (9, 1)), ((7,), (7, 2)), ((4, 7), (7,)), ((6,), (6,))])
def test_matmul_mod_2_64(sa, sb):
    rng = np.random.default_rng(1)
    a, b = _rand(rng, sa), _rand(rng, sb)
    want = (np.array(_obj(a)).dot(_obj(b)) % M)
    got = ring.matmul(a, b)
    assert got.shape == np.shape(want)
    assert np.array_equal(got, np.asarray(want).astype(np.uint64))


def test_matmul_blocked_larger():
    # crosses every block boundary of the kernel (64 rows, 256 inner, 512 columns);
    # reference: sum of rank-1 products in wrapping numpy uint64 arithmetic
    rng = np.random.default_rng(2)
    a, b = _rand(rng, (65, 257)), _rand(rng, (257, 513))
    want = np.zeros((65, 513), np.uint64)
    for k in range(257):
        want += a[:, k, None] * b[None, k, :]
    assert np.array_equal(ring.matmul(a, b), want)


def test_matmul_errors():
    with pytest.raises(ValueError, match="shape mismatch: \\(2, 3\\) @ \\(2, 3\\)"):
        ring.matmul(np.zeros((2, 3), np.uint64), np.zeros((2, 3), np.uint64))
    with pytest.raises(TypeError, match="uint64"):
        ring.matmul(np.zeros((2, 2)), np.zeros((2, 2), np.uint64))


@pytest.mark.nojit
@pytest.mark.parametrize("shape,axis", [((6,), 0), ((5, 3), 0), ((5, 3), 1), ((2, 3, 4), 1)])
def test_prefix_and_suffix(shape, axis):
    rng = np.random.default_rng(3)
    x = _rand(rng, shape)
    assert np.array_equal(ring.prefix_sum(x, axis), np.cumsum(x, axis=axis, dtype=np.uint64))
    rev = np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=np.uint64), axis)
    assert np.array_equal(ring.prefix_sum(x, axis, reverse=True), rev)


@pytest.mark.nojit
def test_permutation_helpers():
    p = np.array([2, 0, 3, 1])
    q = ring.inverse_permutation(p)
    assert np.array_equal(p[q], np.arange(4)) and np.array_equal(q[p], np.arange(4))
    x = np.arange(8, dtype=np.uint64).reshape(4, 2)
    assert np.array_equal(ring.gather_rows(x, p), x[p])
    with pytest.raises(ValueError, match="repeated entries"):
        ring.check_permutation([0, 0, 1], 3)
    with pytest.raises(ValueError, match="length 2, expected 3"):
        ring.check_permutation([0, 1], 3)
    with pytest.raises(ValueError, match="out of range"):
        ring.check_permutation([0, 1, 3], 3)


@pytest.mark.nojit
def test_truncate_finish_kernel_plaintext_identity():
    # with a single "party" holding everything, the finishing step is exact floor + borrow
    rng = np.random.default_rng(4)
    f = 16
    x = rng.integers(-2 ** 62, 2 ** 62, 200, dtype=np.int64)
    r = _rand(rng, 200)
    c = x.view(np.uint64) + np.uint64(2 ** 62) + r
    y = ring.truncate_finish(c, r >> np.uint64(f), r >> np.uint64(63), f, True, 1 << (62 - f))
    err = y.view(np.int64) - (x >> f)
    assert set(np.unique(err)) <= {0, 1}


def test_as_ring():
    assert ring.as_ring(-1) == np.uint64(M - 1)
    assert np.array_equal(ring.as_ring(np.array([-2, 3])), np.array([M - 2, 3], dtype=np.uint64))
    with pytest.raises(TypeError, match="encode floats"):
        ring.as_ring(np.array([1.5]))


@pytest.mark.nojit
def test_prefix_sum_into_a_slice():
    rng = np.random.default_rng(2)
    x = _rand(rng, (5, 3))
    big = np.zeros((12, 3), np.uint64)
    got = ring.prefix_sum(x, out=big[4:9])
    assert got.base is big or got is big[4:9] or np.shares_memory(got, big)
    assert np.array_equal(big[4:9], ring.prefix_sum(x)) and not big[:4].any() and not big[9:].any()
    with pytest.raises(ValueError, match="C-contiguous 2-D x, axis 0"):
        ring.prefix_sum(x, reverse=True, out=big[:5])


@pytest.mark.nojit
def test_fused_gathers_compose_and_mask_pair():
    rng = np.random.default_rng(5)
    x = _rand(rng, (6, 3))
    p = rng.permutation(6)
    for idx in (p, p.astype(np.int32)):
        assert np.array_equal(ring.gather_rows(x, idx), x[p])
        assert np.array_equal(ring.gather_rows(x, idx, negate=True), np.uint64(0) - x[p])
        assert np.array_equal(ring.gather_rows(x[:, 0], idx), x[p, 0])
        y = _rand(rng, (6, 3))
        assert np.array_equal(ring.gather_rows(x, idx[:4], minus=y), x[p[:4]] - y[p[:4]])
    with pytest.raises(ValueError, match=r"minus must be uint64 of shape \(6, 3\)"):
        ring.gather_rows(x, p, minus=x[:2])
    q = rng.permutation(6)
    c = ring.compose(p, q, np.int32)
    assert c.dtype == np.int32 and np.array_equal(c, p[q])
    a, b, y = _rand(rng, (2, 2)), _rand(rng, 3), _rand(rng, 3)
    assert np.array_equal(ring.mask_pair(x[:2, :2], a, y, b),
                          np.concatenate([(x[:2, :2] - a).ravel(), y - b]))
    with pytest.raises(ValueError, match="int32/int64 index"):
        ring.gather_rows(x, p.astype(np.float64))
    with pytest.raises(ValueError, match="index out of range 0..5"):
        ring.gather_rows(x, np.array([6]))
