"""ppboost.mpc.b2a: XOR-shared bits -> additive shares via daBits."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppboost.mpc.b2a import b2a
from ppboost.mpc.simulate import run_parties

PARTIES = [2, 3]


def _xor_shares(bits, n, rng):
    shares = [rng.integers(0, 2, bits.shape, dtype=np.uint8) for _ in range(n - 1)]
    last = bits.astype(np.uint8)
    for s in shares:
        last = last ^ s
    return shares + [last]


@pytest.mark.parametrize("n", PARTIES)
@given(seed=st.integers(0, 2 ** 32 - 1), shape=st.sampled_from([(1,), (13,), (4, 9), (130,)]))
@settings(max_examples=8, deadline=None)
def test_b2a_random(n, seed, shape):
    rng = np.random.default_rng(seed)
    B = rng.integers(0, 2, shape)
    xs = _xor_shares(B, n, rng)

    def f(p):
        a = b2a(p, xs[p.id])
        return p.reveal(a), p.reveal(a * 5 + 1)  # arithmetic afterwards works

    res, stats, _ = run_parties(n, f)
    assert np.array_equal(res[0][0], B.astype(np.uint64))
    assert np.array_equal(res[0][1], (5 * B + 1).astype(np.uint64))
    assert stats["by_kind"] == {"dabit": 1}


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_b2a_accepts_bools_and_opens_masked_bits(n):
    rng = np.random.default_rng(n)
    B = np.zeros(4000, dtype=bool)  # all-zero secret: the opened e = r must still look random
    xs = [s.astype(bool) for s in _xor_shares(B, n, rng)]

    def f(p):
        return p.reveal(b2a(p, xs[p.id])), p.opened[0]

    res, _, _ = run_parties(n, f, keep_opened=True)
    assert not res[0][0].any()
    e = res[0][1]
    assert abs(e.mean() - 0.5) < 5 * 0.5 / np.sqrt(e.size)


def test_b2a_bad_input():
    def f(p):
        with pytest.raises(ValueError, match="every entry must be 0 or 1"):
            b2a(p, np.array([0, 2]))
        with pytest.raises(TypeError, match="0/1 integer or bool bits, got dtype float64"):
            b2a(p, np.array([0.0, 1.0]))
        return True

    assert run_parties(2, f)[0] == [True, True]
