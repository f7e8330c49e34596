"""Oblivious sort of secret-shared keys: shuffle, then quicksort with opened comparisons.

Hamada, Kikuchi, Ikarashi, Chida, Takahashi, "Practically efficient
multi-party sorting protocols from comparison sort algorithms", ICISC 2012:
once the rows are in a uniformly random order that nobody knows, the
outcomes of a comparison sort on *distinct* keys are a function of that
random order only, so they can be opened and the data moved by public index
arithmetic.  Here:

1. :func:`ppboost.mpc.shuffle.shuffle` (one owner permutation per party,
   independently per public block) puts the rows [key | payload] in a
   uniformly random order.
2. Level-synchronous quicksort.  The public state is a partition of the
   positions into segments (initially one per block).  At every level each
   segment of two or more rows takes its **first** row as pivot and every
   other row r of the segment is compared with it: ``[key_r < key_pivot]``
   (:func:`ppboost.mpc.compare.ltz_planes` with the declared key bound, all
   segments of all blocks in one batch), and the bits are opened.  The
   segment is then partitioned *stably* (smaller rows, pivot, larger rows:
   a public permutation applied locally to the shares); the pivot is
   settled.  Stability keeps each new segment in uniformly random order, so
   its first row is again a uniform pivot.

Security (Hamada et al. 2012, section 3): with distinct keys and a uniform
shuffle, the opened bits are those of quicksort run on a uniformly random
permutation of ranks: a simulator draws one and runs quicksort on it.
Nothing about the data is revealed besides the public sizes.

Fixed transcript shape.  To keep every message size a function of the
public block sizes only, *every* level compares *every* row (a settled row
or a pivot is compared with itself: a difference of 0, a public outcome
``0``), and the number of levels is the public ``sort_levels(n)`` for the
largest block size n: ``min(n - 1, ceil(4.311 ln n) + 10)``.  4.311 ln n is
the asymptotic height of a random binary search tree (Devroye 1986), which
is the number of quicksort levels needed; its variance is O(1) (Reed 2003).
By simulation (20,000 random trees at n = 100 and at n = 1000) the mean is
12.3 and 21.1 levels, the largest seen 22 and 31, and the upper tail shrinks
by a factor of about 2.3 per level, so the bound (30 and 40) is exceeded
with probability of the order of 1e-7.  If the random pivots ever need more
levels, extra levels run until every segment is settled; how many depends
only on the shuffle's random permutation, never on the data, but the
transcript is then longer than the nominal one.  (Without this padding the
expected cost would be about 2 n ln n comparisons instead of
``sort_levels(n) * n``; the padding buys a transcript shape that is the same
in every run.)

Keys must be distinct for the security argument.  ``stable=True`` makes
them so: the key becomes ``key * 2^t + i`` (i = the row's public index in its
block, added before the shuffle, so it is secret afterwards; t = bits of the
largest block index), which also makes the sort stable.  With equal keys
and ``stable=False`` the output is still sorted (equal keys end in some
order), but the opened bits reveal which compared rows are equal-or-greater
and more levels may be needed: callers must not do that with secret data.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .b2a import open_xor_bits
from .compare import ltz_planes, planes_to_bits
from .shares import AShare
from .shuffle import check_blocks, shuffle

__all__ = ["sort", "sort_levels"]


def sort_levels(n: int) -> int:
    """Public number of quicksort levels for a block of ``n`` rows (see the module docstring)."""
    n = int(n)
    if n <= 1:
        return 0
    return int(min(n - 1, math.ceil(4.311 * math.log(n)) + 10))


@njit(cache=True)
def _pivots(head, piv):
    """piv[i] = first position of i's segment (``head[i] == 1`` starts a segment)."""
    start = 0
    for i in range(head.shape[0]):
        if head[i]:
            start = i
        piv[i] = start


@njit(cache=True)
def _partition(head, lt, perm, new_head):
    """Stable three-way partition of every segment around its first row.

    ``lt[i] == 1``: row i is smaller than its segment's pivot.  Writes the
    gather ``perm`` (new row k is old row perm[k]) and the new segment heads.
    Returns the number of unsettled segments (of length >= 2) afterwards.
    """
    n = head.shape[0]
    open_segments = 0
    s = 0
    while s < n:
        e = s + 1
        while e < n and not head[e]:
            e += 1
        if e - s == 1:
            perm[s] = s
            new_head[s] = 1
        else:
            k = s
            for r in range(s + 1, e):
                if lt[r]:
                    perm[k] = r
                    new_head[k] = 0
                    k += 1
            nl = k - s
            perm[k] = s                              # the pivot, settled
            new_head[k] = 1
            k += 1
            for r in range(s + 1, e):
                if not lt[r]:
                    perm[k] = r
                    new_head[k] = 0
                    k += 1
            ng = e - s - 1 - nl
            if nl:
                new_head[s] = 1
                if nl > 1:
                    open_segments += 1
            if ng:
                new_head[s + nl + 1] = 1
                if ng > 1:
                    open_segments += 1
        s = e
    return open_segments


def _check_key_bits(key_bits) -> int:
    if isinstance(key_bits, bool) or not isinstance(key_bits, (int, np.integer)) \
            or not 1 <= key_bits <= 63:
        raise ValueError(f"key_bits == {key_bits!r}, must be an int in 1..63 "
                         f"(every key is an integer in 0 .. 2**key_bits - 1)")
    return int(key_bits)


