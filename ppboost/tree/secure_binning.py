"""Secure horizontal binning: the cuts of a feature whose rows are split across
parties, opening only the cuts (and a few named aggregates).

docs/design.md, section 7: across parties (horizontal case) the bins come from a
sketch that no party sees in the clear; a feature with at most max_bin
distinct values gets one bin per value (as xgboost ``hist``).
:func:`shared_cuts` (used by :func:`ppboost.tree.secure.setup.agree_bins`) does it
with an oblivious sort of the pooled rows (:func:`ppboost.mpc.sort.sort`):

1. **Share the rows** (0 online rounds).  Each block owner secret-shares its
   rows of feature j (the block's row count is public): the word
   ``w = to_ordered_uint32(x)`` (float32 bit pattern mapped so that unsigned
   order is float order, -0.0 -> +0.0) for a non-missing row, the sentinel
   ``2^32`` (above every word) for a missing one, and the flag ``v = [x not
   missing]``.
2. **Sort** (:func:`ppboost.mpc.sort.sort`, stable: the key is
   ``w * 2^t + i`` with i the row's public index, shuffled along, so keys are
   distinct), each feature's N_j rows on their own.  Positions are now public
   ranks, values secret; the missing rows are last.
3. **Distinct flags** (one comparison batch): ``d_i = [w_{i-1} < w_i]``;
   ``dv_i = d_i - (v_{i-1} - v_i)``, ``dv_0 = v_0`` (local: the flags are
   sorted 1..1 0..0, so this removes the step onto the sentinel):
   ``dv_i = 1`` iff row i is the first non-missing row of its value.
   ``D = sum dv`` distinct values, ``R_i = sum_{l <= i} dv_l`` (local prefix sums).
4. **Path bit** (one comparison batch, with step 5's bits): ``B = [D > max_bin + 1]``
   for a numerical feature (0 for a categorical one), **opened**.
5. **Aggregates** for the quantile path (B = 1): ``n_valid = sum v`` (the
   pooled number of non-missing rows), ``c_min = sum [R_i - 2 v_i < 0]`` (rows
   holding the minimum, xgboost's rmax[0]), ``r_max = sum [R_i < D]`` (rows below
   the maximum, xgboost's rmin[-1]), the minimum ``w_0`` and the maximum
   ``sum_i w_i (v_i - v_{i+1})`` (one Beaver product).  **Opened** only for
   B = 1; a categorical feature opens its maximum only (its cuts are the codes
   0..max); a small feature opens zeros in these slots.
6. **Quantile picks** (B = 1): xgboost's ``WQSummary::SetPrune`` on the exact
   pooled summary (:func:`ppboost.tree.binning._xgb_prune`) keeps, for k = 1
   .. max_bin - 1, the distinct value whose rows contain the rank
   ``dx2_k / 2``, ``dx2_k = 2 (k (r_max - c_min) / max_bin + c_min)`` in float32
   (``rmin_i <= dx2/2 < rmax_i`` selects value i; exact while n_valid < 2^24;
   :func:`quantile_ranks`).  The ranks are public, so the secret words at
   sorted positions ``floor(dx2_k / 2)`` are picked locally; first-occurrence
   flags ``u_k = [pick_{k-1} < pick_k]`` (one comparison batch, run for every
   feature with N_j >= max_bin + 2) mark the distinct picks.
7. **One shuffle, two openings**: per feature the pairs (dv_i, w_i) of its rows
   and (u_k, pick_k) of its picks are obliviously shuffled, each block on its
   own (:func:`ppboost.mpc.shuffle.shuffle`); the flags of the feature's path
   are **opened** (values path: the dv column, which shows D = the public
   number of bins and nothing else, the order being random; quantile path:
   the u column, which shows the number of distinct picks; zeros otherwise),
   then the words whose flag is 1: the **distinct values** (values path,
   B = 0) or the **distinct picks** (quantile path), each once, in random
   order.  Values path: the cuts are ``cuts_from_summary`` of those values
   (one bin per value; with D = max_bin + 1 SetPrune keeps every value too,
   so counts are not needed).  Quantile path: the distinct picks are exactly
   the cuts but the last, plus possibly the minimum and maximum (opened in
   step 5 and revealed by the model anyway: min_value and the last cut);
   the cuts are ``cuts_from_summary``'s pruned branch on them.  Both equal
   ``cuts_from_summary`` of the merged exact summaries.

**What every party learns** about a shared feature, besides the public block
sizes: whether it has more than max_bin + 1 distinct values (numerical
features); for a feature with at most that many, its distinct values; for
one with more, n_valid, c_min, r_max (which fix the public ranks), its
minimum and maximum and the distinct values at the quantile ranks, i.e. its
cuts (not which rank gave which value, nor how many ranks share one); for a
categorical feature, its largest code.  Not which party holds which value,
no count per value, no party's own summary.  The transcript shape (every
message size) depends on the public block sizes and max_bin only: every step
runs for every feature with fixed lengths, zeros being opened in the slots a
path does not use.

Cost, for all features together (N = sum_j N_j rows, L = sort_levels(max_j N_j),
t = bits of max_j N_j, M = (max_bin - 1) x the number of features with N_j >=
max_bin + 2): about 2P + 7 L + 24 rounds between the parties (sort: P + 7 L
at 34 + t key bits; distinct flags 7; path bit and counts 5-7 with the row
count; product 1; aggregates 1; pick flags 7; final shuffle P; two openings;
measured: 237 for 3 features of 90 rows over 2 parties, L = 30);
elements per party and peer: about N (L + 3) + M comparison words plus their
AND bits (in all about 20 bytes per row and level at 10^4 rows), 3N per
shuffle round (sort) and 2 (N + M) (final shuffle), 2N for the product and
N + M + 5 m + sum_j min(N_j, max_bin + 1) opened.  The sort dominates:
measured (benchmarks/bench_secure_binning.py, 10,000 x 50 continuous,
2 parties, shared 2-core machine under load;
benchmarks/results/bench_secure_binning.json) 4.0 s wall (6.1 s in an
earlier run) and 514 MB sent per party; 3 parties 6.9 s and 1.03 GB.
``fixed_shape=False`` (unpadded sort, transcript shape random): 2.0 s and
199 MB (2 parties).  In the clear, on the pooled data: 0.012 s for
``np.unique`` of every column, 2.0 s for xgboost's own sketch.

The sort follows Hamada, Kikuchi, Ikarashi, Chida and Takahashi (ICISC
2012), the shuffles Laur, Willemson and Zhang (ISC 2011); the cut rule is
xgboost's ``WQSummary::SetPrune``.  An earlier version opened the pooled
exact summary (every distinct value, with its total row count).
"""
from __future__ import annotations

