"""Set-up of a secure training run: public bin counts and the split conditions' shares.

:func:`agree_bins` runs first: every party learns the public bin counts
and each owner bins its cells.  :func:`share_conditions` runs inside
:class:`~ppboost.tree.secure.backend.SecureBackend`'s construction: every
cut owner secret-shares the float32 split condition of each of its
candidates, for the analyst's model.
"""
from __future__ import annotations

import numpy as np

from ...mpc import raw
from ...mpc.party import Party
from ..backend import TreeLayout
from ..binning import BinMapper, fit_bins
from ..secure_binning import shared_cuts
from .plan import SecurePlan

__all__ = ["agree_bins", "share_conditions"]


def agree_bins(party: Party, plan: SecurePlan, my_X: dict, max_bin: int,
               public_cuts: dict | None = None):
    """Every party learns the public bin counts; owners bin their cells.

    ``public_cuts`` ({feature: FeatureCuts} for every feature, e.g.
    :func:`ppboost.tree.secure.dp.public_cuts` for differential privacy):
    the cuts are public, so nothing is computed from the data, nothing is
    sent and the bin counts are theirs; owners bin their cells with them.

    ``my_X``: {cell index: float32 (n_c, m_c)} for the cells this party owns.
    A feature held by one cell is binned by its owner alone with xgboost's own
    sketch (its cuts stay private); its owner also opens whether it has a
    missing value (``plan.has_missing``: a feature without any gets no
    backward split candidates, which halves its share of the split choice).
    A feature held by several cells (rows split across parties: horizontal /
    mixed) gets its cuts from
    :func:`ppboost.tree.secure_binning.shared_cuts`: every owner secret-shares
    its rows of the feature, the pooled rows are obliviously sorted
    (:func:`ppboost.mpc.sort.sort`) and only the cuts are opened.  **What every
    party learns** about such a feature: whether it has more than max_bin + 1
    distinct values (numerical); if not, its distinct values (one bin each, as
    xgboost ``hist``); if so, its cuts (the distinct values at xgboost's
    SetPrune ranks, not which rank gave which),
    its minimum and maximum, the pooled number of non-missing rows, the number
    of rows holding the minimum and the number below the maximum (the ranks
    depend on them); for a categorical feature, its largest code.  Not which
    cell holds which value, no count per value, no cell's summary.  The cuts
    are identical to ``cuts_from_summary(merge_summaries(exact summaries of
    the cells))``, hence to xgboost's while its sketch is exact.  Cost: about
    2P + 24 + 7 L rounds for all shared features (L = :func:`ppboost.mpc.sort.sort_levels`
    of the largest pooled row count), O(L n) elements per shared feature;
    every message size depends only on the public cell shapes and max_bin.
    Returns (binned {cell: int32 (n_c, m_c)}, cuts {feature: FeatureCuts} for
    the features this party is the cut owner of); sets ``plan.n_bins``.
    """
    ep, me = party.ep, party.id
    m = plan.n_features
    cells_of = [[ci for ci, c in enumerate(plan.cells) if j in set(c.features.tolist())]
                for j in range(m)]
    if public_cuts is not None:
        return _bin_public(party, plan, my_X, public_cuts, cells_of)
    # --- shared features (rows split across cells): cuts by an oblivious sort of
    # the pooled rows (tree.secure_binning.shared_cuts); every party takes part and
    # learns the cuts, nobody a cell's rows or counts
    shared_feats = [j for j in range(m) if len(cells_of[j]) > 1]
    cuts: dict = {}
    if shared_feats:
        layout = [(j, [(plan.cells[ci].owner, plan.cells[ci].rows.shape[0])
                       for ci in cells_of[j]]) for j in shared_feats]
        mine = {}
        for j in shared_feats:
            for r, ci in enumerate(cells_of[j]):
                cell = plan.cells[ci]
                if cell.owner == me:
                    t = int(np.flatnonzero(cell.features == j)[0])
                    mine[(j, r)] = my_X[ci][:, t]
        cuts.update(shared_cuts(party, layout, mine,
                                {j: bool(plan.categorical[j]) for j in shared_feats}, max_bin))
    # --- cuts for the features this party can bin alone: xgboost's own sketch
    # on the owner's column (fit_bins: the cuts of xgboost.train(tree_method="hist")
    # for any n)
    for ci, cell in enumerate(plan.cells):
        if cell.owner != me:
            continue
        single = [t for t, j in enumerate(cell.features.tolist()) if len(cells_of[j]) == 1]
        if single:
            mapper = fit_bins(my_X[ci][:, single], max_bin,
                              plan.categorical[cell.features[single]])
            for t, fc in zip(single, mapper.features):
                cuts[int(cell.features[t])] = fc
    for j in range(m):
        if not cells_of[j]:
            raise ValueError(f"feature {j} is held by no party")
    binned = {}
    for ci, cell in enumerate(plan.cells):
        if cell.owner == me:
            mapper = BinMapper(tuple(cuts[j] for j in cell.features.tolist()))
            binned[ci] = mapper.transform(my_X[ci])
    # --- public bin counts and missing flags (from each feature's cut owner = owner of
    # its first cell), one message: a feature held by one cell is flagged by its owner;
    # a shared one always counts as having missing values (no owner's flag is opened)
    public = np.full((2, m), -1, np.int64)
    cut_owner = np.array([plan.cells[cells_of[j][0]].owner for j in range(m)])
    for ci, cell in enumerate(plan.cells):
        if cell.owner != me:
            continue
        for t, j in enumerate(cell.features.tolist()):
            if cut_owner[j] == me:
                public[0, j] = cuts[j].n_bins
                public[1, j] = len(cells_of[j]) > 1 or bool(
                    np.any(binned[ci][:, t] == cuts[j].n_bins))
    for q in range(party.n_parties):
        if q != me:
            ep.send(q, public)
    for q in range(party.n_parties):
        if q != me:
            other = ep.recv(q)
            public = np.where(cut_owner[None, :] == q, other, public)
    plan.n_bins = public[0]
    plan.has_missing = public[1].astype(bool)
    return binned, {j: cuts[j] for j in range(m) if cut_owner[j] == me}


