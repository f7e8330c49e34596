"""The federated sketch (ppboost.tree.federated_binning): the cuts of the exact pooled
summary from secure sums of range counts, in process with 3 to 5 parties."""
from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from ppboost.transport.inprocess import run_inprocess
from ppboost.tree.binning import BinMapper, fit_bins, fit_bins_from_summaries, summarize_column
from ppboost.tree.federated import Federation
from ppboost.tree.federated_binning import SLOTS, bin_codes, count_ranges, federated_cuts, sorted_words


def _federated(Xs, cat, max_bin):
    def party(ep):
        fed = Federation(ep, range(len(Xs)), 0)
        fed.session(SLOTS, "set-up")
        return federated_cuts(fed, Xs[ep.me], cat, max_bin)
    res, _, _ = run_inprocess(len(Xs), party, None, timeout=60)
    return res


def _same(a: BinMapper, b: BinMapper):
    for j, (fa, fb) in enumerate(zip(a.features, b.features)):
        assert np.array_equal(fa.cuts, fb.cuts), j
        assert fa.min_value == fb.min_value and fa.categorical == fb.categorical, j


def _exact_reference(Xs, cat, max_bin):
    m = Xs[0].shape[1]
    return fit_bins_from_summaries([[summarize_column(x[:, j], max_bin, bool(cat[j]))
                                     for j in range(m)] for x in Xs], max_bin)


@pytest.mark.parametrize("seed", range(6))
def test_cuts_are_those_of_the_exact_pooled_summary(seed):
    """Continuous values (SetPrune picks), rounded ones (ties), a column of max_bin + 1
    or + 2 distinct values, a sparse one, NaNs, -0.0: every party gets the same cuts,
    those of the merged exact summaries (the MPC mode's shared_cuts)."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(300, 12000))
    max_bin = int(rng.choice([4, 16, 64, 256]))
    X = np.stack([rng.standard_normal(n) * 10.0 ** rng.integers(-3, 5),
                  np.round(rng.standard_normal(n), int(rng.integers(0, 3))),
                  rng.integers(0, max_bin + int(rng.integers(0, 3)), n),
                  rng.exponential(1, n) * (rng.random(n) < 0.7)], 1).astype(np.float32)
    X[rng.random(X.shape) < 0.03] = np.nan
    X[0, 1] = -0.0
    n_parties = int(rng.integers(3, 6))
    Xs = np.split(X, np.sort(rng.choice(np.arange(1, n), n_parties - 1, replace=False)))
    cat = np.zeros(4, bool)
    res = _federated(Xs, cat, max_bin)
    ref = _exact_reference(Xs, cat, max_bin)
    for mapper, _stats in res:
        _same(mapper, ref)
    assert 2 <= res[0][1]["stages"] <= SLOTS - 1


def test_low_cardinality_cuts_are_xgboosts_and_categoricals_get_one_bin_per_code():
    rng = np.random.default_rng(4)
    n = 5000
    X = np.stack([rng.integers(0, 16, n), rng.integers(0, 16, n) * 0.5 - 3,
                  rng.integers(0, 5, n), np.full(n, np.nan)], 1).astype(np.float32)
    X[rng.random((n, 4)) < 0.05] = np.nan
    X[:, 2][X[:, 2] == 4] = 3                            # codes 0..3 present, 4 absent
    cat = np.array([False, False, True, False])
    Xs = np.array_split(X, 3)
    mapper, stats = _federated(Xs, cat, 16)[0]
    _same(mapper, _exact_reference(Xs, cat, 16))
    # xgboost's own sketch on the pooled numerical columns (<= max_bin distinct values)
    ptr, vals = xgb.QuantileDMatrix(X[:, :2], max_bin=16).get_quantile_cut()
    for j in range(2):
        assert np.array_equal(mapper.features[j].cuts, vals[ptr[j] + 1:ptr[j + 1]])
        assert mapper.features[j].min_value == np.float32(vals[ptr[j]])
    assert np.array_equal(mapper.features[2].cuts, np.arange(4, dtype=np.float32))
    assert mapper.features[3].n_bins == 1                # all missing: one empty bin
    # nothing but the counts asked for: stage 1 is 257 counts per feature
    assert stats["counts_opened"] >= 4 * 257


def test_bin_codes_match_the_mapper_and_are_uint8_when_they_fit():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 5)).astype(np.float32)
    mapper = fit_bins(X, 256, sketch="exact")
    codes = bin_codes(X, mapper)
    assert codes.dtype == np.uint8 and np.array_equal(codes, mapper.transform(X))
    X[3, 2] = np.nan                                     # missing = code 256: needs uint16
    codes = bin_codes(X, mapper)
    assert codes.dtype == np.uint16 and np.array_equal(codes, mapper.transform(X))


def test_range_counts_against_numpy():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((500, 3)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[0, 0] = -0.0
    from ppboost.crypto.floatbits import to_ordered_uint32
    W = sorted_words(X)
    # feature 0: the whole word range; feature 1: two ranges of width 2^24; feature 2: none
    lo = np.array([0, 0x3F000000, 0xBF000000], np.uint64)
    wb = np.array([32, 24, 24], np.int64)
    off = np.array([0, 1, 3, 3], np.int64)
    counts, missing = count_ranges(W, lo, wb, off, 8)
    assert np.array_equal(missing, np.isnan(X).sum(axis=0))
    w0 = to_ordered_uint32(X[~np.isnan(X[:, 0]), 0]).astype(np.uint64)
    assert np.array_equal(counts[:256], np.bincount(w0 >> np.uint64(24), minlength=256))
    w1 = to_ordered_uint32(X[~np.isnan(X[:, 1]), 1]).astype(np.uint64)
    for k, start in enumerate((0x3F000000, 0xBF000000)):
        inside = w1[(w1 >= start) & (w1 < start + (1 << 24))]
        want = np.bincount((inside - np.uint64(start)) >> np.uint64(16), minlength=256)
        a = 256 + 256 * k
        assert np.array_equal(counts[a:a + 256], want)
    # 16 sub-ranges (4 bits) of one range of width 2^20
    start = int(np.median(w1)) & ~((1 << 20) - 1)
    c4, _ = count_ranges(W, np.array([start], np.uint64), np.array([20]),
                         np.array([0, 0, 1, 1]), 4)
    inside = w1[(w1 >= start) & (w1 < start + (1 << 20))]
    assert c4.sum() == inside.shape[0] > 0
    assert np.array_equal(c4, np.bincount((inside - np.uint64(start)) >> np.uint64(16),
                                          minlength=16))