import numpy as np

from ..crypto.floatbits import from_ordered_uint32, to_ordered_uint32
from ..mpc.arith import mul, open_values
from ..mpc.b2a import b2a, open_xor_bits
from ..mpc.compare import ltz_planes, planes_to_bits
from ..mpc.party import Party
from ..mpc.shares import AShare
from ..mpc.shuffle import shuffle
from ..mpc.sort import sort
from .binning import FeatureCuts, FeatureSummary, cuts_from_summary

__all__ = ["quantile_ranks", "shared_cuts"]

_MISSING = np.uint64(1 << 32)       # sorts above every float32 word
_WORD_BITS = 33


def quantile_ranks(n_valid: int, c_min: int, r_max: int, max_bin: int) -> np.ndarray:
    """Sorted-row positions (0-based, among the non-missing rows) whose values
    xgboost's ``WQSummary::SetPrune(summary, max_bin + 1)`` keeps besides the
    minimum and maximum, for an exact summary of ``n_valid`` rows in which
    ``c_min`` rows hold the minimum and ``r_max`` rows lie below the maximum.

    :func:`ppboost.tree.binning._xgb_prune` with rmin_i / rmax_i the first /
    one-past-last row of distinct value i: for target ``dx2`` (float32, as
    xgboost) it keeps the value i with ``rmin_i <= dx2 / 2 < rmax_i``, i.e. the
    value of row ``floor(dx2 / 2)``.  Same float32 expressions as ``_xgb_prune``.
    Needs at least max_bin + 2 distinct values (else SetPrune keeps all).
    """
    if not 0 < c_min <= r_max < n_valid:
        raise ValueError(f"c_min == {c_min}, r_max == {r_max}, n_valid == {n_valid}: must "
                         f"satisfy 0 < c_min <= r_max < n_valid")
    begin = np.float32(c_min)
    rng = np.float32(np.float32(r_max) - begin)
    n = max_bin
    k = np.arange(1, n, dtype=np.float32)
    dx2 = (np.float32(2) * ((k * rng) / np.float32(n) + begin)).astype(np.float32)
    pos = np.floor(dx2.astype(np.float64) / 2).astype(np.int64)
    return np.minimum(pos, n_valid - 1)


