"""Objectives: label checks, intercepts (base_score) and gradients, as xgboost 3.2.

Conventions verified numerically against xgboost 3.2 (tests/tree/test_losses.py):

============================  =========================  ==================================
objective                     gradient, hessian           fitted intercept (no base_score)
============================  =========================  ==================================
reg:squarederror              g = m - y, h = 1            mean(y)  (margin)
binary:logistic               p = sigmoid(m), g = p - y,  mean(y)  (a probability; the margin
                              h = max(p(1 - p), 1e-16)     is logit(mean(y)))
multi:softprob (K classes)    p = softmax(m), g_k = p_k   l_k - mean_k l_k, l_k = log(f_k +
                              - [y == k], h_k =           1e-6), f_k the class frequencies
                              max(2 p_k (1 - p_k), 1e-16) (float32; one margin per class)
============================  =========================  ==================================

Gradients are float32, as in xgboost (``GradientPair`` holds two floats).
An explicit ``base_score`` is a margin for reg:squarederror and
multi:softprob (the same for every class) and a probability for
binary:logistic.
"""
from __future__ import annotations

import numpy as np

from .params import TreeParams

__all__ = ["check_labels", "check_label_values", "check_finite_labels", "base_margin",
           "base_margin_from_stats",
           "base_score_repr", "gradients", "transform_margin"]

_EPS = np.float32(1e-16)


def check_finite_labels(y: np.ndarray, *, where: str = "labels",
                        error: type[Exception] = ValueError) -> None:
    """Raise ``error`` if any label is NaN or infinite (naming the first such row)."""
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error(
            f"{where}: {int(bad.sum())} label(s) are NaN or infinite (first at row {i}); "
            "labels must be finite numbers")


