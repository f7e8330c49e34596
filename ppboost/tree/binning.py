"""Per-feature bins matching xgboost ``hist`` (``max_bin``, default 256).

xgboost's cut values, reproduced here (checked against xgboost 3.2 models):

* A numerical feature with distinct float32 values v_1 < ... < v_k, k <= max_bin,
  gets exactly k bins. The cut (upper, exclusive bound) of bin i is v_{i+2},
  and the last cut is ``v_k + (|v_k| + 1e-5)``; the minimum value stored for
  the feature is ``v_1 - (|v_1| + 1e-5)``. A value x lands in the first bin
  whose cut is > x. A split "bins <= i go left" is written to the model as
  ``split_condition = cut[i]`` and xgboost sends x left iff x < cut[i] in
  float32, so every float32 input routes exactly as in xgboost's own model.
* More than max_bin distinct values: by default (:func:`fit_bins`,
  ``sketch="xgboost"``) the owner runs xgboost's own sketch on its columns,
  which gives xgboost's cuts exactly. The mergeable path (exact summaries,
  :func:`cuts_from_summary`) reproduces xgboost's ``WQSummary::SetPrune``
  rule, so it is identical while xgboost's sketch is exact (up to a few
  thousand rows at 256 bins) and a close approximation beyond.
* Categorical features: codes must be non-negative integers; as in xgboost
  there is one bin per category 0 .. max code seen (absent codes included),
  the cut value of a bin is the category itself.
* NaN is missing: it gets a dedicated bin, index ``n_bins[j]`` (after the
  regular bins).

Locality: :func:`fit_bins` needs only one party's columns, so in a vertical
split each owner bins its own columns. In a horizontal split no party sends
a summary of its rows: the secure backend gets the cuts of a feature whose
rows are split across parties from
:func:`ppboost.tree.secure_binning.shared_cuts`, an oblivious sort of the
pooled rows that opens only the cuts (docs/design.md, section 7). Those cuts
equal :func:`cuts_from_summary` of :func:`merge_summaries` of the parties'
exact summaries, so :func:`summarize_column`, :func:`merge_summaries` and
:func:`fit_bins_from_summaries` stay here as the plaintext reference (the
tests use them). The merge is an elementwise sum of weights over a union of
values; for columns with at most ``summary_size`` distinct values per party
the merged summary is exact, so the cuts equal the ones computed on the
pooled data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureSummary", "FeatureCuts", "BinMapper", "summarize_column",
           "merge_summaries", "align_summaries", "cuts_from_summary", "fit_bins", "fit_bins_from_summaries"]


@dataclass(frozen=True)
class FeatureSummary:
    """Sorted distinct float32 values with weights (row counts), one column.

    ``exact`` is False when the values were thinned to a quantile summary.
    """

    values: np.ndarray      # float32, strictly increasing
    weights: np.ndarray     # float64, > 0 row counts (NaN: unknown; refused where cuts need them)
    categorical: bool = False
    exact: bool = True


@dataclass(frozen=True)
class FeatureCuts:
    """Cut values of one feature, as xgboost stores them (``HistogramCuts``)."""

    cuts: np.ndarray        # float32, one per bin (upper bound; category value if categorical)
    min_value: float        # float32 value used as split_condition for "everything right"
    categorical: bool = False

    @property
    def n_bins(self) -> int:
        return int(self.cuts.shape[0])


def _as_f32_column(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"column has ndim == {x.ndim}, must be 1")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise ValueError(f"column dtype == {x.dtype}, must be numeric")
    return x.astype(np.float32)


def summarize_column(x, max_bin: int = 256, categorical: bool = False,
                     summary_size: int | None = None) -> FeatureSummary:
    """Summarise one column locally: distinct values and their counts.

    Exact by default. If ``summary_size`` is given and the column has more
    distinct values, keep ``summary_size`` values at evenly spaced ranks, each
    carrying the weight of the rows since the previous kept value (a smaller
    message for the horizontal merge, at the price of approximate cuts).
    """
    x = _as_f32_column(x)
    x = x[~np.isnan(x)]
    if categorical:
        if np.any(x < 0) or np.any(x != np.round(x)):
            raise ValueError("categorical column holds values that are not non-negative "
                             "integer codes")
    vals, counts = np.unique(x, return_counts=True)
    counts = counts.astype(np.float64)
    size = summary_size
    if categorical or size is None or vals.shape[0] <= size:
        return FeatureSummary(vals, counts, categorical, True)
    cw = np.cumsum(counts)
    targets = np.linspace(cw[-1] / size, cw[-1], size)
    idx = np.unique(np.searchsorted(cw, targets, side="left"))
    idx[-1] = vals.shape[0] - 1
    idx = np.unique(np.concatenate([[0], idx]))
    w = np.diff(np.concatenate([[0.0], cw[idx]]))
    return FeatureSummary(vals[idx], w, False, False)


def merge_summaries(summaries: list[FeatureSummary]) -> FeatureSummary:
    """Union of values with summed weights (exact iff every input is exact)."""
    if not summaries:
        raise ValueError("merge_summaries got an empty list, needs >= 1 summary")
    cat = {s.categorical for s in summaries}
    if len(cat) != 1:
        raise ValueError("summaries disagree on whether the feature is categorical")
    vals = np.concatenate([s.values for s in summaries]).astype(np.float32)
    w = np.concatenate([s.weights for s in summaries]).astype(np.float64)
    uniq, inv = np.unique(vals, return_inverse=True)
    merged = np.bincount(inv, weights=w, minlength=uniq.shape[0])
    return FeatureSummary(uniq, merged, cat.pop(), all(s.exact for s in summaries))


def align_summaries(summaries: list[FeatureSummary]) -> tuple[np.ndarray, np.ndarray]:
    """Put per-party summaries of one feature on their common support.

    Returns ``(values, W)`` with ``W[p, i]`` party p's weight at ``values[i]``
    (0 where p has no such value). ``merge_summaries`` is then
    ``FeatureSummary(values, W.sum(axis=0))``: an elementwise sum of one vector
    per party, which a secure backend can compute by secure aggregation so
    that no party sees another's counts (the support itself is public here).
    """
    if not summaries:
        raise ValueError("align_summaries got an empty list, needs >= 1 summary")
    values = np.unique(np.concatenate([s.values for s in summaries]).astype(np.float32))
    W = np.zeros((len(summaries), values.shape[0]), dtype=np.float64)
    for p, s in enumerate(summaries):
        W[p, np.searchsorted(values, s.values.astype(np.float32))] = s.weights
    return values, W


def _xgb_prune(weights: np.ndarray, maxsize: int) -> np.ndarray:
    """Indices kept by xgboost's ``WQSummary::SetPrune(src, maxsize)``.

    The summary entries are taken as exact: rmin_i = sum_{j<i} w_j,
    rmax_i = rmin_i + w_i, wmin_i = w_i; rank arithmetic in float32 as in
    xgboost (``RType = float``). Vectorised: the scan pointer of the C++ loop
    only moves forward, so each target is a ``searchsorted``.
    """
    size = weights.shape[0]
    if size <= maxsize:
        return np.arange(size)
    return _xgb_prune_picks(weights, maxsize)


def _xgb_prune_picks(weights: np.ndarray, maxsize: int) -> np.ndarray:
    """:func:`_xgb_prune` without its shortcut for summaries of at most ``maxsize``
    entries (the federated sketch calls it on a shortened summary that stands for a
    longer one, :mod:`ppboost.tree.federated_binning`)."""
    size = weights.shape[0]
    w = weights.astype(np.float32)
    rmax = np.cumsum(w, dtype=np.float32)
    rmin = (rmax - w).astype(np.float32)
    s = (rmax + rmin).astype(np.float32)
    begin, rng = rmax[0], np.float32(rmin[-1] - rmax[0])
    n = maxsize - 1
    k = np.arange(1, n, dtype=np.float32)
    dx2 = (np.float32(2) * ((k * rng) / np.float32(n) + begin)).astype(np.float32)
    i = 1 + np.searchsorted(s[2:], dx2, side="right")       # first i with dx2 < s[i+1]
    stop = np.flatnonzero(i >= size - 1)
    if stop.shape[0]:
        i, dx2 = i[:stop[0]], dx2[:stop[0]]
    pick = np.where(dx2 < rmax[i] + rmin[i + 1], i, i + 1)
    kept = np.unique(np.concatenate([[0], pick, [size - 1]]))
    return kept


def cuts_from_summary(summary: FeatureSummary, max_bin: int = 256) -> FeatureCuts:
    """xgboost-style cut values from a (merged) summary."""
    vals, w = summary.values, summary.weights
    if summary.categorical:
        if vals.shape[0] == 0:
            return FeatureCuts(np.zeros(0, np.float32), 0.0, True)
        # xgboost: one bin per category 0 .. max category seen, present or not
        # (an absent category's one-hot candidate separates the missing rows)
        return FeatureCuts(np.arange(int(vals[-1]) + 1, dtype=np.float32), 0.0, True)
    if vals.shape[0] == 0:                  # all missing: one empty bin, like xgboost
        return FeatureCuts(np.array([1e-5], np.float32), float(np.float32(-1e-5)), False)
    if vals.shape[0] <= max_bin and summary.exact:
        inner = vals[1:]
    else:
        if np.isnan(w).any():
            raise ValueError(f"summary of {vals.shape[0]} values carries no row counts, which "
                             f"quantile cuts need (more than max_bin == {max_bin} values)")
        kept = _xgb_prune(w, max_bin + 1)
        inner = vals[kept[1:min(kept.shape[0], max_bin)]]
    return numeric_cuts(vals[0], vals[-1], inner)


def numeric_cuts(v_min, v_max, inner) -> FeatureCuts:
    """A numerical feature's cuts from its smallest and largest value and the kept
    values between (``inner``: the values after the first that :func:`cuts_from_summary`
    keeps; those not above the minimum are dropped)."""
    # as xgboost 3.2 (checked bit for bit against QuantileDMatrix cuts): the
    # minimum is (min - |min|) - 1e-5f in float32; the last cut
    # max + (|max| + 1e-5) in double, rounded once to float32
    v0, eps = np.float32(v_min), np.float32(1e-5)
    min_value = float(np.float32(np.float32(v0 - np.abs(v0)) - eps))
    vk = float(v_max)
    last = np.float32(vk + (abs(vk) + 1e-5))
    inner = np.asarray(inner, np.float32)
    inner = inner[inner > v0]
    cuts = np.concatenate([inner, [last]]).astype(np.float32)
    return FeatureCuts(cuts, min_value, False)


@dataclass(frozen=True)
class BinMapper:
    """Cuts for every feature; maps raw float32 data to bin indices."""

    features: tuple[FeatureCuts, ...]

    @property
    def n_features(self) -> int:
        return len(self.features)

    @classmethod
    def concat(cls, mappers: list[BinMapper]) -> BinMapper:
        """Column blocks side by side (vertical split: each owner bins its own
        columns with :func:`fit_bins`; the public layout is the concatenation)."""
        return cls(tuple(f for m in mappers for f in m.features))

    @property
    def n_bins(self) -> np.ndarray:
        """Regular bins per feature (the missing bin is index ``n_bins[j]``)."""
        return np.array([f.n_bins for f in self.features], dtype=np.int64)

    @property
    def categorical(self) -> np.ndarray:
        return np.array([f.categorical for f in self.features], dtype=bool)

    def transform(self, X) -> np.ndarray:
        """Bin index per entry (int32, n x m); NaN -> ``n_bins[j]``."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}, must be (n, {self.n_features})")
        X = X.astype(np.float32)
        out = np.empty(X.shape, dtype=np.int32)
        for j, fc in enumerate(self.features):
            col = X[:, j]
            miss = np.isnan(col)
            if fc.categorical:
                b = np.searchsorted(fc.cuts, col)
                if fc.n_bins == 0:
                    bad = ~miss
                else:
                    b = np.minimum(b, fc.n_bins - 1)
                    bad = ~miss & (fc.cuts[b] != col)
                if np.any(bad):
                    raise ValueError(f"feature {j}: category {col[bad][0]} is not a code in "
                                     f"0 .. {fc.n_bins - 1} seen when the bins were built")
            else:
                b = np.searchsorted(fc.cuts, col, side="right")
                b = np.minimum(b, fc.n_bins - 1)   # above the last cut: last bin (as xgboost)
            b[miss] = fc.n_bins
            out[:, j] = b
        return out


