"""ppboost.tree.secure_binning: the cuts of features split across row blocks by
oblivious sort (shared_cuts), and the public quantile ranks (quantile_ranks)."""
import numpy as np
import pytest

from ppboost.crypto.floatbits import to_ordered_uint32
from ppboost.mpc.simulate import run_parties
from ppboost.tree.binning import (
    FeatureSummary,
    _xgb_prune,
    cuts_from_summary,
    merge_summaries,
    summarize_column,
)
from ppboost.tree.secure_binning import quantile_ranks, shared_cuts


def test_cuts_refuse_a_summary_without_counts_when_they_need_them():
    """cuts_from_summary (plaintext) refuses NaN weights where the quantile cuts
    read them, and ignores them where there is one bin per value."""
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
    for _out, _, opened in res:
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


def _ref_cuts(cols, categorical, max_bin):
    return cuts_from_summary(merge_summaries([summarize_column(c, 256, categorical)
                                              for c in cols]), max_bin)


def test_shared_cuts_party_without_a_block_takes_part():
    """Three parties (a mixed split): feature 0 is held by parties 0 and 2 only,
    feature 1 by all three; in a second layout party 1 owns no block at all.
    Party 1 runs the protocol with nothing to share and gets the same cuts."""
    rng = np.random.default_rng(7)
    rows = (30, 25, 28)
    cols = [np.stack([rng.normal(size=n), rng.integers(0, 6, n)], axis=1).astype(np.float32)
            for n in rows]
    for c in cols:
        c[rng.random(c.shape[0]) < 0.1, 0] = np.nan
    layouts = ([(0, [(0, rows[0]), (2, rows[2])]), (1, [(p, rows[p]) for p in range(3)])],
               [(0, [(0, rows[0]), (2, rows[2])]), (1, [(2, rows[2]), (0, rows[0])])])
    cat = {0: False, 1: True}
    for layout in layouts:
        def fn(party, layout=layout):
            mine = {(j, r): cols[o][:, j] for j, blocks in layout
                    for r, (o, _) in enumerate(blocks) if o == party.id}
            return shared_cuts(party, layout, mine, cat, 8)

        res, _, _ = run_parties(3, fn)
        for j, blocks in layout:
            ref = _ref_cuts([cols[o][:, j] for o, _ in blocks], cat[j], 8)
            for out in res:
                np.testing.assert_array_equal(out[j].cuts, ref.cuts)
                assert out[j].min_value == ref.min_value
        # feature 0 takes the quantile path (more than max_bin + 1 distinct values)
        assert res[0][0].cuts.shape[0] == 8


@pytest.mark.parametrize("codes", [np.arange(20), np.array([0, 3, 30])])
def test_shared_cuts_categorical_takes_one_bin_per_code_at_any_max_bin(codes):
    """A categorical feature never takes the quantile path: more distinct codes than
    max_bin + 1, or a large code with few distinct ones, give one bin per code
    0 .. max code (absent codes included), as cuts_from_summary / xgboost."""
    rng = np.random.default_rng(int(codes.sum()))
    cols = [rng.choice(codes, n).astype(np.float32) for n in (23, 17)]
    cols[0][0], cols[1][0] = codes.max(), codes.min()
    cols[1][1] = np.nan
    layout = [(0, [(0, 23), (1, 17)])]

    def fn(party):
        return shared_cuts(party, layout, {(0, party.id): cols[party.id]}, {0: True}, 4)

    res, _, _ = run_parties(2, fn)
    ref = _ref_cuts(cols, True, 4)
    np.testing.assert_array_equal(ref.cuts, np.arange(codes.max() + 1, dtype=np.float32))
    for out in res:
        assert out[0].categorical
        np.testing.assert_array_equal(out[0].cuts, ref.cuts)
        assert out[0].min_value == ref.min_value


def test_shared_cuts_bad_layout_and_columns_are_named():
    layout = [(0, [(0, 3), (1, 2)])]

    def fn(party):
        if party.id == 0:
            with pytest.raises(ValueError, match="column dtype == <U1, must be numeric"):
                shared_cuts(party, layout, {(0, 0): np.array(["a", "b", "c"])}, None, 4)
        with pytest.raises(ValueError, match="block size == -1, must be >= 0"):
            shared_cuts(party, [(0, [(0, -1)])], {}, None, 4)
        with pytest.raises(ValueError, match="layout lists a feature twice"):
            shared_cuts(party, [(0, [(0, 1)]), (0, [(1, 1)])], {}, None, 4)
        with pytest.raises(ValueError, match=r"must be \(feature, \[\(owner, size\)"):
            shared_cuts(party, [0], {}, None, 4)
        return True

    res, _, _ = run_parties(2, fn)
    assert all(res)
    with pytest.raises(TypeError, match="shared_cuts needs a Party, got NoneType"):
        shared_cuts(None, layout, {}, None, 4)
