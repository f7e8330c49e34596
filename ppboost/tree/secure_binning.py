"""Secure horizontal binning: the cuts of a feature whose rows are split across
parties, opening only the cuts (and a few named aggregates).

DESIGN.md "Binning": across parties (horizontal case) the bins come from a
sketch that no party sees in the clear; a feature with at most max_bin
distinct values gets one bin per value (as xgboost ``hist``).
:func:`shared_cuts` (used by :func:`ppboost.tree.secure.agree_bins`) does it
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
2 parties, shared machine; benchmarks/results/bench_secure_binning.json)
4-6 s wall and 514 MB sent per party, against 0.23 s and 18 MB for
:func:`pooled_summaries`; ``fixed_shape=False`` (unpadded sort, transcript
shape random) 2.4 s and 198 MB.

:func:`pooled_summaries` (below) is the former protocol, no longer used by
the training: it opens the pooled exact summary (every distinct value with
its multiplicity over blocks, and for features with more than max_bin values
every value's total count).  Kept for exact pooled summaries where that is
acceptable, and as the baseline of benchmarks/bench_secure_binning.py.


Pooled summaries (the former protocol)
--------------------------------------

Secure horizontal binning: the pooled exact summary of a feature whose rows
are split across parties, without any party seeing another's summary.

DESIGN.md "Binning": across parties (horizontal case) the bins come from a
secure-aggregated sketch.  For every such feature j, each row block
(cell) owner holds an exact local summary (distinct float32 values and their
row counts, :func:`ppboost.tree.binning.summarize_column`).  The protocol:

1. **Share** (0 online rounds).  Each owner secret-shares its summaries,
   padded with dummy entries to the public size of its row block (a block of
   n_c rows has at most n_c distinct values, so the padding hides how many
   distinct values it has).  An entry is two ring elements: the word
   ``bits(value) + valid * 2^32`` (float32 bit pattern, secret validity flag:
   0 for a dummy) and the weight (row count, 0 for a dummy).
2. **Shuffle** (P rounds, :func:`ppboost.mpc.shuffle.shuffle`).  All
   entries of feature j (from every owner, N_j = sum of the block sizes) are
   concatenated in public order and obliviously shuffled, independently per
   feature (block-wise), so no party knows which entry came from whom.
3. **Open the values** (1 round).  The value-and-flag words are opened; the
   weights stay secret.  Everyone learns, per feature, the shuffled list of
   valid values: the pooled distinct values **with their multiplicity over
   the row blocks** (a value held by k blocks appears k times), and the
   number of dummy entries (= N_j minus the total number of (block, distinct
   value) pairs).  Not revealed: which block holds which value, any block's
   count for any value.
4. **Aggregate** (local).  Grouping by opened value is now public: the secret
   weights of equal values are summed (a public linear map).
5. **Open the aggregated weights** (1 round), only where the cuts need
   them: for a numerical feature with more than ``max_bin`` pooled distinct
   values (its quantile cuts depend on the counts), each distinct value's
   total row count over all blocks, i.e. exactly ``merge_summaries`` of the
   local summaries.  A categorical feature, or one with at most ``max_bin``
   distinct values (one bin per value, as xgboost ``hist``), needs only
   the values: its slots are set to 0 before the opening (a public linear
   map, as the number of distinct values is public after step 3), so its
   counts are never opened.  The opened vector always has the public
   length N_j, so the transcript shape depends only on the public block
   sizes.

Cost: P + 2 rounds for all shared features together; each party sends
2 N elements per shuffle round as a non-owner (N = sum_j N_j) plus N
indices as owner, then 2 (P - 1) N elements for the two openings.  Offline:
the dealer sends each owner 2 R_p elements (its input sharing) and each
owner in turn 2 N elements (permutation correlation).

The cuts computed from the result (:func:`ppboost.tree.binning.cuts_from_summary`)
are identical to those of the former clear exchange (and to xgboost's while
its sketch is exact): the pooled summary is the same.  The shuffle follows
Laur, Willemson and Zhang (ISC 2011); the aggregation is a secure sum
(Bonawitz et al., CCS 2017 in spirit, here over additive shares).
"""
from __future__ import annotations

