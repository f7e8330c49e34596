"""ppboost.mpc.permutation: owner-known permutation and its inverse (docs/design.md 6.1)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppboost.mpc.permutation import permute, permute_many, unpermute, unpermute_many
from ppboost.mpc.simulate import run_parties

PARTIES = [2, 3]


def _inp(p, value, owner):
    return p.share(value if p.id == owner else None, owner=owner, shape=value.shape)


@pytest.mark.parametrize("n", PARTIES)
@given(seed=st.integers(0, 2 ** 32 - 1), rows=st.integers(1, 40), cols=st.integers(1, 3),
       count=st.integers(1, 3))
@settings(max_examples=8, deadline=None)
def test_permute_many_and_inverse(n, seed, rows, cols, count):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2 ** 64, (rows, cols), dtype=np.uint64)
    owner = int(rng.integers(0, n))
    sigmas = [rng.permutation(rows) for _ in range(count)]

    def f(p):
        x = _inp(p, X, (owner + 1) % n)  # data shared by someone else than the owner
        mine = sigmas if p.id == owner else None
        ys = permute_many(x, mine, owner, count=count)
        zs = unpermute_many(x, mine, owner, count=count)
        return [p.reveal(y) for y in ys], [p.reveal(z) for z in zs]

    res, stats, eps = run_parties(n, f)
    ys, zs = res[0]
    for j in range(count):
        assert np.array_equal(ys[j], X[sigmas[j]])
        assert np.array_equal(zs[j][sigmas[j]], X)
    assert stats["by_kind"]["perm"] == 2


@pytest.mark.parametrize("n", PARTIES)
def test_permute_1d_costs_one_round_and_one_mask_for_all(n):
    rng = np.random.default_rng(n)
    rows, count = 1000, 4
    X = rng.integers(0, 2 ** 64, rows, dtype=np.uint64)
    sigmas = [rng.permutation(rows) for _ in range(count)]

    def f(p):
        x = _inp(p, X, 0)
        p.dealer.prefetch("perm", shape=(rows,), owner=0, count=count)
        before = p.ep.stats.snapshot()
        ys = permute_many(x, sigmas if p.id == 0 else None, 0, count=count)
        after = p.ep.stats.snapshot()
        y1 = permute(x, sigmas[0] if p.id == 0 else None, 0)
        u = unpermute(y1, sigmas[0] if p.id == 0 else None, 0)
        return [p.reveal(y) for y in ys], p.reveal(u), before, after

    res, _, _ = run_parties(n, f)
    for j in range(count):
        assert np.array_equal(res[0][0][j], X[sigmas[j]])
    assert np.array_equal(res[0][1], X)
    for pid, r in enumerate(res):
        before, after = r[2], r[3]
        assert after["rounds"] - before["rounds"] == 1
        sent = after["sent"] - before["sent"]
        if pid == 0:  # owner: publishes count taus (int32) to each other party
            assert (n - 1) * count * rows * 4 <= sent < (n - 1) * (count * rows * 4 + 64)
        else:  # one masked message of `rows` elements serves all count permutations
            assert rows * 8 <= sent < rows * 8 + 64


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("shape,rows", [((200,), 7), ((50, 3), 50), ((30, 2), 0), ((9,), 1)])
def test_owner_known_selection(n, shape, rows):
    """rows=b: the first b rows of X[sigma]; the owner publishes b indices, the
    non-owners expand b rows of their masks by random access into their PRG stream."""
    rng = np.random.default_rng(rows + n)
    X = rng.integers(0, 2 ** 64, shape, dtype=np.uint64)
    sigmas = [rng.permutation(shape[0]) for _ in range(2)]
    owner = n - 1

    def f(p):
        x = _inp(p, X, 0)
        mine = sigmas if p.id == owner else None
        before = p.ep.stats.total_sent
        ys = permute_many(x, mine, owner, count=2, rows=rows)
        sent = p.ep.stats.total_sent - before
        after_sel = permute(x, sigmas[0] if p.id == owner else None, owner)  # stream stays in sync
        return [p.reveal(y) for y in ys], p.reveal(after_sel), sent

    res, stats, _ = run_parties(n, f)
    ys, full, _ = res[0]
    for j in range(2):
        assert ys[j].shape == (rows,) + shape[1:]
        assert np.array_equal(ys[j], X[sigmas[j][:rows]])
    assert np.array_equal(full, X[sigmas[0]])
    owner_sent = res[owner][2]
    assert owner_sent < (n - 1) * (2 * rows * 4 + 64) + 64  # only b indices per permutation
    assert stats["by_kind"]["perm_select"] == 1


def test_permute_bad_input():
    def f(p):
        x = _inp(p, np.arange(4, dtype=np.uint64), 0)
        if p.id == 0:
            with pytest.raises(ValueError, match="sigma has length 3, expected 4"):
                permute(x, np.array([0, 1, 2]), 0)
            with pytest.raises(ValueError, match="not a permutation of 0..3: repeated"):
                permute(x, np.array([0, 1, 1, 2]), 0)
            with pytest.raises(ValueError, match="is the owner: pass the permutation"):
                permute(x, None, 0)
        else:
            with pytest.raises(ValueError, match="is not the owner"):
                permute(x, np.arange(4), 0)
            with pytest.raises(ValueError, match="pass count"):
                permute_many(x, None, 0)
        with pytest.raises(ValueError, match="rows == 5, must be an int in 0..4"):
            permute(x, np.arange(4) if p.id == 0 else None, 0, rows=5)
        with pytest.raises(ValueError, match="owner == 2, must be a party id in 0..1"):
            permute(x, None, 2)
        return True

    assert run_parties(2, f)[0] == [True, True]


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_what_the_owner_and_others_see_is_masked(n):
    """On an all-zero input the owner's opened X + a is uniform (every bit position
    about half ones), and the published tau does not depend on sigma: for the
    identity sigma it is a uniformly random permutation, not the identity."""
    N = 20000

    def f(p):
        x = p.zeros((N,))
        sigma = np.arange(N) if p.id == 0 else None
        from_owner = []
        if p.id != 0:  # record what this non-owner receives from the owner: tau
            recv = p.ep.recv
            p.ep.recv = lambda frm: from_owner.append(recv(frm)) or from_owner[-1]
        y = permute(x, sigma, 0)
        return p.reveal(y), (p.opened[0] if p.id == 0 else from_owner)

    res, _, eps = run_parties(n, f, keep_opened=True)
    assert not res[0][0].any()
    for pid in range(1, n):
        (tau,) = [m for m in res[pid][1] if m.shape == (1, N)]
        assert np.array_equal(np.sort(tau[0]), np.arange(N))
        assert np.count_nonzero(tau[0] == np.arange(N)) < 20  # a random permutation: ~1 fixed point
    seen = res[0][1]
    bits = np.unpackbits(seen.view(np.uint8), bitorder="little").reshape(N, 64)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 5 * 0.5 / np.sqrt(N))
