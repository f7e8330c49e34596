"""The oblivious tree grower: one loop over public quantities only.

There is no data-dependent control flow here: the loops run over
``num_boost_round``, the output groups and the levels ``0 .. max_depth-1``,
and every value that depends on the data is an opaque object handed back to
the backend. The secure backend therefore produces the same transcript for
any two datasets of the same shape (tests/tree/test_grower.py runs the grower
on values that refuse any inspection, and compares the plain backend's call
traces on two datasets).

Training and revealing are separate steps: :func:`boost` returns
:class:`GrownTree` handles whose contents stay with the backend (secret
shares in the secure backend); only :func:`reveal` opens them, to the analyst.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backend import RevealedTree, TreeBackend

__all__ = ["GrownTree", "grow_tree", "boost", "reveal"]


@dataclass
class GrownTree:
    """One finished tree, still in the backend's hands (opaque to the grower)."""

    splits: list            # one backend ``Splits`` object per level
    leaves: Any             # backend ``Leaves`` of the last level
    group: int              # output group (class); public


def grow_tree(backend: TreeBackend, gh, group: int,
              on_level: Callable[[int], None] | None = None):
    """Grow one complete tree of depth ``max_depth``; returns (nodes, GrownTree)."""
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
    return nodes, GrownTree(splits, leaves, group)


def boost(backend: TreeBackend, num_boost_round: int,
          on_tree: Callable[[int, int, GrownTree], None] | None = None,
          on_level: Callable[[int], None] | None = None,
          on_round: Callable[[int, Any], None] | None = None,
          resume: Callable[[Any], tuple] | None = None) -> list[GrownTree]:
    """Gradient boosting with ``num_boost_round`` rounds of ``n_groups`` trees.

    Returns the trees in xgboost's order (round-major, then group), unrevealed.
    ``backend.before_round(round)`` runs at the start of every round (the
    backend's own hook, e.g. to schedule the dealer).  Hooks, like xgboost's
    callbacks: ``on_level(level)``; ``on_tree(round, group, tree)`` after each
    tree; ``on_round(round, margins)`` after each round (a checkpoint);
    ``resume(margins)`` right after the intercept margins are made, returning
    ``(first_round, margins)`` to continue a run from a checkpoint (the trees
    of the earlier rounds are then the caller's; only the new ones are
    returned).
    """
    if isinstance(num_boost_round, bool) or int(num_boost_round) != num_boost_round \
            or num_boost_round < 0:
        raise ValueError(f"num_boost_round == {num_boost_round!r}, must be an integer >= 0")
    margins = backend.init_margins()
    first = 0
    if resume is not None:
        first, margins = resume(margins)
    trees: list[GrownTree] = []
    for rnd in range(first, int(num_boost_round)):
        backend.before_round(rnd)
        ghs = backend.gradients(margins)          # all groups at this round's margins
        for group in range(backend.params.n_groups):
            nodes, tree = grow_tree(backend, ghs[group], group, on_level)
            margins = backend.update_margins(margins, nodes, tree.leaves, group)
            trees.append(tree)
            if on_tree is not None:
                on_tree(rnd, group, tree)
        if on_round is not None:
            on_round(rnd, margins)
    return trees


def reveal(backend: TreeBackend, trees: list[GrownTree]) -> list[RevealedTree]:
    """Open the grown trees to the analyst (the only plaintext output)."""
    return [backend.reveal_tree(t.splits, t.leaves, t.group) for t in trees]
