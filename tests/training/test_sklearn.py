"""SecureXGBClassifier / SecureXGBRegressor: thin wrappers around ppboost.train."""
from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

import ppboost

from .same_model import TOL, assert_same_model


def _data(rng, n=100):
    X = rng.integers(0, 5, size=(n, 4)).astype(np.float32)
    return X


def test_classifier_binary_matches_booster_and_xgboost():
    rng = np.random.default_rng(0)
    X = _data(rng)
    y = (X[:, 0] + X[:, 3] + rng.normal(size=100) > 4).astype(np.float32)
    split = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:]})
    clf = ppboost.SecureXGBClassifier(n_estimators=2, max_depth=2, max_bin=16)
    assert clf.fit(split) is clf
    assert clf.n_classes_ == 2 and list(clf.classes_) == [0, 1]
    assert clf.n_features_in_ == 4 and isinstance(clf.booster_, xgb.Booster)
    proba = clf.predict_proba(X)
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    ref = xgb.train({"objective": "binary:logistic", "max_depth": 2, "max_bin": 16,
                     "tree_method": "hist"}, xgb.DMatrix(X, label=y), 2)
    assert_same_model(clf.booster_, ref, xgb.DMatrix(X))
    np.testing.assert_allclose(proba[:, 1], ref.predict(xgb.DMatrix(X)), atol=TOL, rtol=0)
    assert np.array_equal(clf.predict(X), (proba[:, 1] > 0.5).astype(int))


def test_classifier_multiclass_and_regressor():
    rng = np.random.default_rng(1)
    X = _data(rng, 90)
    y3 = np.clip((X[:, 0] + rng.normal(size=90)) // 2, 0, 2).astype(np.float32)
    split = ppboost.HorizontalSplit({"a": (X[:50], y3[:50]), "b": (X[50:], y3[50:])})
    clf = ppboost.SecureXGBClassifier(n_estimators=1, max_depth=2, max_bin=16).fit(split)
    assert clf.n_classes_ == 3 and clf.predict_proba(X).shape == (90, 3)
    assert set(np.unique(clf.predict(X))) <= {0, 1, 2}
    yr = (X[:, 1] * 3 + rng.normal(size=90)).astype(np.float32)
    split = ppboost.VerticalSplit({"a": (X[:, :2], yr), "b": X[:, 2:]})
    reg = ppboost.SecureXGBRegressor(n_estimators=2, max_depth=2, max_bin=16,
                                     learning_rate=0.5).fit(split)
    ref = xgb.train({"max_depth": 2, "max_bin": 16, "eta": 0.5, "tree_method": "hist"},
                    xgb.DMatrix(X, label=yr), 2)
    assert_same_model(reg.booster_, ref, xgb.DMatrix(X))
    np.testing.assert_allclose(reg.predict(X), ref.predict(xgb.DMatrix(X)), atol=TOL, rtol=0)


def test_params_and_errors():
    reg = ppboost.SecureXGBRegressor(max_depth=3)
    assert reg.get_params()["max_depth"] == 3
    reg.set_params(max_depth=4, learning_rate=0.1)
    assert reg.max_depth == 4 and reg.learning_rate == 0.1
    with pytest.raises(ValueError, match="invalid parameter 'subsample'"):
        reg.set_params(subsample=0.5)
    with pytest.raises(TypeError):
        ppboost.SecureXGBRegressor(3)                       # keyword-only
    with pytest.raises(RuntimeError, match="not fitted"):
        reg.predict(np.zeros((2, 4)))
    rng = np.random.default_rng(2)
    X = _data(rng, 20)
    split = ppboost.VerticalSplit({"a": (X[:, :2], X[:, 0]), "b": X[:, 2:]})
    with pytest.raises(ValueError, match="max_depth == 0, must be >= 1"):
        ppboost.SecureXGBRegressor(max_depth=0).fit(split)
    with pytest.raises(ValueError, match="n_estimators == 0"):
        ppboost.SecureXGBRegressor(n_estimators=0).fit(split)
    with pytest.raises(TypeError, match="fit takes a ppboost"):
        ppboost.SecureXGBRegressor().fit(X)
    with pytest.raises(ValueError, match="num_class == 1"):
        ppboost.SecureXGBClassifier(num_class=1).fit(split)
