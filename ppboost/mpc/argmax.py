"""Secret argmax: a tournament that returns a secret one-hot vector, row-wise on a batch.

No index is ever opened.  Forward: ``ceil(log2 n)`` levels; at each level
adjacent candidates ``(left, right)`` of every row are compared at once
(one batched :func:`ppboost.mpc.compare.ltz`), the winner is multiplexed as
``left + s (right - left)`` with ``s = [left < right]`` (one Beaver product,
no truncation because ``s`` is an integer bit), and ``s`` is kept.  An odd
candidate out gets a bye.  Backward: starting from the one-hot ``[1]`` of the
final winner, every level splits a parent's indicator ``o`` into
``(o - o s, o s)`` for its two children (one Beaver product per level),
which yields the one-hot vector over the original candidates.

Ties: ``s = [left < right]`` is 0 when ``left == right``, so the left
(lower-index) candidate wins every tie; since the tournament keeps order,
the overall winner is the *lowest* index among the maxima, as numpy's
``argmax`` and xgboost's split search (which keeps the first best split).

Tolerance (``tol=eps``, a public number of ring units): every match uses
``s = [left + eps < right]``, so the right (higher-index) candidate wins
only by more than ``eps``; candidates within ``eps`` of each other count as
ties and the lower index wins.  This keeps the lowest-index rule for values
that are equal in truth but carry fixed-point noise below ``eps`` (which
would otherwise break exact ties at random).  It is a per-match rule: the
winner is within ``eps * ceil(log2 n)`` of the true maximum, and it is the
lowest index among the maxima whenever the distinct true values are more
than ``eps`` apart (plus noise).  Party 0 adds ``eps`` to its share (local),
so the cost and the transcript are those of ``tol=None``.  A *secret*
per-candidate tolerance (an AShare, e.g. a bound on each value's own noise
that grows with the value) works the same way with the left candidate's
tolerance in each match; the winner's tolerance is multiplexed with its
value (the match's Beaver product doubles in size, the rounds stay).

Cost for a ``(k, n)`` batch: ``ceil(log2 n)`` levels of (7 comparison
rounds + 1 product round) forward and ``ceil(log2 n)`` product rounds
backward; ``k (n - 1)`` comparisons and ``2 k (n - 1)`` Beaver products in
all.  Cf. the tournament argmax of CrypTen and of XORBoost
[Deforth et al., PoPETs 2022].
"""
from __future__ import annotations

import numpy as np

from . import raw
from .compare import check_bound, prefetch_ltz
from .shares import AShare, share_array

__all__ = ["argmax", "rowmax", "prefetch_argmax"]


def _levels(n: int) -> list:
    """Candidate counts L of the tournament levels for ``n`` candidates."""
    out = []
    while n > 1:
        out.append(n)
        n = n // 2 + n % 2
    return out


def _check_tol(party, tol, shape):
    """None, a public int (ring units) or an AShare of per-candidate tolerances."""
    if tol is None:
        return None
    if isinstance(tol, AShare):
        if tuple(tol.shape) != tuple(shape):
            raise ValueError(f"tol has shape {tuple(tol.shape)}, must be x's shape {tuple(shape)}")
        if tol.party is not party:
            raise ValueError("tol belongs to another Party object than x")
        return np.ascontiguousarray(tol.value).reshape(shape)
    if isinstance(tol, bool) or not isinstance(tol, (int, np.integer)) or not 0 <= tol < 2 ** 62:
        raise ValueError(f"tol == {tol!r}, must be None, an int in 0..2**62-1 (ring units) "
                         f"or an AShare of x's shape")
    return np.uint64(tol)


