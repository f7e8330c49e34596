"""Secret histograms of one tree level by owner-known permutations.

Per level, for the **left children only** (right = parent - left).  For a
cell with n_c rows and m_c features let n' = n_c + B where
B = max_j (bins_j + 1).  The owner pads the cell with B zero "dummy" rows,
one per bin, so that every bin is non-empty, and sorts the padded rows of
feature j by bin (dummy first within its bin): sigma_j (:func:`prepare_cells`).

1. V = [g * N_left, h * N_left, N_left]  (Beaver products, 1 round).
2. ``permute_many(V_cell, [sigma_j])``: one masked message serves all m_c
   features (docs/design.md, "one mask serves every column"), 1 round.
3. Local prefix sums along the sorted rows.
4. One stacked owner permutation moves each feature's bin-end rows to the
   top: the cumulative histograms G_L(<= k), H_L(<= k), count(<= k), 1 round.
   Cells of the same feature in different row blocks are summed.

The bin-end selection costs O(n m L) elements per level and non-owner; the
dealer cannot stand in for a non-owner there (it knows the permutation).
Steps 2-4 run on groups of a cell's features (:meth:`HistCell.groups`), so
that no array of m_c x n' x cols is ever held at once: a group's stacked
rows stay under :data:`GROUP_BYTES`; each group costs 2 rounds and one
more masked copy of V.
Measured (docs/protocols.md, "By step"): 550 MB per party per tree at
25,000 x 300, depth 4, 128 bins, less than the split choice after it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...mpc import raw, ring
from ...mpc.party import Party
from ...mpc.permutation import dealer_request, permute, permute_many
from ...mpc.shares import AShare
from ..backend import TreeLayout

__all__ = ["Hist", "HistCell", "prepare_cells", "cell_requests", "cell_histogram",
           "histograms"]


@dataclass(frozen=True)
class Hist:
    """Shares of the cumulative sums of one level, for every node of it.

    ``cum`` (Btot, ncol, L): cum[o_j + k, :, l] = sums over the rows of node
    l with bin_j <= k (missing bin last), columns [g, h, count] (reg, h = 1:
    [g, count]); ``tot`` (ncol, L): the node totals.
    """

    cum: np.ndarray
    tot: np.ndarray


#: Largest stacked array (features x padded rows x columns, 8 bytes each) one group
#: of a cell's features may hold: a cell is processed in groups of features so that
#: its histogram's memory stays bounded at any n (public: it depends on shapes only).
GROUP_BYTES = 64 * 2 ** 20


@dataclass(frozen=True)
class HistCell:
    """One cell's public histogram shape and, on its owner, the permutations.

    ``B`` = max_j (bins_j + 1), ``npad`` = n_c + B padded rows, ``feats``,
    ``mc`` = m_c, ``n_bins`` (m_c,) the features' bins; on the owner
    ``sigmas`` (m_c sorting permutations of the padded rows) and ``ends``
    (per feature, the positions of its b_j + 1 bin ends in its sorted rows),
    None elsewhere.
    """

    B: int
    npad: int
    feats: np.ndarray
    mc: int
    n_bins: np.ndarray
    sigmas: list | None = None
    ends: list | None = None

    def groups(self, cols: int) -> list:
        """``[(t0, t1)]``: the cell's features in groups whose stacked array of ``cols``
        columns fits :data:`GROUP_BYTES` (at least one feature each)."""
        per = max(1, GROUP_BYTES // (self.npad * cols * 8))
        return [(t, min(t + per, self.mc)) for t in range(0, self.mc, per)]

    def select(self, t0: int, t1: int) -> np.ndarray:
        """The owner's selection permutation of the group's stacked rows: the bin ends
        of feature t at rows (t - t0) B .. (t - t0) B + b_t, unused filler rows for
        k > b_t, then everything else (increasing)."""
        npad, B = self.npad, self.B
        used = np.zeros((t1 - t0) * npad, bool)
        for t in range(t0, t1):
            used[self.ends[t] + (t - t0) * npad] = True
        free = np.flatnonzero(~used)
        top, pos = [], 0
        for t in range(t0, t1):
            k = B - int(self.n_bins[t]) - 1
            top += [self.ends[t] + (t - t0) * npad, free[pos:pos + k]]
            pos += k
        top = np.concatenate(top).astype(np.int64)
        rest = np.ones(used.shape[0], bool)
        rest[top] = False
        return np.concatenate([top, np.flatnonzero(rest)])


def prepare_cells(party: Party, plan, n_bins: np.ndarray, binned: dict) -> list:
    """[HistCell] per cell of ``plan``; the owner derives its permutations from
    its bins ``binned[ci]`` (int (n_c, m_c), missing = n_bins[j]).  Local."""
    out = []
    for ci, cell in enumerate(plan.cells):
        nc, feats = int(cell.rows.shape[0]), cell.features
        B = int((n_bins[feats] + 1).max())
        npad, mc = nc + B, int(feats.shape[0])
        nb = np.asarray(n_bins[feats], np.int64)
        if cell.owner != party.id:
            out.append(HistCell(B, npad, feats, mc, nb))
            continue
        bins = np.asarray(binned[ci], dtype=np.int64)
        sigmas, ends = [], []
        real = np.concatenate([np.ones(nc, np.int64), np.zeros(B, np.int64)])
        for t in range(mc):
            b = int(nb[t])
            padded = np.concatenate([bins[:, t], np.minimum(np.arange(B), b)])
            sigma = np.argsort(padded * 2 + real, kind="stable")
            sigmas.append(sigma)
            ends.append(np.searchsorted(padded[sigma], np.arange(b + 1), side="right") - 1)
        out.append(HistCell(B, npad, feats, mc, nb, sigmas, ends))
    return out


def _permutations(info: HistCell, cols: int):
    """The public arguments (shape, count, kept rows) of the owner permutations of a
    cell with ``cols`` columns, group by group: the sort (:func:`permute_many`) and the
    bin-end selection (:func:`permute`).  :func:`cell_histogram` makes exactly these
    calls and :func:`cell_requests` asks the dealer for them."""
    out = []
    for t0, t1 in info.groups(cols):
        g = t1 - t0
        out += [((info.npad, cols), g, None), ((g * info.npad, cols), 1, g * info.B)]
    return out


def cell_requests(owner: int, info: HistCell, cols: int) -> list:
    """The dealer requests of :func:`cell_histogram` (for ``prefetch_many``)."""
    return [dealer_request(shape, owner, count, rows)
            for shape, count, rows in _permutations(info, cols)]


def cell_histogram(party: Party, owner: int, info: HistCell, Vc: np.ndarray) -> np.ndarray:
    """Cumulative histograms at the bin ends of one cell: shares (m_c, B, cols).

    Inputs: Vc (n_c, cols) shares of the cell's rows of V.  The features go in
    groups (:meth:`HistCell.groups`, at most :data:`GROUP_BYTES` of stacked rows
    each), each group with its own pair of owner permutations.  Opened: to the
    owner X + a (uniform) per permutation, to everyone the uniformly random tau
    of the owner permutations.  Cost: 2 rounds per group; per non-owner
    (n_c + B)(m_c + r) cols elements for r groups, per owner m_c (n_c + B + B)
    int32 indices to each other party (the selection publishes only the m_c B
    kept rows, perm_select); offline (dealer -> owner) 2 m_c (n_c + B) cols
    elements.
    """
    B, npad = info.B, info.npad
    cols = Vc.shape[1]
    X = np.concatenate([Vc, np.zeros((B, cols), np.uint64)], axis=0)
    mine = party.id == owner
    out = np.empty((info.mc, B, cols), np.uint64)
    calls = _permutations(info, cols)
    for (t0, t1), (_, count, _), (_, _, rows) in zip(info.groups(cols), calls[0::2],
                                                     calls[1::2]):
        sorted_ = permute_many(AShare(party, X), info.sigmas[t0:t1] if mine else None, owner,
                               count=count)
        stacked = np.empty((count * npad, cols), np.uint64)
        for t, s in enumerate(sorted_):
            ring.prefix_sum(s.value, out=stacked[t * npad:(t + 1) * npad])
        del sorted_
        # only the bin-end rows are kept: the owner publishes count * B indices (not
        # count * npad) and non-owners expand only those rows of their output masks
        sel = permute(AShare(party, stacked), info.select(t0, t1) if mine else None, owner,
                      rows=rows)
        out[t0:t1] = sel.value.reshape(count, B, cols)
    return out


def histograms(party: Party, plan, cells: list, layout: TreeLayout, nodes: np.ndarray, gh,
               parent: Hist | None, request_ahead: bool) -> Hist:
    """The :class:`Hist` of a level (module docstring, steps 1-4).

    Inputs: N (n, L) shares, g and h shares (h None: h = 1), the parent
    level's :class:`Hist` (None at the root).  Left children only (columns
    0, 2, ...), right = parent - left.  ``request_ahead``: ask the dealer
    for every cell's permutation material at once, after the level's Beaver
    product (so the dealer makes the later cells' material while the
    parties work on the first cells).
    Opened: the Beaver masks of g*N, h*N and what :func:`cell_histogram` opens.
    Cost: 1 + 2 rounds per cell (:func:`cell_histogram`); the Beaver product
    on (ncol - 1) n L/2 elements.
    """
    g, h = gh
    n, L = nodes.shape
    left = nodes if L == 1 else np.ascontiguousarray(nodes[:, 0::2])
    Lh = left.shape[1]
    ncol = 2 if h is None else 3
    if h is None:
        gN = raw.mul(party, np.repeat(g[:, None], Lh, axis=1), left)
        V = np.concatenate([gN, left], axis=1)
    else:
        gh2 = np.concatenate([np.repeat(g[:, None], Lh, axis=1),
                              np.repeat(h[:, None], Lh, axis=1)], axis=1)
        prod = raw.mul(party, gh2, np.concatenate([left, left], axis=1))
        V = np.concatenate([prod, left], axis=1)
    if request_ahead:
        party.dealer.prefetch_many([r for cell, info in zip(plan.cells, cells)
                                    for r in cell_requests(cell.owner, info, ncol * Lh)],
                                   expand=False)
    Btot = int(layout.bin_offsets[-1])
    offs = layout.bin_offsets
    cum = np.zeros((Btot, ncol * Lh), np.uint64)
    for cell, info in zip(plan.cells, cells):
        out = cell_histogram(party, cell.owner, info, V[cell.rows])
        for t, j in enumerate(info.feats.tolist()):
            bj = int(layout.n_bins[j]) + 1
            cum[int(offs[j]):int(offs[j]) + bj] += out[t, :bj]
    cum = cum.reshape(Btot, ncol, Lh)
    tot = V.sum(axis=0, dtype=np.uint64).reshape(ncol, Lh)
    if L == 1:
        return Hist(cum, tot)
    if parent is None:
        raise ValueError(f"a level of {L} nodes needs its parent level's Hist")
    full = np.empty((Btot, ncol, L), np.uint64)
    full[:, :, 0::2] = cum
    full[:, :, 1::2] = parent.cum - cum
    ft = np.empty((ncol, L), np.uint64)
    ft[:, 0::2] = tot
    ft[:, 1::2] = parent.tot - tot
    return Hist(full, ft)
