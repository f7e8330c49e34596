"""Objectives: intercepts and gradient/hessian conventions, checked against xgboost 3.2."""
import json

import numpy as np
import pytest
import xgboost as xgb

from ppboost.tree import TreeParams, fit_plain
from ppboost.tree.losses import base_margin, base_score_repr, check_labels, gradients

RNG = np.random.default_rng(0)
N = 300
LABELS = {
    "reg:squarederror": (RNG.normal(3.0, 2.0, N), {}),
    "binary:logistic": ((RNG.random(N) < 0.3).astype(float), {}),
    "multi:softprob": (np.r_[RNG.integers(0, 4, N - 60), np.full(60, 2)], {"num_class": 4}),
}


def _xgb_base_score(obj, y, extra):
    X = RNG.integers(0, 3, (N, 2)).astype(np.float32)
    b = xgb.train({"objective": obj, "tree_method": "hist"} | extra,
                  xgb.DMatrix(X, label=y), 1)
    s = json.loads(b.save_raw("json"))["learner"]["learner_model_param"]["base_score"]
    return np.array(json.loads(s), dtype=np.float32)


@pytest.mark.parametrize("obj", sorted(LABELS))
def test_fitted_intercept_equals_xgboost(obj):
    y, extra = LABELS[obj]
    p = TreeParams.from_dict({"objective": obj} | extra)
    np.testing.assert_allclose(base_score_repr(y, p), _xgb_base_score(obj, y, extra),
                               rtol=2e-7, atol=1e-7)


@pytest.mark.parametrize("obj", sorted(LABELS))
def test_gradients_and_hessians_match_xgboost_leaf_values(obj):
    """A constant feature gives single-leaf trees: leaf = -eta G / (H + lambda).

    Three rounds (margins move) with lambda = 0.7; xgboost's leaves must equal
    the ones from our float32 gradients and hessians.
    """
    y, extra = LABELS[obj]
    X = np.zeros((N, 1), np.float32)
    # an explicit base_score away from the optimum keeps G far from 0 (no
    # cancellation), so the leaves can be compared bit for bit
    base = {"binary:logistic": 0.2, "reg:squarederror": -1.0, "multi:softprob": 0.5}[obj]
    params = {"objective": obj, "eta": 0.4, "lambda": 0.7, "max_depth": 2,
              "base_score": base} | extra
    ref = xgb.train(params | {"tree_method": "hist"}, xgb.DMatrix(X, label=y), 3)
    trees = json.loads(ref.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    p = TreeParams.from_dict(params)
    K = p.n_groups
    margin = np.tile(base_margin(y, p), (N, 1))
    exact = 0
    for r in range(3):
        g, h = gradients(margin, y, p)
        for k in range(K):
            w = np.float32(-g[:, k].astype(np.float64).sum()
                           / (h[:, k].astype(np.float64).sum() + np.float32(0.7)))
            leaf = np.float32(w * np.float32(0.4))
            t = trees[r * K + k]
            assert t["left_children"] == [-1]
            got = np.float32(t["split_conditions"][0])
            assert abs(got - leaf) <= 1e-6 * max(1.0, abs(leaf))
            exact += int(got == leaf)      # same float32 gradients and weight arithmetic
            margin[:, k] += leaf
    assert exact == 3 * K, exact
    # and the whole pipeline agrees
    ours = fit_plain(params, X, y, 3).predict(xgb.DMatrix(X), output_margin=True)
    np.testing.assert_allclose(ours, ref.predict(xgb.DMatrix(X), output_margin=True),
                               atol=1e-6)


def test_gradient_formulas():
    y = np.array([0.0, 1.0, 1.0], np.float32)
    m = np.array([[0.0], [2.0], [-40.0]], np.float32)
    g, h = gradients(m, y, TreeParams.from_dict({"objective": "binary:logistic"}))
    p = 1 / (1 + np.exp(-m[:, 0].astype(np.float64)))
    np.testing.assert_allclose(g[:, 0], p - y, rtol=1e-6)
    np.testing.assert_allclose(h[:, 0], np.maximum(p * (1 - p), 1e-16), rtol=1e-5)
    assert g.dtype == h.dtype == np.float32
    pm = TreeParams.from_dict({"objective": "multi:softprob", "num_class": 3})
    mm = np.array([[0.0, 1.0, -1.0]], np.float32)
    g, h = gradients(mm, np.array([1.0]), pm)
    q = np.exp(mm[0]) / np.exp(mm[0]).sum()
    np.testing.assert_allclose(g[0], q - [0, 1, 0], rtol=1e-6)
    np.testing.assert_allclose(h[0], 2 * q * (1 - q), rtol=1e-6)     # softmax: 2p(1-p)
    g, h = gradients(np.array([[1.5]], np.float32), np.array([4.0]), TreeParams())
    assert g[0, 0] == -2.5 and h[0, 0] == 1.0


def test_explicit_base_score():
    y = np.array([0.0, 1.0, 1.0, 0.0])
    p = TreeParams.from_dict({"objective": "binary:logistic", "base_score": 0.2})
    np.testing.assert_allclose(base_margin(y, p), [np.log(0.25)], rtol=1e-6)
    np.testing.assert_allclose(base_score_repr(y, p), [0.2])
    p = TreeParams.from_dict({"base_score": -1.5})
    assert base_margin(y, p)[0] == -1.5


@pytest.mark.parametrize("obj,y,msg", [
    ("reg:squarederror", [1.0, np.nan], "NaN or infinite"),
    ("binary:logistic", [0.0, 1.5], "must lie in \\[0, 1\\]"),
    ("multi:softprob", [0, 3], "integer labels in \\[0, 2\\]"),
    ("multi:softprob", [0, 1.5], "integer labels in \\[0, 2\\]"),
    ("reg:squarederror", [], "empty"),
    ("reg:squarederror", ["a", "b"], "must be numeric"),
])
def test_bad_labels(obj, y, msg):
    extra = {"num_class": 3} if obj == "multi:softprob" else {}
    with pytest.raises(ValueError, match=msg):
        check_labels(np.array(y), TreeParams.from_dict({"objective": obj} | extra))


@pytest.mark.parametrize("obj", sorted(LABELS))
def test_initial_margin_and_transform_bit_identical_to_xgboost(obj):
    """eta = 1e-30 makes the single tree's leaves vanish next to the
    intercept, so xgboost's margin is its initial margin, bit for bit."""
    from ppboost.tree.losses import transform_margin
    y, extra = LABELS[obj]
    for labels in (y, np.zeros(N), np.ones(N)) if obj == "binary:logistic" else (y,):
        params = {"objective": obj, "eta": 1e-30} | extra
        X = np.zeros((N, 1), np.float32)
        ref = xgb.train(params, xgb.DMatrix(X, label=labels), 1)
        d = xgb.DMatrix(X[:1])
        p = TreeParams.from_dict(params)
        m = base_margin(labels, p)
        np.testing.assert_array_equal(m, ref.predict(d, output_margin=True).reshape(-1))
        np.testing.assert_array_equal(transform_margin(m[None, :], p).reshape(-1),
                                      ref.predict(d).reshape(-1))
