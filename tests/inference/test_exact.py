"""Encrypted predictions equal plain xgboost's (ppboost.inference end to end, in process)."""
import json

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from ppboost.inference import Client, EncryptedModel, EncryptedQuery, EncryptedResult, Proxy

LOADERS = {"breast_cancer": load_breast_cancer, "diabetes": load_diabetes, "wine": load_wine,
           "digits": load_digits}


def _train(dataset, objective, rounds, depth, seed=0):
    X, y = LOADERS[dataset](return_X_y=True)
    params = {"objective": objective, "max_depth": depth, "eta": 0.3, "seed": seed,
              "tree_method": "hist"}
    if objective == "multi:softprob":
        params["num_class"] = int(y.max()) + 1
    Xt = X.copy()
    Xt[np.random.default_rng(seed).random(X.shape) < 0.03] = np.nan   # learn default_left
    return xgb.train(params, xgb.DMatrix(Xt, label=y), rounds), X


def _threshold_rows(booster, X, per_feature=3):
    """Rows whose features sit exactly on, just below and just above split thresholds."""
    j = json.loads(booster.save_raw("json"))
    rows = []
    rng = np.random.default_rng(7)
    seen = {}
    for t in j["learner"]["gradient_booster"]["model"]["trees"]:
        for f, c, l in zip(t["split_indices"], t["split_conditions"], t["left_children"]):
            if l != -1 and seen.get(f, 0) < per_feature:
                seen[f] = seen.get(f, 0) + 1
                c32 = np.float32(c)
                for v in (c32, np.nextafter(c32, np.float32(-np.inf)),
                          np.nextafter(c32, np.float32(np.inf))):
                    r = X[rng.integers(len(X))].copy()
                    r[f] = float(v)
                    rows.append(r)
    return np.array(rows)


def _leaf_sum_reference(booster, X, n_outputs, base_margin):
    """float64 sum of the JSON leaf values at the leaves xgboost reaches (no float32 rounding)."""
    j = json.loads(booster.save_raw("json"))
    trees = j["learner"]["gradient_booster"]["model"]["trees"]
    info = j["learner"]["gradient_booster"]["model"]["tree_info"]
    leaves = booster.predict(xgb.DMatrix(X), pred_leaf=True).astype(int).reshape(len(X), -1)
    out = np.tile(np.asarray(base_margin, np.float64), (len(X), 1))
    for t, (tree, g) in enumerate(zip(trees, info)):
        vals = np.asarray(tree["split_conditions"], np.float64)
        out[:, g] += vals[leaves[:, t]].astype(np.float32).astype(np.float64)
    return out, leaves


def _check(booster, X, key_bits=1024, pack=True):
    proxy = Proxy(booster, key_bits=key_bits)
    enr = proxy.enroll("alice")
    model = EncryptedModel.from_bytes(enr.model.to_bytes())      # as the server gets it
    client = Client(enr.keys)
    q = EncryptedQuery.from_bytes(client.encrypt(X).to_bytes())
    res = EncryptedResult.from_bytes(model.predict(q, pack=pack).to_bytes())
    dm = xgb.DMatrix(X)
    # zero path mismatches: the leaves reached equal xgboost's pred_leaf
    ref_margin, ref_leaves = _leaf_sum_reference(booster, X, enr.keys.n_outputs,
                                                 enr.keys.base_margin)
    got_leaves = proxy.leaf_node_ids[model.leaf_indices(q)]
    assert np.array_equal(got_leaves, ref_leaves), \
        f"{int((got_leaves != ref_leaves).sum())} path mismatches"
    margin = np.asarray(client.decrypt(res, output_margin=True), np.float64)
    margin2 = margin.reshape(len(X), -1)
    # fixed point: error <= n_trees * 2**-33 against the float64 leaf sum
    assert np.abs(margin2 - ref_margin).max() <= len(proxy.plain.trees) * 2.0**-33 + 1e-9
    xgb_margin = booster.predict(dm, output_margin=True).astype(np.float64).reshape(len(X), -1)
    # xgboost accumulates in float32: 1e-5 absolute, relative for |margin| > 1 (diabetes ~ 150)
    assert np.all(np.abs(margin2 - xgb_margin) <= 1e-5 * np.maximum(1.0, np.abs(xgb_margin)))
    scores = client.decrypt(res)
    ref_scores = booster.predict(dm)
    assert scores.shape == ref_scores.shape
    if enr.keys.objective != "reg:squarederror":
        assert np.abs(scores - ref_scores).max() <= 1e-6
    return proxy, enr


@pytest.mark.parametrize("dataset,objective,rounds,depth", [
    ("breast_cancer", "binary:logistic", 10, 2),
    ("breast_cancer", "binary:logistic", 100, 6),
    ("breast_cancer", "binary:logistic", 200, 8),
    ("diabetes", "reg:squarederror", 50, 8),
    ("diabetes", "reg:squarederror", 200, 3),
    ("wine", "multi:softprob", 30, 4),
    ("digits", "multi:softprob", 10, 5),
])
def test_exact_predictions_with_nans_and_thresholds(dataset, objective, rounds, depth):
    booster, X = _train(dataset, objective, rounds, depth)
    rng = np.random.default_rng(1)
    Xq = X[rng.permutation(len(X))[:300]].copy()
    Xq[rng.random(Xq.shape) < 0.1] = np.nan
    all_missing = np.full((1, X.shape[1]), np.nan)
    Xq = np.vstack([Xq, all_missing, _threshold_rows(booster, X)])
    _check(booster, Xq)


def test_unpacked_results_and_single_row():
    booster, X = _train("wine", "multi:softprob", 5, 3)
    _check(booster, X[:40], pack=False)
    _check(booster, X[:1])


def test_default_3072_bit_key_breast_cancer():
    booster, X = _train("breast_cancer", "binary:logistic", 20, 4)
    proxy, enr = _check(booster, X[:20], key_bits=3072)
    assert enr.keys.n.bit_length() == 3072
    assert Proxy(booster).key_bits == 3072


def test_model_from_json_path(tmp_path):
    booster, X = _train("breast_cancer", "binary:logistic", 5, 3)
    path = tmp_path / "m.json"
    booster.save_model(str(path))
    proxy = Proxy(str(path), key_bits=1024)
    enr = proxy.enroll("bob")
    c = Client(enr.keys)
    got = c.decrypt(enr.model.predict(c.encrypt(X[:50])))
    assert np.abs(got - booster.predict(xgb.DMatrix(X[:50]))).max() <= 1e-6


def test_model_trained_by_ppboost_plain_backend():
    # the shared model format: ppboost's own trainer -> Proxy -> same scores
    from ppboost.tree import fit_plain
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:200, :8]
    y = y[:200]
    Xq = X.copy()
    Xq[::5, 2] = np.nan
    booster = fit_plain({"objective": "binary:logistic", "max_depth": 3}, X, y, 5)
    _check(booster, Xq)
