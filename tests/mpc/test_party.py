"""ppboost.mpc.party and ppboost.mpc.shares: Party, AShare operators, share / reveal (2 and 3 parties)."""
import numpy as np
import pytest

from ppboost.mpc.party import Party
from ppboost.mpc.shares import AShare
from ppboost.mpc.simulate import run_parties

M = 2 ** 64
PARTIES = [2, 3]


def _inp(p, value, owner, shape=None):
    """Share ``value`` from ``owner`` (others pass None and the shape)."""
    value = np.asarray(value)
    return p.share(value if p.id == owner else None, owner=owner, shape=value.shape)


@pytest.mark.parametrize("n", PARTIES)
def test_share_and_reveal_to_all_and_to_one(n):
    rng = np.random.default_rng(n)
    X = rng.integers(0, M, (4, 3), dtype=np.uint64)

    def f(p):
        x = _inp(p, X, owner=n - 1)
        assert isinstance(x, AShare) and x.shape == (4, 3)
        return p.reveal(x), p.reveal(x, to=1), x.value

    res, _, _ = run_parties(n, f)
    for pid in range(n):
        assert np.array_equal(res[pid][0], X)
        assert (res[pid][1] is None) == (pid != 1)
    assert np.array_equal(res[1][1], X)
    # the shares themselves are not the secret, and they sum to it
    assert not any(np.array_equal(r[2], X) for r in res)
    assert np.array_equal(sum(r[2] for r in res), X)


@pytest.mark.parametrize("n", PARTIES)
def test_local_operators(n):
    rng = np.random.default_rng(10 + n)
    X = rng.integers(0, M, (5,), dtype=np.uint64)
    Y = rng.integers(0, M, (5,), dtype=np.uint64)
    K = rng.integers(-100, 100, (5,))
    P = rng.integers(0, M, (3, 5), dtype=np.uint64)

    def f(p):
        x, y = _inp(p, X, 0), _inp(p, Y, n - 1)
        outs = [x + y, x - y, -x, x + 7, 7 + x, x - 3, 3 - x, x * 5, 5 * x, x * K, K + x,
                x << 3, y @ np.eye(5, dtype=np.uint64)[:, :2], P @ x,
                AShare.concatenate([x, y]), AShare.stack([x, y], axis=1), x[1:3], x.reshape(5, 1).T,
                x.sum(), x.reshape(5, 1).sum(axis=0), p.public(K) + x, p.zeros((2,)) + 1]
        return [p.reveal(o) for o in outs]

    res, _, _ = run_parties(n, f)
    Ku = K.astype(np.int64).view(np.uint64)
    s = np.uint64
    want = [X + Y, X - Y, s(0) - X, X + s(7), X + s(7), X - s(3), s(3) - X, X * s(5), X * s(5),
            X * Ku, X + Ku, X << s(3), Y[:2], ((P.astype(object) @ X.astype(object)) % M).astype(np.uint64),
            np.concatenate([X, Y]), np.stack([X, Y], axis=1), X[1:3], X.reshape(1, 5), X.sum(dtype=np.uint64), X.sum(dtype=np.uint64).reshape(1),
            X + Ku, np.ones(2, np.uint64)]
    for got, w in zip(res[0], want):
        assert np.array_equal(got, w)


@pytest.mark.parametrize("n", PARTIES)
def test_float_helpers(n):
    X = np.array([1.5, -2.25, 1000.0])

    def f(p):
        x = p.share_float(X if p.id == 1 else None, owner=1, shape=(3,))
        return p.reveal_float(x), p.reveal_float(x, to=0)

    res, _, _ = run_parties(n, f)
    assert np.allclose(res[0][0], X) and np.allclose(res[0][1], X) and res[1][1] is None


def test_bad_inputs_give_clear_errors():
    def f(p):
        x = _inp(p, np.zeros(3, np.uint64), 0)
        y = _inp(p, np.zeros(4, np.uint64), 0)
        with pytest.raises(ValueError, match=r"shape mismatch: \(3,\) \+ \(4,\)"):
            x + y
        with pytest.raises(TypeError, match="encode floats"):
            x + 1.5
        with pytest.raises(TypeError, match="uint64 ring elements, got dtype float64"):
            AShare(p, np.zeros(3))
        with pytest.raises(ValueError, match="owner == 5, must be a party id in 0..1"):
            p.share(None, owner=5, shape=(3,))
        if p.id == 0:
            with pytest.raises(TypeError, match="share\\(\\) takes integers, got dtype float64"):
                p.share(np.ones(3), owner=0)
            with pytest.raises(ValueError, match="magnitude 1024 exceeds the declared bound 2\\*\\*10"):
                p.share(np.array([2 ** 10]), owner=0, bound_bits=10)
            with pytest.raises(ValueError, match="exceeds the declared bound 2\\*\\*60"):
                p.share(np.array([-2 ** 60]), owner=0, bound_bits=60)
            with pytest.raises(ValueError, match="is the owner: pass the values"):
                p.share(None, owner=0, shape=(3,))
        else:
            with pytest.raises(ValueError, match="is not the owner"):
                p.share(np.ones(3, np.int64), owner=0)
            with pytest.raises(ValueError, match="pass the public shape"):
                p.share(None, owner=0)
        with pytest.raises(ValueError, match="to == 7, must be a party id"):
            p.reveal(x, to=7)
        return True

    res, _, _ = run_parties(2, f)
    assert res == [True, True]


def test_party_on_dealer_endpoint_is_refused():
    from ppboost.transport.inprocess import Hub
    hub = Hub(2, timeout=1)
    with pytest.raises(ValueError, match="is the dealer, not a data party"):
        Party(hub.endpoint(2))


@pytest.mark.parametrize("n", PARTIES)
def test_share_within_declared_bound(n):
    V = np.array([2 ** 60 - 1, -(2 ** 60 - 1), 0], dtype=np.int64)

    def f(p):
        x = p.share(V if p.id == 0 else None, owner=0, shape=(3,), bound_bits=60)
        return p.reveal(x)

    res, _, _ = run_parties(n, f)
    assert np.array_equal(res[0].view(np.int64), V)
