"""Federated binning: xgboost's cuts from a pooled sketch whose merge is a secure sum.

Every party counts its own rows into ranges of the float32 order word
(:func:`ppboost.crypto.floatbits.to_ordered_uint32`: a 32-bit integer whose
order is the float order, -0.0 as +0.0); the counts are summed by secure
aggregation (:class:`~ppboost.tree.federated.Federation`), so the server
learns the pooled counts only, and refines the ranges it needs: the top 8
bits of the word first, then 4 bits (16 sub-ranges) at a time.  The result
is exactly the cuts of the exact pooled summary,
``cuts_from_summary(merge_summaries(every party's exact summary))``
(:mod:`ppboost.tree.binning`): the distinct values when a feature has at
most max_bin + 1 of them (xgboost's cuts then, for any number of rows),
else xgboost's ``WQSummary::SetPrune`` picks on the pooled rows (xgboost's
own sketch is that while it is exact, and close beyond), the same cuts as
the MPC mode's :func:`~ppboost.tree.secure_binning.shared_cuts`.

Stages, each one secure sum of the counts of every party (every feature
advances in the same stages):

1. per feature, the number of missing values and the counts of the 256
   ranges given by the top 8 bits of the word (:data:`FIRST`);
2. then, while a feature has ranges to refine, the counts of the 16
   sub-ranges (next 4 bits, :data:`BITS`) of each range the server selects:
   * while the feature has at most max_bin + 1 non-empty ranges, every
     non-empty one (if that holds down to single values, those are the
     distinct values and their counts);
   * beyond, only the ranges that hold a rank the cuts depend on, and the
     ranges holding the value just below and just above it: first the
     smallest and largest value (ranks 0 and n - 1); then the rank of
     every ``SetPrune`` target (they depend on the counts of the smallest
     and largest value) and the first ranks of the 2nd and 3rd value.
   Categorical features need only their largest code.

A range reaches a single value after at most 6 refinements (the 24 bits below
the first 8), and the rank mode's lookups depend on each other at most three
deep (the smallest and largest value; then each target's value; then the
value next to it, or the 3rd value), so a sketch takes at most 1 + 3 x 6 = 19
stages; the session reserves :data:`SLOTS` = 20 sums (one spare) and a sketch
that would need more stops with :class:`~ppboost.errors.ProtocolError`.  The
1,000,000 x 100 benchmark (``benchmarks/bench_federated.py``) takes 12.

Opened to the server: for every feature, the number of missing values, the
pooled count of each range it counted (the top-8-bit ranges, then 16
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

from ..crypto.floatbits import from_ordered_uint32, to_ordered_uint32
from ..errors import ProtocolError
from .binning import BinMapper, FeatureCuts, FeatureSummary, cuts_from_summary, numeric_cuts

__all__ = ["federated_cuts", "bin_codes", "count_ranges", "SLOTS"]

FIRST = 8                   # bits of the first stage's ranges (256 per feature)
BITS = 4                    # bits refined per later stage (16 sub-ranges per range)
WORD = 32
SLOTS = 1 + 3 * (WORD - FIRST) // BITS + 1   # secure sums the sketch may use (20)


# ----------------------------------------------------------------------------- counting
MISSING_WORD = np.uint32(0xFFFFFFFF)      # above every word of a finite float32 (+inf: 0xFF800000)


def sorted_words(X) -> np.ndarray:
    """This party's columns as sorted order words, (m, n) uint32, NaN as MISSING_WORD last.

    Sorted once, each stage's counts are differences of ``searchsorted`` positions."""
    X = np.asarray(X, np.float32)
    n, m = X.shape
    W = np.empty((m, n), np.uint32)
    for j0 in range(0, m, 16):
        block = np.ascontiguousarray(X[:, j0:j0 + 16].T)
        for k, col in enumerate(block):
            nan = np.isnan(col)
            w = np.full(n, MISSING_WORD, np.uint32)
            w[~nan] = to_ordered_uint32(col[~nan])
            w.sort()
            W[j0 + k] = w
    return W


