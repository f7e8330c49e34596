"""Federated binning: xgboost's cuts from a pooled sketch whose merge is a secure sum.

Every party counts its own rows into ranges of the float32 order word
(:func:`ppboost.crypto.floatbits.to_ordered_uint32`: a 32-bit integer whose
order is the float order, -0.0 as +0.0); the counts are summed by secure
aggregation (:class:`~ppboost.tree.federated.Federation`), so the server
learns the pooled counts only, and refines the ranges it needs 8 bits at a
time.  The result is exactly the cuts of the exact pooled summary,
``cuts_from_summary(merge_summaries(every party's exact summary))``
(:mod:`ppboost.tree.binning`): the distinct values when a feature has at
most max_bin + 1 of them (xgboost's cuts then, for any number of rows),
else xgboost's ``WQSummary::SetPrune`` picks on the pooled rows (xgboost's
own sketch is that while it is exact, and close beyond), the same cuts as
the MPC mode's :func:`~ppboost.tree.secure_binning.shared_cuts`.

Stages, each one secure sum of the counts of every party (at most 7):

1. per feature, the number of missing values and the counts of the 256
   ranges given by the top 8 bits of the word;
2. then, while a feature has ranges to refine, the counts of the 256
   sub-ranges (next 8 bits) of each range the server selects:
   * while the feature has at most max_bin + 1 non-empty ranges, every
     non-empty one (if that holds down to single values, those are the
     distinct values and their counts);
   * beyond, only the ranges that hold a rank the cuts depend on, and the
     ranges holding the value just below and just above it: first the
     smallest and largest value (ranks 0 and n - 1); then the rank of
     every ``SetPrune`` target (they depend on the counts of the smallest
     and largest value) and the first ranks of the 2nd and 3rd value.
   Categorical features need only their largest code.

Opened to the server: for every feature, the number of missing values, the
pooled count of each range it counted (the top-8-bit ranges, then 256
sub-ranges of each selected range), hence the pooled distinct values and
their counts for a feature with at most max_bin + 1 of them, else the exact
values and counts at the ranks above and coarser counts around them: the
pooled sketch.  Opened to every party: which ranges are refined at each
stage (prefixes of the cut values and of their neighbours) and the cuts.
No party's own counts are opened to anyone (each sum is over all parties),
and nothing says which party holds which value.

A party that drops out during binning stops the job (nothing has been
trained; re-running the sketch without it would open its counts next to
everyone's).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..crypto.floatbits import from_ordered_uint32
from ..errors import ProtocolError
from .binning import (BinMapper, FeatureCuts, FeatureSummary, _xgb_prune_picks,
                      cuts_from_summary, numeric_cuts)

__all__ = ["federated_cuts", "bin_codes", "count_ranges", "SLOTS"]

BITS = 8                    # bits refined per stage
WORD = 32
SLOTS = 8                   # secure sums the sketch may use (1 + 3 + 3, one spare)


# ----------------------------------------------------------------------------- kernels
@njit(parallel=True, cache=True, nogil=True)
def count_ranges(xbits, lo_flat, wb_flat, sel_off, out_off, block):
    """Per feature j and selected range i = [lo, lo + 2^wb): the counts of its 256
    sub-ranges over this party's rows, and each feature's missing count.

    ``xbits``: the float32 data (n, m) viewed as uint32; ``lo_flat`` (uint64) and
    ``wb_flat`` (int64) the selected ranges of all features, sorted by lo per feature,
    feature j's at ``sel_off[j]:sel_off[j+1]``; output counts of feature j's range i
    at ``out_off[j] + 256 i + child``.  Parallel over blocks of ``block`` features.
    Returns (counts uint64, missing uint64 (m,))."""
    n, m = xbits.shape
    out = np.zeros(out_off[m], dtype=np.uint64)
    missing = np.zeros(m, dtype=np.uint64)
    one = np.uint64(1)
    sign = np.uint32(0x80000000)
    absmask = np.uint32(0x7FFFFFFF)
    inf = np.uint32(0x7F800000)
    nblk = (m + block - 1) // block
    for bi in prange(nblk):
        j0 = bi * block
        j1 = min(m, j0 + block)
        for i in range(n):
            for j in range(j0, j1):
                u = xbits[i, j]
                if (u & absmask) > inf:                    # NaN: missing
                    missing[j] += one
                    continue
                a = sel_off[j]
                b = sel_off[j + 1]
                if a == b:
                    continue
                if u == sign:                              # -0.0 -> +0.0
                    u = np.uint32(0)
                if u & sign:
                    w = np.uint64(~u)
                else:
                    w = np.uint64(u | sign)
                # last range with lo <= w
                lo_i, hi_i = a, b
                while hi_i - lo_i > 1:
                    mid = (lo_i + hi_i) // 2
                    if lo_flat[mid] <= w:
                        lo_i = mid
                    else:
                        hi_i = mid
                if lo_flat[lo_i] > w:
                    continue
                width = np.uint64(1) << np.uint64(wb_flat[lo_i])
                off = w - lo_flat[lo_i]
                if off >= width:
                    continue
                child = off >> np.uint64(wb_flat[lo_i] - 8)
                out[out_off[j] + 256 * (lo_i - a) + np.int64(child)] += one
    return out, missing


@njit(parallel=True, cache=True, nogil=True)
def _codes_kernel(X, cuts, cut_off, numeric, out, block):
    """Bin code per entry, as :meth:`BinMapper.transform` for the numeric features:
    the first bin whose cut is > x (the last bin above every cut), NaN -> n_bins."""
    n, m = X.shape
    nblk = (m + block - 1) // block
    for bi in prange(nblk):
        j0 = bi * block
        j1 = min(m, j0 + block)
        for i in range(n):
            for j in range(j0, j1):
                if not numeric[j]:
                    continue
                a = cut_off[j]
                nb = cut_off[j + 1] - a
                x = X[i, j]
                if x != x:
                    out[i, j] = nb
                    continue
                lo, hi = 0, nb                    # searchsorted(side="right")
                while lo < hi:
                    mid = (lo + hi) // 2
                    if cuts[a + mid] <= x:
                        lo = mid + 1
                    else:
                        hi = mid
                out[i, j] = min(lo, nb - 1)


def _blocks(m: int, threads: int) -> int:
    nblk = threads * max(1, -(-m // (16 * threads))) if threads > 1 else max(1, -(-m // 16))
    return max(1, -(-m // nblk))


def bin_codes(X, mapper: BinMapper, threads: int | None = None) -> np.ndarray:
    """This party's bin codes (n, m), uint8 when every code it holds fits, else uint16."""
    import numba
    X = np.ascontiguousarray(X, np.float32)
    n, m = X.shape
    nb = mapper.n_bins
    # the largest code this party holds: n_bins[j] (missing) where it has a NaN
    has_nan = np.isnan(X).any(axis=0) if n else np.zeros(m, bool)
    top = int(np.max(np.where(has_nan, nb, nb - 1))) if m else 0
    dtype = np.uint8 if top <= 255 else np.uint16
    out = np.zeros((n, m), dtype)
    numeric = ~mapper.categorical
    cuts = np.concatenate([f.cuts for f in mapper.features] or [np.zeros(0, np.float32)])
    cut_off = np.concatenate([[0], np.cumsum(nb)]).astype(np.int64)
    t = numba.get_num_threads() if threads is None else max(1, int(threads))
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
        _codes_kernel(X, cuts.astype(np.float32), cut_off, numeric, out, np.int64(_blocks(m, t)))
    finally:
        numba.set_num_threads(prev)
    for j in np.flatnonzero(mapper.categorical):          # rare: numpy, with the checks
        sub = BinMapper((mapper.features[j],)).transform(X[:, j:j + 1])
        out[:, j] = sub[:, 0]
    return out


