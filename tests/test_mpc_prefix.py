"""ppboost.mpc.prefix: local prefix / suffix sums of shares."""
import numpy as np
import pytest

from ppboost.mpc.prefix import prefix_sum, suffix_sum
from ppboost.mpc.simulate import run_parties

PARTIES = [2, 3]


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("shape,axis", [((50,), 0), ((20, 3), 0), ((4, 30), 1), ((3, 4, 5), -1)])
def test_prefix_suffix_against_numpy(n, shape, axis):
    rng = np.random.default_rng(n)
    X = rng.integers(0, 2 ** 64, shape, dtype=np.uint64)

    def f(p):
        x = p.share(X if p.id == 0 else None, owner=0, shape=shape)
        sent = p.ep.stats.total_sent
        ps, ss = prefix_sum(x, axis), suffix_sum(x, axis)
        assert p.ep.stats.total_sent == sent  # local: nothing sent
        return p.reveal(ps), p.reveal(ss)

    res, _, _ = run_parties(n, f)
    assert np.array_equal(res[0][0], np.cumsum(X, axis=axis, dtype=np.uint64))
    want = np.flip(np.cumsum(np.flip(X, axis), axis=axis, dtype=np.uint64), axis)
    assert np.array_equal(res[0][1], want)


def test_prefix_bad_axis():
    def f(p):
        x = p.zeros((3, 2))
        with pytest.raises(ValueError, match="axis == 2, must be in -2..1"):
            prefix_sum(x, 2)
        with pytest.raises(TypeError, match="expected an AShare"):
            suffix_sum(np.zeros(3, np.uint64))
        return True

    assert run_parties(2, f)[0] == [True, True]
