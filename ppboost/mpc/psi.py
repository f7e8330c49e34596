"""Private set intersection on join ids: Diffie-Hellman PSI over X25519.

Two parties, a *leader* L (ids ``x_1..x_a`` in its own order) and a
*partner* P (ids ``y_1..y_b``), find which of their ids are equal without
showing each other any other id.  This is the classic commutative-hash
protocol (Meadows, IEEE S&P 1986; Huberman, Franklin and Hogg, EC 1999),
here with X25519 (RFC 7748) as the group: ``H(x)`` is a 32-byte hash of the
id read as an X25519 u-coordinate, and ``k . u`` is ``cryptography``'s
X25519 scalar multiplication (``X25519PrivateKey.exchange``), so
``b . (a . H(x)) == a . (b . H(x))``.  No curve arithmetic is written here.

1. L -> P: ``A_i = a . H(x_i)`` for its ids in its order.
2. P -> L: ``B_j = b . H(y_s(j))`` for P's ids in a random order ``s`` only
   P knows, and ``AB_i = b . A_i`` in L's order.
3. L computes ``BA_j = a . B_j``; ``AB_i == BA_j`` exactly when
   ``x_i == y_s(j)``.

**Opened.**  L learns which of its rows are in the intersection and, for
each, the position ``j`` of the matching id in P's shuffled list (a uniformly
random position: nothing about P's file order).  P learns only L's set size.
Neither learns an id outside the intersection: under the decisional
Diffie-Hellman assumption in the hash-to-group model the blinded values of
other ids look random.  Sizes (``a``, ``b``) are public.  Semi-honest
parties, as everywhere in ppboost.  What L then tells P (which of P's rows
to keep, and where they go) is the caller's step
(:func:`ppboost.training.align`).

**Cost.**  ``a + b`` X25519 multiplications at each party; 2 messages
(``32a`` bytes to P, ``32(a + b)`` bytes to L); one round trip.

The hash is domain-separated by a ``session`` string (the job digest), so
blinded values of one job are useless in another.
"""
from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..errors import ProtocolError

__all__ = ["psi_leader", "psi_partner", "hash_ids"]

_POINT = 32


def hash_ids(ids, session: str) -> list:
    """32-byte u-coordinates ``H(session, id)`` (SHA-256, domain-separated)."""
    pre = hashlib.sha256(b"ppboost-psi-v1\x00" + session.encode() + b"\x00").digest()
    return [hashlib.sha256(pre + str(x).encode()).digest() for x in ids]


def _blind(key: X25519PrivateKey, points) -> np.ndarray:
    """``key . u`` for each 32-byte point; an (n, 32) uint8 array."""
    out = np.empty((len(points), _POINT), np.uint8)
    mul = key.exchange
    load = X25519PublicKey.from_public_bytes
    for i, u in enumerate(points):
        out[i] = np.frombuffer(mul(load(bytes(u))), np.uint8)
    return out


def _key(secret: bytes) -> X25519PrivateKey:
    if len(secret) != 32:
        raise ValueError("the PSI secret must be 32 bytes")
    return X25519PrivateKey.from_private_bytes(secret)


def _points(arr, count: int | None, who: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != _POINT \
            or (count is not None and arr.shape[0] != count):
        raise ProtocolError(f"PSI: {who} sent {arr.dtype} {arr.shape}, expected "
                            f"({count if count is not None else 'n'}, {_POINT}) uint8 points")
    return arr


def psi_leader(ep, partner: int, ids, session: str, secret: bytes) -> np.ndarray:
    """Leader's side.  Returns ``match`` (int64, one per own id): the partner's
    shuffled position of the same id, or -1 if the partner lacks it.
    ``secret``: 32 private random bytes (the X25519 scalar)."""
    key = _key(secret)
    a = len(ids)
    ep.send(partner, _blind(key, hash_ids(ids, session)))
    BA = _blind(key, _points(ep.recv(partner), None, ep.name(partner)))
    AB = _points(ep.recv(partner), a, ep.name(partner))
    where = {bytes(row): j for j, row in enumerate(BA)}
    return np.array([where.get(bytes(row), -1) for row in AB], np.int64)


def psi_partner(ep, leader: int, ids, session: str, secret: bytes, order: np.ndarray) -> None:
    """Partner's side.  ``order``: a uniformly random permutation of its rows
    (position ``j`` of the list it sends is its row ``order[j]``); keep it to
    map the leader's answer back.  Returns nothing: the partner learns only
    the leader's set size here."""
    key = _key(secret)
    order = np.asarray(order, np.int64)
    if sorted(order.tolist()) != list(range(len(ids))):
        raise ValueError("order must be a permutation of the partner's rows")
    H = hash_ids(ids, session)
    ep.send(leader, _blind(key, [H[i] for i in order]))     # while the leader blinds its own
    A = _points(ep.recv(leader), None, ep.name(leader))
    ep.send(leader, _blind(key, A))
