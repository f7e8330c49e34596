"""Products with an owner-private matrix: [A @ E] for A known to one party, E secret-shared.

One party, the owner, holds an integer matrix A (n x k) in plaintext that
does not change (e.g. a per-row code of its columns); the parties
repeatedly need shares of A @ E for fresh secret-shared E (k x c, with c
small).  Each non-owner q's share E_q is the only cross term the owner
cannot compute: A @ E = A @ E_owner + sum_q A @ E_q.

**Setup (once, 1 round).**  The owner and the dealer derive a uniform mask
S_q (n x k) per non-owner q from a seed both draw from the owner's PRG
stream (no traffic); the owner sends D_q = A - S_q to q.

**Product (each use, 1 round).**  The dealer gives q a fresh uniform R_q
(k x c, PRG-expanded) and W_q = S_q @ R_q - Z_q (explicit, n x c), the owner
Z_q (PRG-expanded).  q sends F_q = E_q - R_q to the owner.  Then

    owner:  A @ E_owner + sum_q (S_q @ F_q + Z_q)
    q:      D_q @ E_q + W_q

which sum to A @ E_owner + sum_q (S_q (E_q - R_q) + (A - S_q) E_q + S_q R_q)
= A @ E.  This is SecureML's reusable masked matrix (Mohassel and Zhang,
"SecureML", IEEE S&P 2017, section 4.2: the data matrix is masked once and
the mask's products with fresh masks come from the offline phase), with
A private to one party instead of shared, so the setup is one message.

Opened: D_q = A - S_q to q, once (uniform: S_q is uniform and used for no
other message to q); F_q = E_q - R_q to the owner (uniform: R_q is fresh).
The dealer sees nothing.
Cost per product: 1 round, k c elements from each non-owner to the owner;
offline n c elements (dealer -> each non-owner); local work n k c
multiply-adds on every party and per non-owner on the dealer.  Setup: n k
elements to each non-owner, once.
"""
from __future__ import annotations

import numpy as np

from ..crypto.prg import PRG, SEED_BYTES
from . import ring
from .dealer import Correlation
from .party import Party
from .shares import AShare

__all__ = ["OwnerMatrix", "OwnerMatrixSetup", "OwnerMatrixProduct"]


