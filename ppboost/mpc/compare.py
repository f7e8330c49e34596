"""Comparison of additively shared values: less-than-zero, x < y, x < public; bit decomposition.

Method: edaBits [Escudero, Ghosh, Keller, Rachuri, Scholl, "Improved
primitives for MPC over mixed arithmetic-binary circuits", CRYPTO 2020] and
daBits [Rotaru & Wood, "MArBled circuits", INDOCRYPT 2019].  The dealer
hands out a uniform ring element ``r`` twice: as additive shares over
Z_2^64 and as XOR shares of its bits (bit-sliced, see
:mod:`ppboost.mpc.boolean`).  The parties open ``c = x + r`` -- uniform in
Z_2^64 whatever ``x`` is -- and then work on ``x = c - r`` bit by bit with a
log-depth circuit between the public bits of ``c`` and the shared bits of
``r``.  The dealer also XOR-shares a few products of bits of ``r``, which
makes the first layer of that circuit local (no AND gate, no round).  The
resulting XOR-shared bit is turned into an additive share with a daBit
(bit-to-arithmetic, :func:`ppboost.mpc.b2a.b2a`).

All results are *integer* bits: additive shares of 0 or 1 (not fixed-point
encoded; multiply by ``2**frac_bits`` locally for fixed-point 1.0).  A bit
times a fixed-point share needs no truncation.

Correctness range: ``ltz(x)`` returns the sign bit of ``x`` read as a signed
64-bit integer, so ``x < y`` is exact whenever ``-2**63 <= x - y < 2**63`` in
ring units (``2**(63 - f)`` in value for ``f`` fractional bits).  A caller
may declare a smaller bound ``bound_bits = l`` (``-2**(l-1) <= x < 2**(l-1)``)
for a shorter circuit; the opened value stays uniform on all 64 bits.
There is no probabilistic error: nothing depends on a statistical
security parameter.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .arith import open_values
from .b2a import b2a
from .boolean import (
    AndTriple,
    BShare,
    carry_out,
    carry_out_plan,
    n_words,
    pack_bits,
    prefix_carries,
    xor_share_words,
    xor_share_words_expand,
)
from .dealer import Correlation
from .shares import AShare, share_array

__all__ = ["ltz", "ltz_planes", "prefetch_ltz", "a2b", "less_than", "less_than_public",
           "less_than_thresholds", "greater_than", "bit_decompose", "b2a_planes",
           "planes_to_bits", "check_bound", "EdaBit", "LtzBundle"]

_U64 = np.dtype(np.uint64)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------
# dealer correlations (registered by ppboost.mpc.kinds.standard_kinds)

class EdaBit(Correlation):
    """``count`` edaBits [Escudero et al. 2020]: a uniform ``r`` in Z_2^64 as additive
    shares (every party's PRG; ``r`` is their sum) and the low ``nbits`` bits of ``r`` as
    bit-sliced XOR shares, ``(nbits, ceil(count/64))`` words.  The dealer may also
    XOR-share products of bits of ``r`` that make the first layer of a carry circuit
    local: with ``pairs = q > 0`` the products ``r_{2i+1} & r_{2i}`` for ``i < q``
    (see :func:`_level1_kernel`), with ``adjacent = 1`` the products ``r_i & r_{i-1}``
    for ``0 < i < nbits`` (see :func:`_ks_level1_kernel`); appended after the bit planes.
    Traffic: one word per plane and 64 values to the last party (the correction)."""

    name = "edabit"

    def deal(self, d, count, nbits, pairs=0, adjacent=0):
        r = sum(d.random(count))
        planes = pack_bits(r, nbits)
        extra = [planes]
        if pairs:
            extra.append(planes[1:2 * pairs:2] & planes[0:2 * pairs:2])
        if adjacent:
            extra.append(planes[1:] & planes[:-1])
        xor_share_words(d, np.concatenate(extra) if len(extra) > 1 else planes)

    def expand(self, c, count, nbits, pairs=0, adjacent=0):
        rows = nbits + pairs + (nbits - 1 if adjacent else 0)
        return c.random(count), xor_share_words_expand(c, (rows, n_words(count)))


class LtzBundle(Correlation):
    """All boolean material of one comparison batch in a single dealer request: the
    edaBit (``count`` values, low ``l = bound_bits`` bits and ``(l-1)//2`` pair products)
    followed by one AND-triple batch per layer of the carry tree for ``copies``
    circuits side by side (:func:`ppboost.mpc.boolean.carry_out_plan`).  Same traffic
    as the separate kinds, but one dealer round trip instead of ``1 + ceil(log2(l/2))``."""

    name = "ltz_bundle"

    def deal(self, d, count, bound_bits, copies=1):
        l = int(bound_bits)
        _EDABIT.deal(d, count, l, pairs=(l - 1) // 2)
        for words in carry_out_plan(l // 2, copies * n_words(count)):
            _AND.deal(d, words)

    def expand(self, c, count, bound_bits, copies=1):
        l = int(bound_bits)
        eda = _EDABIT.expand(c, count, l, pairs=(l - 1) // 2)
        return eda, [_AND.expand(c, words) for words in carry_out_plan(l // 2, copies * n_words(count))]


_EDABIT = EdaBit()
_AND = AndTriple()


# --------------------------------------------------------------------------
# kernels

@njit(cache=True, nogil=True)
def _level1_kernel(cpl, r, rr, kb, first, G, P):
    """First layer of the borrow circuit of ``c + ~r + 1`` on the low ``kb`` bits, with no AND gate.

    ``cpl``: public planes of ``c``; ``r``: XOR shares of the planes of ``r``;
    ``rr[i]``: XOR shares of ``r_{2i+1} & r_{2i}`` (from the dealer).  Writes
    the (generate, propagate) pairs of the 2-bit groups ``(2i+1, 2i)``,
    ``i < kb // 2``, and of the top bit alone if ``kb`` is odd, into ``G``, ``P``
    (``ceil(kb / 2)`` planes).
    With ``n = ~r`` and ``q = n_h & n_l = 1 ^ r_h ^ r_l ^ (r_h & r_l)``
    (linear in the shares once ``r_h & r_l`` is shared), for public ``c``:

    * ``p_h & g_l = c_l & ((c_h & n_l) ^ q)``
    * ``p_h & p_l = (c_h & c_l) ^ (c_h & n_l) ^ (c_l & n_h) ^ q``
    * lowest group (carry-in 1: ``G_0 = c_0 | n_0``):
      ``p_h & G_0 = (c_h & c_0) ^ (c_h & ~c_0 & n_0) ^ (c_0 & n_h) ^ (~c_0 & q)``

    Every term is a public mask AND a share, or a public constant (party 0
    only), so the layer is local.  This halves the AND gates of
    :func:`ltz` (118 -> 57 per value for 63 bits) and saves a round.
    """
    W = r.shape[1]
    pairs = kb // 2
    for w in range(W):
        for i in range(pairs):
            lo = 2 * i
            hi = lo + 1
            cl = cpl[lo, w]
            ch = cpl[hi, w]
            nl = ~r[lo, w] if first else r[lo, w]      # share of ~r_l
            nh = ~r[hi, w] if first else r[hi, w]      # share of ~r_h
            q = rr[i, w] ^ r[hi, w] ^ r[lo, w]
            if first:
                q = ~q                                 # share of ~r_h & ~r_l
            gh = ch & nh
            if i == 0:
                t = (ch & ~cl & nl) ^ (cl & nh) ^ (~cl & q)
                if first:
                    t ^= ch & cl
                G[0, w] = gh ^ t
                P[0, w] = 0                            # never read: nothing below group 0
            else:
                G[i, w] = gh ^ (cl & ((ch & nl) ^ q))
                pp = (ch & nl) ^ (cl & nh) ^ q
                if first:
                    pp ^= ch & cl
                P[i, w] = pp
        if kb % 2:
            top = kb - 1
            ct = cpl[top, w]
            nt = ~r[top, w] if first else r[top, w]
            pt = (ct ^ nt) if first else nt
            gt = ct & nt
            if top == 0:
                gt ^= pt                               # bit 0 alone: carry-in folded
            G[pairs, w] = gt
            P[pairs, w] = pt


@njit(cache=True, nogil=True)
def _ks_level1_kernel(cpl, r, rq, first, G, P, praw):
    """The ``d = 1`` layer of the Kogge-Stone carry circuit of ``c + ~r + 1``, with no AND gate.

    ``rq[i-1]``: XOR shares of ``r_i & r_{i-1}`` (from the dealer).  With
    ``n = ~r`` and ``q_i = n_i & n_{i-1} = 1 ^ r_i ^ r_{i-1} ^ (r_i & r_{i-1})``,
    for public ``c`` (same identities as :func:`_level1_kernel`):

    * ``G'_i = g_i ^ c_{i-1} & ((c_i & n_{i-1}) ^ q_i)``, ``i >= 2``
    * ``P'_i = (c_i & c_{i-1}) ^ (c_i & n_{i-1}) ^ (c_{i-1} & n_i) ^ q_i``, ``i >= 2``
    * ``G'_1 = g_1 ^ (c_1 & c_0) ^ (c_1 & ~c_0 & n_0) ^ (c_0 & n_1) ^ (~c_0 & q_1)``
      (``G_0 = c_0 | n_0`` holds the carry-in), ``G'_0 = G_0``.

    Also writes ``praw`` = the raw propagate ``c ^ n`` (for the sum bits).
    """
    k = r.shape[0]
    W = r.shape[1]
    for w in range(W):
        for i in range(k):
            ci = cpl[i, w]
            ni = ~r[i, w] if first else r[i, w]
            pi = (ci ^ ni) if first else ni
            praw[i, w] = pi
            gi = ci & ni
            if i == 0:
                G[0, w] = gi ^ pi                      # carry-in 1 folded: c_0 | n_0
                P[0, w] = 0
                continue
            cl = cpl[i - 1, w]
            nl = ~r[i - 1, w] if first else r[i - 1, w]
            q = rq[i - 1, w] ^ r[i, w] ^ r[i - 1, w]
            if first:
                q = ~q                                 # share of n_i & n_{i-1}
            if i == 1:
                t = (ci & ~cl & nl) ^ (cl & ni) ^ (~cl & q)
                if first:
                    t ^= ci & cl
                G[1, w] = gi ^ t
                P[1, w] = 0                            # span reaches bit 0: never read
            else:
                G[i, w] = gi ^ (cl & ((ci & nl) ^ q))
                pp = (ci & nl) ^ (cl & ni) ^ q
                if first:
                    pp ^= ci & cl
                P[i, w] = pp


# --------------------------------------------------------------------------
def planes_to_bits(planes: np.ndarray, n: int) -> np.ndarray:
    """Bit-sliced ``(k, W)`` planes -> ``(k, n)`` uint8 0/1 (bit ``i`` of word ``w`` is value ``64w + i``)."""
    planes = np.ascontiguousarray(planes, dtype="<u8")     # little-endian words: byte j holds bits 8j..8j+7
    bits = np.unpackbits(planes.view(np.uint8), axis=1, bitorder="little")
    return bits[:, :n]


def b2a_planes(party, bits: np.ndarray, n: int) -> np.ndarray:
    """XOR-shared bit-planes -> additive shares of the same bits (integer 0/1), ``(k, n)``.

    Unpacks the planes and runs the core daBit conversion
    :func:`ppboost.mpc.b2a.b2a` [Rotaru-Wood 2019]: opened ``e = b ^ s`` for a
    uniform daBit ``s``; identity ``b = e + s - 2 e s``.
    Cost: 1 round, ``ceil(k n / 8)`` bytes to each other party.
    """
    return b2a(party, planes_to_bits(bits, n)).value


def _edabit_open(party, x: np.ndarray, nbits: int, pairs: int = 0, adjacent: int = 0):
    """Open ``c = x + r`` for an edaBit ``r``; return (public c, its planes, shared planes of r
    followed by the shared products the dealer was asked for)."""
    m = x.size
    if adjacent:
        r_arith, r_planes = party.dealer.get("edabit", count=m, nbits=nbits, adjacent=1)
    else:
        r_arith, r_planes = party.dealer.get("edabit", count=m, nbits=nbits, pairs=pairs)
    (c,) = open_values(party, [x.reshape(-1) + r_arith])   # uniform: r is uniform in Z_2^64
    return c, pack_bits(c, nbits), r_planes


def check_bound(bound_bits) -> int:
    """A declared comparison bound ``l``: an int in 2..64 (``-2**(l-1) <= x < 2**(l-1)``)."""
    if isinstance(bound_bits, bool) or not isinstance(bound_bits, (int, np.integer)) \
            or not 2 <= bound_bits <= 64:
        raise ValueError(f"bound_bits == {bound_bits!r}, must be an int in 2..64 "
                         f"(compared values satisfy -2**(bound_bits-1) <= x < 2**(bound_bits-1))")
    return int(bound_bits)


def ltz_planes(party, x: np.ndarray, thresholds=None, bound_bits: int = 64):
    """Shared sign bits of ``x - t`` (flattened ``x``) as XOR-shared planes ``(J, W)``.

    With ``l = bound_bits`` and the declared ``-2**(l-1) <= y < 2**(l-1)``,
    ``y' = y + 2**(l-1)`` lies in ``[0, 2**l)`` and ``y < 0`` iff bit ``l-1`` of
    ``y'`` is 0.  For ``c = y' + r`` (mod 2**64, ``r`` uniform: ``c`` is
    uniform), bit ``l-1`` of ``y' = c - r`` is ``c_{l-1} ^ r_{l-1} ^ borrow``
    with ``borrow = [c mod 2^(l-1) < r mod 2^(l-1)]`` = NOT the carry out of
    ``c + ~r + 1`` on the low ``l-1`` bits; the wrap mod 2**64 never reaches
    bit ``l-1``.  So ``[y < 0] = c_{l-1} ^ r_{l-1} ^ carry``.  For ``l = 64``
    this is the plain sign bit (no bound).  The first layer of the carry
    tree is local thanks to dealer-shared pair products
    (:func:`_level1_kernel`); the rest is :func:`carry_out`.
    With public ``thresholds`` ``t_1..t_J`` one edaBit serves all of them:
    ``c`` is opened once and ``c - t_j`` is public, so only the circuits are
    repeated (all J in the same rounds).  Without thresholds ``J = 1, t = 0``.
    Cost: ``1 + ceil(log2(l/2))`` rounds; per value and peer 1 word plus
    ``J * sum(carry_out_plan(l // 2, 1))`` ANDs (2 opened bits each): 57 ANDs
    and 6 rounds for ``l = 64``, 26 ANDs and 5 rounds for ``l = 32``.
    """
    l = check_bound(bound_bits)
    kb = l - 1
    ts = np.zeros(1, np.uint64) if thresholds is None else np.asarray(thresholds, dtype=np.uint64).reshape(-1)
    J = ts.size
    offset = np.uint64(1 << kb)
    x = x.reshape(-1) + offset if party.id == 0 else x.reshape(-1)
    (r_arith, rp), triples = party.dealer.get("ltz_bundle", count=x.size, bound_bits=l, copies=J)
    (c,) = open_values(party, [x + r_arith])       # uniform: r is uniform in Z_2^64
    first = party.id == 0
    W = rp.shape[1]
    # J circuits side by side along the word axis: public planes of c - t_j, r tiled J times
    cpl = np.concatenate([pack_bits(c - t, l) for t in ts], axis=1) if J > 1 else pack_bits(c, l)
    rp = np.tile(rp, (1, J)) if J > 1 else rp
    r, rr = rp[:l], rp[l:]
    ng = (kb + 1) // 2
    g = np.empty((ng, J * W), dtype=np.uint64)
    p = np.empty_like(g)
    _level1_kernel(cpl, r, rr, kb, first, g, p)
    carry = carry_out(party, g, p, triples)
    sign = carry ^ r[kb]
    if first:
        sign ^= cpl[kb]            # [y < 0] = c_{l-1} ^ r_{l-1} ^ carry
    return sign.reshape(J, W)


def less_than_thresholds(x, thresholds, bound_bits: int = 64) -> AShare:
    """``[x < t_j]`` for one AShare ``x`` and public ring thresholds ``t_1..t_J``: shape ``(J,) + x.shape``.

    One edaBit and one opening serve all J comparisons (see :func:`ltz_planes`);
    exact while ``-2**(l-1) <= x - t_j < 2**(l-1)`` ring units, ``l = bound_bits``.
    Opened: ``c = x + r`` once (uniform), AND masks, daBit masks (uniform).
    Cost: 7 rounds; per element and peer 8 bytes + ``J`` x (114 + 1) bits.
    """
    xv = share_array(x)
    ts = np.asarray(thresholds)
    if ts.dtype != _U64 or ts.ndim != 1 or ts.size < 1:
        raise TypeError(f"less_than_thresholds: thresholds must be a non-empty 1-D uint64 array of "
                        f"ring elements (encode floats with ppboost.crypto.fixed.encode), got "
                        f"{ts.dtype} of shape {ts.shape}")
    party = x.party
    sign = ltz_planes(party, xv.reshape(-1), ts, bound_bits)
    return AShare(party, b2a_planes(party, sign, xv.size).reshape(ts.shape + xv.shape))


def prefetch_ltz(party, count: int, bound_bits: int = 64) -> None:
    """Fetch from the dealer, ahead of time, all material of one ``ltz`` on ``count`` values.

    The offline phase (docs/design.md, section 3): the next :func:`ltz` / :func:`ppboost.mpc.raw.ltz` on
    ``count`` values then never waits for the dealer.  Same order as the
    protocol's requests (the dealer client checks it).
    """
    l = check_bound(bound_bits)
    d = party.dealer
    d.prefetch("ltz_bundle", count=count, bound_bits=l, copies=1)
    d.prefetch("dabit", shape=(1, count))


def ltz(party, x, bound_bits: int = 64):
    """Less-than-zero: additive shares of ``[x < 0]`` (integer 0/1), elementwise.

    Inputs: ``x`` an :class:`AShare` (any shape) of ring elements read as
    signed 64-bit integers (fixed-point values included); optionally a
    declared bound ``l = bound_bits``: ``-2**(l-1) <= x < 2**(l-1)`` ring
    units, which shortens the circuit (values outside it give a wrong bit;
    the default 64 is exact for every ring element).
    Randomness: one edaBit (its low ``l`` bits and ``(l-1)//2`` pair products
    XOR-shared) and one daBit per element, plus the boolean AND triples of
    the carry tree (bit-sliced): 57 per element for ``l = 64``, 26 for ``l = 32``.
    Opened: ``c = x + 2**(l-1) + r`` (``r`` uniform in Z_2^64, so ``c`` is
    uniform whatever ``l``), Beaver-masked AND inputs, and ``e = b ^ s`` for
    a uniform daBit ``s``: all uniform.
    Identity: ``[x < 0] = c_{l-1} ^ r_{l-1} ^ carry``, ``carry = NOT [c mod 2^(l-1) < r mod 2^(l-1)]``
    [Escudero et al. CRYPTO 2020, section 5; borrow circuit: log-depth
    carry-out, see :func:`ppboost.mpc.boolean.carry_out`; its first layer
    is local, :func:`_level1_kernel`; see :func:`ltz_planes`].
    Cost (``l = 64``): 7 rounds (1 open, 5 AND layers, 1 bit-to-arithmetic);
    per element and per peer: 8 bytes (c) + 114 bits (AND openings) + 1 bit
    (b2a) ~ 22.4 bytes sent.  Offline: 95 + 57 bits + 1 word + 1 bit from the
    dealer to the last party.  ``l = 32``: 6 rounds, 52 AND bits, ~14.6 bytes.
    """
    xv = share_array(x)
    sign = ltz_planes(party, xv.reshape(-1), bound_bits=bound_bits)
    return AShare(party, b2a_planes(party, sign, xv.size).reshape(xv.shape))


def less_than(party, x, y, bound_bits: int = 64):
    """``[x < y]`` for AShares of one shape: ``ltz(x - y)``; exact while
    ``-2**(l-1) <= x - y < 2**(l-1)`` ring units (``l = bound_bits``, default 64)."""
    xs, ys = share_array(x).shape, share_array(y, "y").shape
    if xs != ys:
        raise ValueError(f"less_than: shapes {xs} and {ys} differ, must be equal")
    return ltz(party, x - y, bound_bits)


def greater_than(party, x, y, bound_bits: int = 64):
    """``[x > y]`` = ``[y < x]`` (so ties give 0)."""
    return less_than(party, y, x, bound_bits)


def less_than_public(party, x, t, bound_bits: int = 64):
    """``[x < t]`` for a public ring array/scalar ``t`` (uint64 ring elements, e.g. fixed-point encoded)."""
    t = np.asarray(t)
    if t.dtype != _U64:
        raise TypeError(f"less_than_public: threshold dtype == {t.dtype}, must be uint64 ring elements "
                        f"(encode floats with ppboost.crypto.fixed.encode)")
    return ltz(party, x - t, bound_bits)


def a2b(x, nbits: int = 64) -> BShare:
    """Arithmetic to boolean: a :class:`BShare` of the low ``nbits`` bits of ``x`` (flattened).

    See :func:`bit_decompose` for the protocol and its cost.
    """
    return BShare(x.party, bit_decompose(x.party, x, nbits), share_array(x).size)


def bit_decompose(party, x, nbits: int) -> np.ndarray:
    """XOR-shared bit-planes of the low ``nbits`` bits of ``x`` (flattened), ``(nbits, W)``.

    Inputs: ``x`` AShare; ``nbits`` in 1..64.  Opened: ``c = x + r`` (uniform).
    Identity: ``x mod 2^k = (c + ~r + 1) mod 2^k``; sum bit ``i`` is
    ``c_i ^ ~r_i ^ carry_{i-1}`` with the carries from a Kogge-Stone prefix
    circuit [Kogge-Stone 1973; Escudero et al. 2020] whose first layer is
    local (dealer-shared adjacent products, :func:`_ks_level1_kernel`).
    Cost: ``1 + ceil(log2 nbits) - 1`` rounds; per element and peer 8 bytes
    plus about ``2 nbits (log2(nbits) - 1)`` AND bits.
    """
    if not 1 <= nbits <= 64:
        raise ValueError(f"bit_decompose: nbits == {nbits}, must be in 1..64")
    xv = share_array(x).reshape(-1)
    c, cpl, rp = _edabit_open(party, xv, nbits, adjacent=1)
    first = party.id == 0
    r, rq = rp[:nbits], rp[nbits:]
    g = np.empty_like(r)
    p = np.empty_like(r)
    praw = np.empty_like(r)
    _ks_level1_kernel(cpl, r, rq, first, g, p, praw)
    carries = prefix_carries(party, g, p, start=2)
    bits = praw
    if first:
        bits[0] ^= _ALL            # sum bit 0 = p_0 ^ carry-in 1
    bits[1:] ^= carries[:-1]
    return bits