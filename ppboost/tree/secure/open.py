"""A finished secret tree: this party's shares of it, and opening it to the analyst.

:func:`export_shares` turns a grown tree's level choices into this party's
:class:`SharedTree` (it opens nothing).  Summing every party's shares gives
the tree (:func:`open_tree`, the analyst's step); :func:`reveal_to` sends the
shares to an analyst who is one of the parties and opens them there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...crypto import fixed
from ...mpc import raw
from ...mpc.party import Party
from ..backend import RevealedTree, TreeLayout

__all__ = ["SharedTree", "export_shares", "open_tree", "reveal_to"]


@dataclass
class SharedTree:
    """One party's shares of one finished complete tree (ring elements).

    ``onehot[k]`` (2^k, C+1) one-hot split choices of level k; ``cond[k]``
    (2^k,) float32 bit patterns of the chosen split conditions;
    ``weight[k]`` (2^k,) node weights and ``leaf`` (2^d,) leaf weights,
    unscaled, at ``weight_bits`` fractional bits.  Summing the parties'
    shares (the analyst) gives the tree; see :func:`open_tree`.
    """

    group: int
    onehot: list
    cond: list
    weight: list
    leaf: np.ndarray
    weight_bits: int

    def flat(self) -> np.ndarray:
        """Every share in one uint64 vector (shapes are public: :meth:`like`)."""
        return np.concatenate([a.ravel() for a in self.onehot + self.cond + self.weight]
                              + [self.leaf.ravel()]).astype(np.uint64, copy=False)

    def like(self, flat: np.ndarray) -> SharedTree:
        """Another party's :meth:`flat` shares of this tree, in this tree's shapes."""
        parts, pos = [], 0
        for a in self.onehot + self.cond + self.weight + [self.leaf]:
            parts.append(np.asarray(flat[pos:pos + a.size], np.uint64).reshape(a.shape))
            pos += a.size
        if pos != flat.shape[0]:
            raise ValueError(f"{flat.shape[0]} shares for a tree of {pos} elements")
        d = len(self.onehot)
        return SharedTree(self.group, parts[:d], parts[d:2 * d], parts[2 * d:3 * d], parts[-1],
                          self.weight_bits)


def export_shares(party: Party, cond: np.ndarray, splits: list, leaves, group: int,
                  weight_bits: int, unscale=None) -> SharedTree:
    """This party's :class:`SharedTree` of one grown tree.

    Inputs: the per-level ``Splits`` and the ``Leaves``, the shares ``cond``
    (C,) of every candidate's split condition; ``unscale(ws)``, if given,
    maps the weights back to label units (reg:squarederror's secret scale).
    Each level's chosen condition is o . cond (one Beaver product on the
    stacked one-hots).  Opened: the Beaver (and unscaling) masks only.
    Cost: 1 round, (2^d - 1) C elements; ``unscale`` adds its own.
    """
    C = cond.shape[0]
    flat = np.concatenate([s.onehot[:, :C] for s in splits], axis=0)
    prod = raw.mul(party, flat, np.broadcast_to(cond, flat.shape))
    cond_all = prod.sum(axis=1, dtype=np.uint64)
    sizes = [s.onehot.shape[0] for s in splits]
    cuts = np.cumsum(sizes)[:-1]
    conds = np.split(cond_all, cuts)
    ws = np.concatenate([s.weight for s in splits] + [leaves.weight])
    if unscale is not None:
        ws = unscale(ws)
    weights = np.split(ws[:sum(sizes)], cuts)
    return SharedTree(group, [s.onehot.copy() for s in splits], conds, weights,
                      ws[sum(sizes):], weight_bits)


def reveal_to(party: Party, tree: SharedTree, analyst: int, layout: TreeLayout):
    """Open a tree to the ``analyst`` party only: every other party sends its
    shares (one message of the tree's size), the analyst sums them.

    Returns the :class:`RevealedTree` on the analyst, None elsewhere.
    Opened: the whole tree, to the analyst.  Cost: 1 round.
    """
    ep = party.ep
    if party.id != analyst:
        ep.send(analyst, tree.flat())
        return None
    shares = [tree if q == analyst else tree.like(np.asarray(ep.recv(q)))
              for q in range(party.n_parties)]
    return open_tree(shares, layout)


def open_tree(shares: list, layout: TreeLayout) -> RevealedTree:
    """Sum the parties' :class:`SharedTree` shares of one tree -> RevealedTree (analyst).

    Raises ValueError if a level's opened choice is not one-hot (inconsistent shares).
    """
    C = layout.n_candidates
    first = shares[0]
    d = len(first.onehot)

    def total(get):
        acc = None
        for s in shares:
            v = np.asarray(get(s), dtype=np.uint64)
            acc = v.copy() if acc is None else acc + v
        return acc

    is_split, feat, sbin, dleft, iscat, cond, w = [], [], [], [], [], [], []
    fw = first.weight_bits
    for k in range(d):
        oh = total(lambda s, k=k: s.onehot[k])
        if not np.all((oh == 0) | (oh == 1)) or not np.all(oh.sum(axis=1) == 1):
            raise ValueError("opened split choice is not one-hot: the shares are inconsistent")
        ch = np.argmax(oh, axis=1)
        sp = ch != C
        chc = np.where(sp, ch, 0)
        f = layout.cand_feature[chc] if C else np.zeros_like(ch)
        c_bits = total(lambda s, k=k: s.cond[k]).astype(np.uint32)
        is_split.append(sp)
        feat.append(np.where(sp, f, 0))
        sbin.append(np.where(sp, layout.cand_bin[chc] if C else 0, 0))
        dleft.append(sp & (layout.cand_default_left[chc] if C else False))
        iscat.append(sp & (layout.categorical[f] if C else False))
        cond.append(c_bits.view(np.float32))
        w.append(fixed.decode(total(lambda s, k=k: s.weight[k]), fw))
    leaf = fixed.decode(total(lambda s: s.leaf), fw)
    return RevealedTree(is_split, feat, sbin, dleft, iscat, cond, w, leaf, first.group)
