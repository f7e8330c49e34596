"""The tree-walk kernel of ppboost.inference.evaluate on hand-built trees (also run without JIT)."""
import numpy as np
import pytest

from ppboost.crypto.ope import MISSING_CT
from ppboost.inference.evaluate import walk

from .helpers import run_in_threads


def _no_cats(n_nodes):
    return (np.zeros(n_nodes, np.uint8), np.zeros(n_nodes + 1, np.int32),
            np.zeros(0, np.uint64), np.zeros(0, np.uint64))


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
    walk(q, left, right, slot, thr, dleft, leafidx, roots, *_no_cats(len(left)), out)
    assert out[:, 0].tolist() == [0, 1, 1, 2, 1, 1, 1]
    assert out[:, 1].tolist() == [3] * 7


@pytest.mark.nojit
def test_walk_categorical_nodes_send_members_right():
    # node0: categorical on slot 0, intervals [10, 20) and [30, 31), default left ->
    #   node1 leaf 0 (left: not a member / missing), node2: categorical on slot 1, one
    #   interval [5, 6), default right -> node3 leaf 1, node4 leaf 2
    left = np.array([1, -1, 3, -1, -1], np.int32)
    right = np.array([2, -1, 4, -1, -1], np.int32)
    slot = np.array([0, -1, 1, -1, -1], np.int32)
    thr = np.zeros(5, np.uint64)                     # unused at categorical nodes
    dleft = np.array([1, 0, 0, 0, 0], np.uint8)
    leafidx = np.array([-1, 0, -1, 1, 2], np.int32)
    roots = np.array([0], np.int32)
    kind = np.array([1, 0, 1, 0, 0], np.uint8)
    cat_ptr = np.array([0, 2, 2, 3, 3, 3], np.int32)
    cat_lo = np.array([10, 30, 5], np.uint64)
    cat_hi = np.array([20, 31, 6], np.uint64)
    M = MISSING_CT
    q = np.array([[9, 5], [10, 5], [19, 5], [20, 5], [29, 5], [30, 5], [31, 5],
                  [M, 5], [10, 4], [10, 6], [30, M], [0, 0]], np.uint64)
    out = np.empty((len(q), 1), np.int32)
    walk(q, left, right, slot, thr, dleft, leafidx, roots, kind, cat_ptr, cat_lo, cat_hi, out)
    assert out[:, 0].tolist() == [0, 2, 2, 0, 0, 2, 0, 0, 1, 1, 2, 0]


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
    outs, errs = run_in_threads(lambda: c.decrypt(model.predict(q)), 4)
    assert not errs
    ref = b.predict(xgb.DMatrix(X[:8]))
    assert all(np.abs(o - ref).max() <= 1e-6 for o in outs)


@pytest.mark.parametrize("budget,max_entries", [(1, 8192), (16, 8192), (256, 8192), (4096, 300)])
def test_sum_tables_equal_the_plain_product(budget, max_entries):
    import xgboost as xgb
    from gmpy2 import mpz
    from sklearn.datasets import load_wine

    from ppboost.crypto.paillier import decrypt_mod_p
    from ppboost.inference import Client, Proxy
    from ppboost.inference.evaluate import SumTables
    X, y = load_wine(return_X_y=True)
    b = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
                  xgb.DMatrix(X, label=y), 6)
    enr = Proxy(b, key_bits=1024).enroll("u")
    m, k = enr.model, enr.keys
    n2 = k.n * k.n
    leaves = m.leaf_indices(Client(k).encrypt(X[:25]))
    L = [mpz(c) for c in m.leaf_ct]
    tables = SumTables(m, L, n2, budget=budget, max_entries=max_entries)
    got = tables.sums(leaves)
    assert len(got) == 25 * 3
    for r in range(25):
        for g in range(3):
            want = 0
            for t in np.flatnonzero(m.groups == g):
                want += decrypt_mod_p(L[leaves[r, t]], k.p, k.q, k.n)
            assert decrypt_mod_p(got[r * 3 + g], k.p, k.q, k.n) == want
    if budget == 1:
        assert all(len(c) == 6 for c in tables.chunks)
    if budget == 256 and max_entries == 8192:
        assert all(len(c) < 6 for c in tables.chunks)
