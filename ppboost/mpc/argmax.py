"""Secret argmax: a tournament that returns a secret one-hot vector, row-wise on a batch.

No index is ever opened.  The tournament is the binary one (below), played
two levels at a time.  Forward: ``ceil(log4 n)`` 4-way levels; at each,
the candidates of every row form groups (a, b, c, d) of four adjacent ones,
and every match the binary tournament could play inside a group, (a, b),
(c, d) and the four pairings of their winners, is compared at once (one
batched :func:`ppboost.mpc.compare.ltz` on six differences per group).
Three rounds of Beaver products then give exactly what two binary levels
give (:func:`_four_way`): the winners w1 = a + A (b - a), w2 = c + C (d - c)
with A = [a < b], C = [c < d], the final match F (a product of the
comparison bits), the group's winner w1 + F (w2 - w1) and its one-hot.  A
last group of 1 to 3 candidates plays the binary tournament's byes.
Backward: starting from the one-hot ``[1]`` of the final winner, every
level multiplies a parent's indicator into its group's one-hot (one Beaver
product per level), which yields the one-hot over the original candidates.

In the binary tournament each match compares adjacent candidates
``(left, right)``, the winner is ``left + s (right - left)`` with
``s = [left < right]`` (no truncation: ``s`` is an integer bit), and an odd
candidate out gets a bye.

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

Cost for a ``(k, n)`` batch: ``ceil(log4 n)`` levels of (7 comparison
rounds + 3 product rounds) forward and ``ceil(log4 n)`` product rounds
backward, against ``ceil(log2 n)`` levels of (7 + 1) and ``ceil(log2 n)``
for the binary tournament (at n = 40,000: 88 rounds instead of 144); about
2 k n comparisons (binary: k (n - 1)) and 4 k n Beaver products (6 k n with
a shared tolerance).  Cf. the tournament argmax of CrypTen and of XORBoost
[Deforth et al., PoPETs 2022].
"""
from __future__ import annotations

import numpy as np

from . import raw
from .compare import check_bound, prefetch_ltz
from .shares import AShare, share_array

__all__ = ["argmax", "rowmax", "prefetch_argmax"]


