"""ppboost.inference on models with categorical splits (xgboost split_type 1).

xgboost's rule (checked here against ``pred_leaf``): a missing value goes to the
default side; a value x goes right iff 0 <= x < 2**24 - 1 and int(x) is one of
the node's categories, else left.
"""
import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from ppboost.inference import Client, EncryptedModel, EncryptedQuery, EncryptedResult, Proxy
from ppboost.inference import container as fmt
from ppboost.inference.model import MODEL_MAGIC, MODEL_SCHEMA, MODEL_VERSION

from .helpers import count_ope_encryptions

#: values every categorical column is also queried with: non-integers (truncated), -0.0,
#: negatives and huge values (invalid: left), unseen categories, NaN (default side)
EDGE = [0.0, -0.0, 0.5, 0.999, 1.0, 1.5, 2.0, 2.999, 3.0, 4.0, 5.0, 6.0, 7.0, 11.0, 12.0,
        -0.5, -1.0, -2.5, 100.0, 16777214.0, 16777215.0, 16777216.0, 1e30, -3e38, 3e38,
        np.nan]


def _frame(n, seed):
    """Two categorical columns (6 and 13 categories, some unused) and two numeric, with NaNs."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, n).astype(float)
    b = rng.integers(0, 13, n).astype(float)
    x = rng.normal(size=n)
    z = rng.random(n)
    a[rng.random(n) < 0.08] = np.nan
    b[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.05] = np.nan
    df = pd.DataFrame({"a": pd.Categorical(a, categories=range(6)), "x": x,
                       "b": pd.Categorical(b, categories=range(13)), "z": z})
    score = (np.isin(a, [1, 4]) * 1.5 + np.isin(b, [0, 3, 5, 6, 7, 11]) - (np.nan_to_num(x) > 0)
             + 0.5 * z + rng.normal(scale=0.3, size=n))
    return df, score


def _codes(df):
    """The numeric matrix a client sends: category codes (NaN for missing), numeric as is."""
    cols = []
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            v = df[c].cat.codes.to_numpy().astype(np.float64)
            v[v < 0] = np.nan
        else:
            v = df[c].to_numpy(np.float64)
        cols.append(v)
    return np.column_stack(cols)


def _edge_rows(X, rng):
    rows = []
    for j in (0, 2):
        for v in EDGE:
            r = X[rng.integers(len(X))].copy()
            r[j] = v
            rows.append(r)
    return np.array(rows)


def _dmatrix(X, booster):
    return xgb.DMatrix(X, feature_names=booster.feature_names,
                       feature_types=booster.feature_types, enable_categorical=True)


def _check(booster, X, key_bits=1024):
    """Zero path mismatches against pred_leaf; scores within 1e-6 of booster.predict."""
    proxy = Proxy(booster, key_bits=key_bits)
    enr = proxy.enroll("alice")
    model = EncryptedModel.from_bytes(enr.model.to_bytes())      # as the server gets it
    client = Client(enr.keys)
    q = EncryptedQuery.from_bytes(client.encrypt(X).to_bytes())
    dm = _dmatrix(X, booster)
    ref_leaves = booster.predict(dm, pred_leaf=True).astype(int).reshape(len(X), -1)
    got_leaves = proxy.leaf_node_ids[model.leaf_indices(q)]
    assert np.array_equal(got_leaves, ref_leaves), \
        f"{int((got_leaves != ref_leaves).sum())} path mismatches"
    res = EncryptedResult.from_bytes(model.predict(q).to_bytes())
    scores = client.decrypt(res)
    ref = booster.predict(dm)
    assert scores.shape == ref.shape
    if enr.keys.objective == "reg:squarederror":
        assert np.all(np.abs(scores - ref) <= 1e-5 * np.maximum(1.0, np.abs(ref)))
    else:
        assert np.abs(scores - ref).max() <= 1e-6
    return proxy, enr


def _cat_nodes(booster):
    """[(tree, node, feature, categories)] of the categorical splits in the JSON."""
    j = json.loads(booster.save_raw("json"))
    out = []
    for ti, t in enumerate(j["learner"]["gradient_booster"]["model"]["trees"]):
        for nd, sg, sz in zip(t["categories_nodes"], t["categories_segments"],
                              t["categories_sizes"]):
            out.append((ti, nd, t["split_indices"][nd], t["categories"][sg:sg + sz]))
    return out


@pytest.mark.parametrize("objective,onehot", [
    ("binary:logistic", 64),        # one-vs-rest splits (max_cat_to_onehot > categories)
    ("binary:logistic", None),      # xgboost's default: partition splits (category sets)
    ("multi:softprob", None),
    ("reg:squarederror", 64),
])
def test_xgboost_categorical_models_are_exact(objective, onehot):
    df, score = _frame(1500, seed=3)
    if objective == "binary:logistic":
        y = (score > np.median(score)).astype(float)
    elif objective == "multi:softprob":
        y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3])).astype(float)
    else:
        y = score
    params = {"objective": objective, "max_depth": 4, "eta": 0.3, "tree_method": "hist"}
    if objective == "multi:softprob":
        params["num_class"] = 3
    if onehot:
        params["max_cat_to_onehot"] = onehot
    booster = xgb.train(params, xgb.DMatrix(df, label=y, enable_categorical=True), 12)
    cats = _cat_nodes(booster)
    assert {f for _, _, f, _ in cats} == {0, 2}           # both categorical columns are split on
    sizes = [len(c) for *_, c in cats]
    if onehot:
        assert set(sizes) == {1}
    else:
        assert max(sizes) > 1                               # real partition (set) splits
    X = _codes(df)
    rng = np.random.default_rng(5)
    Xq = np.vstack([X[rng.permutation(len(X))[:200]], _edge_rows(X, rng),
                    np.full((1, X.shape[1]), np.nan)])
    # the codes are what xgboost itself sees for the DataFrame
    assert np.array_equal(booster.predict(xgb.DMatrix(df.iloc[:50], enable_categorical=True)),
                          booster.predict(_dmatrix(X[:50], booster)))
    _check(booster, Xq)


def test_category_intervals_are_encrypted_once_with_the_thresholds(monkeypatch):
    df, score = _frame(800, seed=4)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist"},
                        xgb.DMatrix(df, label=(score > 0).astype(float),
                                    enable_categorical=True), 6)
    proxy = Proxy(booster, key_bits=1024)
    calls = count_ope_encryptions(monkeypatch)
    enr = proxy.enroll("carol")
    m = enr.model
    inner = m.left >= 0
    numeric = inner & (m.kind == 0)
    assert np.array_equal(m.kind.astype(bool), inner & (proxy._kind == 1))
    want = set(zip(proxy._feat[numeric].tolist(), proxy._thr[numeric].tolist()))
    want |= set(zip(proxy._cat_feat.tolist(), proxy._cat_lo.tolist()))
    want |= set(zip(proxy._cat_feat.tolist(), proxy._cat_hi.tolist()))
    fmax = float(np.finfo(np.float32).max)            # and each feature's finite bounds
    want |= {(f, v) for f in range(proxy.plain.n_features) for v in (-fmax, fmax)}
    assert calls == [len(want)]                       # one batch, each distinct pair once
    # intervals are [c, c + 1) runs: lo < hi in plaintext and in ciphertext
    assert np.all(proxy._cat_lo < proxy._cat_hi) and np.all(m.cat_lo < m.cat_hi)
    assert np.all(proxy._cat_lo == np.round(proxy._cat_lo))
    # the server's intervals decrypt to the categories of the JSON, node by node
    from ppboost.crypto import ope as ope_mod
    ope = ope_mod.OPE(__import__("ppboost.crypto.prf", fromlist=["derive_key"]).derive_key(
        enr.keys.ope_key, b"ope"), 32, 48)
    from ppboost.crypto.floatbits import from_ordered_uint32
    lo = from_ordered_uint32(ope.decrypt(proxy._cat_feat, m.cat_lo).astype(np.uint32))
    hi = from_ordered_uint32(ope.decrypt(proxy._cat_feat, m.cat_hi).astype(np.uint32))
    got = {}
    for i in np.flatnonzero(m.kind):
        s = set()
        for k in range(m.cat_ptr[i], m.cat_ptr[i + 1]):
            s |= set(range(int(lo[k]), int(hi[k])))
        got.setdefault(int(proxy._feat[i]), []).append(sorted(s))
    ref = {}
    for _, _, f, c in _cat_nodes(booster):
        ref.setdefault(f, []).append(sorted(c))
    assert {f: sorted(v) for f, v in got.items()} == {f: sorted(v) for f, v in ref.items()}


def test_categorical_model_bytes_are_validated():
    df, score = _frame(600, seed=5)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist"},
                        xgb.DMatrix(df, label=(score > 0).astype(float),
                                    enable_categorical=True), 3)
    enr = Proxy(booster, key_bits=1024).enroll("u")
    raw = enr.model.to_bytes()
    meta, arrays = fmt.unpack("model", MODEL_MAGIC, MODEL_VERSION, raw, MODEL_SCHEMA)
    assert arrays["kind"].sum() > 0

    def repack(**changes):
        a = {k: np.array(v) for k, v in arrays.items()}
        a.update(changes)
        return fmt.pack(MODEL_MAGIC, MODEL_VERSION, meta, a)
    ptr, lo, hi, kind = (arrays[k] for k in ("cat_ptr", "cat_lo", "cat_hi", "kind"))
    leaf = int(np.flatnonzero(arrays["left"] < 0)[0])
    num = int(np.flatnonzero((arrays["left"] >= 0) & (kind == 0))[0])
    k2 = kind.copy()
    k2[leaf] = 1
    k3 = kind.copy()
    k3[int(np.flatnonzero(kind)[0])] = 0
    k4 = kind.copy()
    k4[num] = 2
    bad_ptr = ptr.copy()
    bad_ptr[-1] += 1
    cases = [
        (repack(kind=k2), "kind must be 0"),
        (repack(kind=k4), "kind must be 0"),
        (repack(kind=k3), "a numerical node must have no category intervals"),
        (repack(kind=kind[:-1]), "array 'kind' has"),
        (repack(cat_ptr=ptr[:-1]), "array 'cat_ptr' has"),
        (repack(cat_ptr=bad_ptr), "cat_ptr must rise from 0"),
        (repack(cat_ptr=ptr[::-1].copy()), "cat_ptr must rise from 0"),
        (repack(cat_hi=hi[:-1]), "differ in length"),
        (repack(cat_lo=hi, cat_hi=lo), "lo < hi"),
        (repack(cat_hi=hi | np.uint64(1 << 50)), "lo < hi < 2\\*\\*48"),
    ]
    for blob, msg in cases:
        with pytest.raises(ValueError, match="malformed model: .*" + msg):
            EncryptedModel.from_bytes(blob)
    assert EncryptedModel.from_bytes(repack()).n_leaves == enr.model.n_leaves


def test_model_revealed_by_ppboost_train_splits_on_region():
    # ppboost's secure trainer -> reveal -> Proxy: the categorical column 'region' is split on
    from ppboost.datasets import make_ms_hospitals
    from ppboost.demo import DemoConfig
    from ppboost.training import train
    ms = make_ms_hospitals(n_patients=600, n_test=200, seed=5)
    params = DemoConfig().params() | {"max_depth": 3}
    booster = train(params, ms.mixed, num_boost_round=3).reveal()
    names = list(booster.feature_names)
    region = names.index("region")
    assert booster.feature_types[region] == "c"
    cats = _cat_nodes(booster)
    assert any(f == region for _, _, f, _ in cats), "the model does not split on region"
    X = ms.mixed.encode(ms.X_test).astype(np.float64)
    assert np.isnan(X).any()                              # the MS data has missing values
    rng = np.random.default_rng(0)
    edge = X[rng.integers(len(X), size=len(EDGE))].copy()
    edge[:, region] = EDGE
    _check(booster, np.vstack([X, edge]))


_FUZZ = {}


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_fuzzed_categorical_model_bytes_only_raise_value_error(data):
    if not _FUZZ:
        df, score = _frame(400, seed=6)
        b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist"},
                      xgb.DMatrix(df, label=(score > 0).astype(float), enable_categorical=True),
                      3)
        enr = Proxy(b, key_bits=1024).enroll("u")
        assert enr.model.kind.sum() > 0
        _FUZZ.update(raw=enr.model.to_bytes(),
                     q=Client(enr.keys).encrypt(np.vstack([_codes(df)[:3], [EDGE[:4]]])))
    raw = bytearray(_FUZZ["raw"])
    # flips biased towards the tail, where the categorical arrays are stored
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(max(0, len(raw) - 2000), len(raw) - 1)
                      if data.draw(st.booleans()) else st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        m = EncryptedModel.from_bytes(bytes(raw))
    except ValueError:
        return
    try:
        m.predict(_FUZZ["q"])
    except ValueError:
        pass


def test_largest_valid_category_matches_xgboost():
    # xgboost treats x >= 2**24 - 1 as an invalid category (left); the largest valid one is
    # 2**24 - 2, whose interval [2**24 - 2, 2**24 - 1) is still exact in float32
    rng = np.random.default_rng(0)
    c = rng.integers(0, 4, 300)
    df = pd.DataFrame({"c": pd.Categorical(c, categories=range(4)), "x": rng.random(300)})
    b = xgb.train({"max_depth": 1, "max_cat_to_onehot": 10},
                  xgb.DMatrix(df, (c == 2) * 1.0, enable_categorical=True), 1)
    j = json.loads(b.save_raw("json"))
    t = j["learner"]["gradient_booster"]["model"]["trees"][0]
    assert t["split_type"][0] == 1 and t["categories"] == [2]
    t["categories"] = [(1 << 24) - 2]
    b2 = xgb.Booster()
    b2.load_model(bytearray(json.dumps(j).encode()))
    v = np.array([16777213, 16777214, 16777214.5, 16777215, 16777216, 2, np.nan], np.float64)
    X = np.column_stack([v, np.zeros(len(v))])
    proxy, _ = _check(b2, X)
    leaves = b2.predict(_dmatrix(X, b2), pred_leaf=True).ravel()
    assert leaves.tolist() == [1, 2, 2, 1, 1, 1, 1]     # only 2**24 - 2 (16777214.5 rounds to it)
