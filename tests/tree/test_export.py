"""Export: pruning of dummy splits, xgboost JSON, Booster round trip."""
import json

import numpy as np
import pytest
import xgboost as xgb

from ppboost.tree import RevealedTree, TreeParams, fit_plain, model_to_json, prune_tree, to_booster


def _tree(group=0):
    """Depth 2: root splits f0 < 0.5; its left child is a dummy split; the
    right child splits on categorical f1 == 3 (goes right), missing left."""
    return RevealedTree(
        is_split=[np.array([True]), np.array([False, True])],
        feature=[np.array([0]), np.array([0, 1])],
        split_bin=[np.array([0]), np.array([0, 2])],
        default_left=[np.array([False]), np.array([False, True])],
        is_categorical=[np.array([False]), np.array([False, True])],
        split_condition=[np.float32([0.5]), np.float32([0.0, 3.0])],
        node_weight=[np.array([0.1]), np.array([-1.0, 2.0])],
        leaf_weight=np.array([-1.0, -1.0, 3.0, 5.0]),
        group=group)


def test_prune_collapses_dummy_splits_breadth_first():
    nodes = prune_tree(_tree(), eta=0.5)
    assert [n["leaf"] for n in nodes] == [False, True, False, True, True]
    assert [(n["left"], n["right"]) for n in nodes] == [(1, 2), (-1, -1), (3, 4), (-1, -1),
                                                        (-1, -1)]
    assert nodes[1]["value"] == np.float32(-0.5)          # eta * w of the dummy node
    assert [nodes[3]["value"], nodes[4]["value"]] == [1.5, 2.5]


def test_hand_made_tree_predicts_as_routed():
    p = TreeParams.from_dict({"eta": 0.5, "base_score": 10.0})
    b = to_booster([_tree()], p, [10.0], n_features=2, categorical=[False, True])
    X = np.array([[0.0, 3.0],       # f0 < 0.5 -> dummy leaf
                  [1.0, 3.0],       # right, category 3 -> right leaf
                  [1.0, 1.0],       # right, other category -> left
                  [1.0, np.nan],    # right, missing -> default left
                  [np.nan, 3.0]],   # missing f0 -> default right, cat 3 -> right
                 np.float32)
    d = xgb.DMatrix(X, feature_types=["q", "c"], enable_categorical=True)
    np.testing.assert_allclose(b.predict(d), [9.5, 12.5, 11.5, 11.5, 12.5])


def test_json_has_no_cover_or_gain_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (200, 3)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=200) > 2).astype(int) + (X[:, 1] > 2)
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}
    b = fit_plain(params, X, y, 2)
    model = json.loads(b.save_raw("json"))
    gb = model["learner"]["gradient_booster"]["model"]
    assert gb["tree_info"] == [0, 1, 2, 0, 1, 2] and gb["iteration_indptr"] == [0, 3, 6]
    for t in gb["trees"]:
        assert not any(t["sum_hessian"]) and not any(t["loss_changes"])
        assert int(t["tree_param"]["num_nodes"]) > 1
    path = tmp_path / "m.json"
    b.save_model(str(path))
    back = xgb.Booster()
    back.load_model(str(path))
    d = xgb.DMatrix(X)
    assert back.predict(d).shape == (200, 3)
    np.testing.assert_array_equal(back.predict(d), b.predict(d))
    np.testing.assert_array_equal(back.predict(d, output_margin=True),
                                  b.predict(d, output_margin=True))


def test_tree_count_must_match_groups():
    p = TreeParams.from_dict({"objective": "multi:softprob", "num_class": 3})
    with pytest.raises(ValueError, match="not a multiple of n_groups == 3"):
        model_to_json([_tree()], p, [0, 0, 0], n_features=2)


def test_leaf_values_bit_identical_to_xgboost():
    """Leaf value = float32(float32(w) * float32(eta)), as xgboost stores it."""
    checked = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        X = rng.integers(0, 4, (200, 2)).astype(np.float32)
        y = rng.normal(size=200)
        params = {"max_depth": 2, "eta": 0.37}
        ours = json.loads(fit_plain(params, X, y, 1).save_raw("json"))
        ref = json.loads(xgb.train(params, xgb.DMatrix(X, label=y), 1).save_raw("json"))
        a = ours["learner"]["gradient_booster"]["model"]["trees"][0]
        b = ref["learner"]["gradient_booster"]["model"]["trees"][0]
        assert a["left_children"] == b["left_children"]
        assert a["split_indices"] == b["split_indices"]
        for i, child in enumerate(b["left_children"]):
            assert np.float32(a["split_conditions"][i]) == np.float32(b["split_conditions"][i])
            checked += child == -1
    assert checked >= 20