import numpy as np

from ..crypto.floatbits import from_ordered_uint32, to_ordered_uint32
from ..mpc.arith import mul, open_values
from ..mpc.b2a import b2a, open_xor_bits
from ..mpc.compare import ltz_planes, planes_to_bits
from ..mpc.context import AShare, Party
from ..mpc.shuffle import shuffle
from ..mpc.sort import sort
from .binning import FeatureCuts, FeatureSummary, cuts_from_summary

__all__ = ["pooled_summaries", "quantile_ranks", "shared_cuts"]

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
    for j, blocks in layout:
        for o, s in blocks:
            rows_of[o] += s
    local = _check_columns(layout, mine, me, categorical) if rows_of[me] else None
    shared = [party.share(local if q == me else None, owner=q, shape=(rows_of[q], 2)).value
              if rows_of[q] else np.zeros((0, 2), np.uint64) for q in range(P)]
    pos = [0] * P
    pieces, sizes = [], []
    for j, blocks in layout:
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

_VALID = np.uint64(1 << 32)
_LOW32 = np.uint64(0xFFFFFFFF)


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


def _encode_entries(summary: FeatureSummary, size: int, where: str) -> np.ndarray:
    """(size, 2) uint64: [bits(value) + 2^32 valid, weight], padded with zeros (dummies)."""
    vals = np.asarray(summary.values)
    w = np.asarray(summary.weights, dtype=np.float64)
    k = vals.shape[0]
    if k > size:
        raise ValueError(f"{where}: summary has {k} entries, must be <= {size} (the block's rows)")
    if w.shape != (k,):
        raise ValueError(f"{where}: {w.shape[0]} weights for {k} values, must be equal")
    v32 = vals.astype(np.float32)
    if np.any(np.isnan(v32)):
        raise ValueError(f"{where}: summary holds NaN values, must hold non-missing values only")
    if np.any(w <= 0) or np.any(w != np.round(w)) or np.any(w >= 2.0 ** 53):
        raise ValueError(f"{where}: summary weights must be positive integer row counts < 2**53")
    v32 = v32 + np.float32(0.0)                 # -0.0 -> +0.0 (equal as floats, one group)
    out = np.zeros((size, 2), np.uint64)
    out[:k, 0] = v32.view(np.uint32).astype(np.uint64) | _VALID
    out[:k, 1] = w.astype(np.uint64)
    return out


