"""The owner-known permutation (docs/design.md, section 6.1) and its inverse.

One party, the owner, knows permutations sigma_j of the n rows in plaintext
(e.g. how its column sorts rows by bin).  The protocol applies them to a
secret-shared matrix X (n rows, any trailing shape) without revealing
anything, in one round:

1. The dealer gives the owner random permutations pi_j and
   delta_j = pi_j(sum_p a_p) - sum_p c_{p,j}   (kind ``perm``).
2. The dealer gives every other party p a mask a_p and masks c_{p,j}
   (PRG-expanded from its seed, no traffic).
3. Each other party sends x_p + a_p to the owner.  One message serves all
   permutations of this owner (the "one mask serves all columns" trick);
   only the output masks c_{p,j} are per permutation.
4. The owner computes pi_j(sum_p (x_p + a_p) + x_owner) - delta_j
   = pi_j(X) + sum_p c_{p,j}.
5. The owner publishes tau_j = pi_j^-1 o sigma_j, uniformly random because
   pi_j is; everyone applies tau_j locally, so tau_j(pi_j(X)) = sigma_j(X).
   Non-owner shares are -tau_j(c_{p,j}).

Selection: ``rows=b`` keeps only the first b rows of X[sigma] (the owner
publishes b indices; non-owners expand only b rows of their output masks,
by random access into their AES-CTR stream).

Convention: applying an index vector p to X means ``X[p]`` (gather: row i of
the result is row p[i] of X), so ``permute(X, sigma)`` reveals X[sigma].
Steps 4 + 5 fuse on the owner: with S = sum_p (x_p + a_p) + x_owner,
its share is tau_j(pi_j(S) - delta_j) = (S - D_j)[sigma_j], where
D_j = pi_j^-1(delta_j) comes precomputed from the dealer (``pi_j[tau_j] =
sigma_j``): one sequential pass and one gather online.

This is the XORBoost-style permutation correlation (Deforth, Desgroseilliers,
Gama, Georgieva, Jetchev, Vuille, "XORBoost: tree boosting in the multiparty
computation setting", PoPETs 2022) in the form of docs/design.md, section 6.1.
"""
from __future__ import annotations

import numpy as np

from . import ring
from .shares import AShare

__all__ = ["permute", "permute_many", "unpermute", "unpermute_many", "dealer_request"]


def _prepare(x, sigmas, owner, count):
    if not isinstance(x, AShare):
        raise TypeError(f"expected an AShare, got {type(x).__name__}")
    party = x.party
    if isinstance(owner, bool) or not isinstance(owner, (int, np.integer)) \
            or not 0 <= owner < party.n_parties:
        raise ValueError(f"owner == {owner!r}, must be a party id in 0..{party.n_parties - 1}")
    if x.ndim == 0:
        raise ValueError("permute needs a share with at least one axis (the rows)")
    n = x.shape[0]
    if party.id == owner:
        if sigmas is None:
            raise ValueError(f"party {owner} is the owner: pass the permutation(s)")
        sigmas = [ring.check_permutation(s, n, "sigma") for s in sigmas]
        if count is not None and count != len(sigmas):
            raise ValueError(f"count == {count} but {len(sigmas)} permutations were given")
        count = len(sigmas)
    else:
        if sigmas is not None:
            raise ValueError(f"party {party.id} is not the owner (party {owner}): pass "
                             f"sigma=None")
        if count is None:
            raise ValueError(f"party {party.id}: pass count, the public number of permutations")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count == {count!r}, must be an int >= 1")
    return party, sigmas, int(count)


def dealer_request(shape, owner: int, count: int, rows: int | None = None) -> tuple:
    """``(kind, params)`` of the dealer material one :func:`permute_many` call
    with these public arguments asks for (e.g. to request it ahead with
    ``DealerClient.prefetch_many``)."""
    shape = tuple(int(s) for s in shape)
    if rows is None:
        return "perm", {"shape": shape, "owner": int(owner), "count": int(count)}
    return "perm_select", {"shape": shape, "owner": int(owner), "count": int(count),
                           "rows": int(rows)}


