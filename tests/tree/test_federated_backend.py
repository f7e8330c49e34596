"""The federated backend's kernels and fixed point (ppboost.tree.federated)."""
from __future__ import annotations

import numpy as np
import pytest

from ppboost.tree.federated import frac_bits_for, from_ring, local_histograms, to_ring


def _reference(codes, rows, slot, g, h, offs, n_bins, S):
    B = offs[-1]
    hist = np.zeros((S, B, 2))
    miss = np.zeros((S, codes.shape[1]), np.uint64)
    for j in range(codes.shape[1]):
        key = slot * B + offs[j] + codes[rows, j].astype(np.int64)
        hist[:, :, 0].reshape(-1)[:] += np.bincount(key, g[rows].astype(np.float64), S * B)
        hist[:, :, 1].reshape(-1)[:] += np.bincount(key, h[rows].astype(np.float64), S * B)
        m = codes[rows, j] == n_bins[j]
        miss[:, j] = np.bincount(slot[m], minlength=S)
    return hist, miss


@pytest.mark.nojit
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_local_histograms_against_bincount(threads, dtype):
    rng = np.random.default_rng(0)
    n, m, S = 2000, 37, 5
    n_bins = rng.integers(1, 255 if dtype == np.uint8 else 300, m).astype(np.int64)
    codes = np.stack([rng.integers(0, nb + 1, n) for nb in n_bins], 1).astype(dtype)
    offs = np.concatenate([[0], np.cumsum(n_bins + 1)]).astype(np.int64)
    rows = np.sort(rng.choice(n, 1500, replace=False))
    slot = rng.integers(0, S, rows.shape[0])
    g = rng.standard_normal(n).astype(np.float32)
    h = rng.random(n).astype(np.float32)
    hist, miss, tot = local_histograms(codes, rows, slot, g, h, offs, n_bins, S, threads)
    want_h, want_m = _reference(codes, rows, slot, g, h, offs, n_bins, S)
    assert np.allclose(hist, want_h, rtol=0, atol=1e-9)
    assert np.array_equal(miss, want_m)
    assert np.allclose(tot[:, 0], np.bincount(slot, g[rows].astype(np.float64), S), atol=1e-9)
    assert np.allclose(tot[:, 1], np.bincount(slot, h[rows].astype(np.float64), S), atol=1e-9)


def test_fixed_point_sums_are_exact_within_the_bound():
    """f from the bound keeps every |sum| 2^f below 2^62: the parties' encodings add up in
    Z_2^64 to the encoding of the total, within one unit per party."""
    rng = np.random.default_rng(1)
    n_total = 10 ** 6
    f = frac_bits_for(n_total)
    assert f == 62 - (10 ** 6).bit_length()
    parts = [rng.uniform(-1, 1, 1000) * (n_total / 4) for _ in range(4)]   # |sum| <= n_total
    total = sum(to_ring(p, f) for p in parts)
    assert np.abs(from_ring(total, f) - sum(parts)).max() <= 4 * 2.0 ** -(f + 1) + 1e-9
    assert frac_bits_for(0) == 62


@pytest.mark.nojit
def test_route_kernel_sends_rows_as_the_plain_backend():
    """Each row's next node from the kernel equals the plain backend's routing for random
    split choices (numerical forward/backward, categorical, missing, "no split")."""
    from ppboost.tree.backend import KIND_BACKWARD, KIND_FORWARD, TreeLayout
    from ppboost.tree.federated_kernels import route_rows
    from ppboost.tree.plain import PlainBackend

    rng = np.random.default_rng(3)
    n_bins = np.array([5, 3, 7, 4])
    cat = np.array([False, True, False, True])
    lay = TreeLayout(n_bins, cat)
    n, L = 400, 4
    codes = np.stack([rng.integers(0, nb + 1, n) for nb in n_bins], 1).astype(np.uint8)
    pos = rng.integers(0, L, n)
    choice = rng.integers(0, lay.n_candidates + 1, L)           # C = no split
    numeric = (lay.cand_kind == KIND_FORWARD) | (lay.cand_kind == KIND_BACKWARD)
    got = route_rows(codes, pos, choice, lay.cand_feature, lay.cand_bin, numeric,
                        lay.cand_default_left, lay.n_bins, np.int64(lay.n_candidates))

    class P(PlainBackend):
        def __init__(self):
            self.layout, self.trace, self.n_rows = lay, None, n
            self.binned = codes.astype(np.int32)
    nodes = np.zeros((n, L))
    nodes[np.arange(n), pos] = 1
    onehot = np.zeros((L, lay.n_candidates + 1))
    onehot[np.arange(L), choice] = 1
    want = np.argmax(P().route(nodes, {"onehot": onehot}), axis=1)
    assert np.array_equal(got, want)