def sort(keys: AShare, payload: AShare | None = None, *, key_bits: int, blocks=None,
         stable: bool = False, fixed_shape: bool = True):
    """Sort secret-shared keys (and payload rows along) ascending, within public blocks.

    Inputs: ``keys`` a 1-D AShare of n integers in ``[0, 2**key_bits)``
    (the public bound ``key_bits``); ``payload`` (optional) an AShare with n
    rows (any trailing shape) moved along with the keys; ``blocks``
    (optional, public) row counts of consecutive blocks, each sorted on its
    own; ``stable``: break ties by the row's index in its block (needs
    ``key_bits + t <= 63``, t = bit length of the largest block index).
    Keys must be distinct unless ``stable`` (see the module docstring).
    ``fixed_shape=False`` drops the padding: each level compares only the rows
    of unsettled segments and the sort stops when all are settled (about
    2 n ln n comparisons instead of L n); the opened bits are the same
    simulatable ones, but the number of levels and the message sizes then vary
    from run to run (with the random pivots, not with the data).
    Opened: the shuffle's masked values (:func:`ppboost.mpc.shuffle.shuffle`)
    and one comparison bit per row per level, which for distinct keys are
    those of quicksort on a uniformly random permutation (simulatable,
    Hamada et al. ICISC 2012).  Nothing else.
    Identity: returns ([keys[rho]], [payload[rho]]) where rho sorts every
    block by key (and by index within equal keys when ``stable``).
    Cost: P rounds (shuffle) + L levels x (ltz rounds + 1), L =
    :func:`sort_levels` of the largest block (more only if the random
    pivots need it, see the module docstring): ``1 + ceil(log2((key_bits'+1)/2))``
    ltz rounds, key_bits' = key_bits (+ t if stable); per level n comparisons
    (one edaBit word and ~``key_bits'`` AND bits per row and peer) and n/8
    bytes of opened bits.  Shuffle: (1 + payload columns (+ 1 if stable)) x n
    elements per non-owner per round.
    """
    if not isinstance(keys, AShare):
        raise TypeError(f"sort: keys must be an AShare, got {type(keys).__name__}")
    if keys.ndim != 1:
        raise ValueError(f"sort: keys have shape {keys.shape}, must be 1-D (one key per row)")
    kb = _check_key_bits(key_bits)
    party = keys.party
    n = keys.shape[0]
    if payload is not None:
        if not isinstance(payload, AShare):
            raise TypeError(f"sort: payload must be an AShare or None, got {type(payload).__name__}")
        if payload.ndim == 0 or payload.shape[0] != n:
            raise ValueError(f"sort: payload has shape {payload.shape}, must have {n} rows "
                             f"(one per key)")
    blocks = check_blocks(blocks, n)
    cols = [keys.value.reshape(n, 1)]
    if stable:
        t = max(1, int(blocks.max(initial=1) - 1).bit_length())
        if kb + t > 63:
            raise ValueError(f"sort: key_bits + {t} tie-break bits == {kb + t}, must be <= 63 "
                             f"(stable sort of blocks of up to {int(blocks.max())} rows)")
        idx = np.concatenate([np.arange(b, dtype=np.uint64) for b in blocks.tolist()]) \
            if n else np.zeros(0, np.uint64)
        tied = keys.value << np.uint64(t)
        if party.id == 0:
            tied = tied + idx
        cols.insert(0, tied.reshape(n, 1))
        kb += t
    if payload is not None:
        cols.append(payload.value.reshape(n, -1))
    M = np.ascontiguousarray(np.concatenate(cols, axis=1))
    if n == 0:
        return AShare(party, keys.value.copy()), \
            (None if payload is None else AShare(party, payload.value.copy()))
    M = shuffle(AShare(party, M), blocks=blocks).value
    K = np.ascontiguousarray(M[:, 0])
    order = np.arange(n, dtype=np.int64)            # sorted row k is shuffled row order[k]
    head = np.zeros(n, np.uint8)
    head[np.concatenate([[0], np.cumsum(blocks)[:-1]]).astype(np.int64)[blocks > 0]] = 1
    piv = np.empty(n, np.int64)
    perm = np.empty(n, np.int64)
    new_head = np.empty(n, np.uint8)
    levels = sort_levels(int(blocks.max())) if fixed_shape else 0
    pending = bool((blocks > 1).any())
    level = 0
    while level < levels or pending:
        _pivots(head, piv)
        if fixed_shape:
            diff = K - K[piv]                        # 0 for pivots and settled rows
            sign = ltz_planes(party, diff, bound_bits=kb + 1)
            lt = open_xor_bits(party, planes_to_bits(sign, n)[0])
        else:                                        # only rows of unsettled segments
            act = np.flatnonzero(piv != np.arange(n))
            sign = ltz_planes(party, K[act] - K[piv[act]], bound_bits=kb + 1)
            lt = np.zeros(n, np.uint8)
            lt[act] = open_xor_bits(party, planes_to_bits(sign, act.shape[0])[0])
        pending = _partition(head, lt, perm, new_head) > 0
        K = K[perm]
        order = order[perm]
        head, new_head = new_head, head
        level += 1
    M = M[order]
    c0 = 1 if stable else 0
    out_keys = AShare(party, np.ascontiguousarray(M[:, c0]))
    out_payload = None
    if payload is not None:
        out_payload = AShare(party, np.ascontiguousarray(M[:, c0 + 1:]).reshape(payload.shape))
    return out_keys, out_payload
