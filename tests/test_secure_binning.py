"""ppboost.tree.secure_binning: cuts by oblivious sort (shared_cuts); pooled exact
summaries by oblivious shuffle + secure sums (pooled_summaries, the former protocol)."""
import numpy as np
import pytest

from ppboost.crypto.floatbits import to_ordered_uint32
from ppboost.mpc.simulate import run_parties
from ppboost.tree.binning import (FeatureSummary, _xgb_prune, cuts_from_summary,
                                  merge_summaries, summarize_column)
from ppboost.tree.secure_binning import pooled_summaries, quantile_ranks, shared_cuts


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


# ----------------------------------------------------------------------------- shared_cuts
def _cut_columns(rng, n_parties, rows=(30, 41, 22)):
    """Per party four columns: 0 numerical with repeated values (values path at
    max_bin 64, quantile path at 8), 1 categorical codes, 2 continuous (quantile
    path), 3 integers -3..3 with party 1's block all missing.  Missing values everywhere."""
    out = []
    for p in range(n_parties):
        n = rows[p]
        x0 = np.round(rng.normal(size=n), 1).astype(np.float32)
        x1 = rng.integers(0, 6, n).astype(np.float32)
        x2 = rng.normal(size=n).astype(np.float32)
        x3 = rng.integers(-3, 4, n).astype(np.float32)
        X = np.stack([x0, x1, x2, x3], axis=1)
        X[rng.random(X.shape) < 0.12] = np.nan
        if p == 1:
            X[:, 3] = np.nan
        out.append(X)
    return out


_CAT = {0: False, 1: True, 2: False, 3: False}


def _run_cuts(n_parties, cols, max_bin, keep_opened=False):
    layout = [(j, [(p, cols[p].shape[0]) for p in range(n_parties)]) for j in range(4)]

    def fn(party):
        mine = {(j, p): cols[p][:, j] for j in range(4) for p in range(n_parties)
                if p == party.id}
        before = len(party.ep.stats.transcript)
        out = shared_cuts(party, layout, mine, _CAT, max_bin)
        return (out, list(party.ep.stats.transcript[before:]),
                None if party.opened is None else [o.copy() for o in party.opened])

    res, _, _ = run_parties(n_parties, fn, keep_opened=keep_opened)
    refs = {j: cuts_from_summary(merge_summaries([summarize_column(c[:, j], 256, _CAT[j])
                                                   for c in cols]), max_bin) for j in range(4)}
    return res, refs


def _words(values):
    return to_ordered_uint32(np.asarray(values, np.float32)).astype(np.uint64)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_shared_cuts_equal_the_merged_summary_cuts(n_parties):
    """(a) few distinct values, (b) categorical, (c) continuous with quantile cuts,
    (d) missing values, (e) a block with all values missing: the cuts and min_value
    are exactly cuts_from_summary of the merged exact summaries, on every party,
    at a max_bin that sends feature 2 down the quantile path and one that does not."""
    cols = _cut_columns(np.random.default_rng(n_parties), n_parties)
    for max_bin in (8, 64):
        res, refs = _run_cuts(n_parties, cols, max_bin)
        for out, _, _ in res:
            for j in range(4):
                np.testing.assert_array_equal(out[j].cuts, refs[j].cuts)
                assert out[j].min_value == refs[j].min_value
                assert out[j].categorical == refs[j].categorical


def test_shared_cuts_all_missing_and_single_value_features():
    rows = (5, 7)
    cols = [np.full((n, 4), np.nan, np.float32) for n in rows]
    cols[0][:, 0] = 2.5                                 # one distinct value
    cols[1][:3, 1] = 0                                  # categorical, code 0 only
    cols[1][:, 2] = -0.0                                # -0.0 and +0.0 are one value
    cols[0][:2, 2] = 0.0
    res, refs = _run_cuts(2, cols, 4)
    for out, _, _ in res:
        for j in range(4):
            np.testing.assert_array_equal(out[j].cuts, refs[j].cuts)
            assert out[j].min_value == refs[j].min_value


