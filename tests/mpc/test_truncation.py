"""ppboost.mpc.truncation: error rate over >= 10 million truncations, 2 and 3 parties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppboost.mpc.simulate import run_parties
from ppboost.mpc.truncation import MAX_BOUND_BITS, mul_trunc, truncate

PARTIES = [2, 3]
CHUNK = 2_000_000
CHUNKS = 5  # 10 million truncations per party count


def _inp(p, value, owner):
    value = np.asarray(value)
    return p.share(value if p.id == owner else None, owner=owner, shape=value.shape)


@pytest.mark.parametrize("n", PARTIES)
def test_ten_million_truncations_no_wrap_error(n):
    """x uniform over the whole budget |x| < 2**62 plus the edge values; every result
    must be floor(x / 2**f) or floor(x / 2**f) + 1 (at most 1 ulp); anything else is a
    wrap-around error and fails the test."""
    f = 16
    edges = np.array([-2 ** 62, -2 ** 62 + 1, 2 ** 62 - 1, 0, -1, 1, 2 ** f, -2 ** f,
                      2 ** f - 1, -2 ** f - 1, 2 ** 40, -2 ** 40], dtype=np.int64)

    def f_party(p):
        rng = np.random.default_rng(1234 + n)
        total = wraps = off_by_one = 0
        for _i in range(CHUNKS):
            X = rng.integers(-2 ** 62, 2 ** 62, CHUNK, dtype=np.int64)
            X[:edges.size] = edges
            x = _inp(p, X.view(np.uint64), 0)
            y = p.reveal(truncate(x, f, bound_bits=62), to=0)
            if p.id == 0:
                err = y.view(np.int64) - (X >> f)  # X >> f is floor(X / 2**f)
                wraps += int(np.count_nonzero((err != 0) & (err != 1)))
                off_by_one += int(np.count_nonzero(err == 1))
                total += X.size
        return total, wraps, off_by_one

    res, dealer, _ = run_parties(n, f_party, timeout=120)
    total, wraps, off_by_one = res[0]
    assert total >= 10_000_000
    assert wraps == 0, f"{wraps} wrap-around errors in {total} truncations"
    # the 1-ulp borrow happens when (c mod 2^f) < (r mod 2^f): about half the time
    assert 0.45 < off_by_one / total < 0.55
    assert dealer["by_kind"]["trunc"] == CHUNKS


@pytest.mark.parametrize("n", PARTIES)
@given(f=st.integers(1, 62), bound=st.integers(1, 62), seed=st.integers(0, 2 ** 32 - 1))
@settings(max_examples=10, deadline=None)
def test_random_f_and_declared_bound(n, f, bound, seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(-2 ** bound, 2 ** bound, 2000, dtype=np.int64)

    def fn(p):
        x = _inp(p, X.view(np.uint64), n - 1)
        return p.reveal(truncate(x, f, bound_bits=bound))

    res, _, _ = run_parties(n, fn)
    err = res[0].view(np.int64) - (X >> f)
    assert set(np.unique(err)) <= {0, 1}


@pytest.mark.parametrize("n", PARTIES)
def test_fixed_point_values_and_small_f(n):
    X = np.array([3.75, -3.75, 1e-3, -1e-3, 123456.5, -0.0])

    def f(p):
        x = p.share_float(X if p.id == 1 else None, owner=1, shape=X.shape)
        x2 = x << 16  # 32 fractional bits
        return (p.reveal_float(truncate(x2, 16, bound_bits=50)),
                p.reveal(truncate(x, 1)).view(np.int64), p.reveal(truncate(x, 0)))

    res, _, _ = run_parties(n, f)
    got, half, same = res[0]
    assert np.all(np.abs(got - X) <= 2.0 ** -16 + 2.0 ** -17)
    enc = np.rint(X * 2 ** 16).astype(np.int64)
    assert np.all((half - (enc >> 1) >= 0) & (half - (enc >> 1) <= 1))
    assert np.array_equal(same.view(np.int64), enc)


def test_bound_over_budget_and_bad_f():
    def f(p):
        x = _inp(p, np.zeros(3, np.uint64), 0)
        with pytest.raises(ValueError, match=r"bound_bits == 63, must be in 1..62.*\|value\| < 2\*\*30"):
            truncate(x, 16, bound_bits=63)
        with pytest.raises(ValueError, match=r"f == 63, must be an int in 0..62"):
            truncate(x, 63)
        with pytest.raises(TypeError, match="bound_bits must be an int"):
            truncate(x, 16, bound_bits=2.5)
        return True

    assert MAX_BOUND_BITS == 62
    assert run_parties(2, f)[0] == [True, True]


def _bit_frequencies_ok(values):
    bits = np.unpackbits(np.ascontiguousarray(values).view(np.uint8), bitorder="little")
    freq = bits.reshape(-1, 64).mean(axis=0)
    return np.all(np.abs(freq - 0.5) < 5 * 0.5 / np.sqrt(values.size)), freq


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_opened_value_is_uniform_on_zero_input(n):
    N = 20000

    def f(p):
        x = _inp(p, np.zeros(N, np.uint64), 0)
        y = p.reveal(truncate(x, 16))
        return y, p.opened[0]

    res, _, _ = run_parties(n, f, keep_opened=True)
    y, c = res[0]
    assert set(np.unique(y.view(np.int64))) <= {0, 1}
    ok, freq = _bit_frequencies_ok(c)
    assert ok, freq


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("xb,yb,shift", [(48, 43, 52), (40, 20, 20), (55, 50, 60), (30, 30, 40)])
def test_mul_trunc_wider_than_the_ring(n, xb, yb, shift):
    """x * y / 2**shift for products of up to 105 bits, against Python integers: the error
    is below k ulps (k limbs, one truncation each), and the limb split is exact."""
    rng = np.random.default_rng(xb * 100 + yb + n)
    N = 3000
    X = rng.integers(-2 ** (xb - 1), 2 ** (xb - 1), N, dtype=np.int64)
    Y = rng.integers(-2 ** (yb - 1), 2 ** (yb - 1), N, dtype=np.int64)
    X[:4] = [2 ** (xb - 1) - 1, -2 ** (xb - 1), 0, 1]
    Y[:4] = [2 ** (yb - 1) - 1, 2 ** (yb - 1) - 1, -5, -2 ** (yb - 1)]
    a = 61 - yb
    k = 1 + max(0, -(-(xb + yb - 60) // a))

    def fn(p):
        x, y = _inp(p, X.view(np.uint64), 0), _inp(p, Y.view(np.uint64), n - 1)
        p.reveal(x[:1])                      # ends on a receive: the next send starts a round
        before = p.ep.stats.snapshot()
        z = mul_trunc(x, y, shift, xb, yb, xb + yb)
        rounds = p.ep.stats.snapshot()["rounds"] - before["rounds"]
        return p.reveal(z, to=0), rounds

    res, _, _ = run_parties(n, fn, timeout=120)
    z = res[0][0].view(np.int64)
    exact = np.array([int(a_) * int(b_) for a_, b_ in zip(X.tolist(), Y.tolist())], dtype=object)
    err = np.array([int(zi) * 2 ** shift - e for zi, e in zip(z.tolist(), exact)], dtype=object)
    worst = max(abs(e) for e in err.tolist()) / 2 ** shift
    assert worst < k, f"error {worst} ulps with {k} limbs"
    assert res[0][1] == (2 if k == 1 else 3)


def test_mul_trunc_rejects_bad_bounds():
    def fn(p):
        x = _inp(p, np.zeros(3, np.uint64), 0)
        with pytest.raises(ValueError, match="y_bits == 60, must be an int in 0..59"):
            mul_trunc(x, x, 10, 40, 60, 100)
        with pytest.raises(ValueError, match="the result needs 70 bits"):
            mul_trunc(x, x, 10, 40, 40, 80)
        with pytest.raises(TypeError, match="two AShares"):
            mul_trunc(x, np.zeros(3), 10, 40, 40, 80)
        return True

    res, _, _ = run_parties(2, fn)
    assert all(res)
