"""ppboost.mpc.arith: Beaver products (elementwise, matrix, fixed point), masking of opened values."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppboost.mpc import arith
from ppboost.mpc.simulate import run_parties
from ppboost.mpc.truncation import mul_fixed

M = 2 ** 64
PARTIES = [2, 3]


def _inp(p, value, owner):
    value = np.asarray(value)
    return p.share(value if p.id == owner else None, owner=owner, shape=value.shape)


def _objmm(a, b):
    return (np.asarray(a).astype(object).dot(np.asarray(b).astype(object)) % M).astype(np.uint64)


@pytest.mark.parametrize("n", PARTIES)
@given(data=st.data())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_beaver_mul_random(n, data):
    shape = data.draw(st.sampled_from([(1,), (17,), (3, 4), (2, 3, 2)]))
    seed = data.draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.integers(0, M, shape, dtype=np.uint64)
    Y = rng.integers(0, M, shape, dtype=np.uint64)

    def f(p):
        x, y = _inp(p, X, 0), _inp(p, Y, n - 1)
        return p.reveal(x * y), p.reveal(arith.mul(x, x))

    res, _, _ = run_parties(n, f)
    assert np.array_equal(res[0][0], X * Y)
    assert np.array_equal(res[1][1], X * X)


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("sa,sb", [((3, 5), (5, 2)), ((1, 4), (4, 6)), ((4,), (4, 3)), ((3, 4), (4,))])
def test_matrix_beaver(n, sa, sb):
    rng = np.random.default_rng(n + len(sa))
    A = rng.integers(0, M, sa, dtype=np.uint64)
    B = rng.integers(0, M, sb, dtype=np.uint64)
    P = rng.integers(0, M, (sb[-1], 2), dtype=np.uint64) if len(sb) == 2 else None

    def f(p):
        a, b = _inp(p, A, 0), _inp(p, B, 1)
        out = [p.reveal(a @ b)]
        if P is not None:
            out.append(p.reveal(b @ P))
        return out

    res, _, _ = run_parties(n, f)
    assert np.array_equal(res[n - 1][0], _objmm(A, B))
    if P is not None:
        assert np.array_equal(res[0][1], _objmm(B, P))


@pytest.mark.parametrize("n", PARTIES)
def test_mul_fixed_against_float(n):
    rng = np.random.default_rng(5)
    X = rng.uniform(-1000, 1000, 200)
    Y = rng.uniform(-1000, 1000, 200)

    def f(p):
        x = p.share_float(X if p.id == 0 else None, owner=0, shape=X.shape)
        y = p.share_float(Y if p.id == 1 else None, owner=1, shape=Y.shape)
        return p.reveal_float(mul_fixed(x, y))

    res, _, _ = run_parties(n, f)
    # encoding error of each input (<= 2^-17 relative to the other factor) plus 1 ulp of truncation
    tol = (np.abs(X) + np.abs(Y)) * 2.0 ** -17 + 2.0 ** -16 + 2.0 ** -34
    assert np.all(np.abs(res[0] - X * Y) <= tol)


@pytest.mark.parametrize("n", PARTIES)
def test_scalar_shares_and_inner_products(n):
    A = np.arange(5, dtype=np.uint64)
    B = np.arange(5, dtype=np.uint64) + np.uint64(3)

    def f(p):
        a, b = _inp(p, A, 0), _inp(p, B, n - 1)
        d = a @ b                      # 1-D @ 1-D: a 0-d share
        s = a.sum()
        return d.shape, p.reveal(d), p.reveal(s * s, to=n - 1), p.reveal(d + 1, to=0)

    res, _, _ = run_parties(n, f)
    assert res[0][0] == ()
    assert res[0][1] == A @ B and res[n - 1][2] == A.sum() ** 2 and res[0][3] == A @ B + 1


def test_product_errors():
    def f(p):
        x = _inp(p, np.zeros(3, np.uint64), 0)
        y = _inp(p, np.zeros(4, np.uint64), 0)
        with pytest.raises(ValueError, match=r"shape mismatch: \(3,\) \* \(4,\)"):
            x * y
        a = _inp(p, np.zeros((2, 3), np.uint64), 0)
        with pytest.raises(ValueError, match=r"inner dimensions 3 != 2"):
            a @ _inp(p, np.zeros((2, 2), np.uint64), 0)
        with pytest.raises(TypeError, match="mul expects two AShares"):
            arith.mul(x, 3)
        return True

    assert run_parties(2, f)[0] == [True, True]


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_opened_values_look_uniform_on_zero_inputs(n):
    """Every value opened in a Beaver product of all-zero inputs is masked: each of
    the 64 bit positions of d and e is 1 about half the time, and bytes are uniform."""
    N = 20000

    def f(p):
        x = _inp(p, np.zeros(N, np.uint64), 0)
        y = _inp(p, np.zeros(N, np.uint64), n - 1)
        z = x * y
        assert len(p.opened) == 1  # d and e travel in one message
        return p.opened[0][:N], p.opened[0][N:], p.reveal(z)

    res, _, _ = run_parties(n, f, keep_opened=True)
    d, e, z = res[0]
    assert not z.any()
    for opened in (d, e):
        assert opened.shape == (N,)
        bits = np.unpackbits(opened.view(np.uint8), bitorder="little").reshape(N, 64)
        freq = bits.mean(axis=0)
        # 5 sigma for a fair coin with N draws, at each of the 64 bit positions
        assert np.all(np.abs(freq - 0.5) < 5 * 0.5 / np.sqrt(N)), freq
        counts = np.bincount(opened.view(np.uint8), minlength=256)
        expected = opened.size * 8 / 256
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < 400  # 255 dof: mean 255, sd ~22.6; 400 is > 6 sd
    # every party saw the same opened values
    for r in res[1:]:
        assert np.array_equal(r[0], d) and np.array_equal(r[1], e)
