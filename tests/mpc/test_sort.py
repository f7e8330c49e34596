"""ppboost.mpc.sort: shuffle + quicksort with opened comparison bits (Hamada et al. 2012)."""
import numpy as np
import pytest

from ppboost.mpc.simulate import run_parties
from ppboost.mpc.sort import _partition, _pivots, sort, sort_levels

PARTIES = [2, 3]


def _inp(p, value, owner=0):
    return p.share(value if p.id == owner else None, owner=owner, shape=value.shape)


def _blockwise(values, blocks, key):
    """Reference: each block sorted on its own by ``key`` (stable)."""
    out, s = [], 0
    for b in blocks:
        seg = values[s:s + b]
        out.append(seg[np.argsort(key[s:s + b], kind="stable")])
        s += b
    return np.concatenate(out) if out else values[:0]


@pytest.mark.nojit
def test_partition_kernel_three_way_stable():
    head = np.array([1, 0, 0, 0, 0, 1, 1, 0], np.uint8)      # segments [0,5), [5], [6,8)
    lt = np.array([0, 1, 0, 1, 0, 0, 0, 1], np.uint8)
    piv = np.empty(8, np.int64)
    _pivots(head, piv)
    assert piv.tolist() == [0, 0, 0, 0, 0, 5, 6, 6]
    perm = np.empty(8, np.int64)
    new_head = np.empty(8, np.uint8)
    pending = _partition(head, lt, perm, new_head)
    # smaller rows 1, 3 (in order), pivot 0, larger 2, 4; then 5; then 7 < pivot 6
    assert perm.tolist() == [1, 3, 0, 2, 4, 5, 7, 6]
    assert new_head.tolist() == [1, 0, 1, 1, 0, 1, 1, 1]
    assert pending == 2                                       # [1, 3] and [2, 4] still open


def test_sort_levels_is_public_and_bounded():
    assert [sort_levels(n) for n in (0, 1, 2, 3, 10)] == [0, 0, 1, 2, 9]
    assert sort_levels(10_000) == 50 and sort_levels(100) == 30


@pytest.mark.parametrize("n", PARTIES)
def test_sort_matches_numpy_with_payload_and_blocks(n):
    rng = np.random.default_rng(n)
    blocks = [40, 0, 25, 1, 7]
    N = sum(blocks)
    keys = rng.choice(2 ** 40, N, replace=False).astype(np.uint64)    # distinct keys
    pay = rng.integers(0, 2 ** 64, (N, 2), dtype=np.uint64)

    def f(p):
        k, y = sort(_inp(p, keys, n - 1), _inp(p, pay, 0), key_bits=40, blocks=blocks)
        return p.reveal(k), p.reveal(y)

    res, _, _ = run_parties(n, f)
    k, y = res[0]
    np.testing.assert_array_equal(k, _blockwise(keys, blocks, keys))
    np.testing.assert_array_equal(y, _blockwise(pay, blocks, keys))


@pytest.mark.parametrize("n", PARTIES)
def test_stable_sort_breaks_ties_by_row_index(n):
    """Many equal keys: ``stable=True`` makes the compared keys distinct (key * 2^t +
    row index), and the result is numpy's stable sort, payload included."""
    rng = np.random.default_rng(10 + n)
    blocks = [30, 18]
    keys = rng.integers(0, 4, 48).astype(np.uint64)
    pay = np.arange(48, dtype=np.uint64)

    def f(p):
        k, y = sort(_inp(p, keys), _inp(p, pay, n - 1), key_bits=2, blocks=blocks, stable=True)
        return p.reveal(k), p.reveal(y)

    res, _, _ = run_parties(n, f)
    k, y = res[0]
    np.testing.assert_array_equal(k, _blockwise(keys, blocks, keys))
    np.testing.assert_array_equal(y, _blockwise(pay, blocks, keys))


def test_equal_keys_without_tie_break_still_sort():
    """Documented behaviour: equal keys without ``stable`` are sorted all the same
    (in some order), only the security argument needs distinct keys."""
    keys = np.array([5, 1, 5, 5, 0, 1, 5, 5, 5, 2], np.uint64)

    def f(p):
        k, _ = sort(_inp(p, keys), key_bits=3)
        return p.reveal(k)

    res, _, _ = run_parties(2, f)
    np.testing.assert_array_equal(res[0], np.sort(keys))


