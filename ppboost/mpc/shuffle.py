"""Oblivious shuffle of a secret-shared matrix: one owner-known permutation per party.

Every party p in turn acts as the owner of a fresh uniformly random
permutation sigma_p drawn from its private local PRG (``party.prg``) and
applies it with the owner-known permutation (:mod:`ppboost.mpc.permutation`):

    X_0 = X,   X_{p+1} = X_p[sigma_p]   (p = 0 .. P-1),   out = X_P.

The composed permutation sigma = sigma_0[sigma_1[...]] is known to no single
party: party p knows sigma_p but each other sigma_q is hidden from it behind
the dealer's pi_q (it only sees tau_q = pi_q^-1 o sigma_q, uniformly random),
so sigma is uniform from p's point of view as long as at least one other
party's permutation is unknown to it (no coalition of all parties).  The
dealer knows every pi_q but sees no tau_q and no masked data, so it learns
nothing either (semi-honest dealer that does not collude with a party, as
in docs/threat-model.md, "Assumptions").  This is the "shuffle by
composition of owner permutations" of Laur, Willemson and Zhang,
"Round-efficient oblivious database manipulation", ISC 2011 (one
resharing-permutation per party), with the
owner-known permutation correlation of XORBoost (Deforth et al., PoPETs 2022)
as each party's step.

``blocks`` (optional, public): row counts of consecutive blocks; rows are then
shuffled independently *within* each block (each sigma_p is block-diagonal,
i.e. still one permutation of all rows, so one protocol run serves every
block).  Used to shuffle several independent lists at once (e.g. one per
feature, :mod:`ppboost.tree.secure_binning`) without linking their rows.
"""
from __future__ import annotations

import numpy as np

from .permutation import permute
from .shares import AShare

__all__ = ["shuffle", "block_permutation", "check_blocks"]


def check_blocks(blocks, n: int | None) -> np.ndarray:
    """Row counts of consecutive blocks as int64 (None: one block of ``n`` rows), checked."""
    if blocks is None:
        return np.array([n], dtype=np.int64)
    b = np.asarray(blocks)
    if b.ndim != 1 or b.dtype.kind not in "iu" or np.any(b < 0):
        raise ValueError(f"blocks == {blocks!r}, must be a 1-D list of non-negative ints "
                         f"(row counts of consecutive blocks)")
    if n is not None and int(b.sum()) != n:
        raise ValueError(f"blocks sum to {int(b.sum())}, must sum to the number of rows {n}")
    return b.astype(np.int64)


def block_permutation(prg, blocks) -> np.ndarray:
    """A uniformly random permutation of ``sum(blocks)`` rows that maps every
    block of consecutive rows onto itself (local, from ``prg``)."""
    blocks = check_blocks(blocks, None)
    parts, start = [], 0
    for size in blocks.tolist():
        parts.append(start + prg.permutation(size))
        start += size
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def shuffle(x: AShare, blocks=None) -> AShare:
    """[X[sigma]] for a uniformly random permutation sigma of the rows that no single party knows.

    Inputs: a share X with n rows (any trailing shape); optionally the public
    ``blocks`` (row counts summing to n: rows move only within their block).
    Opened: only what :func:`ppboost.mpc.permutation.permute` opens, once per
    party as owner: the owner sees X_p + a (a uniform mask), everyone sees
    tau_p = pi_p^-1 o sigma_p (uniformly random).  Nothing else.
    Identity: sum_p out_p = X[sigma] with sigma = sigma_0[sigma_1[...[sigma_{P-1}]]],
    sigma_p uniform and known only to party p (so sigma is uniform to every
    party and to the dealer unless all parties collude).
    Cost: P rounds (one owner permutation per party); per round each non-owner
    sends X.size elements to the owner and the owner sends n indices to every
    other party.  Offline: P * X.size elements (dealer -> each owner in turn).
    """
    if not isinstance(x, AShare):
        raise TypeError(f"shuffle expects an AShare, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("shuffle needs a share with at least one axis (the rows)")
    party = x.party
    n = x.shape[0]
    blocks = check_blocks(blocks, n)
    out = x
    if n == 0:
        return AShare(party, x.value.copy())
    for owner in range(party.n_parties):
        sigma = block_permutation(party.prg, blocks) if party.id == owner else None
        out = permute(out, sigma, owner)
    return out
