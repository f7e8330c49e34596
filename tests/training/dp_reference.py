"""A plaintext numpy model of the DP training algorithm (without noise), for the tests.

Gradient boosting with clipped logistic gradients, unit hessians, public cuts,
complete trees in which every node takes the candidate of largest
G_L^2 / (n_L + lambda) + G_R^2 / (n_R + lambda) (first one on ties), and leaves
-G / (n + lambda): what :mod:`ppboost.tree.secure.dp` computes in MPC when its
noise is negligible.
"""
import numpy as np

from ppboost.tree.backend import TreeLayout
from ppboost.tree.binning import BinMapper


def left_of(layout, binned, c):
    """Rows (bool) a candidate sends left."""
    j = int(layout.cand_feature[c])
    t = int(layout.cand_bin[c])
    b = binned[:, j]
    miss = b == layout.n_bins[j]
    if layout.categorical[j]:
        base = b != t
    else:
        base = b <= t
    return np.where(miss, bool(layout.cand_default_left[c]), base)


def reference_margins(X, y, cuts, rounds, depth, lam, eta, clip=1.0, ties=None):
    """Training margins of the noiseless DP algorithm (binary:logistic, base_score 0.5).

    ``ties`` (a list): gets one entry per node where another candidate with another
    partition of the node's rows comes within 1e-6 of the best utility (there the
    MPC's tiny noise may choose either)."""
    mapper = BinMapper(tuple(cuts[j] for j in range(len(cuts))))
    binned = mapper.transform(X)
    layout = TreeLayout(np.array([cuts[j].n_bins for j in range(len(cuts))]),
                        np.array([cuts[j].categorical for j in range(len(cuts))]))
    C = layout.n_candidates
    lefts = np.stack([left_of(layout, binned, c) for c in range(C)], axis=1)   # (n, C)
    n = X.shape[0]
    m = np.zeros(n)
    for _ in range(rounds):
        g = np.clip(1 / (1 + np.exp(-m)) - y, -clip, clip)
        node = np.zeros(n, np.int64)
        for level in range(depth):
            new = np.empty(n, np.int64)
            for l in range(2 ** level):
                rows = node == l
                gl = (g[rows, None] * lefts[rows]).sum(axis=0)
                nl = lefts[rows].sum(axis=0)
                gr, nr = g[rows].sum() - gl, rows.sum() - nl
                S = gl ** 2 / (nl + lam) + gr ** 2 / (nr + lam)
                c = int(np.argmax(S))
                if ties is not None:
                    near = np.flatnonzero(S >= S[c] - 1e-6 * (1 + abs(S[c])))
                    if any((lefts[rows, k] != lefts[rows, c]).any() for k in near):
                        ties.append((level, l))
                new[rows] = 2 * l + np.where(lefts[rows, c], 0, 1)
            node = new
        G = np.bincount(node, weights=g, minlength=2 ** depth)
        N = np.bincount(node, minlength=2 ** depth)
        m = m + eta * (-G / (N + lam))[node]
    return m
