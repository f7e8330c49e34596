"""The oblivious tree grower: one loop over public quantities only.

There is no data-dependent control flow here: the loops run over
``num_boost_round``, the output groups and the levels ``0 .. max_depth-1``,
and every value that depends on the data is an opaque object handed back to
the backend. The secure backend therefore produces the same transcript for
any two datasets of the same shape (tests/test_tree_grower.py checks the
plain backend's call trace for that).
"""
from __future__ import annotations

from typing import Callable

from .backend import RevealedTree, TreeBackend

__all__ = ["grow_tree", "boost"]


def grow_tree(backend: TreeBackend, gh, group: int,
              on_level: Callable[[int], None] | None = None):
    """Grow one complete tree of depth ``max_depth``; returns (nodes, leaves, splits)."""
    nodes = backend.root_nodes()
    splits = []
    for level in range(backend.params.max_depth):
        hist = backend.histograms(nodes, gh)
        choice = backend.choose_splits(hist)
        nodes = backend.route(nodes, choice)
        splits.append(choice)
        if on_level is not None:
            on_level(level)
    leaves = backend.leaf_values(nodes, gh)
    return nodes, leaves, splits


def boost(backend: TreeBackend, num_boost_round: int,
          on_tree: Callable[[int, int, RevealedTree], None] | None = None,
          on_level: Callable[[int], None] | None = None) -> list[RevealedTree]:
    """Gradient boosting with ``num_boost_round`` rounds of ``n_groups`` trees.

    Returns the revealed trees in xgboost's order (round-major, then group).
    """
    if isinstance(num_boost_round, bool) or int(num_boost_round) != num_boost_round \
            or num_boost_round < 0:
        raise ValueError(f"num_boost_round == {num_boost_round!r}, must be an integer >= 0")
    margins = backend.init_margins()
    trees: list[RevealedTree] = []
    for rnd in range(int(num_boost_round)):
        ghs = backend.gradients(margins)          # all groups at this round's margins
        for group in range(backend.params.n_groups):
            nodes, leaves, splits = grow_tree(backend, ghs[group], group, on_level)
            margins = backend.update_margins(margins, nodes, leaves, group)
            tree = backend.reveal_tree(splits, leaves, group)
            trees.append(tree)
            if on_tree is not None:
                on_tree(rnd, group, tree)
    return trees