def count_ranges(W, lo_flat, wb_flat, sel_off, cbits: int):
    """Per feature j and selected range i = [lo, lo + 2^wb): the counts of its 2^cbits
    sub-ranges over this party's rows (``W`` from :func:`sorted_words`), feature j's
    ranges at ``sel_off[j]:sel_off[j+1]`` of ``lo_flat``/``wb_flat``, its counts at
    2^cbits (sel_off[j] + i) + child.  Returns (counts uint64, missing uint64 (m,))."""
    m, n = W.shape
    fan = 1 << int(cbits)
    out = np.zeros(int(sel_off[m]) * fan, np.uint64)
    missing = np.empty(m, np.uint64)
    steps = np.arange(fan + 1, dtype=np.uint64)
    for j in range(m):
        col = W[j]
        missing[j] = n - np.searchsorted(col, MISSING_WORD, side="left")
        a, b = int(sel_off[j]), int(sel_off[j + 1])
        if a == b:
            continue
        lo = np.asarray(lo_flat[a:b], np.uint64)
        step = np.uint64(1) << (np.asarray(wb_flat[a:b], np.uint64) - np.uint64(cbits))
        edges = lo[:, None] + steps[None, :] * step[:, None]          # (ranges, fan + 1)
        # words are < 2^32; an edge of 2^32 (the end of the top range) counts everything
        pos = np.searchsorted(col, np.minimum(edges, np.uint64(MISSING_WORD)).astype(np.uint32),
                              side="left")
        pos[edges >= np.uint64(MISSING_WORD)] = n - missing[j]
        out[a * fan:b * fan] = np.diff(pos, axis=1).reshape(-1).astype(np.uint64)
    return out, missing


@njit(parallel=True, cache=True, nogil=True)
def _codes_kernel(X, cuts, cut_off, numeric, out, block):
    """Bin code per entry, as :meth:`BinMapper.transform` for the numeric features:
    the first bin whose cut is > x (the last bin above every cut), NaN -> n_bins.
    A branch-free binary search (the comparisons become conditional moves)."""
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
                if x != x:  # noqa: PLR0124 - NaN (missing), the idiom numba compiles
                    out[i, j] = nb
                    continue
                base = a                          # upper_bound over cuts[a:a+nb]
                size = nb
                while size > 1:
                    half = size >> 1
                    base += half * np.int64(cuts[base + half - 1] <= x)
                    size -= half
                lo = base - a + np.int64(cuts[base] <= x)
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
    """The server's pooled counts of one feature: disjoint word ranges covering 0 .. 2^32,
    and the ranks it still has to resolve to single values."""

    def __init__(self, counts, categorical: bool, max_bin: int):
        self.lo = np.arange(1 << FIRST, dtype=np.uint64) << np.uint64(WORD - FIRST)
        self.wb = np.full(1 << FIRST, WORD - FIRST, np.int64)
        self.cnt = np.asarray(counts, np.int64).copy()
        self.cum = np.cumsum(self.cnt)
        self.n = int(self.cnt.sum())
        self.categorical = categorical
        self.max_bin = max_bin
        self.mode = "done" if self.n == 0 else ("ranks" if categorical else "exact")
        self.phase = "ends"
        self.need = {self.n - 1} if categorical else {0, self.n - 1}
        self.kept = None                     # ranks of the kept entries (rank mode)
        self.selected = np.zeros(0, np.int64)

    # -- ranks
    def seg(self, r: int) -> int:
        return int(np.searchsorted(self.cum, r, side="right"))

    def entry(self, r: int):
        """(resolved, cb, ct) of the range holding rank r (resolved: one value)."""
        i = self.seg(r)
        ct = int(self.cum[i])
        return bool(self.wb[i] == 0), ct - int(self.cnt[i]), ct

    def value(self, r: int) -> float:
        return float(from_ordered_uint32(np.array([self.lo[self.seg(r)]], np.uint32))[0])

    def _unresolved(self, ranks) -> np.ndarray:
        segs = {self.seg(r) for r in ranks}
        return np.array(sorted(i for i in segs if self.wb[i] > 0), np.int64)

    def _targets(self):
        """The ranks SetPrune (``binning._xgb_prune_picks``) keeps, read off the resolved
        entries; returns (kept ranks, ranks still to resolve).  Mirrors its float32 rank
        arithmetic: for target dx2, j is the first entry with rmin + rmax > dx2 (at index
        >= 2), i the entry before it, and the pick is i iff dx2 < rmax_i + rmin_j."""
        _, _, ct0 = self.entry(0)
        _, cbl, _ = self.entry(self.n - 1)
        nn = self.max_bin                      # maxsize - 1
        begin = np.float32(ct0)
        rng = np.float32(np.float32(cbl) - begin)
        k = np.arange(1, nn, dtype=np.float32)
        dx2 = (np.float32(2) * ((k * rng) / np.float32(nn) + begin)).astype(np.float32)
        need, kept = set(), {0, cbl}
        ct1 = None
        for d in dx2.astype(np.float64):
            p = min(max(int(np.floor(d / 2)), 0), self.n - 1)
            ok, cb, ct = self.entry(p)
            if not ok:
                need.add(p)
                continue
            cbj = cb if cb + ct > d else ct           # j = the entry at p, or the next one
            if cbj >= self.n:
                break                                 # no entry after i: SetPrune stops
            if cbj in (0, ct0):                       # j at index 0 or 1: SetPrune takes i = 1
                if ct0 >= self.n:
                    break
                ok1, _, c1 = self.entry(ct0)
                if not ok1:
                    need.add(ct0)
                    continue
                ct1 = c1
                cbj = ct1
                if cbj >= self.n:
                    break
            pick = cbj - 1 if d < 2.0 * cbj else cbj
            if not self.entry(pick)[0]:
                need.add(pick)
            kept.add(self.entry(pick)[1])             # an entry is named by its first rank
        return kept, need

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
                self.mode = "ranks"
                continue
            sel = self._unresolved(self.need)
            if sel.shape[0]:
                self.selected = sel
                return sel
            if self.categorical:
                self.mode = "done"
                break
            if self.phase == "ends":                  # then the targets and the 2nd value
                self.phase = "targets"
                self.need = {self.entry(0)[2]} if self.entry(0)[2] < self.n else set()
            kept, need = self._targets()
            if need:
                self.need = need
                continue
            self.kept = sorted(kept)
            self.mode = "done"
        self.selected = np.zeros(0, np.int64)
        return self.selected

    def refine(self, counts, cbits: int) -> None:
        """Replace each selected range by its 2^cbits sub-ranges with their pooled counts."""
        sel = self.selected
        fan = 1 << cbits
        counts = np.asarray(counts, np.int64).reshape(sel.shape[0], fan)
        if np.any(counts.sum(axis=1) != self.cnt[sel]):
            raise ProtocolError("federated sketch: sub-range counts do not add up to their "
                                "range's count (did the parties' data change?)")
        keep = np.ones(self.lo.shape[0], bool)
        keep[sel] = False
        wb = self.wb[sel] - cbits
        lo = (self.lo[sel][:, None] + (np.arange(fan, dtype=np.uint64)[None, :]
                                       << wb.astype(np.uint64)[:, None])).reshape(-1)
        self.lo = np.concatenate([self.lo[keep], lo])
        self.wb = np.concatenate([self.wb[keep], np.repeat(wb, fan)])
        self.cnt = np.concatenate([self.cnt[keep], counts.reshape(-1)])
        order = np.argsort(self.lo, kind="stable")
        self.lo, self.wb, self.cnt = self.lo[order], self.wb[order], self.cnt[order]
        self.cum = np.cumsum(self.cnt)

    def cuts(self) -> FeatureCuts:
        if self.n == 0:
            return cuts_from_summary(FeatureSummary(np.zeros(0, np.float32), np.zeros(0),
                                                    self.categorical, True), self.max_bin)
        if self.categorical:
            return FeatureCuts(np.arange(int(self.value(self.n - 1)) + 1, dtype=np.float32),
                               0.0, True)
        if self.kept is None:                 # every non-empty range is one value: exact
            nz = self.cnt > 0
            values = from_ordered_uint32(self.lo[nz].astype(np.uint32))
            return cuts_from_summary(FeatureSummary(values, self.cnt[nz].astype(np.float64),
                                                    False, True), self.max_bin)
        vals = [self.value(r) for r in self.kept]
        inner = vals[1:min(len(vals), self.max_bin)]
        return numeric_cuts(vals[0], self.value(self.n - 1), inner)


