"""Secure horizontal binning: the pooled exact summary of a feature whose rows
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

from ..mpc.context import AShare, Party
from ..mpc.shuffle import shuffle
from .binning import FeatureSummary

__all__ = ["pooled_summaries"]

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
