"""Input, output and arithmetic protocols on additive shares over Z_2^64.

Every function takes shares (:class:`~ppboost.mpc.shares.AShare`) or a
:class:`~ppboost.mpc.party.Party` and runs between all data parties; the
docstrings give the inputs, what is opened, the identity kept and the cost
(rounds, ring elements sent per party, N = number of elements).
Correlated randomness always comes from ``party.dealer``.
"""
from __future__ import annotations

import numpy as np

from . import ring
from .party import Party
from .shares import AShare

__all__ = ["share", "reveal", "open_values", "open_flat", "add", "sub", "add_public", "mul_public",
           "mul", "matmul"]


def _check_owner(party: Party, owner, what="owner") -> int:
    if isinstance(owner, bool) or not isinstance(owner, (int, np.integer)) \
            or not 0 <= owner < party.n_parties:
        raise ValueError(f"{what} == {owner!r}, must be a party id in 0..{party.n_parties - 1}")
    return int(owner)


def share(party: Party, values=None, owner: int = 0, shape=None,
          bound_bits: int | None = None) -> AShare:
    """Secret-share the owner's integer array among all parties.

    Inputs: on ``owner``, ``values`` (integers / uint64 ring elements; signed
    ints are taken mod 2**64); elsewhere ``values=None`` and the public
    ``shape``.  ``bound_bits`` (optional) makes the owner check
    ``|v| < 2**bound_bits`` for every value read as signed.
    Opened: nothing.  Identity: ``sum_p x_p = values mod 2**64``.
    Cost: 0 online rounds; offline the dealer sends the owner N elements
    (a sharing of zero whose correction the owner holds; the owner adds its
    values to it, the others' shares are PRG-expanded).
    """
    owner = _check_owner(party, owner)
    if party.id == owner:
        if values is None:
            raise ValueError(f"party {owner} is the owner: pass the values to share")
        v = np.asarray(values)
        if v.dtype.kind == "f":
            raise TypeError(f"share() takes integers, got dtype {v.dtype}: "
                            f"use party.share_float or party.encode first")
        v = np.asarray(ring.as_ring(v, "shared values"))
        if shape is not None and v.shape != ring.as_shape(shape):
            raise ValueError(f"values have shape {v.shape} but shape={shape} was passed")
        if bound_bits is not None:
            if not 1 <= bound_bits <= 63:
                raise ValueError(f"bound_bits == {bound_bits}, must be in 1..63")
            sv = v.view(np.int64)
            if bound_bits == 63:
                bad = sv == np.iinfo(np.int64).min
            else:
                lim = np.int64(1 << bound_bits)
                bad = (sv >= lim) | (sv <= -lim)
            if np.any(bad):
                worst = int(sv[bad].ravel()[0])
                raise ValueError(f"a value of magnitude {abs(worst)} exceeds the declared "
                                 f"bound 2**{bound_bits}")
        shape = v.shape
    else:
        if values is not None:
            raise ValueError(f"party {party.id} is not the owner (party {owner}): pass "
                             f"values=None and the public shape")
        if shape is None:
            raise ValueError(f"party {party.id}: pass the public shape of party {owner}'s input")
        shape = ring.as_shape(shape)
    z = party.dealer.get("zero", shape=shape, to=owner)
    if party.id == owner:
        z = z + v
    return AShare(party, z)


def open_values(party: Party, arrays) -> list:
    """Open several shared uint64 arrays to everyone in one message per peer.

    Inputs: this party's shares (uint64 arrays).  Opened: their sums.
    Identity: returns ``sum_p a_p`` for each array.
    Cost: 1 round; each party sends the concatenation (sum of sizes) to
    each of the other n-1 parties.  Recorded in ``party.opened`` if kept.
    """
    arrays = [np.asarray(a) for a in arrays]
    for a in arrays:
        if a.dtype != np.uint64:
            raise TypeError(f"open_values expects uint64 shares, got {a.dtype}")
    flat = np.concatenate([a.reshape(-1) for a in arrays]) if len(arrays) > 1 \
        else arrays[0].reshape(-1).copy()
    open_flat(party, flat)
    out, pos = [], 0
    for a in arrays:
        out.append(flat[pos:pos + a.size].reshape(a.shape))
        pos += a.size
    return out


def open_flat(party: Party, flat: np.ndarray) -> np.ndarray:
    """Open a 1-D uint64 share *in place*: ``flat`` (owned by the caller, it may be
    overwritten) becomes the opened sum.  Both transports copy or serialise a
    payload before ``send`` returns, so the buffer can be reused at once.
    Cost: 1 round, ``flat.size`` elements to each other party.
    """
    for other in _exchange(party, flat):
        np.add(flat, other, out=flat)
    if party.opened is not None:
        party.opened.append(flat.copy())
    return flat


def _exchange(party: Party, flat: np.ndarray) -> list:
    """Send my share ``flat`` to every other party; return theirs (checked)."""
    ep = party.ep
    for q in range(party.n_parties):
        if q != party.id:
            ep.send(q, flat)
    others = []
    for q in range(party.n_parties):
        if q != party.id:
            other = ep.recv(q)
            if not isinstance(other, np.ndarray) or other.shape != flat.shape \
                    or other.dtype != np.uint64:
                got = getattr(other, "shape", type(other).__name__)
                raise ValueError(f"party {party.id}: party {q} opened {got}, expected "
                                 f"{flat.shape} uint64: the parties disagree on a shape")
            others.append(other)
    return others