def permute_many(x: AShare, sigmas, owner: int, count: int | None = None,
                 rows: int | None = None) -> list:
    """[X[sigma_j]] for each permutation sigma_j known to ``owner``.

    Inputs: a share X with n rows (any trailing shape); on the owner, the
    list of permutations (1-D index vectors of length n); elsewhere
    ``sigmas=None`` and the public ``count``.
    Opened: the owner sees X + a (a uniform, from the other parties' masks);
    everyone sees tau_j = pi_j^-1 o sigma_j (uniformly random).
    Identity: sum_p out_p,j = X[sigma_j] (steps 1-5 of the module docstring).
    Cost: 1 round; each non-owner sends X.size elements to the owner (once,
    for all count permutations); the owner sends count * n indices (int32
    when n < 2**31) to each other party.  Offline: count * X.size elements
    (dealer -> owner).

    ``rows=b`` keeps only the first b rows of each X[sigma_j] (an owner-known
    *selection*, e.g. moving the bin-end rows to the top and keeping them:
    docs/design.md 6.1, histogram step 4).  Then the owner publishes only the first
    b entries of each tau_j, and each non-owner expands only the b rows of
    its output masks it needs, by random access into its AES-CTR stream
    (kind ``perm_select``).  The non-owners still send all n rows: which
    rows are selected is secret.
    """
    party, sigmas, count = _prepare(x, sigmas, owner, count)
    n = x.shape[0]
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, (int, np.integer))
                             or not 0 <= rows <= n):
        raise ValueError(f"rows == {rows!r}, must be an int in 0..{n} (the number of rows)")
    b = n if rows is None else int(rows)
    idx_dtype = np.int32 if n < 2 ** 31 else np.int64
    kind, params = dealer_request(x.shape, owner, count, rows)
    material = party.dealer.get(kind, **params)
    ep = party.ep
    if party.id != owner:
        a = material[0]
        ep.send(owner, x.value + a, move=True)           # step 3
        taus = ep.recv(owner)                           # step 5 (published tau)
        if not isinstance(taus, np.ndarray) or taus.shape != (count, b) \
                or taus.dtype != idx_dtype:
            raise ValueError(f"party {party.id}: owner {owner} published "
                             f"{getattr(taus, 'shape', None)}, expected ({count}, {b})")
        if rows is None:
            return [AShare(party, ring.gather_rows(material[1][j], taus[j], negate=True))
                    for j in range(count)]
        offsets, prg = material[1], material[2]
        return [AShare(party, np.uint64(0) - _mask_rows(prg, offsets[j], x.shape, taus[j]))
                for j in range(count)]
    pi_invs, ds = material
    if rows is not None:
        sigmas = [s[:b] for s in sigmas]
    taus = np.stack([ring.compose(pi_invs[j], sigmas[j], idx_dtype) for j in range(count)])
    for q in range(party.n_parties):                    # step 5: publish tau_j
        if q != owner:
            ep.send(q, taus)
    s = None
    for q in range(party.n_parties):                    # step 4: sum the masked shares
        if q != owner:
            m = ep.recv(q)
            if not isinstance(m, np.ndarray) or m.shape != x.shape or m.dtype != np.uint64:
                raise ValueError(f"owner {owner}: party {q} sent {getattr(m, 'shape', None)}, "
                                 f"expected {x.shape} uint64: the parties disagree on a shape")
            if s is None:             # received, ours to change (copied if read-only)
                s = m if m.flags.writeable else m.copy()
            else:
                s += m
    if party.opened is not None:
        party.opened.append(s.copy())
    # tau_j(pi_j(S) - delta_j) == (S - D_j)[sigma_j]   (pi_j[tau_j] = sigma_j), with
    # S = x_owner + sum of the received; only the rows sigma_j are ever read
    # (the sigmas were checked by _prepare)
    if rows is None or b * count >= n:
        s += x.value
        return [AShare(party, ring.gather_rows(s, sigmas[j], minus=ds[j], check=False))
                for j in range(count)]
    mine = x.value
    return [AShare(party, ring.gather_rows(s, sigmas[j], minus=ds[j], check=False)
                   + ring.gather_rows(mine, sigmas[j], check=False)) for j in range(count)]


def _mask_rows(prg, offset: int, shape, idx) -> np.ndarray:
    """Rows ``idx`` of the ``shape`` matrix stored at word ``offset`` of the stream."""
    k = int(np.prod(shape[1:], dtype=np.int64))
    words = offset + idx.astype(np.int64)[:, None] * k + np.arange(k, dtype=np.int64)[None, :]
    with np.errstate(over="ignore"):
        return prg.words_at(words).reshape((idx.shape[0],) + tuple(shape[1:]))


def permute(x: AShare, sigma, owner: int, rows: int | None = None) -> AShare:
    """[X[sigma]] (first ``rows`` rows only if given) for one owner-known
    permutation (see :func:`permute_many`).

    Non-owners pass ``sigma=None``.  Cost: 1 round, X.size elements from each
    non-owner to the owner, n (or ``rows``) indices from the owner to each
    other party.
    """
    return permute_many(x, None if sigma is None else [sigma], owner, count=1, rows=rows)[0]


def unpermute_many(x: AShare, sigmas, owner: int, count: int | None = None) -> list:
    """The inverses: [Y_j] with Y_j[sigma_j] = X, i.e. Y_j = X[sigma_j^-1].

    The owner inverts its permutations locally and runs :func:`permute_many`;
    same cost, same transcript.
    """
    if sigmas is not None and x.party.id == owner:
        n = x.shape[0] if isinstance(x, AShare) and x.ndim else 0
        sigmas = [ring.inverse_permutation(ring.check_permutation(s, n, "sigma"), check=False)
                  for s in sigmas]
    return permute_many(x, sigmas, owner, count)


def unpermute(x: AShare, sigma, owner: int) -> AShare:
    """[Y] with Y[sigma] = X (the inverse of :func:`permute`).  Cost as permute."""
    return unpermute_many(x, None if sigma is None else [sigma], owner, count=1)[0]