def _check_columns(layout, mine, me, categorical):
    """This party's blocks: (word, valid) rows in layout order; checks shapes and codes."""
    parts = []
    for j, blocks in layout:
        for r, (o, s) in enumerate(blocks):
            if o != me:
                continue
            if (j, r) not in mine:
                raise ValueError(f"party {me}: no column for feature {j}, block {r} "
                                 f"(this party owns it)")
            x = np.asarray(mine[(j, r)])
            if x.ndim != 1 or x.shape[0] != s:
                raise ValueError(f"feature {j}, block {r}: column has shape {x.shape}, "
                                 f"must be ({s},) (the block's rows)")
            if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
                raise ValueError(f"feature {j}, block {r}: column dtype == {x.dtype}, must be numeric")
            x = x.astype(np.float32)
            miss = np.isnan(x)
            if categorical.get(j):
                xv = x[~miss]
                if np.any(xv < 0) or np.any(xv != np.round(xv)):
                    raise ValueError(f"feature {j}, block {r}: categorical column holds values "
                                     f"that are not non-negative integer codes")
            rows = np.zeros((s, 2), np.uint64)
            rows[:, 0] = _MISSING
            rows[~miss, 0] = to_ordered_uint32(x[~miss]).astype(np.uint64)
            rows[~miss, 1] = 1
            parts.append(rows)
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 2), np.uint64)


def _check_layout(layout, n_parties):
    out = []
    for e in layout:
        if not isinstance(e, tuple) or len(e) != 2:
            raise ValueError(f"layout entry {e!r}, must be (feature, [(owner, size), ...])")
        j, blocks = e
        blocks = [(int(o), int(s)) for o, s in blocks]
        for o, s in blocks:
            if not 0 <= o < n_parties:
                raise ValueError(f"feature {j}: owner == {o}, must be a party id in "
                                 f"0..{n_parties - 1}")
            if s < 0:
                raise ValueError(f"feature {j}: block size == {s}, must be >= 0")
        out.append((int(j), blocks))
    if len({j for j, _ in out}) != len(out):
        raise ValueError("layout lists a feature twice")
    return out


def _block_sums(x, starts, sizes) -> np.ndarray:
    """Sum of each block of consecutive rows (0 for an empty block), mod 2^64."""
    cs = np.concatenate([np.zeros(1, np.uint64), np.cumsum(x, dtype=np.uint64)])
    return cs[starts + sizes] - cs[starts]


def _block_prefix(x, starts, sizes) -> np.ndarray:
    """Inclusive prefix sums restarting at every block, mod 2^64."""
    cs = np.cumsum(x, dtype=np.uint64)
    before = np.concatenate([np.zeros(1, np.uint64), cs])[starts]
    return cs - np.repeat(before, sizes)


def _words_to_f32(words) -> np.ndarray:
    return from_ordered_uint32(np.asarray(words, dtype=np.uint64).astype(np.uint32))


