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

Categorical splits (``split_type`` 1; the node's category set S is
``categories[categories_segments[k] : + categories_sizes[k]]`` for the k with
``categories_nodes[k]`` == node), as xgboost evaluates them
(src/common/categorical.h, ``Decision``/``InvalidCat``; checked against
``pred_leaf``): a missing value goes to the ``default_left`` side; a value x
with x < 0 or x >= 2**24 - 1 goes left; otherwise x goes RIGHT iff
``int(x)`` (truncation, so 2.7 is category 2) is in S, else left.  The listed
categories go right (one-vs-rest: "x == c" is the right branch).  For
x >= 0, ``int(x) == c`` iff ``c <= x < c + 1``, so S is stored as the
half-open float32 intervals [a, b + 1) of its runs of consecutive categories
(``cat_lo``/``cat_hi``), and "x in S" is an interval test that needs only
order comparisons (exact on OPE ciphertexts: c and c + 1 <= 2**24 - 1 are
exact in float32, and -0.0 encrypts like +0.0).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

SUPPORTED_OBJECTIVES = ("binary:logistic", "reg:squarederror", "multi:softprob")
#: xgboost's OutOfRangeCat(): a value >= this (or < 0) is an invalid category (goes left)
MAX_CATEGORY = (1 << 24) - 1


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
    is_cat: np.ndarray      # bool: categorical split (x in S goes right)
    cat_ptr: np.ndarray     # int32 (n + 1): node k's intervals are cat_lo/hi[cat_ptr[k]:cat_ptr[k+1]]
    cat_lo: np.ndarray      # float32 interval starts (a category run [a, b] -> [a, b + 1))
    cat_hi: np.ndarray      # float32 interval ends (exclusive)


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
    n_json = len(L)
    for name, arr in (("right_children", R), ("split_indices", F), ("split_conditions", C),
                      ("default_left", D)):
        if len(arr) != n_json:
            raise ValueError(f"tree {t_idx}: {name} has {len(arr)} entries, expected {n_json}")
    cat_sets = _categories(t, t_idx, n_json, L)
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
    is_cat = np.zeros(n, np.bool_)
    cat_ptr = np.zeros(n + 1, np.int32)
    lo, hi = [], []
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
            dl[k] = bool(int(D[i]))
            if i in cat_sets:
                is_cat[k] = True
                for a, b in _runs(cat_sets[i]):
                    lo.append(a)
                    hi.append(b + 1)
            else:
                thr[k] = C[i]
        cat_ptr[k + 1] = len(lo)
    return PlainTree(left, right, feat, thr, dl, leaf, np.asarray(order, np.int32), group,
                     is_cat, cat_ptr, np.asarray(lo, np.float32), np.asarray(hi, np.float32))


def _categories(t, t_idx, n_json, L) -> dict:
    """{xgboost node id: sorted list of its categories} for the categorical nodes."""
    st = t.get("split_type", [0] * n_json)
    if len(st) != n_json:
        raise ValueError(f"tree {t_idx}: split_type has {len(st)} entries, expected {n_json}")
    for i, v in enumerate(st):
        if int(v) not in (0, 1):
            raise ValueError(f"tree {t_idx}: split_type == {v} at node {i}, must be 0 "
                             "(numerical) or 1 (categorical)")
    nodes = t.get("categories_nodes", [])
    segs = t.get("categories_segments", [])
    sizes = t.get("categories_sizes", [])
    cats = t.get("categories", [])
    if not len(nodes) == len(segs) == len(sizes):
        raise ValueError(f"tree {t_idx}: categories_nodes, categories_segments and "
                         "categories_sizes must have the same length")
    out = {}
    for nd, sg, sz in zip(nodes, segs, sizes):
        nd, sg, sz = int(nd), int(sg), int(sz)
        if not 0 <= nd < n_json or int(st[nd]) != 1 or L[nd] == -1:
            raise ValueError(f"tree {t_idx}: categories_nodes lists node {nd}, which is not a "
                             "categorical split (split_type 1)")
        if nd in out:
            raise ValueError(f"tree {t_idx}: node {nd} listed twice in categories_nodes")
        if sg < 0 or sz < 0 or sg + sz > len(cats):
            raise ValueError(f"tree {t_idx}: node {nd}: categories segment [{sg}, {sg + sz}) "
                             f"out of range [0, {len(cats)})")
        vals = []
        for c in cats[sg:sg + sz]:
            if isinstance(c, bool) or not isinstance(c, (int, float)) or c != int(c) \
                    or not 0 <= int(c) < MAX_CATEGORY:
                raise ValueError(f"tree {t_idx}: node {nd}: category {c!r}, must be an "
                                 f"integer in [0, {MAX_CATEGORY})")
            vals.append(int(c))
        out[nd] = sorted(set(vals))
    for i, v in enumerate(st):
        if int(v) == 1 and L[i] != -1 and i not in out:
            raise ValueError(f"tree {t_idx}: categorical node {i} has no categories entry "
                             "(categories_nodes)")
    return out


def _runs(cats):
    """Sorted distinct ints -> [(a, b), ...] maximal runs of consecutive values."""
    runs = []
    for c in cats:
        if runs and c == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], c)
        else:
            runs.append((c, c))
    return runs