def check_label_values(y, objective: str, num_class: int | None = None, *,
                       where: str = "labels", error: type[Exception] = ValueError) -> None:
    """Check label values against ``objective``: the one place the label rule is written.

    - every objective: finite;
    - ``binary:logistic``: within [0, 1] (as xgboost requires);
    - ``multi:softprob``: integers in ``[0, num_class)``.

    ``y`` is 1-D and numeric; the message starts with ``where`` and names the
    first bad label and its row.  :func:`check_labels` calls this with
    ValueError; :func:`ppboost.data.validate_labels` with DataValidationError.
    """
    y = np.asarray(y, dtype=np.float64)
    check_finite_labels(y, where=where, error=error)
    if objective == "binary:logistic":
        bad = (y < 0) | (y > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise error(
                f"{where}: label {y[i]:g} at row {i} is outside [0, 1] "
                f"({int(bad.sum())} such label(s)); labels must lie in [0, 1] for objective "
                "'binary:logistic'")
    elif objective == "multi:softprob":
        bad = (y < 0) | (y >= num_class) | (y != np.floor(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise error(
                f"{where}: label {y[i]:g} at row {i} is not a class index "
                f"({int(bad.sum())} such label(s)); objective 'multi:softprob' with "
                f"num_class={num_class} needs integer labels in [0, {num_class - 1}]")


def check_labels(y, params: TreeParams) -> np.ndarray:
    """Validate labels for the objective; returns them as float32 (n,).

    Shape and dtype are checked here, the values by :func:`check_label_values`.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels have ndim == {y.ndim}, must be 1")
    if y.shape[0] == 0:
        raise ValueError("labels are empty, need >= 1 row")
    if not np.issubdtype(y.dtype, np.number) and y.dtype != np.bool_:
        raise ValueError(f"labels have dtype {y.dtype}, must be numeric")
    y = y.astype(np.float64)
    check_label_values(y, params.objective, params.num_class)
    return y.astype(np.float32)


def _prob_to_margin(p: np.float32) -> np.float32:
    """xgboost's logistic ``ProbToMargin``: -logf(1.0f / p - 1.0f), float32."""
    with np.errstate(divide="ignore"):
        inner = np.float32(np.float32(1) / p) - np.float32(1)
        return np.float32(-np.float32(np.log(np.float64(inner))))


def base_margin(y: np.ndarray, params: TreeParams) -> np.ndarray:
    """Initial margin per output group, float32 of shape (n_groups,)."""
    if params.base_score is not None:
        return base_margin_from_stats(params)
    y = np.asarray(y, dtype=np.float64)
    if params.objective == "multi:softprob":
        return base_margin_from_stats(
            params, counts=np.bincount(y.astype(np.int64), minlength=params.n_groups),
            n=y.shape[0])
    return base_margin_from_stats(params, mean=y.mean())


def base_margin_from_stats(params: TreeParams, mean: float | None = None,
                           counts=None, n: int | None = None) -> np.ndarray:
    """:func:`base_margin` from pooled label statistics (the federated mode has no
    pooled ``y``): the mean label (reg:squarederror, binary:logistic) or the class
    counts and the row count (multi:softprob); nothing with an explicit base_score."""
    obj, K = params.objective, params.n_groups
    if params.base_score is not None:
        b = params.base_score
        if obj == "binary:logistic":
            return np.array([_prob_to_margin(np.float32(b))], dtype=np.float32)
        return np.full(K, b, dtype=np.float32)
    if obj == "reg:squarederror":
        return np.array([np.float32(mean)], dtype=np.float32)
    if obj == "binary:logistic":
        # xgboost keeps the fitted probability inside [1e-6, 1 - 1e-6]
        # (checked with all-0 and all-1 labels)
        prob = np.clip(np.float32(mean), np.float32(1e-6), np.float32(1) - np.float32(1e-6))
        return np.array([_prob_to_margin(prob)], dtype=np.float32)
    # float32 throughout, with xgboost's +1e-6 inside the log (bit-exact vs 3.2)
    counts = np.asarray(counts).astype(np.float32)
    freq = counts / np.float32(n)
    lg = np.log(freq + np.float32(1e-6)).astype(np.float32)
    return (lg - lg.mean(dtype=np.float32)).astype(np.float32)


def base_score_repr(y: np.ndarray, params: TreeParams) -> np.ndarray:
    """``base_score`` as xgboost stores it in the model (probability for logistic)."""
    m = base_margin(y, params)
    if params.objective == "binary:logistic":
        if params.base_score is not None:
            return np.array([params.base_score], dtype=np.float32)
        return np.array([np.float32(np.asarray(y, np.float64).mean())], dtype=np.float32)
    return m


def _expf(x: np.ndarray) -> np.ndarray:
    """float32 exp rounded from float64 (like a correctly rounded ``expf``;
    numpy's float32 SIMD exp may be one ulp off)."""
    with np.errstate(over="ignore"):
        return np.exp(np.asarray(x, dtype=np.float32).astype(np.float64)).astype(np.float32)


def _softmax(m: np.ndarray) -> np.ndarray:
    """xgboost's multiclass softmax: wmax = max(max_k m_k, FLT_MIN), expf in
    float32, the sum of the exps in double, p_k = e_k / float(sum)."""
    wmax = np.maximum(m.max(axis=1, keepdims=True), np.finfo(np.float32).tiny)
    e = _expf((m - wmax).astype(np.float32))
    wsum = np.zeros(m.shape[0], dtype=np.float64)
    for k in range(m.shape[1]):                   # sequential, as the C++ loop
        wsum += e[:, k].astype(np.float64)
    return (e / wsum.astype(np.float32)[:, None]).astype(np.float32)


def transform_margin(margin: np.ndarray, params: TreeParams) -> np.ndarray:
    """Margin (n, K) float32 -> predictions (sigmoid / softmax / identity)."""
    m = np.asarray(margin, dtype=np.float32)
    if params.objective == "binary:logistic":
        # xgboost common::Sigmoid: 1 / (expf(-x) + 1 + 1e-16), float32
        return (np.float32(1) / (_expf(-m) + np.float32(1))).astype(np.float32)
    if params.objective == "multi:softprob":
        return _softmax(m)
    return m


def gradients(margin: np.ndarray, y: np.ndarray, params: TreeParams):
    """float32 (g, h), each of shape (n, n_groups), at the given margins.

    Written with xgboost's float32 operation order (regression_loss.h,
    multiclass_obj.cu) so that the gradients are bit-identical.
    """
    m = np.asarray(margin, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    obj = params.objective
    one = np.float32(1)
    if obj == "reg:squarederror":
        g = m[:, 0] - y
        return g[:, None].astype(np.float32), np.ones_like(m, dtype=np.float32)
    if obj == "binary:logistic":
        p = transform_margin(m, params)[:, 0]
        g = p - y
        h = np.maximum(p * (one - p), _EPS)
        return g[:, None].astype(np.float32), h[:, None].astype(np.float32)
    p = _softmax(m)
    onehot = (y.astype(np.int64)[:, None] == np.arange(m.shape[1])[None, :])
    h = np.maximum((np.float32(2) * p) * (one - p), _EPS)
    g = np.where(onehot, p - one, p)
    return g.astype(np.float32), h.astype(np.float32)