def _levels(n: int) -> list:
    """Candidate counts L of the tournament's 4-way levels for ``n`` candidates."""
    out = []
    while n > 1:
        out.append(n)
        n = -(-n // 4)
    return out


# the six matches of a group (a, b, c, d) = slots (0, 1, 2, 3), left slot first:
# the binary tournament's first level plays (a, b) and (c, d), its second level the
# winners; every pair that can meet is compared at once
_PAIRS = ((0, 1), (2, 3), (0, 2), (0, 3), (1, 2), (1, 3))
_AB, _CD, _AC, _AD, _BC, _BD = range(6)


def _pair_exists(L: int) -> np.ndarray:
    """(q, 6) bool: which matches of each group of a level of ``L`` candidates can be
    played (the last group may hold 1, 2 or 3: the binary tournament's byes)."""
    q = -(-L // 4)
    size = np.full(q, 4)
    size[-1] = L - 4 * (q - 1)
    return np.array([[b < sz for _, b in _PAIRS] for sz in size.tolist()], bool).reshape(q, 6)


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
    """Fetch all dealer material of one :func:`argmax` on ``shape`` ahead of time (offline
    phase); for ``tol=None`` or a public ``tol`` (a shared ``tol`` needs larger products)."""
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    k = 1 if len(shape) == 1 else shape[0]
    levels = _levels(shape[-1])
    for L in levels:
        q = -(-L // 4)
        prefetch_ltz(party, k * int(_pair_exists(L).sum()), bound_bits)
        for width in (4 * q, q, 3 * q):
            party.dealer.prefetch("beaver", shape=(k, width))
    for L in reversed(levels):
        party.dealer.prefetch("beaver", shape=(k, 4 * -(-L // 4)))


def _check(x, who):
    xv = share_array(x)
    if xv.ndim not in (1, 2):
        raise ValueError(f"{who}: x.ndim == {xv.ndim}, must be 1 (a vector) or 2 (a batch of rows)")
    if xv.shape[-1] < 1:
        raise ValueError(f"{who}: x has 0 candidates per row, must have >= 1")
    return xv


def _forward(party, cur, bound_bits=64, tol=None):
    """Tournament on raw ``(k, L)`` shares: returns the ``(k, 1)`` winners, the levels'
    group one-hots and the winners' tolerances (``(k, 1)`` shares, or None unless
    ``tol`` is shared).

    ``tol``: None, a public uint64 (party 0 adds it to its share of
    ``left - right``), or raw ``(k, L)`` shares of per-candidate tolerances:
    the right candidate wins a match only by more than the left one's
    tolerance, and the winner's tolerance moves up with it (muxed in the same
    Beaver product as the value).
    """
    check_bound(bound_bits)
    shared = isinstance(tol, np.ndarray) and tol.ndim == 2
    e = np.uint64(0) if tol is None or shared or party.id != 0 else np.uint64(tol)
    tcur = tol if shared else None
    levels = []
    while cur.shape[1] > 1:
        cur, tcur, onehot = _four_way(party, cur, tcur, e, bound_bits)
        levels.append(onehot)
    return cur, levels, tcur


def _groups(x: np.ndarray, L: int) -> np.ndarray:
    """(k, q, 4) view of a level's ``(k, L)`` shares; an absent slot repeats slot 0."""
    k, q = x.shape[0], -(-L // 4)
    out = np.empty((k, 4 * q), np.uint64)
    out[:, :L] = x
    out[:, L:] = x[:, 4 * (q - 1):4 * (q - 1) + 1]
    return out.reshape(k, q, 4)


def _four_way(party, cur, tcur, e, bound_bits):
    """One 4-way level: exactly two levels of the binary tournament (module docstring).

    With A = [b beats a], C = [d beats c] and s_xy = [x + tol_x < y] for every pair
    that can meet: w1 = a + A (b - a), w2 = c + C (d - c), and the final match is
    F = s_(w1, w2) = X_a + A (X_b - X_a) with X_a = s_ac + C (s_ad - s_ac),
    X_b = s_bc + C (s_bd - s_bc).  Winner w1 + F (w2 - w1); group one-hot
    (1 - A - F + F A, A - F A, F - F C, F C).  An absent slot's matches are the
    constant 0 (a bye).  Cost: one comparison batch (7 rounds at l = 64), then 3
    rounds of Beaver products.
    """
    k, L = cur.shape
    q = -(-L // 4)
    exists = _pair_exists(L)
    g = _groups(cur, L)
    tg = _groups(tcur, L) if tcur is not None else None
    d = np.zeros((k, q, 6), np.uint64)
    for i, (x, y) in enumerate(_PAIRS):
        d[:, :, i] = g[:, :, x] - g[:, :, y] + (tg[:, :, x] if tg is not None else e)
    live = np.broadcast_to(exists, d.shape)
    s = np.zeros_like(d)
    s[live] = raw.ltz(party, d[live], bound_bits)          # s_xy = [x + tol_x < y]
    A, C = s[:, :, _AB], s[:, :, _CD]
    # round 1: both first-level winners (and tolerances), X_a and X_b
    left = [A, C, C, C]
    right = [g[:, :, 1] - g[:, :, 0], g[:, :, 3] - g[:, :, 2],
             s[:, :, _AD] - s[:, :, _AC], s[:, :, _BD] - s[:, :, _BC]]
    if tg is not None:
        left += [A, C]
        right += [tg[:, :, 1] - tg[:, :, 0], tg[:, :, 3] - tg[:, :, 2]]
    r1 = np.split(raw.mul(party, np.concatenate(left, axis=1),
                          np.concatenate(right, axis=1)), len(left), axis=1)
    w1, w2 = g[:, :, 0] + r1[0], g[:, :, 2] + r1[1]
    xa, xb = s[:, :, _AC] + r1[2], s[:, :, _BC] + r1[3]
    F = xa + raw.mul(party, A, xb - xa)                     # round 2: the final match
    # round 3: the winner (and its tolerance) and the group one-hot
    left, right = [F, F, F], [w2 - w1, A, C]
    if tg is not None:
        t1, t2 = tg[:, :, 0] + r1[4], tg[:, :, 2] + r1[5]
        left.append(F)
        right.append(t2 - t1)
    r3 = np.split(raw.mul(party, np.concatenate(left, axis=1),
                          np.concatenate(right, axis=1)), len(left), axis=1)
    win = w1 + r3[0]
    twin = t1 + r3[3] if tg is not None else None
    fa, fc = r3[1], r3[2]
    one = raw.const(party, np.ones(A.shape, np.uint64))
    onehot = np.stack([one - A - F + fa, A - fa, F - fc, fc], axis=2)    # (k, q, 4)
    return win, twin, onehot


def rowmax(party, x, bound_bits: int = 64, tol: int | None = None):
    """Row maxima of an AShare ``(n,)`` or ``(k, n)``: the forward half of :func:`argmax`.

    Identity: ``out[i] = max_j x[i, j]`` (with ``tol``: the value of the
    candidate :func:`argmax` with the same ``tol`` selects).  Opened:
    comparison and Beaver masks only.
    Cost: ``ceil(log4 n)`` levels of 10 rounds (module docstring).
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
    n = xv.shape[-1]
    cur, levels, twin = _forward(party, xv.reshape(k, n), bound_bits, tol)
    onehot = raw.const(party, np.ones((k, 1), dtype=np.uint64))
    sizes = _levels(n)
    for g, L in zip(reversed(levels), reversed(sizes)):   # each group's share of its parent's
        q = g.shape[1]
        child = raw.mul(party, np.repeat(onehot[:, :q], 4, axis=1), g.reshape(k, 4 * q))
        onehot = child[:, :L]
    oh = AShare(party, onehot.reshape(xv.shape))
    if not return_max:
        return oh
    mx = cur[:, 0]
    if twin is None:
        return oh, AShare(party, mx.reshape(()) if vec else mx)
    tw = twin[:, 0]
    return oh, AShare(party, mx.reshape(()) if vec else mx), AShare(party, tw.reshape(()) if vec else tw)
