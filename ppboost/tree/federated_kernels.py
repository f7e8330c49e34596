"""The federated backend's numba kernels: one party's histograms of its own rows and the
routing of its rows (:mod:`ppboost.tree.federated`; in the clear, at every data party)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["local_histograms", "route_rows"]


@njit(parallel=True, cache=True, nogil=True)
def _hist_kernel(codes, rows, slot, g, h, offs, n_bins, has_missing, n_slots, block):
    """Sums of g and h per (slot, bin) over ``rows`` (slot[k] the node slot of rows[k]),
    and per (slot, feature) the number of rows whose code is the missing bin n_bins[j].

    ``codes`` (n, m) uint8 / uint16, row-major; ``offs`` the features' first bins in a
    node's row of B = offs[m] bins; ``has_missing[j]``: this party has a missing value
    in feature j (else its missing counts are 0 without a look).  Parallel over blocks
    of ``block`` features: each thread reads its features' bytes of every row and
    writes only its own bins, so no two threads touch one bin (xgboost's
    ``BuildHist``, by feature blocks instead of row blocks; a block's bins of every
    slot stay in cache).  Returns (hist (n_slots * B * 2,) float64 as (slot, bin,
    g|h), miss (n_slots, m) uint64)."""
    m = codes.shape[1]
    B = offs[m]
    out = np.zeros(n_slots * B * 2, dtype=np.float64)
    miss = np.zeros((n_slots, m), dtype=np.uint64)
    nblk = (m + block - 1) // block
    one = np.uint64(1)
    nr = rows.shape[0]
    for bi in prange(nblk):
        j0 = bi * block
        j1 = min(m, j0 + block)
        k = 0
        while k + 1 < nr:                      # two rows at a time: independent updates
            r0 = rows[k]
            r1 = rows[k + 1]
            b0 = slot[k] * B
            b1 = slot[k + 1] * B
            g0 = np.float64(g[r0])
            h0 = np.float64(h[r0])
            g1 = np.float64(g[r1])
            h1 = np.float64(h[r1])
            for j in range(j0, j1):
                i0 = 2 * (b0 + offs[j] + np.int64(codes[r0, j]))
                i1 = 2 * (b1 + offs[j] + np.int64(codes[r1, j]))
                out[i0] += g0
                out[i0 + 1] += h0
                out[i1] += g1
                out[i1 + 1] += h1
            k += 2
        if k < nr:
            r0 = rows[k]
            b0 = slot[k] * B
            for j in range(j0, j1):
                i0 = 2 * (b0 + offs[j] + np.int64(codes[r0, j]))
                out[i0] += np.float64(g[r0])
                out[i0 + 1] += np.float64(h[r0])
        for j in range(j0, j1):
            if has_missing[j]:
                nb = n_bins[j]
                for k in range(rows.shape[0]):
                    if np.int64(codes[rows[k], j]) == nb:
                        miss[slot[k], j] += one
    return out, miss


@njit(cache=True, nogil=True)
def route_rows(codes, pos, choice, cand_feature, cand_bin, numeric, default_left, n_bins,
               n_cand):
    """Each row's node on the next level: 2 pos + [it goes right at its node's split].

    A row goes left iff its bin is <= t (numerical) or != t (categorical, one vs rest),
    a missing row the candidate's default way, and every row of a node that does not
    split (choice == n_cand) goes left."""
    n = pos.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        node = pos[i]
        c = choice[node]
        right = 0
        if c != n_cand:
            f = cand_feature[c]
            b = np.int64(codes[i, f])
            t = cand_bin[c]
            if b == n_bins[f]:
                right = 0 if default_left[c] else 1
            elif numeric[c]:
                right = 0 if b <= t else 1
            else:
                right = 0 if b != t else 1
        out[i] = 2 * node + right
    return out


@njit(cache=True, nogil=True)
def _node_totals(rows, slot, g, h, n_slots):
    """Per slot the float64 sums of g and h over its rows (xgboost's node sums)."""
    tot = np.zeros((n_slots, 2), dtype=np.float64)
    for k in range(rows.shape[0]):
        r = rows[k]
        tot[slot[k], 0] += np.float64(g[r])
        tot[slot[k], 1] += np.float64(h[r])
    return tot


def local_histograms(codes, rows, slot, g, h, offs, n_bins, n_slots, threads=None,
                     has_missing=None):
    """This party's histograms of the node slots: (hist (S, B, 2), miss (S, m), tot (S, 2)).

    ``threads``: numba threads for the feature blocks (default: numba's setting);
    ``has_missing``: per feature, whether this party has a missing value there
    (default: every feature is checked)."""
    import numba
    m = codes.shape[1]
    t = numba.get_num_threads() if threads is None else max(1, int(threads))
    prev = numba.get_num_threads()
    # blocks of at most 16 features (a block's bins of every slot stay in L2), and a
    # multiple of the thread count of them, so that the threads get equal shares
    nblk = t * max(1, -(-m // (16 * t))) if t > 1 else max(1, -(-m // 16))
    block = max(1, -(-m // nblk))
    rows = np.ascontiguousarray(rows, np.int64)
    slot = np.ascontiguousarray(slot, np.int64)
    hm = np.ones(m, np.bool_) if has_missing is None else np.asarray(has_missing, np.bool_)
    try:
        numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
        hist, miss = _hist_kernel(codes, rows, slot, g, h, offs, n_bins, hm, np.int64(n_slots),
                                  np.int64(block))
    finally:
        numba.set_num_threads(prev)
    B = int(offs[m])
    return (hist.reshape(int(n_slots), B, 2), miss,
            _node_totals(rows, slot, g, h, np.int64(n_slots)))
