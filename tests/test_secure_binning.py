"""ppboost.tree.secure_binning: pooled exact summaries by oblivious shuffle + secure sums."""
import numpy as np
import pytest

from ppboost.mpc.simulate import run_parties
from ppboost.tree.binning import (FeatureSummary, cuts_from_summary, merge_summaries,
                                  summarize_column)
from ppboost.tree.secure_binning import pooled_summaries


def _columns(rng, n_parties, rows=(12, 9, 15), scale=1.0):
    """Per party, two columns: a numerical one (repeated values, shared across
    parties) and a categorical one (codes 0..5)."""
    out = []
    for p in range(n_parties):
        x0 = np.round(rng.normal(size=rows[p]) * scale, 1).astype(np.float32)
        x0[rng.random(rows[p]) < 0.15] = np.nan
        x1 = rng.integers(0, 6, rows[p]).astype(np.float32)
        out.append(np.stack([x0, x1], axis=1))
    return out


def _run(n_parties, cols, layout_parties=None, keep_opened=False, max_bin=None):
    """layout: feature 0 held by layout_parties (default all), feature 1 by all."""
    lp = list(range(n_parties)) if layout_parties is None else layout_parties
    layout = [(0, [(p, cols[p].shape[0]) for p in lp]),
              (1, [(p, cols[p].shape[0]) for p in range(n_parties)])]
    cat = {0: False, 1: True}

    def fn(party):
        mine = {}
        for j, blocks in layout:
            for r, (o, _) in enumerate(blocks):
                if o == party.id:
                    mine[(j, r)] = summarize_column(cols[o][:, j], 256, cat[j])
        before = len(party.ep.stats.transcript)
        out = pooled_summaries(party, layout, mine, cat, max_bin)
        return (out, list(party.ep.stats.transcript[before:]),
                None if party.opened is None else [o.copy() for o in party.opened])

    res, _, _ = run_parties(n_parties, fn, keep_opened=keep_opened)
    refs = {0: merge_summaries([summarize_column(cols[p][:, 0], 256, False) for p in lp]),
            1: merge_summaries([summarize_column(cols[p][:, 1], 256, True)
                                for p in range(n_parties)])}
    return res, refs


@pytest.mark.parametrize("n_parties", [2, 3])
def test_pooled_summary_equals_merge_of_plaintext_summaries(n_parties):
    rng = np.random.default_rng(n_parties)
    cols = _columns(rng, n_parties)
    res, refs = _run(n_parties, cols)
    for out, _, _ in res:                               # every party gets the same result
        for j in (0, 1):
            np.testing.assert_array_equal(out[j].values, refs[j].values)
            np.testing.assert_array_equal(out[j].weights, refs[j].weights)
            assert out[j].categorical == refs[j].categorical and out[j].exact
            for mb in (3, 256):                         # pruned and one-bin-per-value cuts
                a, b = cuts_from_summary(out[j], mb), cuts_from_summary(refs[j], mb)
                np.testing.assert_array_equal(a.cuts, b.cuts)
                assert a.min_value == b.min_value


