"""The equivalence check of secure training against xgboost hist: same trees, same margins.

``TOL`` is the largest margin difference allowed.  The secure model's leaves carry
fixed-point errors (reciprocal, products, truncations); the largest difference
measured over the equivalence tests (test_training, test_scale, test_sklearn) is
1.9e-6, one float32 ulp of a margin between 16 and 32 (most are 0 to 1.2e-7), so
1e-5 is the measured error with a margin of 5x and still catches a wrong leaf.

``assert_same_trees`` compares the xgboost JSON of both models tree by tree:
split feature, children, default direction and split type per node; the
threshold of every numeric split (as float32) and the category set of every
categorical split.  Leaf values are compared through the margins.
"""
from __future__ import annotations

import json

import numpy as np

TOL = 1e-5


def trees(booster) -> list[dict]:
    return json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]


def _categories(t: dict) -> dict[int, list[int]]:
    out = {}
    for node, start, size in zip(t["categories_nodes"], t["categories_segments"],
                                 t["categories_sizes"]):
        out[node] = t["categories"][start:start + size]
    return out


def assert_same_trees(got, want) -> None:
    """``got`` and ``want`` (xgboost Boosters) have the same trees, node by node."""
    assert_same_tree_list(trees(got), trees(want))


def assert_same_tree_list(tg: list[dict], tw: list[dict]) -> None:
    """The same trees node by node (features, children, default directions, split kinds,
    numeric thresholds as float32, category sets), for lists of tree dicts (e.g. the trees of
    several reference boosters chained)."""
    assert len(tg) == len(tw), (len(tg), len(tw))
    for k, (a, b) in enumerate(zip(tg, tw)):
        for key in ("left_children", "right_children", "split_indices", "default_left",
                    "split_type"):
            assert a[key] == b[key], (k, key, a[key], b[key])
        for i, (left, kind) in enumerate(zip(a["left_children"], a["split_type"])):
            if left != -1 and kind == 0:          # a numeric split: the same threshold
                assert np.float32(a["split_conditions"][i]) == np.float32(b["split_conditions"][i]), \
                    (k, "split_conditions", i, a["split_conditions"][i], b["split_conditions"][i])
        assert _categories(a) == _categories(b), (k, "categories", _categories(a), _categories(b))


def categorical_splits(booster, feature: int) -> list[list[int]]:
    """The category set of every categorical split on ``feature``, tree by tree."""
    out = []
    for t in trees(booster):
        cats = _categories(t)
        out += [cats[i] for i, (f, kind) in enumerate(zip(t["split_indices"], t["split_type"]))
                if t["left_children"][i] != -1 and f == feature and kind == 1]
    return out


def margin_diff(got, want, dmatrix) -> float:
    """Largest absolute difference of the two models' margins on ``dmatrix``."""
    return float(np.abs(got.predict(dmatrix, output_margin=True)
                        - want.predict(dmatrix, output_margin=True)).max())


def assert_same_model(got, want, dmatrix, tol: float = TOL) -> float:
    """Same trees and margins within ``tol``; returns the margin difference."""
    assert_same_trees(got, want)
    diff = margin_diff(got, want, dmatrix)
    assert diff <= tol, f"largest margin difference {diff:.3g} > {tol:g}"
    return diff