def reveal(x: AShare, to: int | None = None):
    """Open ``x`` to all parties (``to=None``) or only to party ``to``.

    Inputs: a share ``x``.  Opened: ``x`` itself (to all, or to ``to``).
    Identity: returns ``sum_p x_p mod 2**64`` (uint64); parties other than
    ``to`` return None.
    Cost: 1 round; to all: N elements to each of the n-1 others; to one:
    each other party sends N elements to ``to``.
    """
    if not isinstance(x, AShare):
        raise TypeError(f"reveal expects an AShare, got {type(x).__name__}")
    party = x.party
    if to is None:
        return open_values(party, [x.value])[0]
    to = _check_owner(party, to, "to")
    if party.id != to:
        party.ep.send(to, x.value.reshape(-1))  # flat: 0-d travels alike on every transport
        return None
    total = x.value.reshape(-1).copy()
    for q in range(party.n_parties):
        if q != to:
            other = party.ep.recv(q)
            if not isinstance(other, np.ndarray) or other.shape != total.shape \
                    or other.dtype != np.uint64:
                raise ValueError(f"party {to}: party {q} sent shape "
                                 f"{getattr(other, 'shape', None)}, expected {total.shape} "
                                 f"uint64: the parties disagree on a shape")
            total += other
    total = total.reshape(x.shape)
    if party.opened is not None:
        party.opened.append(total)
    return total


def add(x: AShare, y: AShare) -> AShare:
    """[x + y] = [x] + [y].  Opened: nothing.  Cost: local."""
    return x + y


def sub(x: AShare, y: AShare) -> AShare:
    """[x - y] = [x] - [y].  Opened: nothing.  Cost: local."""
    return x - y


def add_public(x: AShare, k) -> AShare:
    """[x + k] for a public integer (array) k: party 0 adds k.  Cost: local."""
    return x + k


def mul_public(x: AShare, k) -> AShare:
    """[k * x] for a public integer (array) k: every party scales its share.  Cost: local."""
    return x * k


def mul(x: AShare, y: AShare) -> AShare:
    """Elementwise product by a Beaver triple [Beaver, CRYPTO 1991].

    Inputs: shares x, y of equal shape.  The dealer gives a triple
    (a, b, c = a*b).  Opened: d = x - a and e = y - b (uniform, since a and b
    are).  Identity: x*y = c + d*b + e*a + d*e, each party computing
    c_p + d*b_p + e*a_p and party 0 adding d*e (one fused numba kernel).
    Cost: 1 round, 2N elements to each other party; offline N elements
    (dealer -> last party).  Ring product: fixed-point inputs need a
    truncation afterwards (see :func:`ppboost.mpc.truncation.mul_fixed`).
    """
    if not isinstance(x, AShare) or not isinstance(y, AShare):
        raise TypeError("mul expects two AShares")
    x.check_compatible(y, "*")
    party = x.party
    a, b, c = party.dealer.get("beaver", shape=x.shape)
    mine = ring.mask_pair(x.value, a, y.value, b)        # my share of (d, e)
    others = _exchange(party, mine)                       # the opening, 1 round
    for other in others[:-1]:
        np.add(mine, other, out=mine)
    z = ring.beaver_finish_opened(c, a, b, mine, others[-1], party.id == 0)
    if party.opened is not None:
        party.opened.append(mine + others[-1])
    return AShare(party, z)


def matmul(x: AShare, y: AShare) -> AShare:
    """Matrix product by a matrix triple [Beaver 1991; Mohassel-Zhang, SecureML 2017].

    Inputs: x (m x k), y (k x n) (1-D operands as in numpy).  The dealer gives
    (A, B, C = A @ B).  Opened: D = x - A, E = y - B.  Identity:
    x @ y = C + D @ B + A @ E + D @ E (party 0 adds D @ E).
    Cost: 1 round, m*k + k*n elements to each other party; offline m*n.
    """
    if not isinstance(x, AShare) or not isinstance(y, AShare):
        raise TypeError("matmul expects two AShares")
    if x.party is not y.party:
        raise ValueError("cannot multiply shares that belong to different Party objects")
    if x.ndim not in (1, 2) or y.ndim not in (1, 2):
        raise ValueError(f"matmul supports 1-D and 2-D shares, got ndim {x.ndim} and {y.ndim}")
    kx = x.shape[-1]
    ky = y.shape[0]
    if kx != ky:
        raise ValueError(f"matmul shape mismatch: {x.shape} @ {y.shape} "
                         f"(inner dimensions {kx} != {ky})")
    party = x.party
    a, b, c = party.dealer.get("matmul", a_shape=x.shape, b_shape=y.shape)
    d, e = open_values(party, [x.value - a, y.value - b])
    z = c + ring.matmul(d, b) + ring.matmul(a, e)
    if party.id == 0:
        z = z + ring.matmul(d, e)
    return AShare(party, np.asarray(z))