def test_party_without_a_block_takes_part():
    """Three parties, feature 0 held by parties 0 and 2 only (a mixed split):
    party 1 runs the protocol with nothing to share for it."""
    rng = np.random.default_rng(7)
    cols = _columns(rng, 3)
    res, refs = _run(3, cols, layout_parties=[0, 2])
    for out, _, _ in res:
        np.testing.assert_array_equal(out[0].values, refs[0].values)
        np.testing.assert_array_equal(out[0].weights, refs[0].weights)
        np.testing.assert_array_equal(out[1].weights, refs[1].weights)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_transcript_and_openings_reveal_only_the_pooled_multiset(n_parties):
    """Message sizes do not depend on the data (two datasets with different
    numbers of distinct values); what a party sees opened is: as owner in the
    shuffle, uniformly masked entries; then the value words, a shuffled
    multiset (each block's distinct values, weights not among them); then the
    pooled totals padded with zeros.  No per-party count is ever opened."""
    runs = []
    for seed, scale in ((11, 1.0), (12, 30.0)):
        cols = _columns(np.random.default_rng(seed), n_parties, scale=scale)
        runs.append((cols, *_run(n_parties, cols, keep_opened=True)))
    assert [r[1] for r in runs[0][1]] == [r[1] for r in runs[1][1]]
    sizes = [c.shape[0] for c in runs[0][0]]
    N = sum(sizes[:n_parties])
    for cols, res, refs in runs:
        local = {j: [summarize_column(c[:, j], 256, j == 1) for c in cols] for j in (0, 1)}
        for pid, (_, _, opened) in enumerate(res):
            assert len(opened) == 3                    # own shuffle step, words, totals
            masked, words, totals = opened
            assert masked.shape == (2 * N, 2)
            assert 0.45 < np.unpackbits(masked.view(np.uint8)).mean() < 0.55
            for j in (0, 1):
                w = words[j * N:(j + 1) * N]
                valid = (w >> np.uint64(32)) == 1
                vals = (w[valid] & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
                # the multiset of (block, distinct value) entries, nothing about counts
                expect = np.sort(np.concatenate([s.values for s in local[j]]))
                np.testing.assert_array_equal(np.sort(vals), expect)
                assert int((~valid).sum()) == N - expect.shape[0]
                t = totals[j * N:(j + 1) * N]
                k = refs[j].values.shape[0]
                np.testing.assert_array_equal(t[:k].astype(np.float64), refs[j].weights)
                assert not t[k:].any()
        # the shuffled order is not the owners' concatenated (sorted) order
        w0 = res[0][2][1][:N]
        v0 = (w0[(w0 >> np.uint64(32)) == 1] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        concat = np.concatenate([s.values for s in local[0]]).view(np.uint32)
        assert not np.array_equal(v0, concat)


def test_bad_input_is_named():
    layout = [(0, [(0, 2), (1, 3)])]

    def fn(party):
        too_many = FeatureSummary(np.arange(3, dtype=np.float32), np.ones(3))
        frac = FeatureSummary(np.arange(2, dtype=np.float32), np.array([1.0, 0.5]))
        if party.id == 0:
            with pytest.raises(ValueError, match="summary has 3 entries, must be <= 2"):
                pooled_summaries(party, layout, {(0, 0): too_many})
            with pytest.raises(ValueError, match="must be positive integer row counts"):
                pooled_summaries(party, layout, {(0, 0): frac})
            with pytest.raises(ValueError, match="no summary for feature 0, block 0"):
                pooled_summaries(party, layout, {})
        with pytest.raises(ValueError, match="owner == 5, must be a party id in 0..1"):
            pooled_summaries(party, [(0, [(5, 2)])], {})
        return True

    res, _, _ = run_parties(2, fn)
    assert all(res)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_counts_opened_only_where_the_cuts_need_them(n_parties):
    """max_bin given: a categorical feature and a numerical one with at most max_bin
    distinct values get their values only (weights NaN; the totals opened for them are
    all 0), and still the cuts of the merged plaintext summaries; a numerical feature
    with more distinct values than max_bin gets its exact counts (quantile cuts)."""
    rng = np.random.default_rng(40 + n_parties)
    cols = _columns(rng, n_parties)
    n0 = merge_summaries([summarize_column(c[:, 0], 256, False) for c in cols]).values.shape[0]
    size0 = sum(c.shape[0] for c in cols)          # feature 0's slots come first
    for max_bin, numeric_counted in ((n0, False), (n0 - 1, True)):
        res, refs = _run(n_parties, cols, keep_opened=True, max_bin=max_bin)
        for out, _, opened in res:
            np.testing.assert_array_equal(out[0].values, refs[0].values)
            np.testing.assert_array_equal(out[1].values, refs[1].values)
            assert np.isnan(out[1].weights).all()            # categorical: never counted
            totals = opened[-1]
            assert not totals[size0:].any()                  # feature 1's slots: zeros
            if numeric_counted:
                np.testing.assert_array_equal(out[0].weights, refs[0].weights)
                assert totals[:size0].any()
            else:
                assert np.isnan(out[0].weights).all() and not totals[:size0].any()
            for j in (0, 1):
                a, b = cuts_from_summary(out[j], max_bin), cuts_from_summary(refs[j], max_bin)
                np.testing.assert_array_equal(a.cuts, b.cuts)
                assert a.min_value == b.min_value


def test_cuts_refuse_a_summary_without_counts_when_they_need_them():
    s = FeatureSummary(np.arange(10, dtype=np.float32), np.full(10, np.nan))
    with pytest.raises(ValueError, match="carries no row counts"):
        cuts_from_summary(s, 4)
    assert cuts_from_summary(s, 10).cuts.shape[0] == 10