def test_shared_cuts_single_row_and_empty_block():
    """One pooled row (party 1's block is empty): the sort and comparisons have
    nothing to compare, the cuts are still cuts_from_summary's."""
    layout = [(0, [(0, 1), (1, 0)]), (1, [(0, 1), (1, 0)])]
    col = {0: np.array([3.5], np.float32), 1: np.array([np.nan], np.float32)}

    def fn(party):
        mine = {(j, 0): col[j] for j in (0, 1)} if party.id == 0 else {}
        return shared_cuts(party, layout, mine, None, 4)

    res, _, _ = run_parties(2, fn)
    for out in res:
        for j in (0, 1):
            ref = cuts_from_summary(summarize_column(col[j]), 4)
            np.testing.assert_array_equal(out[j].cuts, ref.cuts)
            assert out[j].min_value == ref.min_value


@pytest.mark.parametrize("n_parties", [2, 3])
def test_shared_cuts_open_only_the_cuts_and_the_named_aggregates(n_parties):
    """At max_bin 8: features 0 and 2 take the quantile path, 1 is categorical, 3
    (at most 7 distinct values) the values path.  Opened: the aggregates (m x 5:
    n_valid, c_min, r_max, min, max for the quantile path; the max code for the
    categorical one; zeros for the values path); then, after this party's own step
    of the final shuffle (masked), the flags (per feature [N rows | max_bin - 1
    picks]: D ones among the values path's rows, one 1 per distinct pick on the
    quantile path, zeros elsewhere) and the words: the distinct values (values
    path), the distinct values at the quantile ranks, each a cut or the min / max,
    each once (quantile path), zeros in every other slot."""
    cols = _cut_columns(np.random.default_rng(20 + n_parties), n_parties)
    max_bin = 8
    res, refs = _run_cuts(n_parties, cols, max_bin, keep_opened=True)
    N = sum(c.shape[0] for c in cols)
    Q, slots = max_bin - 1, min(N, max_bin + 1)
    merged = {j: merge_summaries([summarize_column(c[:, j], 256, _CAT[j]) for c in cols])
              for j in range(4)}
    assert merged[3].values.shape[0] <= max_bin + 1 < merged[2].values.shape[0]
    agg = np.zeros((4, 5), np.uint64)
    unique_picks = {}
    for j in range(4):
        vals, cnt = merged[j].values, merged[j].weights
        if _CAT[j]:
            agg[j, 4] = _words(vals[-1:])[0]
        elif vals.shape[0] > max_bin + 1:
            agg[j] = [cnt.sum(), cnt[0], cnt.sum() - cnt[-1], *_words(vals[[0, -1]])]
            rows = np.repeat(vals, cnt.astype(np.int64))
            ranks = quantile_ranks(rows.shape[0], int(cnt[0]), int(cnt.sum() - cnt[-1]), max_bin)
            unique_picks[j] = np.unique(rows[ranks])
    for out, _, opened in res:
        assert any(o.dtype == np.uint64 and np.array_equal(o.reshape(-1), agg.reshape(-1))
                   for o in opened)
        masked, flags, words = opened[-3], opened[-2], opened[-1]
        assert masked.shape == (4 * (N + Q), 2)
        assert 0.4 < np.unpackbits(masked.view(np.uint8)).mean() < 0.6
        assert flags.shape == (4 * (N + Q),) and words.shape == (4 * slots,)
        assert set(np.unique(flags)) <= {0, 1}
        for j in range(4):
            vals = merged[j].values
            fv = flags[j * (N + Q):j * (N + Q) + N]
            fp = flags[j * (N + Q) + N:(j + 1) * (N + Q)]
            w = words[j * slots:(j + 1) * slots]
            if _CAT[j]:
                assert not flags[j * (N + Q):(j + 1) * (N + Q)].any() and not w.any()
            elif j not in unique_picks:
                assert not fp.any() and fv.sum() == vals.shape[0]
                np.testing.assert_array_equal(np.sort(w[:vals.shape[0]]), _words(vals))
                assert not w[vals.shape[0]:].any()
            else:
                k = unique_picks[j].shape[0]
                assert not fv.any() and fp.sum() == k
                np.testing.assert_array_equal(np.sort(w[:k]), _words(unique_picks[j]))
                assert not w[k:].any()
                inner, ends = set(refs[j].cuts[:-1].tolist()), set(vals[[0, -1]].tolist())
                assert inner <= set(unique_picks[j].tolist()) <= inner | ends


