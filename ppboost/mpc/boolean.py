"""XOR (boolean) shares, bit-sliced 64 values to a uint64 word.

Layout.  ``n`` values of ``nbits`` bits each are stored as a ``(nbits, W)``
uint64 array of *bit-planes*, ``W = ceil(n / 64)``: bit ``i`` of word
``planes[j, w]`` is bit ``j`` of value ``64 * w + i``.  One XOR or AND of two
planes therefore works on 64 values at once, and a whole circuit layer on all
planes is one numpy / numba call.  Padding bits (values ``n .. 64W-1``) carry
no meaning; they are masked like every other bit when opened.

Sharing.  A bit ``v`` is held as ``v = v_0 ^ v_1 ^ ... ^ v_{n-1}`` by the data
parties (any ``n >= 2``).  XOR with a share or a public value and NOT are
local (only party 0 applies public constants); AND uses a boolean Beaver
triple ``(a, b, c = a & b)`` from the dealer [Beaver, CRYPTO 1991]:
open ``d = x ^ a`` and ``e = y ^ b``, then
``z = c ^ (d & b) ^ (e & a) ^ (d & e)`` (the last term by party 0 only),
so that ``XOR_p z_p = x & y``.

The prefix circuits at the end (:func:`carry_out`, :func:`prefix_carries`)
are the generate/propagate formulation of carry look-ahead: a tree reduction
(log-depth) for one carry-out and Kogge-Stone [Kogge & Stone, IEEE TC 1973]
for every carry.  They are what :mod:`ppboost.mpc.compare` builds
comparisons and bit decompositions from, following the edaBit approach of
[Escudero, Ghosh, Keller, Rachuri, Scholl: "Improved primitives for MPC over
mixed arithmetic-binary circuits", CRYPTO 2020].
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .dealer import Correlation

__all__ = [
    "n_words", "pack_bits", "unpack_bits", "pack_bitvector", "unpack_bitvector",
    "BShare", "share_bits", "band", "band_planes", "carry_out", "carry_out_plan",
    "prefix_carries", "prefix_or", "AndTriple", "XorZero", "xor_share_words",
    "xor_share_words_expand", "xor_random",
]

_U64 = np.dtype(np.uint64)


def n_words(n: int) -> int:
    """Number of uint64 words that hold ``n`` bit-sliced values."""
    return (int(n) + 63) // 64


# --------------------------------------------------------------------------
# kernels: bit-matrix transpose (pack / unpack)

@njit(cache=True, nogil=True)
def _transpose64(a):
    """In-place transpose of a 64x64 bit matrix held as 64 uint64 rows.

    Row ``r`` bit ``c`` moves to row ``c`` bit ``r`` (bit 0 = least
    significant).  Recursive block swap [Warren, Hacker's Delight, 7-3].
    """
    j = 32
    m = np.uint64(0x00000000FFFFFFFF)
    while j != 0:
        k = 0
        sj = np.uint64(j)
        while k < 64:
            # swap the upper-right and lower-left j x j blocks
            t = ((a[k] >> sj) ^ a[k + j]) & m
            a[k] ^= t << sj
            a[k + j] ^= t
            k = (k + j + 1) & ~j
        j >>= 1
        m ^= m << np.uint64(j)


@njit(cache=True, nogil=True)
def _pack_kernel(values, nbits, out):
    n = values.shape[0]
    W = out.shape[1]
    buf = np.zeros(64, dtype=np.uint64)
    for w in range(W):
        base = 64 * w
        cnt = min(64, n - base)
        for i in range(cnt):
            buf[i] = values[base + i]
        for i in range(cnt, 64):
            buf[i] = np.uint64(0)
        _transpose64(buf)
        for j in range(nbits):
            out[j, w] = buf[j]


@njit(cache=True, nogil=True)
def _unpack_kernel(planes, n, out):
    nbits = planes.shape[0]
    W = planes.shape[1]
    buf = np.zeros(64, dtype=np.uint64)
    for w in range(W):
        for j in range(nbits):
            buf[j] = planes[j, w]
        for j in range(nbits, 64):
            buf[j] = np.uint64(0)
        _transpose64(buf)
        base = 64 * w
        cnt = min(64, n - base)
        for i in range(cnt):
            out[base + i] = buf[i]


def pack_bits(values: np.ndarray, nbits: int = 64) -> np.ndarray:
    """Bit-slice a 1-D uint64 array: returns ``(nbits, ceil(n/64))`` planes of its low ``nbits`` bits."""
    values = np.asarray(values)
    if values.dtype != _U64:
        raise TypeError(f"pack_bits: values.dtype == {values.dtype}, must be uint64")
    if values.ndim != 1:
        raise ValueError(f"pack_bits: values.ndim == {values.ndim}, must be 1")
    if not 1 <= nbits <= 64:
        raise ValueError(f"pack_bits: nbits == {nbits}, must be in 1..64")
    out = np.empty((nbits, n_words(values.shape[0])), dtype=np.uint64)
    _pack_kernel(np.ascontiguousarray(values), nbits, out)
    return out


def unpack_bits(planes: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``(nbits, W)`` planes -> ``n`` uint64 values."""
    planes = np.asarray(planes)
    if planes.dtype != _U64 or planes.ndim != 2:
        raise TypeError(f"unpack_bits: planes must be a 2-D uint64 array, got {planes.dtype} "
                        f"ndim {planes.ndim}")
    if not 1 <= planes.shape[0] <= 64:
        raise ValueError(f"unpack_bits: {planes.shape[0]} planes, must be in 1..64")
    if not 0 <= n <= 64 * planes.shape[1]:
        raise ValueError(f"unpack_bits: n == {n}, must be in 0..{64 * planes.shape[1]}")
    out = np.empty(n, dtype=np.uint64)
    _unpack_kernel(np.ascontiguousarray(planes), n, out)
    return out


def pack_bitvector(bits: np.ndarray) -> np.ndarray:
    """Pack a 1-D array of 0/1 values into ``ceil(n/64)`` uint64 words (one plane)."""
    bits = np.asarray(bits)
    if bits.ndim != 1:
        raise ValueError(f"pack_bitvector: bits.ndim == {bits.ndim}, must be 1")
    return pack_bits(bits.astype(np.uint64) & np.uint64(1), 1)[0]


def unpack_bitvector(plane: np.ndarray, n: int) -> np.ndarray:
    """Unpack one plane of ``ceil(n/64)`` words into ``n`` uint64 values in {0, 1}."""
    plane = np.asarray(plane)
    if plane.ndim != 1:
        raise ValueError(f"unpack_bitvector: plane.ndim == {plane.ndim}, must be 1")
    return unpack_bits(plane.reshape(1, -1), n)


# --------------------------------------------------------------------------
# dealer correlation: boolean Beaver triples (compressed, XOR-shared words)

def xor_share_words(d, value, to=None) -> None:
    """Dealer side: XOR-share uint64 words ``value``; parties other than ``to``
    (default the last) draw their share from their PRG, ``to`` receives the correction."""
    to = d.n_parties - 1 if to is None else to
    corr = np.array(value, dtype=np.uint64, copy=True)
    for p, prg in enumerate(d.prgs):
        if p != to:
            corr ^= prg.uint64(corr.shape)
    d.send(to, corr)


def xor_share_words_expand(c, shape, to=None) -> np.ndarray:
    """Party side mirror of :func:`xor_share_words`: my XOR share of the words."""
    to = c.n_parties - 1 if to is None else to
    if c.me != to:
        return c.prg.uint64(shape)
    return c.recv(shape, np.uint64)


def xor_random(d, shape) -> np.ndarray:
    """Dealer side: the XOR of every party's next PRG words (mirror: ``c.prg.uint64(shape)``)."""
    out = d.prgs[0].uint64(shape)
    for prg in d.prgs[1:]:
        out ^= prg.uint64(shape)
    return out


class AndTriple(Correlation):
    """``words`` uint64 words of boolean Beaver triples: XOR shares of a, b and c = a & b
    (64 independent triples per word) [Beaver 1991].  a, b come from every party's PRG;
    traffic: ``words`` words to the last party (the correction of c)."""

    name = "and_triple"

    def deal(self, d, words):
        a = xor_random(d, words)
        b = xor_random(d, words)
        xor_share_words(d, a & b)

    def expand(self, c, words):
        a = c.prg.uint64(words)
        b = c.prg.uint64(words)
        return a, b, xor_share_words_expand(c, (words,))


class XorZero(Correlation):
    """XOR shares of zero words; party ``to`` receives the correction.  Used to input
    bits: the owner XORs its plaintext planes into its share.  Traffic: ``words`` words."""

    name = "xor_zero"

    def deal(self, d, words, to):
        xor_share_words(d, np.zeros(words, np.uint64), to=to)

    def expand(self, c, words, to):
        return xor_share_words_expand(c, (words,), to=to)


# --------------------------------------------------------------------------
# kernels: the local parts of a boolean Beaver AND

@njit(cache=True, nogil=True)
def _mask_kernel(x, y, a, b, out):
    """out = [x ^ a, y ^ b] (flattened, concatenated): this party's share of (d, e)."""
    m = x.shape[0]
    for i in range(m):
        out[i] = x[i] ^ a[i]
        out[m + i] = y[i] ^ b[i]


@njit(cache=True, nogil=True)
def _and_finish_kernel(de, a, b, c, first, out):
    """z = c ^ (d & b) ^ (e & a) ^ [first] (d & e)   [Beaver 1991, boolean form]."""
    m = a.shape[0]
    for i in range(m):
        d = de[i]
        e = de[m + i]
        z = c[i] ^ (d & b[i]) ^ (e & a[i])
        if first:
            z ^= d & e
        out[i] = z


@njit(cache=True, nogil=True)
def _xor_into(acc, other):
    for i in range(acc.shape[0]):
        acc[i] ^= other[i]


def band_planes(party, x: np.ndarray, y: np.ndarray, triple=None) -> np.ndarray:
    """AND of XOR-shared bit-planes: this party's share of ``x & y``.

    Inputs: this party's XOR shares ``x``, ``y`` (uint64 arrays of equal
    shape; every bit is one shared bit).  Randomness: one boolean Beaver
    triple of the same shape from ``party.dealer`` (kind ``"and_triple"``).
    Opened: ``d = x ^ a`` and ``e = y ^ b``; ``a``, ``b`` are uniform, so
    ``d``, ``e`` are uniform whatever ``x``, ``y`` are.
    Identity: ``XOR_p z_p = (XOR_p x_p) & (XOR_p y_p)``.
    Cost: 1 round; every party sends ``2 * x.size`` words to each other party.
    ``triple`` (optional): this party's ``(a, b, c)`` of ``x.size`` words
    already obtained from the dealer (e.g. in a bundle); by default it is
    requested now.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype != _U64 or y.dtype != _U64:
        raise TypeError(f"band: shares must be uint64, got {x.dtype} and {y.dtype}")
    if x.shape != y.shape:
        raise ValueError(f"band: shapes {x.shape} and {y.shape} differ, must be equal")
    shape = x.shape
    m = x.size
    if triple is None:
        triple = party.dealer.get("and_triple", words=m)
    a, b, c = triple
    if a.shape != (m,):
        raise ValueError(f"band: triple of {a.shape} words for {m} words of shares")
    xf = np.ascontiguousarray(x).reshape(-1)
    yf = np.ascontiguousarray(y).reshape(-1)
    mine = np.empty(2 * m, dtype=np.uint64)
    _mask_kernel(xf, yf, a, b, mine)
    de = _open_xor(party, mine)
    out = np.empty(m, dtype=np.uint64)
    _and_finish_kernel(de, a, b, c, party.id == 0, out)
    return out.reshape(shape)


def _open_xor(party, mine: np.ndarray) -> np.ndarray:
    """Every party sends its share to every other party; returns the XOR of all shares.

    Cost: 1 round, ``mine.size`` words to each other party.
    """
    ep = party.ep
    for p in range(party.n_parties):
        if p != party.id:
            ep.send(p, mine)
    acc = None
    for p in range(party.n_parties):
        if p != party.id:
            got = ep.recv(p)
            if acc is None:            # the received array is our own copy: reuse it
                acc = got
                _xor_into(acc, mine)
            else:
                _xor_into(acc, got)
    if party.opened is not None:
        party.opened.append(acc.copy())
    return acc


# --------------------------------------------------------------------------
class BShare:
    """This party's XOR share of ``n`` bit-sliced values (``planes``: ``(nbits, W)`` uint64).

    Operators: ``^`` with a BShare (local) or a public plane array (party 0
    applies it), ``~`` (party 0 flips), ``&`` with a public plane array
    (local) or with a BShare (boolean Beaver AND, one round; see
    :func:`band_planes`).  ``x[j]`` selects planes.
    """

    __slots__ = ("party", "planes", "n")

    def __init__(self, party, planes: np.ndarray, n: int):
        planes = np.asarray(planes)
        if planes.dtype != _U64:
            raise TypeError(f"BShare: planes.dtype == {planes.dtype}, must be uint64")
        if planes.ndim != 2:
            raise ValueError(f"BShare: planes.ndim == {planes.ndim}, must be 2 (nbits, words)")
        if planes.shape[1] != n_words(n):
            raise ValueError(f"BShare: {planes.shape[1]} words for n == {n}, must be {n_words(n)}")
        self.party = party
        self.planes = planes
        self.n = int(n)

    @property
    def nbits(self) -> int:
        return self.planes.shape[0]

    def _like(self, planes):
        return BShare(self.party, planes, self.n)

    def _public(self, other) -> np.ndarray:
        other = np.asarray(other)
        if other.dtype != _U64:
            raise TypeError(f"BShare: public planes must be uint64, got {other.dtype}")
        if other.shape not in (self.planes.shape, self.planes.shape[1:]):
            raise ValueError(f"BShare: public planes of shape {other.shape}, must be "
                             f"{self.planes.shape} or {self.planes.shape[1:]}")
        return other

    def __xor__(self, other):
        if isinstance(other, BShare):
            _check_same(self, other)
            return self._like(self.planes ^ other.planes)
        pub = self._public(other)
        return self._like(self.planes ^ pub) if self.party.id == 0 else self._like(self.planes.copy())

    __rxor__ = __xor__

    def __invert__(self):
        return self._like(~self.planes) if self.party.id == 0 else self._like(self.planes.copy())

    def __and__(self, other):
        if isinstance(other, BShare):
            _check_same(self, other)
            return self._like(band_planes(self.party, self.planes, other.planes))
        return self._like(self.planes & self._public(other))

    __rand__ = __and__

    def __getitem__(self, idx):
        planes = self.planes[idx]
        if planes.ndim == 1:
            planes = planes.reshape(1, -1)
        return self._like(np.ascontiguousarray(planes))

    def reveal(self) -> np.ndarray:
        """Open to every party: returns the ``n`` values (uint64, low ``nbits`` bits). 1 round."""
        full = _open_xor(self.party, np.ascontiguousarray(self.planes).reshape(-1))
        return unpack_bits(full.reshape(self.planes.shape), self.n)

    def __repr__(self):
        return f"BShare(party={self.party.id}, n={self.n}, nbits={self.nbits})"


def share_bits(party, values=None, nbits: int = 64, owner: int = 0, n: int | None = None) -> BShare:
    """XOR-share the owner's uint64 values (their low ``nbits`` bits), bit-sliced.

    Inputs: on the owner ``values`` (1-D uint64), elsewhere ``values=None``
    and the public count ``n``.  Randomness: XOR shares of zero from the
    dealer (kind ``"xor_zero"``); the owner XORs in its packed planes.
    Opened: nothing.  Identity: ``XOR_p planes_p = pack_bits(values, nbits)``.
    Cost: no round between parties; ``nbits * ceil(n/64)`` words from the
    dealer to the owner.
    """
    if not isinstance(owner, (int, np.integer)) or not 0 <= owner < party.n_parties:
        raise ValueError(f"share_bits: owner == {owner!r}, must be in 0..{party.n_parties - 1}")
    if party.id == owner:
        if values is None:
            raise ValueError(f"share_bits: party {owner} is the owner and must pass values")
        planes = pack_bits(values, nbits)
        n = np.asarray(values).shape[0]
    else:
        if values is not None:
            raise ValueError(f"share_bits: party {party.id} is not the owner (party {owner}): "
                             f"pass values=None and the public n")
        if n is None:
            raise ValueError(f"share_bits: party {party.id} must pass the public count n")
        planes = None
    if not 1 <= nbits <= 64:
        raise ValueError(f"share_bits: nbits == {nbits}, must be in 1..64")
    shape = (nbits, n_words(n))
    z = party.dealer.get("xor_zero", words=shape[0] * shape[1], to=owner).reshape(shape)
    if planes is not None:
        z = z ^ planes
    return BShare(party, z, n)


def _check_same(x: BShare, y: BShare) -> None:
    if x.planes.shape != y.planes.shape or x.n != y.n:
        raise ValueError(f"BShare: shapes differ: {x.nbits} planes x {x.n} values vs "
                         f"{y.nbits} planes x {y.n} values")


def band(x: BShare, y: BShare) -> BShare:
    """``x & y`` for two BShares (see :func:`band_planes`)."""
    return x & y


# --------------------------------------------------------------------------
# log-depth carry circuits on bit-sliced (generate, propagate) planes

def carry_out_plan(k: int, W: int) -> list:
    """Word counts of the ``and_triple`` requests :func:`carry_out` makes on ``(k, W)`` planes."""
    plan = []
    while k > 1:
        h = k // 2
        plan.append((2 * h - 1) * W)
        k = h + k % 2
    return plan


def carry_out(party, g: np.ndarray, p: np.ndarray, triples=None) -> np.ndarray:
    """Carry out of the top of a ``k``-bit addition, from XOR-shared generate/propagate planes.

    Inputs: ``g``, ``p``: ``(k, W)`` uint64 shares, bit-plane ``i`` = position
    ``i`` (least significant first); the carry into position 0 must already
    be folded into ``g[0]``.  Combines adjacent groups with
    ``(G, P) = (G_hi ^ (P_hi & G_lo), P_hi & P_lo)`` in a balanced tree
    (``G_hi`` and ``P_hi & G_lo`` are never both 1, so OR is XOR)
    [Brent & Kung 1982; the comparison circuit of Escudero et al. 2020].
    Opened: only Beaver-masked values inside the ANDs.
    Identity: returns a share of ``G[k-1:0]`` (one plane, ``(W,)``).
    Cost: ``ceil(log2 k)`` rounds, ``2 (k - 1)`` plane ANDs (at most) in all.
    ``triples`` (optional): one ``(a, b, c)`` per layer, sized by :func:`carry_out_plan`.
    """
    g = np.ascontiguousarray(g)
    p = np.ascontiguousarray(p)
    if g.shape != p.shape or g.ndim != 2:
        raise ValueError(f"carry_out: g {g.shape} and p {p.shape} must be equal 2-D shapes")
    level = 0
    while g.shape[0] > 1:
        k = g.shape[0]
        h = k // 2
        lo_g = g[0:2 * h:2]
        lo_p = p[0:2 * h:2]
        hi_g = g[1:2 * h:2]
        hi_p = p[1:2 * h:2]
        # the lowest group's P is never needed (nothing below it), so skip that AND
        prod = band_planes(party, np.concatenate([hi_p, hi_p[1:]]), np.concatenate([lo_g, lo_p[1:]]),
                           None if triples is None else triples[level])
        level += 1
        ng = hi_g ^ prod[:h]
        np_ = np.empty_like(ng)
        np_[0] = 0  # unused: the lowest group never propagates into anything
        np_[1:] = prod[h:]
        if k % 2:
            ng = np.concatenate([ng, g[k - 1:k]])
            np_ = np.concatenate([np_, p[k - 1:k]])
        g, p = ng, np_
    return g[0]


def prefix_carries(party, g: np.ndarray, p: np.ndarray, start: int = 1) -> np.ndarray:
    """All prefix generates ``G[i:0]`` (the carry out of each position), Kogge-Stone.

    Inputs as :func:`carry_out`.  At distance ``d = start, 2 start, ...``:
    ``G_i ^= P_i & G_{i-d}``, ``P_i &= P_{i-d}`` for ``i >= d``
    [Kogge & Stone 1973].  ``start = 2`` when the caller already did the
    ``d = 1`` layer (``(g, p)`` then cover 2-bit spans).  Returns ``(k, W)``
    shares, plane ``i`` = carry out of position ``i`` (= carry into ``i + 1``).
    Cost: ``ceil(log2 k) - log2 start`` rounds, at most ``2 k`` plane ANDs per round.
    """
    g = np.ascontiguousarray(g).copy()
    p = np.ascontiguousarray(p).copy()
    if g.shape != p.shape or g.ndim != 2:
        raise ValueError(f"prefix_carries: g {g.shape} and p {p.shape} must be equal 2-D shapes")
    k = g.shape[0]
    d = start
    while d < k:
        # P is only needed where a later level still reads it (i >= 2d)
        need_p = k - 2 * d
        left = np.concatenate([p[d:], p[2 * d:]]) if need_p > 0 else p[d:]
        right = np.concatenate([g[:k - d], p[d:k - d]]) if need_p > 0 else g[:k - d]
        prod = band_planes(party, left, right)
        g[d:] ^= prod[:k - d]
        if need_p > 0:
            p[2 * d:] = prod[k - d:]
        d *= 2
    return g


def prefix_or(party, x: np.ndarray, from_top: bool = True) -> np.ndarray:
    """Prefix OR over planes: plane ``i`` of the result = OR of planes ``i..k-1`` (``from_top``).

    Uses ``a | b = a ^ b ^ (a & b)`` with the distance-doubling (Kogge-Stone) scan of
    :func:`prefix_carries`.  Cost: ``ceil(log2 k)`` rounds, ``< k`` plane ANDs per round.
    """
    z = np.ascontiguousarray(x).copy()
    if z.ndim != 2:
        raise ValueError(f"prefix_or: x.ndim == {z.ndim}, must be 2")
    if from_top:
        z = z[::-1].copy()
    k = z.shape[0]
    d = 1
    while d < k:
        a = z[d:]
        b = z[:k - d]
        ab = band_planes(party, a, b)
        z[d:] = a ^ b ^ ab
        d *= 2
    return z[::-1].copy() if from_top else z
