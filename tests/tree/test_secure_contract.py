"""The secure backend's side of the grower contract (2 and 3 parties): reveal_tree opens
a tree to the analyst party only, export_shares opens nothing and sums to the same tree,
and a level's histogram reaches its children through the values, not backend state;
without an analyst party reveal_tree refuses."""
from __future__ import annotations

import numpy as np
import pytest

from ppboost.mpc.simulate import run_parties
from ppboost.tree import PlainBackend, TreeParams, boost, fit_bins, reveal
from ppboost.tree.backend import TreeLayout
from ppboost.tree.secure import Cell, SecureBackend, SecurePlan, agree_bins, open_tree


def _grow(n_parties, analyst):
    rng = np.random.default_rng(3 + n_parties)
    n, m = 80, 4
    X = rng.integers(0, 5, size=(n, m)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 2]) + rng.normal(size=n) > 4)
    y = y.astype(np.float64)
    params = TreeParams.from_dict({"objective": "binary:logistic", "max_depth": 2,
                                   "max_bin": 8})
    cols = np.array_split(np.arange(m), n_parties)
    plan = SecurePlan(n, m, np.zeros(m, bool),
                      [Cell(i, np.arange(n), c) for i, c in enumerate(cols)],
                      [(0, np.arange(n))])

    def fn(party):
        binned, cuts = agree_bins(party, plan, {party.id: X[:, cols[party.id]]}, 8)
        labels = {0: y} if party.id == 0 else {}
        be = SecureBackend(party, plan, params, binned, cuts, labels, analyst=analyst)
        grown = boost(be, 2)
        kept_hist = [s.hist is not None for t in grown for s in t.splits]
        opened = reveal(be, grown)
        shares = [be.export_shares(t.splits, t.leaves, t.group) for t in grown]
        return opened, shares, kept_hist, hasattr(be, "_parent")

    res, _, _ = run_parties(n_parties, fn, timeout=120)
    return res, plan, X, y, params


@pytest.mark.parametrize("n_parties", [2, 3])
def test_reveal_tree_opens_to_the_analyst_only_and_equals_the_exported_shares(n_parties):
    analyst = n_parties - 1
    res, plan, X, y, params = _grow(n_parties, analyst)
    for pid, (opened, _, kept_hist, has_parent) in enumerate(res):
        assert (opened == [None] * 2) == (pid != analyst)
        assert not any(kept_hist) and not has_parent
    assert all(t.is_split[0].all() for t in res[analyst][0])      # real trees
    layout = TreeLayout(plan.n_bins, plan.categorical)
    for k, tree in enumerate(res[analyst][0]):
        summed = open_tree([r[1][k] for r in res], layout)
        for a, b in zip(tree.is_split + tree.feature + tree.split_bin + tree.split_condition,
                        summed.is_split + summed.feature + summed.split_bin
                        + summed.split_condition):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(tree.node_weight + [tree.leaf_weight],
                        summed.node_weight + [summed.leaf_weight]):
            np.testing.assert_array_equal(a, b)
    # and the trees are the plain backend's on the same bins
    mapper = fit_bins(X, 8)
    plain = PlainBackend(mapper.transform(X), y, params, mapper)
    for got, ref in zip(res[analyst][0], reveal(plain, boost(plain, 2))):
        for k in range(params.max_depth):
            np.testing.assert_array_equal(got.is_split[k], ref.is_split[k])
            sp = ref.is_split[k]
            np.testing.assert_array_equal(got.feature[k][sp], ref.feature[k][sp])
            np.testing.assert_array_equal(got.split_bin[k][sp], ref.split_bin[k][sp])
        np.testing.assert_allclose(got.leaf_weight, ref.leaf_weight, atol=1e-5)


def test_reveal_tree_without_an_analyst_party_refuses():
    """With no analyst among the parties the backend opens nothing: reveal_tree says to
    export the shares instead (before any message is sent)."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(20, 2)).astype(np.float32)
    plan = SecurePlan(20, 2, np.zeros(2, bool),
                      [Cell(0, np.arange(20), np.array([0])), Cell(1, np.arange(20), np.array([1]))],
                      [(0, np.arange(20))])
    params = TreeParams.from_dict({"max_depth": 1, "max_bin": 4})

    def fn(party):
        binned, cuts = agree_bins(party, plan, {party.id: X[:, [party.id]]}, 4)
        be = SecureBackend(party, plan, params, binned, cuts,
                           {0: X[:, 0] * 2.0} if party.id == 0 else {})
        t = boost(be, 1)[0]
        with pytest.raises(ValueError, match="no analyst party.*call export_shares"):
            be.reveal_tree(t.splits, t.leaves, t.group)
        return type(be.export_shares(t.splits, t.leaves, t.group)).__name__

    res, _, _ = run_parties(2, fn, timeout=60)
    assert res == ["SharedTree", "SharedTree"]