@pytest.mark.parametrize("n", PARTIES)
def test_transcript_shape_is_the_same_for_any_data(n):
    """Every message size (per sender and receiver) and the number of opened
    comparison levels depend on the public sizes only: sorted, reversed and
    random keys (different quicksort trees), fresh random shuffles each run."""
    N = 60
    rng = np.random.default_rng(5)
    datasets = [np.arange(N, dtype=np.uint64), np.arange(N, dtype=np.uint64)[::-1].copy(),
                rng.choice(2 ** 20, N, replace=False).astype(np.uint64)]
    runs = []
    for keys in datasets:
        def f(p, keys=keys):
            before = len(p.ep.stats.transcript)
            k, _ = sort(_inp(p, keys), key_bits=20, stable=True)
            bits = [o for o in p.opened if o.dtype == np.uint8 and o.shape == (N,)]
            return p.reveal(k), list(p.ep.stats.transcript[before:]), len(bits)

        res, _, _ = run_parties(n, f, keep_opened=True)
        np.testing.assert_array_equal(res[0][0], np.sort(keys))
        runs.append(res)
    for res in runs[1:]:
        assert [r[1] for r in res] == [r[1] for r in runs[0]]
    # one opened bit vector per level, sort_levels(N) levels (the random trees of
    # 60 keys need about 11 levels; the rest are padding)
    assert all(r[2] == sort_levels(N) == 28 for res in runs for r in res)


@pytest.mark.parametrize("n", PARTIES)
def test_unpadded_sort_compares_only_unsettled_rows(n):
    """``fixed_shape=False``: same result, levels stop when every segment is settled
    and only rows of unsettled segments are compared (fewer opened bits)."""
    rng = np.random.default_rng(40 + n)
    blocks = [50, 30]
    keys = rng.choice(2 ** 30, 80, replace=False).astype(np.uint64)
    pay = np.arange(80, dtype=np.uint64)

    def f(p):
        k, y = sort(_inp(p, keys), _inp(p, pay), key_bits=30, blocks=blocks, fixed_shape=False)
        bits = [o for o in p.opened if o.dtype == np.uint8]
        return p.reveal(k), p.reveal(y), len(bits), sum(b.size for b in bits)

    res, _, _ = run_parties(n, f, keep_opened=True)
    k, y, levels, compared = res[0]
    np.testing.assert_array_equal(k, _blockwise(keys, blocks, keys))
    np.testing.assert_array_equal(y, _blockwise(pay, blocks, keys))
    assert levels < sort_levels(50) and compared < levels * 80


def test_opened_comparison_bits_follow_the_random_order_not_the_data():
    """The first level's bits compare every row with the first shuffled row: for
    sorted input keys they are not all 0 or all 1 (the shuffle randomised the
    pivot), and over many runs the pivot's rank is spread over the whole range."""
    N = 16
    keys = np.arange(N, dtype=np.uint64)
    ranks = []
    for _ in range(6):
        def f(p):
            sort(_inp(p, keys), key_bits=8)
            return [o for o in p.opened if o.dtype == np.uint8 and o.shape == (N,)]

        res, _, _ = run_parties(2, f, keep_opened=True)
        first = res[0][0]
        ranks.append(int(first.sum()))          # rows below the pivot = the pivot's rank
    assert len(set(ranks)) > 1


def test_bad_input_is_named():
    def f(p):
        k = p.zeros(4)
        with pytest.raises(ValueError, match="key_bits == 0, must be an int in 1..63"):
            sort(k, key_bits=0)
        with pytest.raises(ValueError, match=r"keys have shape \(2, 2\), must be 1-D"):
            sort(p.zeros((2, 2)), key_bits=8)
        with pytest.raises(ValueError, match="payload has shape \\(3,\\), must have 4 rows"):
            sort(k, p.zeros(3), key_bits=8)
        with pytest.raises(ValueError, match="tie-break bits == 64, must be <= 63"):
            sort(k, key_bits=62, stable=True)
        with pytest.raises(ValueError, match="blocks sum to 5"):
            sort(k, key_bits=8, blocks=[2, 3])
        with pytest.raises(TypeError, match="keys must be an AShare"):
            sort(np.zeros(4, np.uint64), key_bits=8)
        return True

    res, _, _ = run_parties(2, f)
    assert all(res)
