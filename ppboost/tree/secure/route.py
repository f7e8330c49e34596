"""Secret routing of rows to the children by owner-private code matrices.

Each cell owner sets up, once, its matrix of per-entry codes (bin + 1, 0 if
missing) as an owner-private matrix (:class:`ppboost.mpc.ownermat.OwnerMatrix`,
:func:`setup_codes`).  Per level, every node's chosen feature (its one-hot
summed per feature) is multiplied by it, giving each row its bin in the
node's feature (1 round, m_c L elements per non-owner); three small
comparisons against the node's secret threshold and two Beaver rounds give
N_left (:func:`route`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...mpc import raw, ring
from ...mpc.ownermat import OwnerMatrix
from ...mpc.party import Party
from ...mpc.shares import AShare
from ..backend import KIND_BACKWARD, KIND_FORWARD, TreeLayout
from .histogram import Hist
from .precision import bits_for
from .split import Splits

__all__ = ["Nodes", "RouteMaps", "setup_codes", "route"]


@dataclass(frozen=True)
class Nodes:
    """Shares of a level's node indicators N (n, L; 0/1) and, below the root,
    the parent level's :class:`Hist` (its histograms give the right children's)."""

    indicator: np.ndarray
    parent: Hist | None = None


@dataclass(frozen=True)
class RouteMaps:
    """Public per-candidate routing data.

    ``codes`` (C, 4): [t, numeric - categorical, categorical, default left]
    (a node's secret code is its one-hot times this matrix); ``cand_offsets``
    (m + 1,): each feature's candidates; ``bits``: declared bound of the
    route's comparisons (|t + 1 - v| <= max bins + 2).
    """

    codes: np.ndarray
    cand_offsets: np.ndarray
    bits: int

    @classmethod
    def from_layout(cls, lay: TreeLayout) -> RouteMaps:
        kind = np.asarray(lay.cand_kind, dtype=np.int64)
        t = np.asarray(lay.cand_bin, dtype=np.int64)
        numeric = ((kind == KIND_FORWARD) | (kind == KIND_BACKWARD)).astype(np.int64)
        dleft = np.asarray(lay.cand_default_left, dtype=np.int64)
        codes = ring.as_ring(np.stack([t, 2 * numeric - 1, 1 - numeric, dleft], axis=1))
        bits = bits_for(int(np.max(lay.n_bins, initial=0)) + 2) + 2
        return cls(codes, lay.cand_offsets, bits)


def setup_codes(party: Party, plan, n_bins: np.ndarray, binned: dict) -> list:
    """[OwnerMatrix] per cell of ``plan``: the owner's per-entry codes (bin + 1,
    0 if missing) from ``binned[ci]``.  Opened: nothing.  Cost per cell: the
    owner-matrix set-up (1 round, n_c m_c elements to each non-owner)."""
    out = []
    for ci, cell in enumerate(plan.cells):
        shape = (int(cell.rows.shape[0]), int(cell.features.shape[0]))
        code = None
        if cell.owner == party.id:
            bins = np.asarray(binned[ci], dtype=np.int64)
            code = np.where(bins == n_bins[cell.features][None, :], 0, bins + 1)
        out.append(OwnerMatrix(party, code, cell.owner, shape=shape))
    return out


def route(party: Party, plan, codes: list, maps: RouteMaps, nodes: Nodes, splits: Splits) -> Nodes:
    """Children indicators (n, 2L): N_left = N * left, N_right = N - N_left.

    Inputs: N and the one-hot choices o (L x (C + 1), the last column "do
    not split").  Local: each node's chosen feature e = o summed per
    feature (L x m), and its code [t, num - cat, cat, dl] = o @ (public
    per-candidate codes).  Per cell, the owner's code matrix A (bin + 1,
    0 if missing) gives v = A @ e^T: the row's bin + 1 in the node's chosen
    feature, 0 if it is missing there (or the node does not split).  Three
    comparisons give z = [v <= 0], le = [bin <= t], lt = [bin < t]; then
    q = cat + (num - cat) le + cat lt (numerical: bin <= t; categorical:
    bin != t) and N_left = N (dns + q + z (dl - q)).
    The children's :class:`Nodes` carry ``splits.hist`` (which is cleared
    from ``splits``).
    Opened: E_q - R_q (uniform) to each cell owner, the comparisons' and
    the Beaver products' masks.
    Identity: N_left[i, l] = N[i, l] [row i goes left under node l's choice].
    Cost: 1 round per cell with m_c L elements per non-owner (offline n_c L
    from the dealer), one comparison batch on 3 n L elements of
    ``maps.bits`` bits, 2 Beaver rounds on 4 n L and 2 n L elements.
    """
    N = nodes.indicator
    n, L = N.shape
    onehot = splits.onehot
    C = maps.codes.shape[0]
    oc = np.ascontiguousarray(onehot[:, :C])
    csum = np.zeros((L, C + 1), np.uint64)
    np.cumsum(oc, axis=1, dtype=np.uint64, out=csum[:, 1:])
    starts = maps.cand_offsets
    E = csum[:, starts[1:]] - csum[:, starts[:-1]]                          # (L, m)
    t, nc_, cat, dl = ring.matmul(oc, maps.codes).T                          # (L,) each
    dns = onehot[:, C]
    v = np.zeros((n, L), np.uint64)
    for cell, A in zip(plan.cells, codes):
        ec = np.ascontiguousarray(E[:, cell.features].T)                     # (m_c, L)
        v[cell.rows] += A.matmul(AShare(party, ec)).value
    one = raw.const(party, np.ones((n, L), np.uint64))
    cmp = np.concatenate([(np.uint64(0) - v).ravel(),          # z  = [v <= 0]
                          (t[None, :] + one - v).ravel(),      # le = [v - 1 <= t]
                          (t[None, :] - v).ravel()])           # lt = [v - 1 < t]
    z, le, lt = raw.ge0(party, cmp, maps.bits).reshape(3, n, L)
    full = (n, L)
    p = raw.mul(party, np.concatenate([np.broadcast_to(nc_, full), np.broadcast_to(cat, full),
                                       N, N]),
                np.concatenate([le, lt, z, np.broadcast_to(dns, full)]))
    p1, p2, nz, ndns = p[:n], p[n:2 * n], p[2 * n:3 * n], p[3 * n:]
    q = cat[None, :] + p1 + p2
    r = raw.mul(party, np.concatenate([N, nz]), np.concatenate([q, dl[None, :] - q]))
    nl = ndns + r[:n] + r[n:]
    out = np.empty((n, 2 * L), np.uint64)
    out[:, 0::2] = nl
    out[:, 1::2] = N - nl
    parent, splits.hist = splits.hist, None
    return Nodes(out, parent)