def _kept_cuts(kept: np.ndarray, max_bin: int) -> FeatureCuts:
    """``cuts_from_summary``'s pruned branch from the kept distinct values (sorted,
    minimum first, maximum last): inner cuts kept[1 : min(len, max_bin)], then the
    last cut from the maximum; min_value from the minimum."""
    full = cuts_from_summary(FeatureSummary(kept, np.ones(kept.shape[0])), kept.shape[0])
    inner = kept[1:min(kept.shape[0], max_bin)]
    return FeatureCuts(np.concatenate([inner, full.cuts[-1:]]).astype(np.float32),
                       full.min_value, False)


def shared_cuts(party: Party, layout, mine: dict, categorical: dict | None = None,
                max_bin: int = 256, fixed_shape: bool = True) -> dict:
    """xgboost ``hist`` cuts of features whose rows are split across blocks, opening only the cuts.

    Every party calls it with the same public ``layout``: a list of
    ``(feature, [(owner, size), ...])``, one (owner, row count) per row block.
    ``mine``: ``{(feature, r): 1-D float column}`` for the blocks r (index into
    the feature's block list) this party owns, NaN = missing.
    ``categorical``: ``{feature: bool}`` (public); ``max_bin`` (public) >= 2.
    Opened (see the module docstring): per numerical feature the bit
    [distinct values > max_bin + 1]; then either its distinct values, or
    n_valid, c_min, r_max, its minimum, maximum and the distinct values at
    the quantile ranks (:func:`quantile_ranks`); per categorical feature its
    largest code.  Plus masked values inside the sort, comparisons, products
    and shuffles, and the sort's simulatable comparison bits.
    Identity: ``out[j] == cuts_from_summary(merge_summaries(exact summaries of
    the blocks of j), max_bin)`` (cuts and min_value), for every j.
    ``fixed_shape=False`` runs the sort unpadded (``ppboost.mpc.sort.sort``):
    about 2 N ln N instead of L N comparisons, but a transcript shape that
    varies from run to run with the random pivots (never with the data).
    Cost: about 2P + 7 L + 24 rounds between the parties for all features
    together (L = :func:`ppboost.mpc.sort.sort_levels` of the largest N_j);
    elements in the module docstring.  The transcript shape depends on the
    layout and max_bin only (with ``fixed_shape``).
    Returns ``{feature: FeatureCuts}`` (the same on every party).
    """
    if not isinstance(party, Party):
        raise TypeError(f"shared_cuts needs a Party, got {type(party).__name__}")
    if isinstance(max_bin, bool) or not isinstance(max_bin, (int, np.integer)) or max_bin < 2:
        raise ValueError(f"max_bin == {max_bin!r}, must be an int >= 2")
    layout = _check_layout(layout, party.n_parties)
    categorical = {j: bool(c) for j, c in (categorical or {}).items()}
    me, P = party.id, party.n_parties
    if not layout:
        return {}
    # --- 1. every owner shares its rows [word, valid] (all its blocks, layout order)
    rows_of = [0] * P
    for _, blocks in layout:
        for o, s in blocks:
            rows_of[o] += s
    local = _check_columns(layout, mine, me, categorical) if rows_of[me] else None
    shared = [party.share(local if q == me else None, owner=q, shape=(rows_of[q], 2)).value
              if rows_of[q] else np.zeros((0, 2), np.uint64) for q in range(P)]
    pos = [0] * P
    pieces, sizes = [], []
    for _, blocks in layout:
        for o, s in blocks:
            pieces.append(shared[o][pos[o]:pos[o] + s])
            pos[o] += s
        sizes.append(sum(s for _, s in blocks))
    sizes = np.array(sizes, np.int64)
    N = int(sizes.sum())
    feats = [j for j, _ in layout]
    cat = np.array([categorical.get(j, False) for j in feats], bool)
    if N == 0:
        return {j: cuts_from_summary(FeatureSummary(np.zeros(0, np.float32), np.zeros(0),
                                                    bool(c), True), max_bin)
                for j, c in zip(feats, cat)}
    G = np.concatenate(pieces, axis=0)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    nonempty = sizes > 0
    # --- 2. stable oblivious sort of every feature's rows by word (missing last)
    W, V = sort(AShare(party, np.ascontiguousarray(G[:, 0])), AShare(party, G[:, 1:]),
                key_bits=_WORD_BITS, blocks=sizes, stable=True, fixed_shape=fixed_shape)
    W, V = W.value, V.value.reshape(N)
    first = np.zeros(N, bool)
    first[starts[nonempty]] = True
    # --- 3. distinct flags: d_i = [w_{i-1} < w_i], dv_i = d_i - (v_{i-1} - v_i), dv_start = v
    d = np.zeros(N, np.uint64)
    if N > 1:
        sign = ltz_planes(party, W[:-1] - W[1:], bound_bits=_WORD_BITS + 1)
        d[1:] = b2a(party, planes_to_bits(sign, N - 1)[0]).value
    dv = d.copy()
    dv[1:] -= V[:-1] - V[1:]
    dv[first] = V[first]
    # R_i: prefix sums within each feature; D per feature
    R = _block_prefix(dv, starts, sizes)
    D = _block_sums(dv, starts, sizes)
    D_num = np.where(cat, np.uint64(0), D)                 # categorical: B = 0 by construction
    # --- 4./5. one comparison batch: a_i = [R_i - 2 v_i < 0], b_i = [R_i < D], B = [max_bin+1 < D]
    one = np.uint64(1) if me == 0 else np.uint64(0)
    top = np.full(len(feats), np.uint64(max_bin + 1) * one, np.uint64)
    batch = np.concatenate([R - np.uint64(2) * V, R - np.repeat(D, sizes), top - D_num])
    nb = int(max(int(sizes.max()), max_bin + 2)).bit_length() + 2
    bits = planes_to_bits(ltz_planes(party, batch, bound_bits=nb), batch.size)[0]
    B = open_xor_bits(party, bits[2 * N:]).astype(bool)
    ab = b2a(party, bits[:2 * N]).value
    # maximum word of the non-missing rows: sum_i w_i (v_i - v_{i+1}), v past a block = 0
    vnext = np.zeros(N, np.uint64)
    vnext[:-1] = V[1:]
    last = starts + sizes - 1
    vnext[last[nonempty]] = 0
    top_w = mul(AShare(party, W), AShare(party, V - vnext)).value
    agg = np.zeros((len(feats), 5), np.uint64)
    agg[:, 0] = _block_sums(V, starts, sizes)
    agg[:, 1] = _block_sums(ab[:N], starts, sizes)
    agg[:, 2] = _block_sums(ab[N:], starts, sizes)
    agg[:, 3] = np.where(nonempty, W[np.minimum(starts, N - 1)], np.uint64(0))
    agg[:, 4] = _block_sums(top_w, starts, sizes)
    keep = np.zeros((len(feats), 5), bool)
    keep[B] = True
    keep[cat, 4] = True
    agg[~keep] = 0
    (agg_open,) = open_values(party, [agg])
    # --- 6. quantile path: the words at the public ranks and their first-occurrence
    # flags u_k = [pick_{k-1} < pick_k] (u_0 = 1), so that only distinct picks are opened
    small = ~cat & ~B
    Q = np.where(sizes >= max_bin + 2, max_bin - 1, 0).astype(np.int64)   # public
    q0 = np.concatenate([[0], np.cumsum(Q)[:-1]]).astype(np.int64)
    picks = np.zeros(int(Q.sum()), np.uint64)
    for f in np.flatnonzero(B):
        n_valid, c_min, r_max = (int(x) for x in agg_open[f, :3])
        ranks = quantile_ranks(n_valid, c_min, r_max, max_bin)
        picks[q0[f]:q0[f] + Q[f]] = W[starts[f] + ranks]
    u = np.zeros(picks.shape[0], np.uint64)
    if picks.shape[0] > 1:
        sign = ltz_planes(party, picks[:-1] - picks[1:], bound_bits=_WORD_BITS + 1)
        u[1:] = b2a(party, planes_to_bits(sign, picks.shape[0] - 1)[0]).value
    u[q0[Q > 0]] = one
    # --- 7. one shuffle for both paths, per feature: [(dv_i, w_i) rows | (u_k, pick_k) rows],
    # each block on its own; open the flags of the feature's path, then the flagged words
    rows, blk, vrow, prow = [], [], [], []
    pos = 0
    for f in range(len(feats)):
        st, n_f = int(starts[f]), int(sizes[f])
        rows.append(np.stack([dv[st:st + n_f], W[st:st + n_f]], axis=1))
        rows.append(np.stack([u[q0[f]:q0[f] + Q[f]], picks[q0[f]:q0[f] + Q[f]]], axis=1))
        blk += [n_f, int(Q[f])]
        vrow.append(pos)
        prow.append(pos + n_f)
        pos += n_f + int(Q[f])
    S = shuffle(AShare(party, np.concatenate(rows, axis=0)), blocks=blk).value
    flags = np.zeros(S.shape[0], np.uint64)
    for f in range(len(feats)):
        if small[f]:
            flags[vrow[f]:vrow[f] + sizes[f]] = S[vrow[f]:vrow[f] + sizes[f], 0]
        elif B[f]:
            flags[prow[f]:prow[f] + Q[f]] = S[prow[f]:prow[f] + Q[f], 0]
    (flags_open,) = open_values(party, [flags])
    if np.any(flags_open > 1):
        raise ValueError(f"party {me}: opened flags {np.unique(flags_open[flags_open > 1])[:5]}, "
                         f"must be 0 or 1 (inconsistent shares)")
    slots = np.minimum(sizes, max_bin + 1)
    out_words = np.zeros(int(slots.sum()), np.uint64)
    slot0 = np.concatenate([[0], np.cumsum(slots)[:-1]]).astype(np.int64)
    count = np.zeros(len(feats), np.int64)
    for f in range(len(feats)):
        if small[f] or B[f]:
            lo = vrow[f] if small[f] else prow[f]
            idx = lo + np.flatnonzero(flags_open[lo:lo + (sizes[f] if small[f] else Q[f])])
            count[f] = idx.shape[0]
            out_words[slot0[f]:slot0[f] + count[f]] = S[idx, 1]
    (words_open,) = open_values(party, [out_words])
    # --- cuts
    out = {}
    for f, j in enumerate(feats):
        w = words_open[slot0[f]:slot0[f] + count[f]]
        if cat[f]:
            mx = agg_open[f, 4]
            vals = np.zeros(0, np.float32) if mx == 0 else _words_to_f32([mx])
            out[j] = cuts_from_summary(FeatureSummary(vals, np.ones(vals.shape[0]), True, True),
                                       max_bin)
        elif small[f]:
            vals = np.sort(_words_to_f32(w))
            if vals.shape[0] > max_bin + 1 or np.any(np.diff(vals) <= 0):
                raise ValueError(f"party {me}: feature {j}: opened values are not "
                                 f"{vals.shape[0]} <= max_bin + 1 distinct values")
            # at most max_bin + 1 values: SetPrune keeps them all, the weights are not read
            out[j] = cuts_from_summary(FeatureSummary(vals, np.ones(vals.shape[0])), max_bin)
        else:
            lo, hi = _words_to_f32(agg_open[f, 3:5])
            kept = np.unique(np.concatenate([[lo], _words_to_f32(w), [hi]]).astype(np.float32))
            if kept[0] != lo or kept[-1] != hi:
                raise ValueError(f"party {me}: feature {j}: opened quantile values lie "
                                 f"outside [min, max] (inconsistent shares)")
            out[j] = _kept_cuts(kept, max_bin)
    return out
