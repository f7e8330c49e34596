"""Secure aggregation with dropouts (Bonawitz et al., CCS 2017), between the data parties.

Every data party u holds a vector x_u over Z_2^64 (callers encode reals in
fixed point, :mod:`ppboost.crypto.fixed`).  One party, the *server* (the
job's analyst in federated training), learns z = sum_u x_u over the parties
that took part, and nothing else about any x_u.  The server is a data party
too: it masks and sends its own vector to itself like every client.

Notation (the paper's, section 4 and Figure 4 of "Practical Secure
Aggregation for Privacy-Preserving Machine Learning"): parties are the
transport ids ``0 .. P-1``; the Shamir x-coordinate of party u is u + 1;
n = P parties at the start; at most f = floor((n-1)/3) may drop out over the
whole run; the Shamir threshold is t = n - f (so t > 2n/3, and the shares of
the t or more parties that remain always suffice).

A **session** (:meth:`SecAgg.open_session`) prepares ``slots`` aggregations
at once (one boosting round's levels): per slot k every party draws a fresh
X25519 key pair (s_u^k, pk_u^k) and a fresh 16-byte self-mask seed b_u^k.
Fresh keys per aggregation matter here: the paper's protocol aggregates
once, and reconstructing a long-term key of a dropped party would unmask
every earlier vector it sent.

1. *AdvertiseKeys* (client -> server, server -> clients): the public keys
   pk_u^k.  Opens: public keys only.  U1 = the parties that sent them.
2. *ShareKeys* (client -> client over the pairwise TLS channels, then an
   acknowledgement to the server): u sends every v in U1 its Shamir shares
   (threshold t, field GF(2^521 - 1)) of s_u^k and of b_u^k for every slot.
   Opens: to v, one share of each secret (t - 1 shares reveal nothing).
   The server receives only who got whose shares, and sets
   U2 = the parties whose shares every acknowledging party received.

Per aggregation (:meth:`SecAgg.aggregate`, slot k):

3. *MaskedInput* (client -> server):
   y_u = x_u + PRG(b_u^k) + sum_{v in U2, v != u, v != server} sign(u, v) PRG(s_uv^k),
   sign = +1 if u < v else -1, s_uv^k = HKDF(X25519(s_u^k, pk_v^k)), PRG the
   AES-CTR keystream of :mod:`ppboost.crypto.prg`.  Opens: y_u, uniform
   over Z_2^64 (the self mask alone makes it so).  U3 = the senders and the
   server, whose own vector enters the sum unmasked: a mask it shares with
   a client could hide nothing from it, and no one else sees a masked
   vector (the paper's server holds no input).
4. *Unmasking* (server -> U3: the sets U3 and U2 \\ U3; U3 -> server): each
   party v in U3 answers with its share of b_u^k for every u in U3 and its
   share of s_u^k for every u in U2 \\ U3, never both for one u.  Opens to
   the server: the self-mask seeds of the parties whose vectors count and
   the slot-k key of the parties that dropped, hence exactly the masks
   those dropped parties shared with the others at slot k, and nothing of
   any other slot.
5. The server computes (u over the clients in U3)
   z = x_server + sum_u (y_u - PRG(b_u^k)) - sum_{u, v in U2 \\ U3} sign(u, v) PRG(s_uv^k)
     = sum_{u in U3} x_u,
   because the pairwise masks between members of U3 cancel
   (sign(u, v) = -sign(v, u)).

Dropouts.  A party the server cannot hear from (its connection closed, it
aborted, or it sent nothing within the transport's timeout) is dropped for
good and logged (:attr:`SecAgg.drops`).  More than f drops (more than
``tolerate`` if the run asked for fewer), or fewer than t
parties answering an unmasking, raise :class:`~ppboost.errors.ProtocolError`
at the server, whose abort stops every other party.  The server itself
cannot drop out: a client that loses it raises the transport's error
naming it.

Cost per aggregation of a vector of N words: a client sends N words and
|U2| shares (66 bytes each) in 2 rounds, and expands |U2| - 1 keystreams of N
words (its self mask, and a pairwise mask with each other client); the server
receives (|U3| - 1) N words and expands (|U3| - 1)(1 + |U2 \\ U3|) keystreams.  A session
costs 3 rounds and O(|U1| slots) small messages per party.

Semi-honest parties, as everywhere in ppboost: every party follows the
protocol; the server may try to learn from what it receives.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..crypto.prg import PRG, SEED_BYTES
from ..errors import ProtocolError
from ..transport.base import PeerFailed, TransportTimeout

__all__ = ["SecAgg", "Aggregate", "PRIME", "shamir_share", "shamir_reconstruct",
           "max_dropouts", "threshold", "pair_seed", "masked_input", "self_mask"]

log = logging.getLogger("ppboost.secagg")

#: the Shamir field GF(2^521 - 1) (a Mersenne prime above every 32-byte secret)
PRIME = (1 << 521) - 1
SHARE_BYTES = 66
KEY_BYTES = 32


def max_dropouts(n: int) -> int:
    """f = floor((n - 1) / 3): the parties that may drop out over a run of n."""
    return (n - 1) // 3


def threshold(n: int) -> int:
    """t = n - f: the Shamir threshold (any t shares reconstruct, t - 1 reveal nothing)."""
    return n - max_dropouts(n)


# ----------------------------------------------------------------------------- Shamir
def shamir_share(secret: int, xs, t: int) -> dict:
    """Shares ``{x: p(x)}`` of ``secret`` = p(0), p uniformly random of degree t - 1 over
    GF(PRIME) (Shamir, CACM 1979).  Any t shares determine it, t - 1 are uniform."""
    if not 0 <= secret < PRIME:
        raise ValueError("secret out of range of the Shamir field")
    if not 1 <= t <= len(xs):
        raise ValueError(f"threshold t == {t}, must be in 1..{len(xs)}")
    coef = [secret] + [secrets.randbelow(PRIME) for _ in range(t - 1)]
    out = {}
    for x in xs:
        acc = 0
        for c in reversed(coef):                   # Horner
            acc = (acc * x + c) % PRIME
        out[x] = acc
    return out


def shamir_reconstruct(points: dict) -> int:
    """p(0) from ``{x: p(x)}`` by Lagrange interpolation (needs >= t distinct points)."""
    xs = list(points)
    total = 0
    for i in xs:
        num, den = 1, 1
        for j in xs:
            if j != i:
                num = num * (-j) % PRIME
                den = den * (i - j) % PRIME
        total = (total + points[i] * num * pow(den, -1, PRIME)) % PRIME
    return total


def _int_bytes(v: int, n: int = SHARE_BYTES) -> bytes:
    return v.to_bytes(n, "big")


# ----------------------------------------------------------------------------- masks
def pair_seed(sk: bytes, pk: bytes, context: bytes) -> bytes:
    """s_uv: 16 bytes from HKDF-SHA256 of the X25519 secret of (sk, pk) and ``context``
    (session, slot and the unordered pair), the same at u and at v."""
    shared = X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None,
                info=b"ppboost-secagg-pair|" + context).derive(shared)


def _context(session: int, slot: int, u: int, v: int) -> bytes:
    a, b = min(u, v), max(u, v)
    return f"{session}|{slot}|{a}|{b}".encode()


def self_mask(seed: bytes, n: int) -> np.ndarray:
    """PRG(b_u): the first ``n`` words of the AES-CTR stream of the self-mask seed."""
    return PRG(seed).at(0, n)


def masked_input(x: np.ndarray, me: int, b_seed: bytes, sk: bytes, pks: dict, session: int,
                 slot: int) -> np.ndarray:
    """y_u = x_u + PRG(b_u) + sum_{v != u} sign(u, v) PRG(s_uv) over Z_2^64 (step 3).

    ``pks``: {v: pk_v} for every v of U2 (mine included or not)."""
    n = x.shape[0]
    y = x + self_mask(b_seed, n)
    for v, pk in pks.items():
        if v == me:
            continue
        m = PRG(pair_seed(sk, pk, _context(session, slot, me, v))).at(0, n)
        if me < v:
            y += m
        else:
            y -= m
    return y


# ----------------------------------------------------------------------------- state
@dataclass
class _Session:
    id: int
    slots: int
    members: list                    # U2, sorted
    sk: list                         # my private keys per slot (bytes)
    b: list                          # my self-mask seeds per slot
    pks: dict                        # {u: [pk per slot]} for u in U2
    held: dict                       # {u: (sk shares, b shares)} I hold for u in U2
    next: int = 0


@dataclass
class Aggregate:
    """The outcome of one aggregation.

    ``total`` (server only; None at a client): sum of the included vectors.
    ``included``: U3, the parties whose vectors are in ``total`` (server only).
    ``dropped``: parties the server dropped during this aggregation.
    """
    total: np.ndarray | None
    included: list | None
    dropped: list = field(default_factory=list)


class SecAgg:
    """One data party's side of the protocol (see the module docstring).

    ``ep``: this party's endpoint; ``parties``: the data parties' ids;
    ``server``: the id that learns the sums.  ``audit=True`` (tests) records
    at the server what was reconstructed (:attr:`recovered`) and the masked
    vectors received (:attr:`received`).  ``tolerate``: the dropouts this run
    goes on after (default f = floor((n-1)/3), at most f); one more raises
    :class:`~ppboost.errors.ProtocolError` at the server where it is seen,
    before anything without that party is unmasked (``tolerate=0``: a job
    that stops at any dropout, federated ``on_dropout='stop'``).
    """

    def __init__(self, ep, parties, server: int, *, audit: bool = False,
                 tolerate: int | None = None):
        self.ep = ep
        self.me = ep.me
        self.parties = sorted(int(p) for p in parties)
        if self.me not in self.parties or server not in self.parties:
            raise ValueError(f"party {self.me} or server {server} is not among {self.parties}")
        self.server = int(server)
        self.n = len(self.parties)
        self.f = max_dropouts(self.n)
        self.t = threshold(self.n)
        self.tolerate = self.f if tolerate is None else int(tolerate)
        if not 0 <= self.tolerate <= self.f:
            raise ValueError(f"tolerate == {tolerate!r}: secure aggregation among {self.n} "
                             f"parties tolerates 0 to {self.f} dropouts")
        self.alive = list(self.parties)        # the server's view; clients follow U2
        self.drops: list = []                  # [{"party", "id", "where", "reason"}]
        self._session: _Session | None = None
        self._sessions = 0
        self.audit = audit
        self.recovered: list = []              # (session, slot, kind "b"|"sk", party)
        self.received: list = []               # (session, slot, party, y)

    @property
    def is_server(self) -> bool:
        return self.me == self.server

    def name(self, p: int) -> str:
        return self.ep.name(p)

    # ------------------------------------------------------------------ server helpers
    def _drop(self, p: int, where: str, exc: BaseException | str) -> None:
        if p not in self.alive:
            return
        self.alive.remove(p)
        entry = {"party": self.name(p), "id": p, "where": where, "reason": str(exc)}
        self.drops.append(entry)
        log.warning("secure aggregation: %s dropped out (%s): %s", self.name(p), where, exc)
        if len(self.drops) > self.tolerate and self.tolerate < self.f:
            who = ", ".join(d["party"] for d in self.drops)
            limit = "at the first dropout" if self.tolerate == 0 else \
                f"at more than {self.tolerate} dropouts"
            raise ProtocolError(
                f"{who} dropped out ({where}: {exc}): this run stops {limit} "
                f"(on_dropout='stop'), so training stops here, before any sum without "
                f"{self.name(p)} is unmasked")
        if len(self.drops) > self.f:
            who = ", ".join(d["party"] for d in self.drops)
            raise ProtocolError(
                f"{len(self.drops)} parties dropped out ({who}; the last {where}): secure "
                f"aggregation among {self.n} parties tolerates at most {self.f} "
                f"(floor((n-1)/3)); training stops")

    def _gather(self, peers, where: str) -> dict:
        """Receive one message from each of ``peers`` (server); a failure drops the peer."""
        got = {}
        for p in list(peers):
            if p == self.me or p not in self.alive:
                continue
            try:
                got[p] = self.ep.recv(p)
            except (PeerFailed, TransportTimeout) as exc:
                self._drop(p, where, exc)
        return got

    def from_server(self):
        """A client's receive from the server, which may first wait up to the transport
        timeout for each of f silent parties: the client waits (f + 2) timeouts."""
        base = self.ep.timeout
        self.ep.timeout = base * (self.f + 2)
        try:
            return self.ep.recv(self.server)
        finally:
            self.ep.timeout = base

    def tell(self, p: int, payload, where: str) -> None:
        try:
            self.ep.send(p, payload)
        except (PeerFailed, TransportTimeout) as exc:
            self._drop(p, where, exc)

    # ------------------------------------------------------------------ session
    def open_session(self, slots: int, where: str = "") -> list:
        """Steps 1-2 for ``slots`` aggregations; returns U2 (every party's view is the same).

        Messages: pk list to the server and the table of U1's public keys back
        (open: public keys); Shamir shares to each other member of U1 (open:
        one share per secret); an acknowledgement (who sent me shares) to the
        server and U2 back.  3 rounds."""
        if slots < 1:
            raise ValueError(f"slots == {slots}, must be >= 1")
        sid = self._sessions
        self._sessions += 1
        where = where or f"session {sid}"
        keys = [X25519PrivateKey.generate() for _ in range(slots)]
        sk = [k.private_bytes_raw() for k in keys]
        pk = np.frombuffer(b"".join(k.public_key().public_bytes_raw() for k in keys),
                           np.uint8).reshape(slots, KEY_BYTES)
        # 1. AdvertiseKeys
        if self.is_server:
            got = self._gather(self.alive, f"{where}: advertising keys")
            table = {self.me: pk}
            for p, a in got.items():
                a = np.asarray(a)
                if a.dtype != np.uint8 or a.shape != (slots, KEY_BYTES):
                    raise ProtocolError(f"{self.name(p)} sent malformed public keys")
                table[p] = a
            u1 = sorted(table)
            msg = np.concatenate([np.array(u1, np.int64).view(np.uint8)] +
                                 [table[u].reshape(-1) for u in u1])
            for p in u1:
                if p != self.me:
                    self.tell(p, msg, f"{where}: advertising keys")
            u1 = [u for u in u1 if u in self.alive]
        else:
            self.ep.send(self.server, pk)
            msg = np.asarray(self.from_server(), np.uint8)
            k = (msg.size) // (8 + slots * KEY_BYTES)
            u1 = msg[:8 * k].view(np.int64).tolist()
            rest = msg[8 * k:].reshape(k, slots, KEY_BYTES)
            table = {u: rest[i] for i, u in enumerate(u1)}
            if self.me not in u1:
                raise ProtocolError(f"the aggregator {self.name(self.server)} left "
                                    f"{self.name(self.me)} out of {where}")
        if len(u1) < self.t:
            raise ProtocolError(f"{where}: only {len(u1)} parties advertised keys, "
                                f"secure aggregation needs {self.t}")
        # 2. ShareKeys: my shares of every s_u^k and b_u^k to each member of U1
        b = [os.urandom(SEED_BYTES) for _ in range(slots)]
        xs = [u + 1 for u in u1]
        sk_sh = [shamir_share(int.from_bytes(s, "big"), xs, self.t) for s in sk]
        b_sh = [shamir_share(int.from_bytes(s, "big"), xs, self.t) for s in b]

        def packed(v):
            return np.frombuffer(b"".join(_int_bytes(sk_sh[k][v + 1]) + _int_bytes(b_sh[k][v + 1])
                                          for k in range(slots)), np.uint8)
        held = {self.me: packed(self.me)}
        for v in u1:
            if v != self.me:
                try:
                    self.ep.send(v, packed(v))
                except (PeerFailed, TransportTimeout):
                    pass                          # v is gone: it will miss from the acks
        for v in u1:
            if v == self.me:
                continue
            try:
                a = np.asarray(self.ep.recv(v), np.uint8)
            except (PeerFailed, TransportTimeout) as exc:
                log.warning("secure aggregation: no key shares from %s (%s): %s",
                            self.name(v), where, exc)
                continue
            if a.shape != (slots * 2 * SHARE_BYTES,):
                raise ProtocolError(f"{self.name(v)} sent malformed key shares")
            held[v] = a
        have = sorted(held)
        if self.is_server:
            acks = {self.me: have}
            for p, a in self._gather(u1, f"{where}: sharing keys").items():
                acks[p] = json.loads(bytes(a).decode())
            u2 = [u for u in u1 if u in acks and all(u in s for s in acks.values())]
            for u in u1:
                if u not in u2 and u in self.alive:
                    self._drop(u, where, "its key shares did not reach every party")
            msg = json.dumps(u2).encode()
            for p in acks:
                if p != self.me:
                    self.tell(p, msg, f"{where}: sharing keys")
        else:
            self.ep.send(self.server, json.dumps(have).encode())
            u2 = json.loads(bytes(self.from_server()).decode())
            if self.me not in u2:
                raise ProtocolError(f"the aggregator {self.name(self.server)} left "
                                    f"{self.name(self.me)} out of {where} (its key shares "
                                    f"did not reach every party)")
        if len(u2) < self.t:
            raise ProtocolError(f"{where}: only {len(u2)} parties completed the key set-up, "
                                f"secure aggregation needs {self.t}")

        def unpack(a):
            a = a.reshape(slots, 2, SHARE_BYTES)
            return ([int.from_bytes(a[k, 0].tobytes(), "big") for k in range(slots)],
                    [int.from_bytes(a[k, 1].tobytes(), "big") for k in range(slots)])
        self._session = _Session(sid, slots, u2, sk, b,
                                 {u: [table[u][k].tobytes() for k in range(slots)] for u in u2},
                                 {u: unpack(held[u]) for u in u2 if u in held})
        return list(u2)

    # ------------------------------------------------------------------ aggregation
    def aggregate(self, x, where: str = "") -> Aggregate:
        """Steps 3-5 for the next slot of the open session: the server gets sum_{U3} x_u.

        ``x``: this party's uint64 vector (the same length at every party).
        Returns an :class:`Aggregate` (``total`` and ``included`` at the server)."""
        s = self._session
        if s is None or s.next >= s.slots:
            raise ProtocolError("no open secure-aggregation session with a free slot "
                                "(call open_session first)")
        x = np.asarray(x)
        if x.dtype != np.uint64 or x.ndim != 1:
            raise TypeError(f"aggregate expects a 1-d uint64 vector, got {x.dtype} {x.shape}")
        k = s.next
        s.next += 1
        where = where or f"session {s.id} slot {k}"
        if not self.is_server:
            y = masked_input(x, self.me, s.b[k], s.sk[k],
                             {u: s.pks[u][k] for u in s.members if u != self.server}, s.id, k)
            # 3. MaskedInput; 4. Unmasking: answer the server's request
            self.ep.send(self.server, y, move=True)
            req = json.loads(bytes(self.from_server()).decode())
            inc, drop = req["included"], req["dropped"]
            if req["session"] != s.id or req["slot"] != k or sorted(inc + drop) != s.members \
                    or set(inc) & set(drop) or self.me not in inc or len(inc) < self.t:
                raise ProtocolError(f"{self.name(self.me)} refuses an inconsistent unmasking "
                                    f"request from {self.name(self.server)} ({where})")
            ans = [s.held[u][1][k] for u in inc] + [s.held[u][0][k] for u in drop]
            self.ep.send(self.server, np.frombuffer(b"".join(_int_bytes(v) for v in ans), np.uint8))
            return Aggregate(None, None)
        before = len(self.drops)
        ys = {self.me: x}                     # the server's own vector: nothing to hide from itself
        for p, a in self._gather([u for u in s.members if u != self.me],
                                 f"{where}: masked input").items():
            a = np.asarray(a)
            if a.dtype != np.uint64 or a.shape != x.shape:
                raise ProtocolError(f"{self.name(p)} sent a masked vector of {a.dtype} "
                                    f"{a.shape}, expected uint64 {x.shape}")
            ys[p] = a
        inc = sorted(ys)
        drop = [u for u in s.members if u not in ys]
        if len(inc) < self.t:
            raise ProtocolError(f"{where}: only {len(inc)} masked inputs arrived, secure "
                                f"aggregation needs {self.t}")
        req = json.dumps({"session": s.id, "slot": k, "included": inc, "dropped": drop}).encode()
        for p in inc:
            if p != self.me:
                self.tell(p, req, f"{where}: unmasking")
        answers = {self.me: [s.held[u][1][k] for u in inc] + [s.held[u][0][k] for u in drop]}
        for p, a in self._gather(inc, f"{where}: unmasking").items():
            a = np.asarray(a, np.uint8)
            if a.shape != (len(s.members) * SHARE_BYTES,):
                raise ProtocolError(f"{self.name(p)} sent a malformed unmasking answer")
            raw = a.reshape(len(s.members), SHARE_BYTES)
            answers[p] = [int.from_bytes(r.tobytes(), "big") for r in raw]
        if len(answers) < self.t:
            raise ProtocolError(f"{where}: only {len(answers)} parties answered the unmasking, "
                                f"secure aggregation needs {self.t}")
        use = sorted(answers)[:self.t]
        order = inc + drop
        secrets_ = {}
        for i, u in enumerate(order):
            if u != self.me:
                secrets_[u] = shamir_reconstruct({p + 1: answers[p][i] for p in use})
        total = x.copy()
        for u in inc:
            if u == self.me:
                continue
            total += ys[u]
            seed = _int_bytes(secrets_[u], SEED_BYTES)
            total -= self_mask(seed, x.shape[0])
            if self.audit:
                self.recovered.append((s.id, k, "b", u))
                self.received.append((s.id, k, u, ys[u]))
        for v in drop:
            skv = _int_bytes(secrets_[v], KEY_BYTES)
            if X25519PrivateKey.from_private_bytes(skv).public_key().public_bytes_raw() \
                    != s.pks[v][k]:
                raise ProtocolError(f"{where}: the key reconstructed for {self.name(v)} does not "
                                    "match its public key (inconsistent shares)")
            if self.audit:
                self.recovered.append((s.id, k, "sk", v))
            for u in inc:
                if u == self.me:
                    continue
                m = PRG(pair_seed(skv, s.pks[u][k], _context(s.id, k, u, v))).at(0, x.shape[0])
                if u < v:
                    total -= m
                else:
                    total += m
        return Aggregate(total, inc, [d["id"] for d in self.drops[before:]])