# ----------------------------------------------------------------------------- server side
class _Feature:
    """The server's pooled counts of one feature: disjoint word ranges covering 0 .. 2^32."""

    def __init__(self, counts256, categorical: bool, max_bin: int):
        self.lo = (np.arange(256, dtype=np.uint64) << np.uint64(WORD - BITS))
        self.wb = np.full(256, WORD - BITS, np.int64)
        self.cnt = np.asarray(counts256, np.int64).copy()
        self.n = int(self.cnt.sum())
        self.categorical = categorical
        self.max_bin = max_bin
        self.mode = "done" if self.n == 0 else ("ends" if categorical else "exact")
        self.ranks = [self.n - 1] if categorical else [0, self.n - 1]
        self.selected = np.zeros(0, np.int64)

    # -- rank queries over the current ranges
    def _cum(self):
        return np.cumsum(self.cnt)

    def seg(self, r: int) -> int:
        return int(np.searchsorted(self._cum(), r, side="right"))

    def bounds(self, i: int):
        ct = int(self._cum()[i])
        return ct - int(self.cnt[i]), ct

    def _marked(self, ranks):
        marks = set()
        for r in ranks:
            i = self.seg(r)
            cb, ct = self.bounds(i)
            marks.add(i)
            if cb > 0:
                marks.add(self.seg(cb - 1))
            if ct < self.n:
                marks.add(self.seg(ct))
        return marks

    def select(self) -> np.ndarray:
        """Indices of the ranges to refine next (empty: this feature is finished)."""
        while self.mode != "done":
            if self.mode == "exact":
                nonempty = np.flatnonzero(self.cnt > 0)
                if nonempty.shape[0] <= self.max_bin + 1:
                    sel = nonempty[self.wb[nonempty] > 0]
                    if sel.shape[0] == 0:
                        self.mode = "done"
                        break
                    self.selected = sel
                    return sel
                self.mode = "ends"
                continue
            marks = np.array(sorted(self._marked(self.ranks)), np.int64)
            sel = marks[self.wb[marks] > 0]
            if sel.shape[0]:
                self.selected = sel
                return sel
            if self.mode == "ends" and not self.categorical:
                self.mode = "targets"
                self.ranks = self._target_ranks()
                continue
            self.mode = "done"
        self.selected = np.zeros(0, np.int64)
        return self.selected

    def refine(self, counts) -> None:
        """Replace each selected range by its 256 sub-ranges with their pooled counts."""
        sel = self.selected
        counts = np.asarray(counts, np.int64).reshape(sel.shape[0], 256)
        if np.any(counts.sum(axis=1) != self.cnt[sel]):
            raise ProtocolError("federated sketch: sub-range counts do not add up to their "
                                "range's count (did the parties' data change?)")
        keep = np.ones(self.lo.shape[0], bool)
        keep[sel] = False
        wb = self.wb[sel] - BITS
        lo = (self.lo[sel][:, None] + (np.arange(256, dtype=np.uint64)[None, :]
                                       << wb.astype(np.uint64)[:, None])).reshape(-1)
        self.lo = np.concatenate([self.lo[keep], lo])
        self.wb = np.concatenate([self.wb[keep], np.repeat(wb, 256)])
        self.cnt = np.concatenate([self.cnt[keep], counts.reshape(-1)])
        order = np.argsort(self.lo, kind="stable")
        self.lo, self.wb, self.cnt = self.lo[order], self.wb[order], self.cnt[order]

    # -- the exact values
    def _entry(self, r: int):
        i = self.seg(r)
        if self.wb[i] != 0:
            raise ProtocolError("federated sketch: a needed rank is not resolved to one value")
        cb, ct = self.bounds(i)
        return i, cb, ct

    def _target_ranks(self) -> list:
        """The ranks SetPrune looks at (see the module docstring), from the counts of the
        smallest and the largest value (exact once the "ends" sweep is finished)."""
        _, _, ct0 = self._entry(0)
        _, cbl, _ = self._entry(self.n - 1)
        maxsize = self.max_bin + 1
        nn = maxsize - 1
        begin = np.float32(ct0)
        rng = np.float32(np.float32(cbl) - begin)
        k = np.arange(1, nn, dtype=np.float32)
        dx2 = (np.float32(2) * ((k * rng) / np.float32(nn) + begin)).astype(np.float32)
        p = np.clip(np.floor(dx2.astype(np.float64) / 2).astype(np.int64), 0, self.n - 1)
        ranks = set(p.tolist()) | {0, self.n - 1, ct0}
        _, _, ct1 = self._entry(ct0) if ct0 < self.n else (0, 0, self.n)
        if ct1 < self.n:
            ranks.add(ct1)
        return sorted(ranks)

    def cuts(self) -> FeatureCuts:
        vals_mask = self.cnt > 0
        words = self.lo[vals_mask]
        single = self.wb[vals_mask] == 0
        values = from_ordered_uint32(words.astype(np.uint32))
        weights = self.cnt[vals_mask].astype(np.float64)
        if self.n == 0:
            return cuts_from_summary(FeatureSummary(np.zeros(0, np.float32), np.zeros(0),
                                                    self.categorical, True), self.max_bin)
        if self.categorical:
            _, _, _ = self._entry(self.n - 1)
            vmax = float(from_ordered_uint32(np.array([self.lo[self.seg(self.n - 1)]],
                                                      np.uint32))[0])
            return FeatureCuts(np.arange(int(vmax) + 1, dtype=np.float32), 0.0, True)
        if single.all():                      # the exact pooled summary
            return cuts_from_summary(FeatureSummary(values, weights, False, True), self.max_bin)
        # a shortened summary: exact entries where SetPrune looks, one entry per coarser
        # range elsewhere (never picked: checked); it has the same picks as the full one
        kept = _xgb_prune_picks(weights, self.max_bin + 1)
        if not single[kept].all():
            raise ProtocolError("federated sketch: a pick fell on an unresolved range")
        inner = values[kept[1:min(kept.shape[0], self.max_bin)]]
        return numeric_cuts(values[0], values[-1], inner)


