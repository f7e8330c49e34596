"""The plain backend on tiny hand-checked data."""
import numpy as np
import pandas as pd
import pytest

from ppboost.tree import PlainBackend, TreeParams, fit_bins, prepare_plain

# feature 0 numeric (values 1, 2, 3, NaN), feature 1 categorical (0, 5)
X = np.array([[1, 0], [2, 5], [3, 0], [np.nan, 5], [1, 5], [3, 0]], np.float32)
Y = np.array([1.0, 2.0, 6.0, 9.0, 0.0, 7.0])


def _backend(**kw):
    p = TreeParams.from_dict({"lambda": 1.0, "min_child_weight": 0.0, "max_depth": 2,
                              "base_score": 0.0} | kw)
    m = fit_bins(X, p.max_bin, [False, True])
    return PlainBackend(m.transform(X), Y, p, m)


def test_histograms_per_node_and_bin():
    be = _backend()
    g, h = be.gradients(be.init_margins())[0]
    np.testing.assert_array_equal(g, -Y.astype(np.float32))      # margin 0, g = m - y
    hist = be.histograms(be.root_nodes(), (g, h))
    # feature 0: bins for 1, 2, 3 then missing; feature 1: categories 0 .. 5
    # (1 .. 4 absent, as in xgboost), then missing
    np.testing.assert_array_equal(hist["G"][0], [-1, -2, -13, -9, -14, 0, 0, 0, 0, -11, 0])
    np.testing.assert_array_equal(hist["H"][0], [2, 1, 2, 1, 3, 0, 0, 0, 0, 3, 0])
    assert hist["G_node"][0] == -25 and hist["H_node"][0] == 6


def test_choose_route_and_leaves():
    be = _backend()
    g, h = be.gradients(be.init_margins())[0]
    nodes = be.root_nodes()
    hist = be.histograms(nodes, (g, h))
    s = be.choose_splits(hist)
    # best: feature 0, rows with x < 3 left and missing right (forward t = 1):
    # left G=-3 H=3, right G=-22 H=3 -> 9/4 + 484/4 - 625/7 = 33.96...
    choice = int(np.argmax(s["onehot"][0]))
    lay = be.layout
    assert (lay.cand_feature[choice], lay.cand_kind[choice], lay.cand_bin[choice]) == (0, 0, 1)
    np.testing.assert_allclose(s["weight"], [25 / 7])
    kids = be.route(nodes, s)
    np.testing.assert_array_equal(kids.argmax(1), [0, 0, 1, 1, 0, 1])
    leaves = be.leaf_values(kids, (g, h))
    np.testing.assert_allclose(leaves["weight"], [3 / 4, 22 / 4])
    np.testing.assert_allclose(leaves["value"], [0.3 * 3 / 4, 0.3 * 22 / 4], rtol=1e-6)


def test_no_valid_split_is_a_dummy_sending_all_left():
    be = _backend(min_child_weight=4.0)          # no child can reach H >= 4 with 6 rows
    g, h = be.gradients(be.init_margins())[0]
    nodes = be.root_nodes()
    s = be.choose_splits(be.histograms(nodes, (g, h)))
    assert s["onehot"][0, -1] == 1 and s["onehot"].sum() == 1
    kids = be.route(nodes, s)
    assert np.all(kids[:, 0] == 1)
    tree = be.reveal_tree([s], be.leaf_values(kids, (g, h)), 0)
    assert not tree.is_split[0][0]
    np.testing.assert_allclose(tree.node_weight[0], [25 / 7])
    np.testing.assert_allclose(tree.leaf_weight, [25 / 7, 0.0])   # empty right: weight 0


def test_prepare_plain_errors():
    with pytest.raises(ValueError, match="6 labels for 5 rows"):
        prepare_plain({}, X[:5], Y)
    with pytest.raises(ValueError, match="column 1 contains \\+/-inf"):
        prepare_plain({}, np.where(X == 5, np.inf, X), Y)
    with pytest.raises(ValueError, match="0 rows"):
        prepare_plain({}, X[:0], Y[:0])
    with pytest.raises(ValueError, match="6 categories and max_cat_to_onehot == 2.*must be > 6"):
        prepare_plain({"max_cat_to_onehot": 2}, X, Y, categorical=[False, True])
    with pytest.raises(ValueError, match="column 's' has dtype .*must be numeric or pandas 'category'"):
        prepare_plain({}, pd.DataFrame({"s": ["a"] * 6}), Y)


def test_backward_mask_is_redundant_when_sums_are_exact(monkeypatch):
    """backend.py claims a secure (exact ring) backend may drop the mask that
    restricts backward-scan candidates to nodes with missing rows. With
    integer gradients (exact float sums) the trees are identical without it."""
    from ppboost.tree import boost, plain
    from ppboost.tree.grower import reveal
    rng = np.random.default_rng(3)
    Xi = rng.integers(0, 5, (400, 4)).astype(np.float32)
    Xi[rng.random(Xi.shape) < 0.1] = np.nan
    yi = rng.integers(-5, 6, 400).astype(float)
    p = {"max_depth": 4, "base_score": 0.0, "eta": 1.0, "lambda": 0.0, "min_child_weight": 0}
    be = prepare_plain(p, Xi, yi)
    with_mask = reveal(be, boost(be, 1))[0]
    orig = plain.PlainBackend._candidate_sums

    def no_mask(self, hist):
        GL, HL, GR, HR, elig = orig(self, hist)
        return GL, HL, GR, HR, np.ones_like(elig)
    monkeypatch.setattr(plain.PlainBackend, "_candidate_sums", no_mask)
    be = prepare_plain(p, Xi, yi)
    without = reveal(be, boost(be, 1))[0]
    assert sum(s.sum() for s in with_mask.is_split) >= 5
    for a, b in [(with_mask.is_split, without.is_split), (with_mask.feature, without.feature),
                 (with_mask.split_bin, without.split_bin),
                 (with_mask.default_left, without.default_left)]:
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(with_mask.leaf_weight, without.leaf_weight)