def _bin_public(party: Party, plan: SecurePlan, my_X: dict, cuts: dict, cells_of: list):
    """:func:`agree_bins` with public cuts: local, no message."""
    m = plan.n_features
    if sorted(cuts) != list(range(m)):
        raise ValueError(f"public_cuts must give the cuts of every feature 0..{m - 1}")
    for j in range(m):
        if not cells_of[j]:
            raise ValueError(f"feature {j} is held by no party")
        if bool(cuts[j].categorical) != bool(plan.categorical[j]):
            raise ValueError(f"public_cuts[{j}]: categorical == {cuts[j].categorical}, but the "
                             f"feature is {'categorical' if plan.categorical[j] else 'numerical'}")
    plan.n_bins = np.array([cuts[j].n_bins for j in range(m)], np.int64)
    binned = {ci: BinMapper(tuple(cuts[j] for j in cell.features.tolist())).transform(my_X[ci])
              for ci, cell in enumerate(plan.cells) if cell.owner == party.id}
    cut_owner = [plan.cells[cells_of[j][0]].owner for j in range(m)]
    return binned, {j: cuts[j] for j in range(m) if cut_owner[j] == party.id}


def share_conditions(party: Party, plan: SecurePlan, layout: TreeLayout, cuts: dict) -> np.ndarray:
    """Shares (C,) of the float32 split condition of every candidate (bit patterns).

    Inputs: ``cuts`` {feature: FeatureCuts} of the features this party is cut
    owner of.  Each party that owns a cell shares its candidates' conditions
    (zeros elsewhere) and the shares are summed.  Opened: nothing.
    Cost: one input sharing of C elements per cell-owning party.
    """
    C = layout.n_candidates
    starts = layout.cand_offsets
    cond = np.zeros(C, np.uint64)
    owners = {}
    for cell in plan.cells:
        for j in cell.features.tolist():
            owners.setdefault(j, cell.owner)
    me = party.id
    for q in range(party.n_parties):
        mine = None
        if q == me:
            mine = np.zeros(C, np.uint64)
            for j, fc in cuts.items():
                for c in range(int(starts[j]), int(starts[j + 1])):
                    t = int(layout.cand_bin[c])
                    v = fc.cuts[t] if (fc.categorical or t >= 0) else fc.min_value
                    mine[c] = np.float32(v).view(np.uint32)
        if any(o == q for o in owners.values()):
            cond = cond + raw.share_from(party, q, mine, (C,))
    return cond
