"""The equivalence check itself (same_model.py) on plain xgboost models: it passes on the
same model and fails on another threshold, another tree shape, another default
direction, another category set or margins beyond the tolerance."""
import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from .same_model import TOL, assert_same_model, assert_same_trees, categorical_splits, trees

PARAMS = {"objective": "reg:squarederror", "max_depth": 2, "max_bin": 16, "tree_method": "hist",
          "max_cat_to_onehot": 8}


def _data():
    rng = np.random.default_rng(0)
    n = 200
    x0 = rng.integers(0, 6, n).astype(np.float64)
    c = rng.choice(["a", "b", "c"], n)
    x0[rng.random(n) < 0.2] = np.nan
    y = np.nan_to_num(x0, nan=-10.0) + 3.0 * (c == "b")
    df = pd.DataFrame({"x0": x0, "c": pd.Categorical(c, categories=["a", "b", "c"])})
    return xgb.DMatrix(df, label=y, enable_categorical=True)


def _train(d, rounds=2, **kw):
    return xgb.train({**PARAMS, **kw}, d, rounds)


def test_same_model_passes():
    d = _data()
    a, b = _train(d), _train(d)
    assert assert_same_model(a, b, d) == 0.0
    assert categorical_splits(a, 1), "the data make xgboost split on the category"


def _edited(booster, edit):
    """``booster`` with its first tree's JSON changed by ``edit(tree)``."""
    model = json.loads(booster.save_raw("json"))
    edit(model["learner"]["gradient_booster"]["model"]["trees"][0])
    out = xgb.Booster()
    out.load_model(bytearray(json.dumps(model).encode()))
    return out


def test_other_threshold_default_direction_or_category_set_fails():
    ref = _train(_data())
    t0 = trees(ref)[0]
    assert t0["split_type"][:3] == [0, 0, 1] and t0["categories"] == [1]   # numeric, numeric, {b}

    def threshold(t):
        t["split_conditions"][0] += 0.5

    def default(t):
        t["default_left"][0] = 1 - t["default_left"][0]

    def category(t):
        t["categories"][0] = 2

    assert_same_trees(_edited(ref, lambda t: None), ref)          # a JSON round trip is equal
    for edit, what in [(threshold, "split_conditions"), (default, "default_left"),
                       (category, "categories")]:
        with pytest.raises(AssertionError) as err:
            assert_same_trees(_edited(ref, edit), ref)
        assert what in str(err.value), (what, err.value)


def test_other_tree_shape_or_count_fails():
    d = _data()
    ref = _train(d)
    with pytest.raises(AssertionError, match="left_children"):
        assert_same_trees(_train(d, max_depth=1), ref)
    with pytest.raises(AssertionError):
        assert_same_trees(_train(d, rounds=1), ref)


def test_margins_beyond_the_tolerance_fail():
    d = _data()
    ref = _train(d, rounds=1, eta=0.3)
    moved = _train(d, rounds=1, eta=0.3001)          # the same tree, leaves 0.03% larger
    assert_same_trees(moved, ref)
    with pytest.raises(AssertionError, match="largest margin difference"):
        assert_same_model(moved, ref, d, tol=TOL)