# ----------------------------------------------------------------------------- protocol
def _sum(fed, vec, where, everyone):
    agg = fed.sum(vec, where)
    if fed.is_server and list(agg.included) != list(everyone):
        gone = [fed.ep.name(p) for p in everyone if p not in agg.included]
        raise ProtocolError(f"{', '.join(gone)} dropped out during the federated binning "
                            "(before any tree): the job stops; restart it without them")
    return agg


def federated_cuts(fed, X, categorical, max_bin: int, threads: int | None = None):
    """Every party's side of the federated sketch; returns (BinMapper, stats).

    ``fed``: the :class:`~ppboost.tree.federated.Federation` with an open session of
    at least :data:`SLOTS` free sums; ``X``: this party's rows (float32, NaN missing);
    ``categorical``: the public flags.  The server returns (and tells everyone) the
    cuts; ``stats`` (server): the stages and the number of counts opened."""
    import numba
    X = np.ascontiguousarray(X, np.float32)
    n, m = X.shape
    cat = np.asarray(categorical, bool)
    everyone = list(fed.alive)
    bits = X.view(np.uint32)
    t = numba.get_num_threads() if threads is None else max(1, int(threads))
    block = np.int64(_blocks(m, t))

    def local(lo_flat, wb_flat, sel_off):
        out_off = np.concatenate([[0], np.cumsum(256 * np.diff(sel_off))]).astype(np.int64)
        prev = numba.get_num_threads()
        try:
            numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
            return count_ranges(bits, lo_flat.astype(np.uint64), wb_flat.astype(np.int64),
                                sel_off.astype(np.int64), out_off, block)
        finally:
            numba.set_num_threads(prev)

    # stage 1: every feature's 256 top ranges, and its missing count
    lo1 = np.tile(np.arange(1, dtype=np.uint64), m)
    wb1 = np.full(m, WORD, np.int64)
    counts, missing = local(lo1, wb1, np.arange(m + 1))
    agg = _sum(fed, np.concatenate([missing, counts]), "binning, stage 1", everyone)
    stats = {"stages": 1, "counts_opened": int(m * 257)}
    feats = None
    if fed.is_server:
        tot = agg.total
        c = tot[m:].view(np.int64).reshape(m, 256)
        feats = [_Feature(c[j], bool(cat[j]), max_bin) for j in range(m)]
    stage = 1
    while True:
        if fed.is_server:
            sel = [f.select() for f in feats]
            lo = np.concatenate([f.lo[s] for f, s in zip(feats, sel)] or [np.zeros(0, np.uint64)])
            wb = np.concatenate([f.wb[s] for f, s in zip(feats, sel)] or [np.zeros(0, np.int64)])
            off = np.concatenate([[0], np.cumsum([s.shape[0] for s in sel])]).astype(np.int64)
            fed.announce({"lo": lo.astype(np.uint64).tolist(), "wb": wb.tolist(),
                          "off": off.tolist()}, f"binning, stage {stage + 1} plan")
        else:
            msg = fed.hear()
            lo = np.asarray(msg["lo"], np.uint64)
            wb = np.asarray(msg["wb"], np.int64)
            off = np.asarray(msg["off"], np.int64)
        if off[-1] == 0:
            break
        stage += 1
        if stage > SLOTS:
            raise ProtocolError("federated sketch: more stages than planned")
        counts, _ = local(lo, wb, off)
        agg = _sum(fed, counts, f"binning, stage {stage}", everyone)
        if fed.is_server:
            stats["stages"] = stage
            stats["counts_opened"] += int(counts.shape[0])
            tot = agg.total.view(np.int64)
            for j, f in enumerate(feats):
                a, b = 256 * int(off[j]), 256 * int(off[j + 1])
                if b > a:
                    f.refine(tot[a:b])
    if fed.is_server:
        mapper = BinMapper(tuple(f.cuts() for f in feats))
        fed.announce({"cuts": [f.cuts.astype(np.float64).tolist() for f in mapper.features],
                      "min": [float(f.min_value) for f in mapper.features]}, "binning: cuts")
        stats["n_valid"] = [int(f.n) for f in feats]
    else:
        msg = fed.hear()
        mapper = BinMapper(tuple(
            FeatureCuts(np.asarray(c, np.float32), float(mn), bool(cat[j]))
            for j, (c, mn) in enumerate(zip(msg["cuts"], msg["min"]))))
    return mapper, stats