@pytest.mark.parametrize("n_parties", [2, 3])
def test_shared_cuts_transcript_depends_on_the_shape_only(n_parties):
    """Two datasets of the same shape where every numerical feature takes the other
    path (few distinct values vs continuous): every message size, per sender and
    receiver, is the same (fresh random shuffles in each run)."""
    rng = np.random.default_rng(30)
    few = _cut_columns(rng, n_parties)
    many = [c.copy() for c in few]
    for c in few:
        c[:, 0], c[:, 2] = np.round(c[:, 0]), np.round(c[:, 2])
    for c in many:
        c[:, 0] = rng.normal(size=c.shape[0])
        c[:, 3] = np.where(np.isnan(c[:, 3]), np.nan, rng.normal(size=c.shape[0]))
    transcripts = []
    for cols in (few, many):
        res, refs = _run_cuts(n_parties, cols, 8)
        for j in range(4):
            np.testing.assert_array_equal(res[0][0][j].cuts, refs[j].cuts)
        n_distinct = [merge_summaries([summarize_column(c[:, j]) for c in cols]).values.shape[0]
                      for j in (0, 2, 3)]
        assert all(k <= 9 for k in n_distinct) if cols is few else all(k > 9 for k in n_distinct)
        transcripts.append([r[1] for r in res])
    assert transcripts[0] == transcripts[1]


def test_quantile_ranks_pick_what_xgboost_prune_keeps():
    """Plaintext identity behind the quantile path: the values at the public ranks
    are exactly the entries _xgb_prune (WQSummary::SetPrune) keeps."""
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 400:
        D = int(rng.integers(4, 300))
        mb = int(rng.integers(2, D - 1))
        w = rng.integers(1, int(rng.choice([2, 5, 50, 1000])), D).astype(np.float64)
        rows = np.repeat(np.arange(D), w.astype(np.int64))
        pos = quantile_ranks(rows.shape[0], int(w[0]), rows.shape[0] - int(w[-1]), mb)
        picked = np.unique(np.concatenate([[0], rows[pos], [D - 1]]))
        np.testing.assert_array_equal(picked, _xgb_prune(w, mb + 1))
        checked += 1
    with pytest.raises(ValueError, match="must satisfy 0 < c_min <= r_max < n_valid"):
        quantile_ranks(10, 0, 5, 4)


def test_shared_cuts_bad_input_is_named():
    layout = [(0, [(0, 3), (1, 2)])]

    def fn(party):
        if party.id == 0:
            with pytest.raises(ValueError, match=r"column has shape \(2,\), must be \(3,\)"):
                shared_cuts(party, layout, {(0, 0): np.zeros(2)}, None, 4)
            with pytest.raises(ValueError, match="no column for feature 0, block 0"):
                shared_cuts(party, layout, {}, None, 4)
            with pytest.raises(ValueError, match="not non-negative integer codes"):
                shared_cuts(party, layout, {(0, 0): np.array([0, 1.5, 2])}, {0: True}, 4)
        with pytest.raises(ValueError, match="max_bin == 1, must be an int >= 2"):
            shared_cuts(party, layout, {}, None, 1)
        with pytest.raises(ValueError, match="owner == 5, must be a party id in 0..1"):
            shared_cuts(party, [(0, [(5, 2)])], {}, None, 4)
        return True

    res, _, _ = run_parties(2, fn)
    assert all(res)
