"""Binning: cut values as xgboost hist, float32 routing, horizontal merge."""
import numpy as np
import pytest
import xgboost as xgb

from ppboost.tree.binning import (
    cuts_from_summary,
    fit_bins,
    fit_bins_from_summaries,
    merge_summaries,
    summarize_column,
)


def _xgb_cuts(X, max_bin):
    """xgboost's cuts per feature: (min value, cut values)."""
    ptr, vals = xgb.QuantileDMatrix(X, max_bin=max_bin).get_quantile_cut()
    return [(vals[ptr[j]], vals[ptr[j] + 1:ptr[j + 1]]) for j in range(X.shape[1])]


def _low_card(seed=0, n=500):
    rng = np.random.default_rng(seed)
    X = np.column_stack([
        rng.integers(0, 6, n) * 0.1,                 # 0.1 is not exact in float32
        rng.integers(-4, 4, n) * 1e-7,              # tiny magnitudes
        rng.integers(0, 200, n) * 13.7 - 900.0,     # 200 distinct values
        np.full(n, 3.25),                           # constant
        rng.choice([-1e6, 1e-3, 7.0], n),
    ]).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def test_low_cardinality_cuts_equal_xgboost():
    X = _low_card()
    mine = fit_bins(X, 256, sketch="exact")
    assert all(np.array_equal(a.cuts, b.cuts) and a.min_value == b.min_value
               for a, b in zip(fit_bins(X, 256).features, mine.features))   # both sketches
    for j, (mn, ref) in enumerate(_xgb_cuts(X, 256)):
        fc = mine.features[j]
        np.testing.assert_array_equal(fc.cuts, ref)
        assert np.float32(fc.min_value) == mn
        distinct = np.unique(X[~np.isnan(X[:, j]), j])
        assert fc.n_bins == distinct.shape[0]          # one bin per distinct value


def test_more_than_max_bin_values_equal_xgboost_when_its_sketch_is_exact():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=1000), rng.exponential(size=1000),
                         rng.integers(0, 65, 1000)]).astype(np.float32)
    mine = fit_bins(X, 64, sketch="exact")
    for j, (_mn, ref) in enumerate(_xgb_cuts(X, 64)):
        np.testing.assert_array_equal(mine.features[j].cuts, ref)
    assert list(mine.n_bins) == [64, 64, 64]       # 65 distinct values -> 64 bins


def test_bins_route_every_float32_like_the_split_condition():
    X = _low_card(1)
    m = fit_bins(X, 256)
    for j, fc in enumerate(m.features):
        vals = np.unique(X[~np.isnan(X[:, j]), j])
        probes = np.concatenate([vals, np.nextafter(vals, np.float32(np.inf)),
                                 np.nextafter(vals, np.float32(-np.inf)),
                                 fc.cuts, np.float32([-np.inf, np.inf, 0.0, -0.0])])
        probes = probes.astype(np.float32)
        Z = np.zeros((probes.shape[0], m.n_features), np.float32)
        Z[:, j] = probes
        b = m.transform(Z)[:, j]
        for i in range(fc.n_bins - 1):
            # "bins <= i go left" is exported as x < cuts[i] (float32 compare)
            np.testing.assert_array_equal(b <= i, probes < fc.cuts[i])
        # the "everything right" split condition sends no observed value left
        assert np.all(~(vals < np.float32(fc.min_value)))


def test_missing_gets_its_own_bin():
    X = np.array([[1.0, np.nan], [2.0, 5.0], [np.nan, 6.0]], np.float32)
    m = fit_bins(X, 256)
    b = m.transform(X)
    assert list(m.n_bins) == [2, 2]
    np.testing.assert_array_equal(b, [[0, 2], [1, 0], [2, 1]])


def test_categorical_bins_and_errors():
    X = np.array([[0.0], [4.0], [2.0], [4.0], [np.nan]], np.float32)
    m = fit_bins(X, 256, categorical=[True])
    fc = m.features[0]
    # as xgboost: categories 0 .. max seen, absent ones included
    ptr, ref = xgb.QuantileDMatrix(X, feature_types=["c"], enable_categorical=True) \
        .get_quantile_cut()
    assert fc.categorical and list(fc.cuts) == [0.0, 1.0, 2.0, 3.0, 4.0] == list(ref)
    np.testing.assert_array_equal(m.transform(X)[:, 0], [0, 4, 2, 4, 5])
    with pytest.raises(ValueError, match="category 7.0 is not a code in 0 .. 4"):
        m.transform(np.array([[7.0]], np.float32))
    with pytest.raises(ValueError, match="non-negative integer codes"):
        fit_bins(np.array([[0.5], [1.0]]), 256, categorical=[True])


