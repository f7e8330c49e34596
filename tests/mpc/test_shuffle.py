"""ppboost.mpc.shuffle: oblivious shuffle by composing one owner permutation per party."""
import numpy as np
import pytest

from ppboost.crypto.prg import PRG
from ppboost.mpc.shuffle import block_permutation, shuffle
from ppboost.mpc.simulate import run_parties

PARTIES = [2, 3]


def _inp(p, value, owner=0):
    return p.share(value if p.id == owner else None, owner=owner, shape=value.shape)


def _rows(a):
    """Rows of a 2-D array as a sorted list of tuples (the multiset)."""
    return sorted(map(tuple, a.reshape(a.shape[0], -1 if a.size else 0).tolist()))


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("shape,blocks", [((30, 2), None), ((30, 3), [10, 0, 20]),
                                          ((7,), [1, 6]), ((1, 2), None)])
def test_shuffle_is_a_permutation_of_rows_within_blocks(n, shape, blocks):
    rng = np.random.default_rng(shape[0] + n)
    X = rng.integers(0, 2 ** 64, shape, dtype=np.uint64)

    def f(p):
        x = _inp(p, X, n - 1)
        for o in range(n):                # the offline phase, so that only online rounds count
            p.dealer.prefetch("perm", shape=X.shape, owner=o, count=1)
        p.reveal(p.zeros(1))              # ends the round of the dealer requests
        before = p.ep.stats.snapshot()
        y = shuffle(x, blocks)
        after = p.ep.stats.snapshot()
        return p.reveal(y), after["rounds"] - before["rounds"]

    res, stats, _ = run_parties(n, f)
    Y = res[0][0]
    assert Y.shape == X.shape
    bl = [shape[0]] if blocks is None else blocks
    start = 0
    for size in bl:                       # every block keeps its multiset of rows
        assert _rows(Y[start:start + size]) == _rows(X[start:start + size])
        start += size
    assert all(r[1] == n for r in res)    # one round per party as owner
    assert stats["by_kind"]["perm"] == n


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_composed_permutation_is_unknown_to_a_single_party(n):
    """Party 0 uses the same private permutation every time (its PRG is reset),
    yet the composed permutation varies with the other parties' randomness and
    is about uniform over all 3! = 6 permutations of 3 rows: party 0's own
    randomness does not determine it.  Every party's received taus are fresh
    permutations; the owner's opened values are masked."""
    X = np.arange(3, dtype=np.uint64) * np.uint64(1000) + np.uint64(7)
    trials = 90

    def f(p):
        p.prg = PRG(bytes([p.id + 1]) * 16)             # deterministic local randomness
        outs = []
        for _ in range(trials):
            if p.id == 0:
                p.prg = PRG(b"\x01" * 16)               # party 0: the same sigma_0 each time
            outs.append(p.reveal(shuffle(_inp(p, X, 0))))
        return outs

    res, _, _ = run_parties(n, f, keep_opened=False, timeout=60)
    outs = res[0]
    counts = {}
    for y in outs:
        assert sorted(y.tolist()) == sorted(X.tolist())
        counts[tuple(y.tolist())] = counts.get(tuple(y.tolist()), 0) + 1
    assert len(counts) == 6                            # every permutation occurs
    assert min(counts.values()) >= 4 and max(counts.values()) <= 32   # expected 15 each


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_shuffle_transcript_and_view_independent_of_the_data(n):
    """Same message sizes and rounds for different inputs; the values each party
    sees opened (masked sums) look uniform even for an all-zero input."""
    shape = (64, 2)
    inputs = [np.zeros(shape, np.uint64),
              np.random.default_rng(1).integers(0, 2 ** 64, shape, dtype=np.uint64)]
    transcripts, opened = [], []
    for X in inputs:
        def f(p, X=X):
            y = shuffle(_inp(p, X, 0), blocks=[32, 32])
            return list(p.ep.stats.transcript), [o.copy() for o in p.opened], p.reveal(y)

        res, _, _ = run_parties(n, f, keep_opened=True)
        transcripts.append([r[0] for r in res])
        opened.append([r[1] for r in res])
        assert _rows(res[0][2][:32]) == _rows(X[:32])
    assert transcripts[0] == transcripts[1]
    for pid in range(n):
        seen = opened[0][pid][0]                        # party pid as owner: X + a
        assert seen.shape == shape
        bits = np.unpackbits(seen.view(np.uint8)).mean()
        assert 0.45 < bits < 0.55                       # masked, not the zeros


def test_block_permutation_and_bad_input():
    prg = PRG(b"\x02" * 16)
    p = block_permutation(prg, [3, 0, 4])
    assert sorted(p[:3].tolist()) == [0, 1, 2] and sorted(p[3:].tolist()) == [3, 4, 5, 6]

    def f(party):
        x = _inp(party, np.zeros((5, 2), np.uint64))
        with pytest.raises(ValueError, match="blocks sum to 4, must sum to the number of rows 5"):
            shuffle(x, [2, 2])
        with pytest.raises(ValueError, match="must be a 1-D list of non-negative ints"):
            shuffle(x, [6, -1])
        with pytest.raises(TypeError, match="shuffle expects an AShare"):
            shuffle(np.zeros(5, np.uint64))
        return True

    res, _, _ = run_parties(2, f)
    assert all(res)
