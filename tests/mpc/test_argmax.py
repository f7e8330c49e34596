"""Secret tournament argmax returning a one-hot vector (row-wise on a batch)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppboost.crypto import fixed
from ppboost.mpc.argmax import argmax, prefetch_argmax, rowmax
from ppboost.mpc.shares import AShare
from ppboost.mpc.simulate import run_parties

from .helpers import _bits, _split


def _onehot(xi):
    ref = np.zeros(xi.shape, np.uint64)
    ref[np.arange(xi.shape[0]), xi.argmax(axis=1)] = 1   # numpy: lowest index among ties
    return ref


@pytest.mark.parametrize("n_parties", [2, 3])
@pytest.mark.parametrize("k,n", [(1, 1), (1, 2), (3, 37), (2, 64), (5, 100)])
def test_argmax_onehot_matches_numpy_lowest_index_on_ties(n_parties, k, n):
    rng = np.random.default_rng(k * 1000 + n + n_parties)
    x = fixed.encode(rng.integers(-20, 20, size=(k, n)) * 0.25)   # many ties
    xs = _split(rng, x, n_parties)

    def fn(P):
        oh, mx = argmax(P, AShare(P, xs[P.id]), return_max=True)
        oh2 = argmax(P, AShare(P, xs[P.id]), bound_bits=24)    # |differences| < 2**23 ring units
        return oh.reveal(), mx.reveal(), oh2.reveal(), rowmax(P, AShare(P, xs[P.id])).reveal()

    res, _, _ = run_parties(n_parties, fn)
    oh, mx, oh2, rm = res[0]
    xi = x.view(np.int64)
    np.testing.assert_array_equal(oh, _onehot(xi))
    np.testing.assert_array_equal(oh2, _onehot(xi))
    np.testing.assert_array_equal(rm.view(np.int64), xi.max(axis=1))
    np.testing.assert_array_equal(mx.view(np.int64), xi.max(axis=1))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vals=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=40),
       n_parties=st.sampled_from([2, 3]))
def test_argmax_vector_hypothesis(vals, n_parties):
    x = fixed.encode(np.array(vals))
    rng = np.random.default_rng(len(vals))
    xs = _split(rng, x, n_parties)
    res, _, _ = run_parties(n_parties, lambda P: argmax(P, AShare(P, xs[P.id])).reveal())
    expect = np.zeros(x.size, np.uint64)
    expect[int(np.argmax(x.view(np.int64)))] = 1
    np.testing.assert_array_equal(res[0], expect)


def test_argmax_prefetch_and_transcript():
    """Prefetched material matches the protocol; transcripts equal for different inputs."""
    rng = np.random.default_rng(4)
    shape = (3, 75)
    runs = []
    for x in (np.zeros(shape, np.uint64), rng.integers(0, 2**40, size=shape).astype(np.uint64)):
        xs = _split(rng, x, 2)

        def fn(P, xs=xs):
            prefetch_argmax(P, shape)
            prefetch_argmax(P, shape, bound_bits=42)
            oh = argmax(P, AShare(P, xs[P.id]))
            assert argmax(P, AShare(P, xs[P.id]), bound_bits=42).reveal().sum() == shape[0]
            assert not P.dealer._ahead
            return oh.reveal()

        res, _, eps = run_parties(2, fn)
        np.testing.assert_array_equal(res[0], _onehot(x.view(np.int64)))
        runs.append([(e.stats.transcript, e.stats.rounds) for e in eps])
    assert runs[0] == runs[1]


@pytest.mark.statistical
def test_argmax_opened_uniform_on_zero_input():
    """All-zero input (all ties): every opened array has uniform bits (6 sigma)."""
    res, _, _ = run_parties(2, lambda P: (argmax(P, P.zeros((4, 300))), P.opened)[1], keep_opened=True)
    allbits = []
    for arr in res[0]:
        bits = _bits(arr)
        allbits.append(bits)
        if bits.size >= 4096:
            z = abs(bits.mean() - 0.5) / np.sqrt(0.25 / bits.size)
            assert z < 6
    bits = np.concatenate(allbits)
    assert abs(bits.mean() - 0.5) < 6 * np.sqrt(0.25 / bits.size)


def test_argmax_bad_input():
    def fn(P):
        with pytest.raises(ValueError, match="ndim == 3"):
            argmax(P, P.zeros((2, 2, 2)))
        with pytest.raises(ValueError, match="0 candidates"):
            argmax(P, P.zeros((2, 0)))
        with pytest.raises(TypeError, match="AShare"):
            argmax(P, np.zeros(3, np.uint64))
        with pytest.raises(ValueError, match="bound_bits == 1"):
            argmax(P, P.zeros((2, 1)), bound_bits=1)
        return True

    assert run_parties(2, fn)[0] == [True, True]


def _public_share(party, x):
    """Party 0 holds the public x, the others 0 (a trivial sharing)."""
    x = np.asarray(x, dtype=np.int64).view(np.uint64)
    return AShare(party, x.copy() if party.id == 0 else np.zeros_like(x))


@pytest.mark.parametrize("n_parties", [2, 3])
def test_argmax_with_tolerance_prefers_first_of_near_ties(n_parties):
    """tol=eps: the right candidate wins a match only by more than eps (moved
    here from the tree backend's former private copy, same cases)."""
    vals = np.array([[5, 9, 12, 11, 3],        # 12 vs 11 within eps=2: first (index 2)
                     [1, 20, 30, 31, 29],      # 30/31/29 within eps: index 2
                     [7, 7, 7, 7, 7],          # all tied: index 0
                     [-4, -2, -9, 100, 95],    # clear winner 100 (index 3)
                     [0, 3, 0, 0, 0]])         # 3 beats 0 by more than eps: index 1
    expect = [2, 2, 0, 3, 1]

    def fn(party):
        x = _public_share(party, vals)
        before = party.ep.stats.snapshot()
        oh, mx = argmax(party, x, return_max=True, tol=2)
        mid = party.ep.stats.snapshot()
        oh0 = argmax(party, x)
        after = party.ep.stats.snapshot()
        return (oh.reveal(), mx.reveal(), oh0.reveal(), rowmax(party, x, tol=2).reveal(),
                (mid["sent"] - before["sent"], mid["rounds"] - before["rounds"]),
                (after["sent"] - mid["sent"], after["rounds"] - mid["rounds"]))

    res, _, _ = run_parties(n_parties, fn)
    oh, mx, oh0, rm = res[0][:4]
    assert np.array_equal(np.argmax(oh, axis=1), expect)
    assert np.all(oh.sum(axis=1) == 1) and set(np.unique(oh)) <= {0, 1}
    np.testing.assert_array_equal(mx.view(np.int64), vals[np.arange(5), expect])
    np.testing.assert_array_equal(rm.view(np.int64), vals[np.arange(5), expect])
    np.testing.assert_array_equal(oh0, _onehot(vals))          # tol=None: exact argmax
    for r in res:                                               # same cost as without tol
        assert r[4] == r[5]


@pytest.mark.parametrize("tol", [-1, 1.5, True, 2 ** 62])
def test_argmax_rejects_bad_tol(tol):
    def fn(party):
        with pytest.raises(ValueError, match="tol == .*must be None, an int"):
            argmax(party, _public_share(party, np.zeros((1, 3), np.int64)), tol=tol)
        return True

    res, _, _ = run_parties(2, fn)
    assert all(res)


def _tournament_reference(vals, tols):
    """Plaintext tournament with per-candidate tolerances: the rule argmax documents."""
    out = []
    for v, t in zip(vals.tolist(), tols.tolist()):
        cur = list(zip(v, t, range(len(v))))
        while len(cur) > 1:
            nxt = [(r if l[0] + l[1] < r[0] else l) for l, r in zip(cur[0::2], cur[1::2])]
            if len(cur) % 2:
                nxt.append(cur[-1])
            cur = nxt
        out.append(cur[0])
    return out


@pytest.mark.parametrize("n_parties", [2, 3])
def test_argmax_with_secret_per_candidate_tolerance(n_parties):
    """tol as an AShare: each match is decided by the left candidate's own tolerance, the
    winner carries its tolerance up; checked against a plaintext tournament, with the
    maxima and the winners' tolerances, and the rounds equal those of tol=None."""
    rng = np.random.default_rng(11 + n_parties)
    vals = rng.integers(-1000, 1000, size=(40, 37))
    vals[:5] = 50                                  # exact ties: lowest index
    vals[5, 3], vals[5, 10] = 2000, 2005           # within 10 of index 3: index 3 stays
    tols = rng.integers(0, 30, size=vals.shape)
    tols[5] = 10
    ref = _tournament_reference(vals, tols)

    def fn(party):
        x = _public_share(party, vals)
        t = _public_share(party, tols)
        before = party.ep.stats.snapshot()
        oh, mx, tw = argmax(party, x, return_max=True, tol=t)
        mid = party.ep.stats.snapshot()
        argmax(party, x)
        after = party.ep.stats.snapshot()
        return oh.reveal(), mx.reveal(), tw.reveal(), mid["rounds"] - before["rounds"], \
            after["rounds"] - mid["rounds"]

    res, _, _ = run_parties(n_parties, fn)
    oh, mx, tw = res[0][:3]
    assert np.all(oh.sum(axis=1) == 1) and set(np.unique(oh)) <= {0, 1}
    np.testing.assert_array_equal(np.argmax(oh, axis=1), [r[2] for r in ref])
    np.testing.assert_array_equal(mx.view(np.int64), [r[0] for r in ref])
    np.testing.assert_array_equal(tw.view(np.int64), [r[1] for r in ref])
    assert np.argmax(oh[5]) == 3 and np.all(np.argmax(oh[:5], axis=1) == 0)
    for r in res:
        assert r[3] == r[4]


def test_argmax_rejects_tolerance_of_another_shape():
    def fn(party):
        x = _public_share(party, np.zeros((2, 3), np.int64))
        with pytest.raises(ValueError, match=r"tol has shape \(2, 2\), must be x's shape"):
            argmax(party, x, tol=_public_share(party, np.zeros((2, 2), np.int64)))
        return True

    res, _, _ = run_parties(2, fn)
    assert all(res)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_four_way_levels_play_exactly_the_binary_tournament(n_parties):
    """Every size from 1 to 70 (all byes of the last group, several 4-way levels), near
    ties within random per-candidate tolerances: the one-hot, the maximum and the
    winner's tolerance are the binary tournament's; with a public tolerance and without
    one too; ceil(log4 n) levels of 7 + 3 rounds plus ceil(log4 n) back."""
    rng = np.random.default_rng(5 + n_parties)
    cases = []
    for n in range(1, 71):
        vals = rng.integers(-40, 40, size=(6, n))
        tols = rng.integers(0, 12, size=vals.shape)
        cases.append((vals, tols))

    def fn(party):
        out = []
        for vals, tols in cases:
            x = _public_share(party, vals)
            before = party.ep.stats.rounds
            oh, mx, tw = argmax(party, x, return_max=True, tol=_public_share(party, tols))
            rounds = party.ep.stats.rounds - before
            pub = argmax(party, x, tol=5)
            plain = argmax(party, x, bound_bits=10)
            out.append((oh.reveal(), mx.reveal(), tw.reveal(), pub.reveal(), plain.reveal(),
                        rounds))
        return out

    res, _, _ = run_parties(n_parties, fn)
    for (vals, tols), (oh, mx, tw, pub, plain, rounds) in zip(cases, res[0]):
        n = vals.shape[1]
        ref = _tournament_reference(vals, tols)
        assert np.all(oh.sum(axis=1) == 1), n
        np.testing.assert_array_equal(np.argmax(oh, axis=1), [r[2] for r in ref], err_msg=str(n))
        np.testing.assert_array_equal(mx.view(np.int64), [r[0] for r in ref])
        np.testing.assert_array_equal(tw.view(np.int64), [r[1] for r in ref])
        ref5 = _tournament_reference(vals, np.full(vals.shape, 5))
        np.testing.assert_array_equal(np.argmax(pub, axis=1), [r[2] for r in ref5])
        np.testing.assert_array_equal(plain, _onehot(vals))
        levels = 0 if n == 1 else int(np.ceil(np.log(n) / np.log(4) - 1e-9))
        assert rounds == 11 * levels, (n, rounds)