def prefetch_argmax(party, shape, bound_bits: int = 64) -> None:
    """Fetch all dealer material of one :func:`argmax` on ``shape`` ahead of time (offline phase)."""
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    k = 1 if len(shape) == 1 else shape[0]
    levels = _levels(shape[-1])
    for L in levels:
        prefetch_ltz(party, k * (L // 2), bound_bits)
        party.dealer.prefetch("beaver", shape=(k, L // 2))
    for L in reversed(levels):
        party.dealer.prefetch("beaver", shape=(k, L // 2))


def _check(x, who):
    xv = share_array(x)
    if xv.ndim not in (1, 2):
        raise ValueError(f"{who}: x.ndim == {xv.ndim}, must be 1 (a vector) or 2 (a batch of rows)")
    if xv.shape[-1] < 1:
        raise ValueError(f"{who}: x has 0 candidates per row, must have >= 1")
    return xv


def _forward(party, cur, bound_bits=64, tol=None):
    """Tournament on raw ``(k, L)`` shares: returns the ``(k, 1)`` winners, the level bits
    and the winners' tolerances (``(k, 1)`` shares, or None unless ``tol`` is shared).

    ``tol``: None, a public uint64 (party 0 adds it to its share of
    ``left - right``), or raw ``(k, L)`` shares of per-candidate tolerances:
    the right candidate wins a match only by more than the left one's
    tolerance, and the winner's tolerance moves up with it (muxed in the same
    Beaver product as the value).
    """
    check_bound(bound_bits)
    k = cur.shape[0]
    shared = isinstance(tol, np.ndarray) and tol.ndim == 2
    e = np.uint64(0) if tol is None or shared or party.id != 0 else np.uint64(tol)
    tcur = tol if shared else None
    levels = []
    while cur.shape[1] > 1:
        L = cur.shape[1]
        h = L // 2
        left = cur[:, 0:2 * h:2]
        right = cur[:, 1:2 * h:2]
        d = left - right
        if shared:
            d += tcur[:, 0:2 * h:2]                                    # [left + tol_left < right]
        elif e:
            d += e                                                     # [left + tol < right]
        s = raw.ltz(party, d.reshape(-1), bound_bits).reshape(k, h)   # [left < right]
        if shared:
            tl = tcur[:, 0:2 * h:2]
            both = raw.mul(party, np.concatenate([s, s], axis=1),
                           np.concatenate([right - left, tcur[:, 1:2 * h:2] - tl], axis=1))
            win, twin = left + both[:, :h], tl + both[:, h:]
        else:
            win = left + raw.mul(party, s, right - left)               # left + s (right - left)
        if L % 2:
            win = np.concatenate([win, cur[:, L - 1:]], axis=1)        # the odd one out: a bye
            if shared:
                twin = np.concatenate([twin, tcur[:, L - 1:]], axis=1)
        levels.append((s, L))
        cur = win
        if shared:
            tcur = twin
    return cur, levels, tcur


def rowmax(party, x, bound_bits: int = 64, tol: int | None = None):
    """Row maxima of an AShare ``(n,)`` or ``(k, n)``: the forward half of :func:`argmax`.

    Identity: ``out[i] = max_j x[i, j]`` (with ``tol``: the value of the
    candidate :func:`argmax` with the same ``tol`` selects).  Opened:
    comparison and Beaver masks only.
    Cost: ``ceil(log2 n)`` levels of 8 rounds; ``k (n - 1)`` comparisons and products.
    """
    xv = _check(x, "rowmax")
    k = 1 if xv.ndim == 1 else xv.shape[0]
    tol = _check_tol(party, tol, xv.shape)
    cur, _, _ = _forward(party, xv.reshape(k, xv.shape[-1]), bound_bits, tol)
    return AShare(party, cur[:, 0].reshape(()) if xv.ndim == 1 else cur[:, 0])


def argmax(party, x, return_max: bool = False, bound_bits: int = 64, tol: int | None = None):
    """Row-wise secret argmax of an AShare of shape ``(n,)`` or ``(k, n)``.

    Inputs: ``x`` (ring elements read as signed integers, e.g. fixed point);
    differences of two entries must satisfy ``-2**(l-1) <= d < 2**(l-1)`` ring
    units, ``l = bound_bits`` (default 64: any ring values whose differences
    do not wrap; a smaller declared bound makes every comparison cheaper,
    see :func:`ppboost.mpc.compare.ltz`).
    Opened: only what :func:`~ppboost.mpc.compare.ltz` and Beaver products
    open (uniformly masked values).
    Identity: ``onehot[i, j] = 1`` iff ``j`` is the lowest index with
    ``x[i, j] == max_j x[i, :]``, else 0 (integer 0/1 shares, not fixed-point).
    ``tol`` (default None = 0): candidates within ``tol`` of a better one
    count as ties and the lowest index wins (per tournament match, see the
    module docstring "Tolerance"); either a public int (ring units) or an
    AShare of x's shape holding each candidate's own non-negative tolerance
    (a match is then decided by the left candidate's tolerance, and the
    winner carries its tolerance up: one more product per match, no more
    rounds).  ``left + tol - right`` must satisfy the same bound.
    Returns the one-hot AShare (same shape as ``x``); with
    ``return_max=True`` also the AShare of the row maxima (shape ``(k,)`` or
    ``()``) and, when ``tol`` is an AShare, the winners' tolerances.
    Cost: see the module docstring.
    """
    xv = _check(x, "argmax")
    vec = xv.ndim == 1
    k = 1 if vec else xv.shape[0]
    tol = _check_tol(party, tol, xv.shape)
    cur, levels, twin = _forward(party, xv.reshape(k, xv.shape[-1]), bound_bits, tol)
    onehot = raw.const(party, np.ones((k, 1), dtype=np.uint64))
    for s, L in reversed(levels):
        h = L // 2
        r = raw.mul(party, onehot[:, :h], s)
        child = np.empty((k, L), dtype=np.uint64)
        child[:, 0:2 * h:2] = onehot[:, :h] - r
        child[:, 1:2 * h:2] = r
        if L % 2:
            child[:, L - 1] = onehot[:, h]
        onehot = child
    oh = AShare(party, onehot.reshape(xv.shape))
    if not return_max:
        return oh
    mx = cur[:, 0]
    if twin is None:
        return oh, AShare(party, mx.reshape(()) if vec else mx)
    tw = twin[:, 0]
    return oh, AShare(party, mx.reshape(()) if vec else mx), AShare(party, tw.reshape(()) if vec else tw)