@pytest.mark.parametrize("max_bin", [8, 256])
def test_horizontal_merge_of_party_summaries_equals_pooled(max_bin):
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.integers(0, 30, 900) * 0.3, rng.normal(size=900)]).astype(
        np.float32)
    parts = np.array_split(X, 3)
    summaries = [[summarize_column(P[:, j], max_bin) for j in range(2)] for P in parts]
    merged = fit_bins_from_summaries(summaries, max_bin)
    pooled = fit_bins(X, max_bin, sketch="exact")
    for a, b in zip(merged.features, pooled.features):
        np.testing.assert_array_equal(a.cuts, b.cuts)
        assert a.min_value == b.min_value


def test_thinned_summary_is_marked_and_still_gives_max_bin_bins():
    x = np.random.default_rng(2).normal(size=5000).astype(np.float32)
    s = summarize_column(x, max_bin=16, summary_size=100)
    assert not s.exact and s.values.shape[0] <= 101 and s.weights.sum() == 5000
    fc = cuts_from_summary(merge_summaries([s, s]), 16)
    assert fc.n_bins == 16 and np.all(np.diff(fc.cuts) > 0)


def test_bad_input():
    with pytest.raises(ValueError, match="ndim == 1, must be 2"):
        fit_bins(np.zeros(3))
    with pytest.raises(ValueError, match="categorical has shape"):
        fit_bins(np.zeros((3, 2)), categorical=[True])
    with pytest.raises(ValueError, match="must be \\(n, 2\\)"):
        fit_bins(np.zeros((3, 2))).transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="different numbers of features"):
        fit_bins_from_summaries([[summarize_column(np.zeros(2))], []])


def test_default_sketch_is_xgboosts_for_large_continuous_columns():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(20000, 4)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    ref = _xgb_cuts(X, 128)
    whole = fit_bins(X, 128)
    block = fit_bins(X[:, 2:], 128)                # an owner holding only two columns
    for j, (mn, cuts) in enumerate(ref):
        np.testing.assert_array_equal(whole.features[j].cuts, cuts)
        assert np.float32(whole.features[j].min_value) == mn
    for j in range(2):
        np.testing.assert_array_equal(block.features[j].cuts, whole.features[j + 2].cuts)
    approx = fit_bins(X, 128, sketch="exact")       # mergeable path: close, not identical
    for j in range(4):
        assert approx.n_bins[j] == 128
        assert np.max(np.abs(approx.features[j].cuts[:-1] - whole.features[j].cuts[:-1])) < 0.1
    with pytest.raises(ValueError, match="sketch == 'foo'"):
        fit_bins(X, 128, sketch="foo")


def test_aligned_summaries_sum_to_the_merge():
    from ppboost.tree.binning import FeatureSummary, align_summaries
    a = summarize_column(np.float32([1, 1, 2, np.nan]))
    b = summarize_column(np.float32([2, 3, 3, 3]))
    values, W = align_summaries([a, b])
    np.testing.assert_array_equal(values, [1, 2, 3])
    np.testing.assert_array_equal(W, [[2, 1, 0], [0, 1, 3]])
    m = merge_summaries([a, b])
    summed = FeatureSummary(values, W.sum(axis=0))
    np.testing.assert_array_equal(cuts_from_summary(summed).cuts, cuts_from_summary(m).cuts)


def test_vertical_owners_bin_locally_and_concatenate():
    from ppboost.tree.binning import BinMapper
    X = _low_card(4)
    X[:, 4] = np.where(np.isnan(X[:, 4]), np.nan, np.arange(X.shape[0]) % 5)
    whole = fit_bins(X, 256, categorical=[False, False, False, False, True])
    parts = BinMapper.concat([fit_bins(X[:, :2], 256),
                              fit_bins(X[:, 2:], 256, categorical=[False, False, True])])
    assert parts.n_features == 5 and list(parts.categorical) == [0, 0, 0, 0, 1]
    np.testing.assert_array_equal(parts.transform(X), whole.transform(X))