def _xgboost_sketch_cuts(X: np.ndarray, max_bin: int) -> list[FeatureCuts]:
    """xgboost's own quantile sketch, run locally on the owner's columns.

    ``xgboost.QuantileDMatrix(...).get_quantile_cut()`` returns, per feature,
    the minimum value followed by the cut values; the sketch treats columns
    independently, so any block of columns gives the same cuts as the full
    matrix (checked in tests/tree/test_binning.py).
    """
    import xgboost as xgb
    if X.shape[1] == 0:
        return []
    ptr, vals = xgb.QuantileDMatrix(X, max_bin=max_bin).get_quantile_cut()
    ptr = np.asarray(ptr, dtype=np.int64)
    return [FeatureCuts(np.asarray(vals[ptr[j] + 1:ptr[j + 1]], dtype=np.float32).copy(),
                        float(vals[ptr[j]]), False) for j in range(X.shape[1])]


def fit_bins(X, max_bin: int = 256, categorical=None, sketch: str = "xgboost") -> BinMapper:
    """Cuts computed from one party's full columns (vertical split / plain case).

    ``sketch="xgboost"`` (default) runs xgboost's own quantile sketch on these
    columns, so the cuts equal the ones ``xgboost.train(tree_method="hist")``
    uses for any number of rows. ``sketch="exact"`` uses the exact summary and
    :func:`cuts_from_summary` (the mergeable path of the horizontal case);
    both agree whenever a feature has at most ``max_bin`` distinct values, and
    while xgboost's sketch is still exact (a few thousand rows at 256 bins).
    Categorical columns always take one bin per category present.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X has ndim == {X.ndim}, must be 2")
    cat = np.zeros(X.shape[1], bool) if categorical is None else np.asarray(categorical, bool)
    if cat.shape != (X.shape[1],):
        raise ValueError(f"categorical has shape {cat.shape}, must be ({X.shape[1]},)")
    if sketch not in ("xgboost", "exact"):
        raise ValueError(f"sketch == {sketch!r}, must be 'xgboost' or 'exact'")
    feats: list[FeatureCuts | None] = [None] * X.shape[1]
    num = np.flatnonzero(~cat)
    if sketch == "xgboost" and num.shape[0]:
        Xn = np.ascontiguousarray(X[:, num], dtype=np.float32)
        for j, fc in zip(num, _xgboost_sketch_cuts(Xn, max_bin)):
            feats[j] = fc
    for j in range(X.shape[1]):
        if feats[j] is None:
            feats[j] = cuts_from_summary(summarize_column(X[:, j], max_bin, bool(cat[j])),
                                         max_bin)
    return BinMapper(tuple(feats))


def fit_bins_from_summaries(party_summaries: list[list[FeatureSummary]],
                            max_bin: int = 256) -> BinMapper:
    """Cuts from per-party summaries (horizontal split).

    ``party_summaries[p][j]`` is party p's :func:`summarize_column` of feature j.
    """
    if not party_summaries:
        raise ValueError("no party summaries given, need >= 1 party")
    m = {len(s) for s in party_summaries}
    if len(m) != 1:
        raise ValueError(f"parties summarised different numbers of features: {sorted(m)}")
    m = m.pop()
    return BinMapper(tuple(
        cuts_from_summary(merge_summaries([s[j] for s in party_summaries]), max_bin)
        for j in range(m)))
