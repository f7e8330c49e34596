"""The tree-walk kernel of ppboost.inference.core on hand-built trees (also run without JIT)."""
import threading

import numpy as np
import pytest

from ppboost.crypto.ope import MISSING_CT
from ppboost.inference.core import _walk


@pytest.mark.nojit
def test_walk_follows_xgboost_rule_on_ciphertexts():
    # tree 0: node0 (slot 1, thr 100, default right) -> node1 leaf 0, node2 (slot 0, thr 50,
    # default left) -> node3 leaf 1, node4 leaf 2;  tree 1: a single leaf 3
    left = np.array([1, -1, 3, -1, -1, -1], np.int32)
    right = np.array([2, -1, 4, -1, -1, -1], np.int32)
    slot = np.array([1, -1, 0, -1, -1, -1], np.int32)
    thr = np.array([100, 0, 50, 0, 0, 0], np.uint64)
    dleft = np.array([0, 0, 1, 0, 0, 0], np.uint8)
    leafidx = np.array([-1, 0, -1, 1, 2, 3], np.int32)
    roots = np.array([0, 5], np.int32)
    M = MISSING_CT
    q = np.array([[0, 99], [0, 100], [49, 100], [50, 101], [M, 200], [7, M], [M, M]], np.uint64)
    out = np.empty((len(q), 2), np.int32)
    _walk(q, left, right, slot, thr, dleft, leafidx, roots, out)
    assert out[:, 0].tolist() == [0, 1, 1, 2, 1, 1, 1]
    assert out[:, 1].tolist() == [3] * 7


def test_empty_query_and_concurrent_first_predict():
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from ppboost.inference import Client, EncryptedModel, Proxy
    X, y = load_breast_cancer(return_X_y=True)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, label=y), 3)
    enr = Proxy(b, key_bits=1024).enroll("u")
    c = Client(enr.keys)
    assert c.decrypt(enr.model.predict(c.encrypt(X[:0]))).shape == (0,)
    model = EncryptedModel.from_bytes(enr.model.to_bytes())    # fresh lazy state
    q = c.encrypt(X[:8])
    outs, errs = [], []

    def run():
        try:
            outs.append(c.decrypt(model.predict(q)))
        except Exception as e:        # pragma: no cover - reported below
            errs.append(e)
    ts = [threading.Thread(target=run) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errs
    ref = b.predict(xgb.DMatrix(X[:8]))
    assert all(np.abs(o - ref).max() <= 1e-6 for o in outs)