# ----------------------------------------------------------------------------- protocol
def federated_cuts(fed, X, categorical, max_bin: int, threads: int | None = None):
    """Every party's side of the federated sketch; returns (BinMapper, stats).

    ``fed``: the :class:`~ppboost.tree.federated.Federation` with an open session of
    at least :data:`SLOTS` free sums; ``X``: this party's rows (float32, NaN missing);
    ``categorical``: the public flags.  The server returns (and tells everyone) the
    cuts; ``stats`` (server): the stages and the number of counts opened."""
    X = np.ascontiguousarray(X, np.float32)
    n, m = X.shape
    cat = np.asarray(categorical, bool)
    everyone = list(fed.alive)
    W = sorted_words(X)

    def local(lo_flat, wb_flat, sel_off, cbits):
        return count_ranges(W, lo_flat, wb_flat, sel_off, cbits)

    # stage 1: every feature's 256 top ranges, and its missing count
    lo1 = np.zeros(m, np.uint64)
    wb1 = np.full(m, WORD, np.int64)
    counts, missing = local(lo1, wb1, np.arange(m + 1), FIRST)
    agg = fed.sum_everyone(np.concatenate([missing, counts]), "binning, stage 1", everyone)
    stats = {"stages": 1, "counts_opened": int(m * ((1 << FIRST) + 1))}
    feats = None
    if fed.is_server:
        tot = agg.total
        c = tot[m:].view(np.int64).reshape(m, 1 << FIRST)
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
        counts, _ = local(lo, wb, off, BITS)
        agg = fed.sum_everyone(counts, f"binning, stage {stage}", everyone)
        if fed.is_server:
            stats["stages"] = stage
            stats["counts_opened"] += int(counts.shape[0])
            tot = agg.total.view(np.int64)
            for j, f in enumerate(feats):
                a, b = int(off[j]) << BITS, int(off[j + 1]) << BITS
                if b > a:
                    f.refine(tot[a:b], BITS)
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

