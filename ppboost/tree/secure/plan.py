"""What is public about a secure training run: the cells of the pooled table.

The pooled table is a grid of **cells** (a block of rows x a block of
columns), each owned by one party who knows that cell's bins in plaintext:

* horizontal split: one cell per party (its rows x all columns);
* vertical split: one cell per party (all rows x its columns);
* mixed: one cell per row-holding party, and one cell (all rows x its
  columns) per column-adding party; rows it does not cover are missing.

Public: n, the cells' shapes and owners, which rows each label holder
holds, bins per feature and whether a single owner's feature has missing
values (after :func:`ppboost.tree.secure.setup.agree_bins`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Cell", "SecurePlan", "public_plan", "plan_from_info"]


@dataclass(frozen=True)
class Cell:
    """A block of the pooled table owned by one party (public: owner, rows, columns)."""

    owner: int
    rows: np.ndarray        # int64, global row indices, increasing
    features: np.ndarray    # int64, global feature indices, increasing


@dataclass
class SecurePlan:
    """Everything public about a secure training run (the same on every party)."""

    n_rows: int
    n_features: int
    categorical: np.ndarray              # bool (m,)
    cells: list                          # [Cell]
    label_blocks: list                   # [(owner, rows int64)]
    n_bins: np.ndarray | None = None     # int64 (m,), set by agree_bins
    #: bool (m,), set by agree_bins: False for a feature of one cell without missing
    #: values (its owner says so); None with public cuts (DP: nothing data-dependent)
    has_missing: np.ndarray | None = None


def public_plan(split):
    """The cells and label blocks of a split, from its public description only:
    :func:`plan_from_info` of ``split.public_info()`` (no party's data)."""
    return plan_from_info(split.public_info())


def plan_from_info(info: dict):
    """The cells and label blocks from a split's public description.

    ``info``: what :meth:`ppboost.data.Split.public_info` returns (``kind``,
    ``n_rows``, ``label_holders``, and per party its ``feature_indices`` and
    ``n_rows``).  Party ids follow the order of ``info["parties"]``.  Returns
    ``(names, cells, label_blocks, full_rows)``: the party names; one
    :class:`Cell` per party (a horizontal or mixed row holder's cell is its
    block of rows, numbered in party order; any other party's cell spans all
    n rows, missing where it holds none); ``[(owner, rows)]`` per label
    holder; and per party whether its cell spans all rows.
    """
    names = list(info["parties"])
    n = int(info["n_rows"])
    holders = set(info["label_holders"])
    cells, blocks, full_rows = [], [], []
    start = 0
    for pid, name in enumerate(names):
        pi = info["parties"][name]
        feats = np.asarray(pi["feature_indices"], np.int64)
        row_holder = info["kind"] == "horizontal" or (info["kind"] == "mixed" and name in holders)
        if row_holder:
            rows = np.arange(start, start + pi["n_rows"], dtype=np.int64)
            start += pi["n_rows"]
        else:
            rows = np.arange(n, dtype=np.int64)
        full_rows.append(not row_holder)
        cells.append(Cell(pid, rows, feats))
        if name in holders:
            blocks.append((pid, rows))
    return names, cells, blocks, full_rows