def pooled_summaries(party: Party, layout, mine: dict, categorical: dict | None = None,
                     max_bin: int | None = None) -> dict:
    """Pooled exact summaries of features split across row blocks, opened to every party.

    Every party calls it with the same public ``layout``: a list of
    ``(feature, [(owner, size), ...])``, one (owner, size) per row block of
    the feature (size = the block's row count, an upper bound on its number
    of distinct values).  ``mine``: ``{(feature, r): FeatureSummary}`` for the
    blocks ``r`` (index into the feature's block list) this party owns, exact
    summaries with integer counts.  ``categorical``: ``{feature: bool}`` (public).
    ``max_bin`` (public): counts are opened only for numerical features with
    more than ``max_bin`` pooled distinct values; None opens every count.

    Opened: the per-feature shuffled multiset of the blocks' distinct values
    (with their multiplicity over blocks) and the number of dummy entries;
    then the total count of each pooled distinct value of the features whose
    cuts need counts (see ``max_bin``).  Nothing else (see the module
    docstring).
    Identity: ``out[j] == merge_summaries([local summaries of j])`` (values,
    and weights where opened; NaN weights where not), for every j in the layout.
    Cost: P + 2 rounds; see the module docstring for elements.
    Returns ``{feature: FeatureSummary}`` (the same on every party).
    """
    if not isinstance(party, Party):
        raise TypeError(f"pooled_summaries needs a Party, got {type(party).__name__}")
    layout = _check_layout(layout, party.n_parties)
    categorical = categorical or {}
    me = party.id
    if not layout:
        return {}
    # --- 1. each owner shares its padded entries (all its blocks, in layout order)
    rows_of = [0] * party.n_parties
    for j, blocks in layout:
        for o, s in blocks:
            rows_of[o] += s
    local = None
    if rows_of[me]:
        parts = []
        for j, blocks in layout:
            for r, (o, s) in enumerate(blocks):
                if o != me:
                    continue
                if (j, r) not in mine:
                    raise ValueError(f"party {me}: no summary for feature {j}, block {r} "
                                     f"(this party owns it)")
                parts.append(_encode_entries(mine[(j, r)], s, f"feature {j}, block {r}"))
        local = np.concatenate(parts, axis=0)
    shared = [party.share(local if q == me else None, owner=q, shape=(rows_of[q], 2)).value
              if rows_of[q] else None for q in range(party.n_parties)]
    # global order: feature by feature, block by block
    pos = [0] * party.n_parties
    pieces, sizes = [], []
    for j, blocks in layout:
        for o, s in blocks:
            pieces.append(shared[o][pos[o]:pos[o] + s])
            pos[o] += s
        sizes.append(sum(s for _, s in blocks))
    G = np.concatenate(pieces, axis=0) if pieces else np.zeros((0, 2), np.uint64)
    total = G.shape[0]
    if total == 0:
        return {j: FeatureSummary(np.zeros(0, np.float32), np.zeros(0), bool(categorical.get(j)),
                                  True) for j, _ in layout}
    # --- 2. oblivious shuffle within each feature's block of entries
    S = shuffle(AShare(party, G), blocks=sizes).value
    # --- 3. open the value words (weights stay secret)
    words = party.reveal(AShare(party, np.ascontiguousarray(S[:, 0])))
    flag = words >> np.uint64(32)
    if np.any(flag > 1):
        raise ValueError(f"party {me}: opened summary entries carry validity flags "
                         f"{np.unique(flag[flag > 1])[:5]}, must be 0 or 1 (malformed input)")
    # --- 4. secret per-value sums (the grouping is public now)
    agg = np.zeros(total, np.uint64)
    groups = []
    start = 0
    for (j, _), n_j in zip(layout, sizes):
        blk = slice(start, start + n_j)
        valid = np.flatnonzero(flag[blk] == 1)
        vals = (words[blk][valid] & _LOW32).astype(np.uint32).view(np.float32)
        if np.any(np.isnan(vals)):
            raise ValueError(f"party {me}: feature {j}: an opened summary value is NaN")
        uniq, inv = np.unique(vals, return_inverse=True)
        counted = max_bin is None or (not categorical.get(j) and uniq.shape[0] > max_bin)
        if counted:                     # else the slots stay 0: the counts are not opened
            np.add.at(agg, start + inv, S[blk, 1][valid])
        groups.append((j, uniq, start, counted))
        start += n_j
    # --- 5. open the aggregated weights (fixed length: the public total)
    tot = party.reveal(AShare(party, agg))
    out = {}
    for j, uniq, st, counted in groups:
        if not counted:
            out[j] = FeatureSummary(uniq.astype(np.float32), np.full(uniq.shape[0], np.nan),
                                    bool(categorical.get(j)), True)
            continue
        w = tot[st:st + uniq.shape[0]].astype(np.float64)
        if np.any(w <= 0):
            raise ValueError(f"party {me}: feature {j}: a pooled value has total weight 0 "
                             f"(an owner shared a valid entry with no rows)")
        out[j] = FeatureSummary(uniq.astype(np.float32), w, bool(categorical.get(j)), True)
    return out
