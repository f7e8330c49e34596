"""Server-side evaluation on ciphertexts: the tree walk, the leaf sums, the packing.

Nothing here needs a secret: :func:`walk` compares OPE ciphertexts,
:class:`SumTables` multiplies public Paillier ciphertexts and
:func:`pack_slots` combines them with public constants.
:meth:`EncryptedModel.predict <ppboost.inference.model.EncryptedModel.predict>`
composes them and re-randomises each returned ciphertext.

Packing (batches): with ``pack=True`` (the default), the server packs up
to ``slots = (bits(n)/2 - 2) // slot_bits`` results into one plaintext by
Horner's rule, ``C = E(K) * prod_j E(s_j)^(2**(slot_bits*j))`` with the public
offset K = sum_j 2**(slot_bits - 1) 2**(slot_bits j) (making each slot
non-negative), so one decryption serves up to 23 results for a 3072-bit key
(64-bit slots) at the cost of slot_bits squarings mod n^2 per result.

Server cost: leaves' ciphertexts are combined through precomputed products
over chunks of consecutive trees (:class:`SumTables`, at most 8192 extra
residues per model, built on first use), and each returned ciphertext is
re-randomised by a short-exponent n-th residue h_s^a (DJN 2010, see
:mod:`ppboost.crypto.paillier`).  The client decrypts mod p only.
"""
from __future__ import annotations

import numpy as np
from gmpy2 import mpz
from numba import njit

__all__ = ["walk", "SumTables", "pack_slots"]


@njit(cache=True)
def walk(q, left, right, slot, thr, dleft, leafidx, roots, kind, cat_ptr, cat_lo, cat_hi,
         out):
    """out[r, t] = leaf reached by row r in tree t.

    xgboost's rule (cpu_predictor GetNextNode) on OPE ciphertexts: missing ->
    default_left side; a numerical node (kind 0): left iff E(x) < E(t) (<=>
    x < t in float32); a categorical node (kind 1): right iff E(lo) <= E(x) <
    E(hi) for one of its intervals cat_ptr[i] <= k < cat_ptr[i + 1] (<=>
    int(x) is one of its categories), else left.
    """
    missing = np.uint64(0xFFFFFFFFFFFFFFFF)
    for r in range(q.shape[0]):
        for t in range(roots.shape[0]):
            i = roots[t]
            while left[i] >= 0:
                v = q[r, slot[i]]
                if v == missing:
                    go = dleft[i] != 0
                elif kind[i] == 0:
                    go = v < thr[i]
                else:
                    go = True
                    for k in range(cat_ptr[i], cat_ptr[i + 1]):
                        if cat_lo[k] <= v < cat_hi[k]:
                            go = False
                            break
                i = left[i] if go else right[i]
            out[r, t] = leafidx[i]


def pack_slots(sums: list, n, n2, slot_bits: int, slots: int) -> list:
    """Pack each run of ``slots`` ciphertexts into one, by Horner's rule (public operations).

    With w = ``slot_bits`` and the public offset K = sum_j 2**(w - 1) 2**(w j)
    (which makes every slot non-negative), a run c_0..c_{k-1} becomes
    C = E(K) * prod_j c_j^(2**(w j)) mod n^2, E(K) = 1 + K n, so that
    D(C) = sum_j (s_j + 2**(w - 1)) 2**(w j) where s_j = D(c_j).
    Cost: w squarings mod n^2 per packed value after the first of a run.
    """
    w = slot_bits
    shift = mpz(1) << w
    out = []
    for i in range(0, len(sums), slots):
        chunk = sums[i:i + slots]
        acc = chunk[-1]
        for c in reversed(chunk[:-1]):                   # Horner
            acc = pow(acc, shift, n2) * c % n2
        # + sum_j 2**(w - 1) * 2**(w j): one public constant, (1 + K n) = E(K)
        k_off = sum(1 << (w * j + w - 1) for j in range(len(chunk)))
        out.append(acc * ((1 + k_off * n) % n2) % n2)
    return out


class SumTables:
    """Precomputed products of leaf ciphertexts over chunks of consecutive trees.

    Trees of one output group are cut greedily into chunks whose number of
    leaf combinations is at most ``budget``; for a chunk (t_1..t_k) the table
    holds prod_i c_leaf(t_i) mod n^2 for every combination, so a row's sum
    over the chunk is one lookup (D(table[idx]) = sum_i leaf(t_i)).  A row
    then costs (#chunks - 1) products instead of (#trees - 1).  Only public
    ciphertexts are combined; at most ``max_entries`` new residues are
    stored (a single-tree chunk reuses the leaf ciphertexts).
    """

    def __init__(self, model, L, n2, budget=256, max_entries=8192):
        left, leafidx = model.left, model.leafidx
        self.tree_leaves = []
        for root in model.roots.tolist():
            found, stack = set(), [root]
            while stack:
                i = stack.pop()
                if left[i] < 0:
                    found.add(int(leafidx[i]))
                else:
                    stack.append(int(model.right[i]))
                    stack.append(int(left[i]))
            self.tree_leaves.append(np.asarray(sorted(found), np.int64))
        self.n_outputs = model.n_outputs
        self.chunks = [[] for _ in range(model.n_outputs)]   # per group: (trees, strides, table)
        entries = 0
        for g in range(model.n_outputs):
            trees = np.flatnonzero(model.groups == g).tolist()
            i = 0
            while i < len(trees):
                ch = [trees[i]]
                size = len(self.tree_leaves[trees[i]])
                while (i + len(ch) < len(trees)
                       and size * len(self.tree_leaves[trees[i + len(ch)]]) <= budget
                       and entries + size * len(self.tree_leaves[trees[i + len(ch)]])
                       <= max_entries):
                    size *= len(self.tree_leaves[trees[i + len(ch)]])
                    ch.append(trees[i + len(ch)])
                table = [L[j] for j in self.tree_leaves[ch[0]].tolist()]
                for t in ch[1:]:           # index = sum_i local_i * stride_i, first tree slowest
                    lv = [L[j] for j in self.tree_leaves[t].tolist()]
                    table = [x * y % n2 for x in table for y in lv]
                if len(ch) > 1:
                    entries += len(table)
                strides = np.ones(len(ch), np.int64)
                for k in range(len(ch) - 2, -1, -1):
                    strides[k] = strides[k + 1] * len(self.tree_leaves[ch[k + 1]])
                self.chunks[g].append((np.asarray(ch, np.int64), strides, table))
                i += len(ch)
        self.n2 = n2

    def sums(self, leaves):
        """Per row and group, the product of the reached leaves' ciphertexts."""
        n_rows = leaves.shape[0]
        local = np.empty(leaves.shape, np.int64)
        for t, tl in enumerate(self.tree_leaves):
            local[:, t] = np.searchsorted(tl, leaves[:, t])
        idx = [[(local[:, trees] @ strides).tolist(), table]
               for g in range(self.n_outputs) for trees, strides, table in self.chunks[g]]
        per_group = [len(c) for c in self.chunks]
        n2 = self.n2
        out = []
        for r in range(n_rows):
            k = 0
            for g in range(self.n_outputs):
                if per_group[g] == 0:          # no tree in this group: E(0) = 1
                    out.append(mpz(1))
                    continue
                ix, table = idx[k]
                acc = table[ix[r]]
                for k in range(k + 1, k + per_group[g]):  # noqa: B020 - continues the walk over idx
                    ix, table = idx[k]
                    acc = acc * table[ix[r]] % n2
                k += 1
                out.append(acc)
        return out
