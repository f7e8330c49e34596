"""Read a plaintext xgboost model from its JSON (``Booster.save_raw("json")``).

xgboost's prediction, reproduced here (src/predictor/cpu_predictor.cc,
``GetNextNode``): at an internal node with feature f and threshold t
(``split_conditions``, a float32), a missing value goes to the
``default_left`` side; otherwise x goes left iff ``x < t`` in float32.  A
leaf's value is ``split_conditions`` at the leaf.  The margin of output group
k is ``base_margin[k] + sum of the leaves of the trees with tree_info == k``,
where ``base_margin`` is ``learner_model_param.base_score`` (a vector in
xgboost >= 3, one per class) mapped through the objective's ProbToMargin:
logit for ``binary:logistic``, identity for ``reg:squarederror`` and
``multi:softprob``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

SUPPORTED_OBJECTIVES = ("binary:logistic", "reg:squarederror", "multi:softprob")


@dataclass
class PlainTree:
    left: np.ndarray        # int32, -1 at leaves; nodes in preorder, children > parent
    right: np.ndarray
    feature: np.ndarray     # int32, -1 at leaves
    threshold: np.ndarray   # float32 split condition (unused at leaves)
    default_left: np.ndarray  # bool
    leaf_value: np.ndarray  # float32 (0 at internal nodes)
    xgb_id: np.ndarray      # int32: xgboost's node id (for pred_leaf checks)
    group: int


@dataclass
class PlainModel:
    objective: str
    n_features: int
    n_outputs: int
    base_margin: np.ndarray   # float32, one per output group
    trees: list


def _parse_base_score(s) -> list:
    if isinstance(s, (int, float)):
        return [float(s)]
    if not isinstance(s, str):
        raise ValueError(f"base_score {s!r} is not a number or a list of numbers")
    s = s.strip()
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
    try:
        return [float(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"base_score {s!r} is not a number or a list of numbers") from None


def load_xgboost(model) -> PlainModel:
    """``model``: an xgboost.Booster, a path to a JSON model, JSON bytes/str, or a dict."""
    if isinstance(model, dict):
        j = model
    elif isinstance(model, (bytes, bytearray)):
        j = json.loads(bytes(model).decode("utf-8"))
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise ValueError(f"model path {path!r} does not exist")
        if not path.endswith(".json"):
            raise ValueError(f"model path {path!r}: only xgboost JSON models (.json) are supported")
        with open(path, "rb") as fh:
            j = json.load(fh)
    elif hasattr(model, "save_raw"):
        j = json.loads(bytes(model.save_raw("json")).decode("utf-8"))
    else:
        raise ValueError(f"model must be an xgboost.Booster or a JSON model path, got "
                         f"{type(model).__name__}")
    try:
        learner = j["learner"]
        lmp = learner["learner_model_param"]
        obj = learner["objective"]["name"]
        gb = learner["gradient_booster"]
    except (KeyError, TypeError):
        raise ValueError("not an xgboost JSON model: missing learner/objective/booster") from None
    if gb.get("name") != "gbtree":
        raise ValueError(f"unsupported booster {gb.get('name')!r}: only 'gbtree' is supported "
                         "(dart and gblinear are not)")
    if obj not in SUPPORTED_OBJECTIVES:
        raise ValueError(f"unsupported objective {obj!r}: expected one of {SUPPORTED_OBJECTIVES}")
    num_class = int(lmp.get("num_class", "0"))
    num_target = int(lmp.get("num_target", "1"))
    if num_target != 1:
        raise ValueError(f"unsupported multi-target model: num_target == {num_target}, must be 1")
    n_features = int(lmp["num_feature"])
    if n_features < 1:
        raise ValueError(f"num_feature == {n_features}, must be >= 1")
    if obj == "multi:softprob":
        if num_class < 2:
            raise ValueError(f"multi:softprob with num_class == {num_class}, must be >= 2")
        n_outputs = num_class
    else:
        if num_class > 1:
            raise ValueError(f"objective {obj!r} with num_class == {num_class}, must be 0 or 1")
        n_outputs = 1
    bs = _parse_base_score(lmp.get("base_score", "0.5"))
    if len(bs) == 1 and n_outputs > 1:
        bs = bs * n_outputs
    if len(bs) != n_outputs:
        raise ValueError(f"base_score has {len(bs)} values, expected {n_outputs}")
    if obj == "binary:logistic":
        for v in bs:
            if not 0.0 < v < 1.0:
                raise ValueError(f"base_score == {v} for binary:logistic, must be in (0, 1)")
        margin = [-math.log(1.0 / np.float32(v) - 1.0) for v in bs]
    else:
        margin = bs
    model = gb["model"]
    trees_json = model["trees"]
    info = model.get("tree_info", [0] * len(trees_json))
    if len(info) != len(trees_json):
        raise ValueError("tree_info and trees have different lengths")
    trees = []
    for t_idx, (t, g) in enumerate(zip(trees_json, info)):
        if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise ValueError(f"tree {t_idx}: vector leaves (multi-target trees) are not supported")
        if any(int(v) != 0 for v in t.get("split_type", [])):
            raise ValueError(f"tree {t_idx}: categorical splits are not supported")
        if not 0 <= int(g) < n_outputs:
            raise ValueError(f"tree {t_idx}: output group {g} out of range [0, {n_outputs})")
        trees.append(_tree(t, int(g), n_features, t_idx))
    return PlainModel(obj, n_features, n_outputs, np.asarray(margin, np.float32), trees)


def _tree(t, group, n_features, t_idx) -> PlainTree:
    L = t["left_children"]
    R = t["right_children"]
    F = t["split_indices"]
    C = np.asarray(t["split_conditions"], dtype=np.float64).astype(np.float32)
    D = t["default_left"]
    order, stack = [], [0]
    while stack:                      # preorder walk from the root
        i = stack.pop()
        if len(order) > len(L):
            raise ValueError(f"tree {t_idx}: cycle in children")
        order.append(i)
        if L[i] != -1:
            stack.append(R[i])
            stack.append(L[i])
    pos = {old: k for k, old in enumerate(order)}
    n = len(order)
    left = np.full(n, -1, np.int32)
    right = np.full(n, -1, np.int32)
    feat = np.full(n, -1, np.int32)
    thr = np.zeros(n, np.float32)
    dl = np.zeros(n, np.bool_)
    leaf = np.zeros(n, np.float32)
    for k, i in enumerate(order):
        if L[i] == -1:
            if not np.isfinite(C[i]):
                raise ValueError(f"tree {t_idx}: leaf {i} has a non-finite value {C[i]}")
            leaf[k] = C[i]
        else:
            left[k], right[k] = pos[L[i]], pos[R[i]]
            if not 0 <= F[i] < n_features:
                raise ValueError(f"tree {t_idx}: split feature {F[i]} out of range")
            feat[k] = F[i]
            thr[k] = C[i]
            dl[k] = bool(int(D[i]))
    return PlainTree(left, right, feat, thr, dl, leaf, np.asarray(order, np.int32), group)