def _seed(prg) -> bytes:
    return prg.uint64(SEED_BYTES // 8).tobytes()


class OwnerMatrixSetup(Correlation):
    """Seeds of the masks S_q (from the owner's stream, no traffic); the dealer
    keeps them (and the shape) under a handle, the k-th setup of the session.
    Owner's material: (handle, {q: S_q}); others': (handle, None)."""

    name = "omat_setup"

    def deal(self, d, shape, owner):
        shape = ring.as_shape(shape)
        table = d.state.setdefault("omat", [])
        seeds = {q: _seed(d.prgs[owner]) for q in range(d.n_parties) if q != owner}
        table.append((owner, shape, seeds))

    def expand(self, c, shape, owner):
        shape = ring.as_shape(shape)
        handle = c.state.get("omat", 0)
        c.state["omat"] = handle + 1
        if c.me != owner:
            return handle, None
        return handle, {q: PRG(_seed(c.prg)).uint64(shape)
                        for q in range(c.n_parties) if q != owner}


class OwnerMatrixProduct(Correlation):
    """Per non-owner q: R_q (k x cols, q's stream), Z_q (n x cols, owner's
    stream) and W_q = S_q @ R_q - Z_q (explicit, to q).
    Owner's material: {q: Z_q}; q's: (R_q, W_q).  Traffic: n cols elements per non-owner."""

    name = "omat_mul"

    def deal(self, d, handle, owner, shape, cols):
        table = d.state.get("omat", [])
        if not 0 <= handle < len(table) or table[handle][:2] != (owner, ring.as_shape(shape)):
            raise ValueError(f"omat_mul: handle {handle} with owner {owner} and shape "
                             f"{tuple(shape)} was not set up")
        n, k = ring.as_shape(shape)
        seeds = table[handle][2]
        for q in range(d.n_parties):
            if q == owner:
                continue
            R = d.prgs[q].uint64((k, cols))
            Z = d.prgs[owner].uint64((n, cols))
            W = ring.matmul(PRG(seeds[q]).uint64((n, k)), R)
            d.send(q, np.subtract(W, Z, out=W))

    def expand(self, c, handle, owner, shape, cols):
        n, k = ring.as_shape(shape)
        if c.me == owner:
            return {q: c.prg.uint64((n, cols)) for q in range(c.n_parties) if q != owner}
        return c.prg.uint64((k, cols)), c.recv((n, cols), np.uint64)


class OwnerMatrix:
    """A matrix A (n x k) private to ``owner``, set up once for repeated products
    with shared matrices (module docstring).

    ``OwnerMatrix(party, A, owner)`` on the owner (A: integers, taken mod 2^64);
    ``OwnerMatrix(party, None, owner, shape=(n, k))`` elsewhere.  Every party
    constructs it at the same point of the protocol (setup: 1 round, n k
    elements to each non-owner).
    """

    def __init__(self, party: Party, A, owner: int, shape=None):
        if not isinstance(party, Party):
            raise TypeError(f"OwnerMatrix needs a Party, got {type(party).__name__}")
        if isinstance(owner, bool) or not isinstance(owner, (int, np.integer)) \
                or not 0 <= owner < party.n_parties:
            raise ValueError(f"owner == {owner!r}, must be a party id in "
                             f"0..{party.n_parties - 1}")
        self.party, self.owner = party, int(owner)
        mine = party.id == owner
        if mine:
            if A is None:
                raise ValueError(f"party {owner} is the owner: pass the matrix A")
            A = np.asarray(ring.as_ring(np.asarray(A), "owner matrix"))
            if A.ndim != 2:
                raise ValueError(f"A has shape {A.shape}, must be 2-D (n, k)")
            if shape is not None and ring.as_shape(shape) != A.shape:
                raise ValueError(f"A has shape {A.shape} but shape={shape} was passed")
            shape = A.shape
        else:
            if A is not None:
                raise ValueError(f"party {party.id} is not the owner (party {owner}): pass "
                                 f"A=None and the public shape")
            if shape is None or len(ring.as_shape(shape)) != 2:
                raise ValueError(f"party {party.id}: pass shape=(n, k), the public shape of A")
            shape = ring.as_shape(shape)
        self.shape = tuple(int(s) for s in shape)
        ep = party.ep
        self.handle, masks = party.dealer.get("omat_setup", shape=self.shape, owner=self.owner)
        if mine:
            # [A | S_q ...]: the owner's product is one matmul with [E_owner; F_q ...]
            self._others = [q for q in range(party.n_parties) if q != self.owner]
            with np.errstate(over="ignore"):
                for q in self._others:
                    ep.send(q, A - masks[q], move=True)
            self._AS = np.ascontiguousarray(np.concatenate([A] + [masks[q] for q in
                                                                  self._others], axis=1))
        else:
            D = ep.recv(self.owner)
            if not isinstance(D, np.ndarray) or D.shape != self.shape or D.dtype != np.uint64:
                raise ValueError(f"party {party.id}: owner {self.owner} sent "
                                 f"{getattr(D, 'shape', None)}, expected {self.shape} uint64")
            if party.opened is not None:
                party.opened.append(D.copy())
            self._D = D

    def matmul(self, e: AShare) -> AShare:
        """[A @ E] for a shared E of shape (k, cols).

        Opened: E_q - R_q (uniform) to the owner.  Identity: sum of the
        outputs = A @ E mod 2^64.  Cost: 1 round, k cols elements per
        non-owner; offline n cols elements per non-owner.
        """
        if not isinstance(e, AShare) or e.party is not self.party:
            raise TypeError("OwnerMatrix.matmul expects an AShare of this party")
        n, k = self.shape
        if e.ndim != 2 or e.shape[0] != k:
            raise ValueError(f"E has shape {e.shape}, must be ({k}, cols)")
        cols = int(e.shape[1])
        party, ep = self.party, self.party.ep
        material = party.dealer.get("omat_mul", handle=self.handle, owner=self.owner,
                                    shape=self.shape, cols=cols)
        if party.id != self.owner:
            R, W = material
            ep.send(self.owner, e.value - R, move=True)
            return AShare(party, ring.matmul(self._D, np.ascontiguousarray(e.value)) + W)
        stacked = [e.value]
        for q in self._others:
            F = ep.recv(q)
            if not isinstance(F, np.ndarray) or F.shape != (k, cols) or F.dtype != np.uint64:
                raise ValueError(f"owner {self.owner}: party {q} sent "
                                 f"{getattr(F, 'shape', None)}, expected ({k}, {cols}) uint64")
            if party.opened is not None:
                party.opened.append(F.copy())
            stacked.append(F)
        out = ring.matmul(self._AS, np.ascontiguousarray(np.concatenate(stacked, axis=0)))
        for q in self._others:
            out += material[q]
        return AShare(party, out)
