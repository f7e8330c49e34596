"""Revealed trees -> xgboost's JSON model -> ``xgboost.Booster``.

This is the analyst's side. A :class:`~ppboost.tree.backend.RevealedTree` is a
complete tree of depth d with dummy splits; :func:`prune_tree` collapses every
dummy split (and everything below it) into a leaf holding float32(eta * w) of
that node, which is exactly the tree xgboost ``hist`` grows (xgboost checks
gamma before expanding a node, so nothing else needs pruning). Nodes are
numbered breadth-first, as xgboost's depthwise grower numbers them.

The JSON written is xgboost's own schema (parallel arrays per tree). It
deliberately carries **no statistics**: ``sum_hessian`` (cover) and
``loss_changes`` (gain) are all 0, because they would reveal how many rows
(weighted by hessian) reached each node and how good each split was. Only
what prediction needs is there: structure, split features, split conditions,
default directions, categories and leaf values. The booster supports
``predict``, ``save_model`` and loading back into plain xgboost; tools that
read cover (e.g. ``predict(pred_contribs=True)`` / SHAP, feature importance by
cover or gain) see zeros.
"""
from __future__ import annotations

import json
import math

import numpy as np

from .backend import RevealedTree
from .params import TreeParams

__all__ = ["prune_tree", "tree_to_json", "model_to_json", "to_booster"]

_ROOT_PARENT = 2147483647


def prune_tree(tree: RevealedTree, eta: float) -> list[dict]:
    """Collapse dummy splits; returns nodes in BFS order as dicts."""
    d = tree.max_depth
    out: list[dict] = []
    queue = [(0, 0, _ROOT_PARENT)]           # (level, index on level, parent id)
    while queue:
        nxt = []
        for level, i, parent in queue:
            nid = len(out)
            if level < d and bool(tree.is_split[level][i]):
                node = {"parent": parent, "leaf": False,
                        "feature": int(tree.feature[level][i]),
                        "condition": float(tree.split_condition[level][i]),
                        "default_left": bool(tree.default_left[level][i]),
                        "categorical": bool(tree.is_categorical[level][i]),
                        "base_weight": float(np.float32(tree.node_weight[level][i]))}
                out.append(node)
                nxt.append((level + 1, 2 * i, nid))
                nxt.append((level + 1, 2 * i + 1, nid))
            else:
                w = tree.leaf_weight[i] if level == d else tree.node_weight[level][i]
                value = float(np.float32(np.float32(w) * np.float32(eta)))   # as xgboost
                out.append({"parent": parent, "leaf": True, "value": value,
                            "base_weight": value})
        # children ids: assigned in BFS order, so fill them in after the level
        queue = nxt
    # link children: the k-th internal node's children are the next two entries
    # appended for it; recompute from parents
    for n in out:
        n["left"] = n["right"] = -1
    for nid, n in enumerate(out):
        p = n["parent"]
        if p != _ROOT_PARENT:
            if out[p]["left"] == -1:
                out[p]["left"] = nid
            else:
                out[p]["right"] = nid
    return out


def tree_to_json(tree: RevealedTree, eta: float, tree_id: int, n_features: int) -> dict:
    """One tree in xgboost's JSON layout (no cover / gain statistics)."""
    nodes = prune_tree(tree, eta)
    n = len(nodes)
    cats, cat_nodes, cat_segments, cat_sizes = [], [], [], []
    left, right, parents, split_idx, cond, dleft, bw, stype = [], [], [], [], [], [], [], []
    for nid, nd in enumerate(nodes):
        left.append(nd["left"])
        right.append(nd["right"])
        parents.append(nd["parent"])
        bw.append(nd["base_weight"])
        if nd["leaf"]:
            split_idx.append(0)
            cond.append(nd["value"])
            dleft.append(0)
            stype.append(0)
        else:
            split_idx.append(nd["feature"])
            dleft.append(int(nd["default_left"]))
            if nd["categorical"]:
                stype.append(1)
                cond.append(float("nan"))
                cat_nodes.append(nid)
                cat_segments.append(len(cats))
                cat_sizes.append(1)
                cats.append(int(round(nd["condition"])))
            else:
                stype.append(0)
                cond.append(nd["condition"])
    # xgboost writes NaN split conditions of categorical nodes as a float bit
    # pattern; any finite value works since prediction uses the categories.
    cond = [0.0 if math.isnan(c) else c for c in cond]
    return {
        "base_weights": bw, "categories": cats, "categories_nodes": cat_nodes,
        "categories_segments": cat_segments, "categories_sizes": cat_sizes,
        "default_left": dleft, "id": tree_id, "left_children": left,
        "loss_changes": [0.0] * n, "parents": parents, "right_children": right,
        "split_conditions": cond, "split_indices": split_idx, "split_type": stype,
        "sum_hessian": [0.0] * n,
        "tree_param": {"num_deleted": "0", "num_feature": str(n_features),
                       "num_nodes": str(n), "size_leaf_vector": "1"},
    }


def _objective_json(params: TreeParams) -> dict:
    if params.objective == "multi:softprob":
        return {"name": "multi:softprob",
                "softmax_multiclass_param": {"num_class": str(params.num_class)}}
    return {"name": params.objective, "reg_loss_param": {"scale_pos_weight": "1"}}


def model_to_json(trees: list[RevealedTree], params: TreeParams, base_score,
                  n_features: int, categorical=None, feature_names=None) -> dict:
    """Full xgboost JSON model (``Booster.save_raw('json')`` schema, version 3.x).

    ``base_score`` is what xgboost stores: per group margins for
    multi:softprob, the probability for binary:logistic, the margin otherwise.
    """
    base = np.atleast_1d(np.asarray(base_score, dtype=np.float32))
    K = params.n_groups
    if len(trees) % K:
        raise ValueError(f"{len(trees)} trees is not a multiple of n_groups == {K}")
    ftypes = []
    if categorical is not None and np.any(categorical):
        ftypes = ["c" if c else "float" for c in np.asarray(categorical, bool)]
    names = [] if feature_names is None else [str(f) for f in feature_names]
    if names and len(names) != n_features:
        raise ValueError(f"{len(names)} feature names for n_features == {n_features}")
    rounds = len(trees) // K
    return {
        "learner": {
            "attributes": {},
            "feature_names": names,
            "feature_types": ftypes,
            "gradient_booster": {
                "model": {
                    "cats": {"enc": [], "feature_segments": [], "sorted_idx": []},
                    "gbtree_model_param": {"num_parallel_tree": "1",
                                           "num_trees": str(len(trees))},
                    "iteration_indptr": [K * r for r in range(rounds + 1)],
                    "tree_info": [int(t.group) for t in trees],
                    "trees": [tree_to_json(t, params.eta, i, n_features)
                              for i, t in enumerate(trees)],
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": "[" + ",".join(repr(float(b)) for b in base) + "]",
                "boost_from_average": "1",
                "num_class": str(K if params.objective == "multi:softprob" else 0),
                "num_feature": str(n_features),
                "num_target": "1",
            },
            "objective": _objective_json(params),
        },
        "version": [3, 2, 0],
    }


def to_booster(trees: list[RevealedTree], params: TreeParams, base_score,
               n_features: int, categorical=None, feature_names=None):
    """Load the JSON model into an ``xgboost.Booster``."""
    import xgboost as xgb
    model = model_to_json(trees, params, base_score, n_features, categorical, feature_names)
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    return booster
