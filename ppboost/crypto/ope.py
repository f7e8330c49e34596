"""Boldyreva order-preserving encryption (OPE) with a numba hypergeometric sampler.

Reference: A. Boldyreva, N. Chenette, Y. Lee, A. O'Neill, "Order-Preserving
Symmetric Encryption", EUROCRYPT 2009 (the "BCLO" scheme, Sec. 4.1, Fig. 1).

Two layers (like ``phe``):

* raw: :meth:`OPE.encrypt` / :meth:`OPE.decrypt` map integers of the domain
  ``[0, 2**domain_bits)`` to ciphertexts in ``[0, 2**range_bits)`` (uint64),
  strictly increasing and hence injective;
* float32: :meth:`OPE.encrypt_float32` maps float32 values through the
  order-preserving bit trick (:mod:`ppboost.crypto.floatbits`) first, so
  ``x < t`` in float32 <=> ``E(x) < E(t)`` and ``x == t`` <=> ``E(x) == E(t)``.

The scheme (BCLO Fig. 1, lazy sampling of a random order-preserving function)::

    Enc(K, D, R, m):                     # D, R integer intervals, |D| <= |R|
        M = |D|, N = |R|, d = min(D), r = min(R), s = ceil(N / 2)
        if M == 1: return r + Uniform(N; coins = TapeGen(K, (R, 1 || m)))
        x = HGD(population N, good M, sample s; coins = TapeGen(K, (R, 0)))
        if m < d + x: return Enc(K, [d, d+x), [r, r+s), m)
        else:         return Enc(K, [d+x, d+M), [r+s, r+N), m)

``x`` is the number of domain points the random order-preserving function
sends into the lower half of the range, which is hypergeometric.  The range
interval R determines the node of the recursion uniquely (R halves
deterministically), so the coins of a node are ``AES_K(tag, depth, min R, m,
feature, counter)``: a pseudorandom tape per node (BCLO's TapeGen).

Keys per feature.  The coin tape of feature ``j`` is
``F_j(node || counter) = AES_K(node || j || counter)``: a PRF keyed by the
master OPE key and the feature index, so the OPE functions of two features
are independent (thresholds of different features cannot be compared).  One
AES key object serves all features, so a batch encrypts every feature with
one AES call per tree level (49 levels at most for a 48-bit range).

Exactness and bounded time. The hypergeometric sampler (:func:`_hgd`) is HRUA
ratio-of-uniforms (Stadlober 1989/1990, as in numpy's hypergeometric
generator) with log-factorial *differences* computed from a Stirling series in
a cancellation-free form, so it stays accurate for populations up to 2**53
(ours are <= 2**48, exact in float64). Samples of fewer than 10 items (ranges
under 20) use exact sequential draws. The result is clamped to the exact
support, so the map is order-preserving and injective whatever the floating
point does. Each node gets at most ``_RETRY_BLOCKS * 2`` 64-bit coins
(``_RETRY_BLOCKS`` rejection rounds); if they are exhausted (a round is
accepted with probability >= 0.45 on every parameter set we measured, so this
happens with probability below 0.55**128 < 2**-110 per node) the node
deterministically takes the distribution's mode. Hence every encryption does
at most ``range_bits + 1`` levels and a bounded number of sampler iterations
per level, for every key.
"""
from __future__ import annotations

import math

import numpy as np
from Crypto.Cipher import AES
from numba import njit

from .floatbits import to_ordered_uint32

__all__ = ["OPE", "MISSING_CT", "hypergeometric"]

#: Ciphertext reserved for "missing" (NaN) values; never produced by encryption.
MISSING_CT = np.uint64(0xFFFFFFFFFFFFFFFF)

_TAG_NODE = 1
_TAG_LEAF = 2
_FIRST_BLOCKS = 8      # 16 coins = 8 HRUA rounds on the fast path
_RETRY_BLOCKS = 128    # 256 coins = 128 HRUA rounds before taking the mode
_MAX_FEATURE = 1 << 24

_D1 = 1.7155277699214135   # 2 * sqrt(2 / e)        (Stadlober 1989)
_D2 = 0.8989161620588988   # 3 - 2 * sqrt(3 / e)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@njit(cache=True)
def _stirling_tail(u):
    # lgamma(u) - [(u - 0.5) ln u - u + 0.5 ln(2 pi)], asymptotic series.
    u2 = u * u
    return 1.0 / (12.0 * u) - 1.0 / (360.0 * u * u2) + 1.0 / (1260.0 * u * u2 * u2)


@njit(cache=True)
def _lfdiff(a, b):
    """log(a!) - log(b!) for integers a, b >= 0, accurate for a, b < 2**53.

    lgamma(x + 1) has absolute error ~ eps * x log x, which for x ~ 2**48
    is ~1 and would ruin the acceptance test.  For large arguments use
    (u1 - 1/2) log1p(d/u1) + d log u2 - d + tail(u2) - tail(u1), with
    u1 = b + 1, u2 = a + 1, d = a - b: the Stirling difference without
    cancellation.
    """
    if a == b:
        return 0.0
    fa = float(a)
    fb = float(b)
    lo = min(fa, fb)
    hi = max(fa, fb)
    if lo < 1024.0 or hi < 1048576.0:
        return math.lgamma(fa + 1.0) - math.lgamma(fb + 1.0)
    u1 = fb + 1.0
    u2 = fa + 1.0
    d = fa - fb
    return (u1 - 0.5) * math.log1p(d / u1) + d * math.log(u2) - d \
        + _stirling_tail(u2) - _stirling_tail(u1)


@njit(cache=True)
def _unit(c):
    # 53 random bits -> float64 in [0, 1)
    return float(c >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _uniform_int(nvals, coins, pos, ncoins):
    """Uniform integer in [0, nvals) by rejection on 64-bit coins.

    Returns (value, next position); value -1 if the coins ran out.
    """
    un = np.uint64(nvals)
    # 2**64 mod n, computed in uint64 arithmetic: (2**64 - n) mod n
    one = np.uint64(1)
    rem = (~un + one) % un
    limit = (~rem + one) if rem != np.uint64(0) else np.uint64(0)   # accept c < limit
    while pos < ncoins:
        c = coins[pos]
        pos += 1
        if rem == np.uint64(0) or c < limit:
            return np.int64(c % un), pos
    return np.int64(-1), pos


@njit(cache=True)
def _hgd(pop, good, sample, coins, ncoins, take_mode):
    """Number of "good" items in a uniform sample without replacement.

    Hypergeometric(pop, good, sample), pop <= 2**53.  Returns -1 if the
    ``ncoins`` coins ran out (unless ``take_mode``, which then returns the
    mode).  The result always lies in the exact support
    [max(0, sample - bad), min(sample, good)].
    """
    bad = pop - good
    lo = max(np.int64(0), sample - bad)
    hi = min(sample, good)
    if lo >= hi:
        return lo
    cs = min(sample, pop - sample)          # symmetric: sample the smaller side
    mgb = min(good, bad)
    Mgb = max(good, bad)
    k = np.int64(0)
    if cs < 10:
        # exact sequential draws (numpy's hypergeometric_sample)
        rem_total = pop
        rem_good = mgb
        left = cs
        pos = 0
        ok = True
        while left > 0 and rem_good > 0 and rem_total > rem_good:
            rem_total -= 1
            v, pos = _uniform_int(rem_total + 1, coins, pos, ncoins)
            if v < 0:
                ok = False
                break
            if v < rem_good:
                rem_good -= 1
            left -= 1
        if not ok:
            if not take_mode:
                return np.int64(-1)
            k = np.int64(math.floor((cs + 1.0) * (mgb + 1.0) / (pop + 2.0)))
        else:
            if rem_total == rem_good:
                rem_good -= left
            k = mgb - rem_good
    else:
        # HRUA (Stadlober 1989; numpy random_hypergeometric_hrua)
        p = mgb / float(pop)
        q = Mgb / float(pop)
        mu = cs * p
        a = mu + 0.5
        var = float(pop - cs) * cs * p * q / float(pop - 1)
        c = math.sqrt(var + 0.5)
        h = _D1 * c + _D2
        m = np.int64(math.floor((cs + 1.0) * (mgb + 1.0) / (pop + 2.0)))
        m = min(max(m, np.int64(0)), cs, mgb)
        b = min(float(min(cs, mgb) + 1), math.floor(a + 16.0 * c))
        pos = 0
        found = False
        while pos + 1 < ncoins:
            U = _unit(coins[pos])
            V = _unit(coins[pos + 1])
            pos += 2
            if U <= 0.0:
                continue
            X = a + h * (V - 0.5) / U
            if X < 0.0 or X >= b:
                continue
            K = np.int64(math.floor(X))
            # T = log f(K) - log f(m), f the pmf up to a constant
            T = (_lfdiff(m, K) + _lfdiff(mgb - m, mgb - K)
                 + _lfdiff(cs - m, cs - K) + _lfdiff(Mgb - cs + m, Mgb - cs + K))
            if U * (4.0 - U) - 3.0 <= T:
                k = K
                found = True
                break
            if U * (U - T) >= 1.0:
                continue
            if 2.0 * math.log(U) <= T:
                k = K
                found = True
                break
        if not found:
            if not take_mode:
                return np.int64(-1)
            k = m
    if good > bad:
        k = cs - k
    if cs < sample:
        k = good - k
    return min(max(k, lo), hi)


def hypergeometric(pop: int, good: int, sample: int, coins) -> int:
    """Public wrapper of the sampler (validates; for tests and inspection).

    ``coins`` is a uint64 array; returns -1 if it is too short.
    """
    if not 0 <= good <= pop or not 0 <= sample <= pop:
        raise ValueError(f"need 0 <= good <= pop and 0 <= sample <= pop, got pop={pop}, "
                         f"good={good}, sample={sample}")
    if pop > 2**53:
        raise ValueError(f"pop == {pop}, must be <= 2**53")
    coins = np.ascontiguousarray(coins, dtype=np.uint64)
    return int(_hgd(np.int64(pop), np.int64(good), np.int64(sample), coins, len(coins), False))


@njit(cache=True)
def _make_blocks(idx, feat, depth, rlo, dlo, msize, nblocks, out):
    """Fill out[k*nblocks*16 : ...] with the tape blocks of node idx[k].

    Block = tag(1) | depth(1) | min R (6, LE) | m (4, LE; leaf only) |
    feature (3, LE) | counter(1).
    """
    for k in range(idx.shape[0]):
        i = idx[k]
        leaf = msize[i] == 1
        r = rlo[i]
        mm = dlo[i] if leaf else np.int64(0)
        f = feat[i]
        for j in range(nblocks):
            o = (k * nblocks + j) * 16
            out[o] = _TAG_LEAF if leaf else _TAG_NODE
            out[o + 1] = depth[i]
            for t in range(6):
                out[o + 2 + t] = (r >> (8 * t)) & 0xFF
            for t in range(4):
                out[o + 8 + t] = (mm >> (8 * t)) & 0xFF
            for t in range(3):
                out[o + 12 + t] = (f >> (8 * t)) & 0xFF
            out[o + 15] = j


@njit(cache=True)
def _step(idx, coins, ncoins, take_mode, target, is_dec, dlo, msize, rlo, nsize, depth,
          done, out, valid):
    """One level of the BCLO recursion for the values idx (coins row k for idx[k]).

    Encryption (is_dec False): target = plaintext m; sets out = ciphertext at
    the leaf.  Decryption: target = ciphertext c; sets out = plaintext and
    valid = (the leaf's coins reproduce c).  Returns the positions k whose
    coins ran out (-1 padded).
    """
    short = np.full(idx.shape[0], -1, np.int64)
    ns = 0
    for k in range(idx.shape[0]):
        i = idx[k]
        row = coins[k]
        if msize[i] == 1:
            v, _ = _uniform_int(nsize[i], row, 0, ncoins)
            if v < 0:
                if not take_mode:
                    short[ns] = k
                    ns += 1
                    continue
                v = np.int64(row[0] % np.uint64(nsize[i]))
            c = rlo[i] + v
            if is_dec:
                out[i] = dlo[i]
                valid[i] = c == target[i]
            else:
                out[i] = c
            done[i] = True
            continue
        s = (nsize[i] + 1) // 2
        x = _hgd(nsize[i], msize[i], s, row, ncoins, take_mode)
        if x < 0:
            short[ns] = k
            ns += 1
            continue
        if is_dec:
            left = target[i] < rlo[i] + s
        else:
            left = target[i] < dlo[i] + x
        if left:
            msize[i] = x
            nsize[i] = s
        else:
            dlo[i] += x
            msize[i] -= x
            rlo[i] += s
            nsize[i] -= s
        depth[i] += 1
        if msize[i] == 0:          # only for decryption of a non-ciphertext
            done[i] = True
            valid[i] = False
    return short[:ns]


class OPE:
    """BCLO order-preserving encryption, one independent function per feature.

    ``key``: 32 secret bytes (AES-256).  ``domain_bits`` <= 32 and
    ``range_bits`` in [domain_bits + 8, 52]; the default range 2**48 leaves
    65536 ciphertexts per plaintext on average.
    """

    def __init__(self, key: bytes, domain_bits: int = 32, range_bits: int = 48):
        if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
            raise ValueError("OPE key must be 32 bytes")
        if not 1 <= domain_bits <= 32:
            raise ValueError(f"domain_bits == {domain_bits}, must be in [1, 32]")
        if not domain_bits + 8 <= range_bits <= 52:
            raise ValueError(f"range_bits == {range_bits}, must be in [domain_bits + 8, 52]")
        self.domain_bits = domain_bits
        self.range_bits = range_bits
        self._aes = AES.new(bytes(key), AES.MODE_ECB)

    # -- raw integer layer -------------------------------------------------
    def _run(self, features, target, is_dec):
        n = target.shape[0]
        dlo = np.zeros(n, np.int64)
        msize = np.full(n, 1 << self.domain_bits, np.int64)
        rlo = np.zeros(n, np.int64)
        nsize = np.full(n, 1 << self.range_bits, np.int64)
        depth = np.zeros(n, np.int64)
        done = np.zeros(n, np.bool_)
        out = np.zeros(n, np.int64)
        valid = np.ones(n, np.bool_)
        active = np.arange(n, dtype=np.int64)
        for _ in range(self.range_bits + 2):
            if active.size == 0:
                break
            buf = np.empty(active.size * _FIRST_BLOCKS * 16, np.uint8)
            _make_blocks(active, features, depth, rlo, dlo, msize, _FIRST_BLOCKS, buf)
            coins = np.frombuffer(self._aes.encrypt(memoryview(buf)), dtype="<u8").reshape(
                active.size, _FIRST_BLOCKS * 2)
            short = _step(active, coins, _FIRST_BLOCKS * 2, False, target, is_dec, dlo, msize,
                          rlo, nsize, depth, done, out, valid)
            if short.size:   # rare: more rejection rounds needed, then the mode
                sub = active[short]
                buf = np.empty(sub.size * _RETRY_BLOCKS * 16, np.uint8)
                _make_blocks(sub, features, depth, rlo, dlo, msize, _RETRY_BLOCKS, buf)
                coins = np.frombuffer(self._aes.encrypt(memoryview(buf)), dtype="<u8").reshape(
                    sub.size, _RETRY_BLOCKS * 2)
                _step(sub, coins, _RETRY_BLOCKS * 2, True, target, is_dec, dlo, msize, rlo,
                      nsize, depth, done, out, valid)
            active = active[~done[active]]
        if active.size:  # cannot happen: the range halves at every level
            raise RuntimeError("OPE recursion did not terminate")
        return out, valid

    def _features(self, features, n):
        f = np.asarray(features, dtype=np.int64)
        if f.ndim == 0:
            f = np.full(n, int(f), np.int64)
        f = np.ascontiguousarray(f.reshape(-1))
        if f.shape[0] != n:
            raise ValueError(f"features has {f.shape[0]} entries, expected {n}")
        if n and (f.min() < 0 or f.max() >= _MAX_FEATURE):
            raise ValueError(f"feature index out of range, must be in [0, {_MAX_FEATURE})")
        return f

    def encrypt(self, features, plaintexts) -> np.ndarray:
        """Encrypt integers m in [0, 2**domain_bits) under feature keys.

        ``features``: int or array (same length) of feature indices selecting
        the per-feature OPE function.  Returns uint64 ciphertexts in
        [0, 2**range_bits).  Identity kept, for one feature:
        m1 < m2 <=> E(m1) < E(m2) (and D(E(m)) = m).

        Cost: at most range_bits + 1 levels (~36 for 32-bit plaintexts and a
        48-bit range); per level, for all values at once, one AES-ECB call on
        8 blocks per value (128 for the rare node whose sampler needs more
        rounds) and one numba kernel call.
        """
        m = np.asarray(plaintexts)
        shape = m.shape
        m = np.ascontiguousarray(m.reshape(-1)).astype(np.int64)
        if m.size and (m.min() < 0 or m.max() >= (1 << self.domain_bits)):
            raise ValueError(f"plaintext out of range, must be in [0, 2**{self.domain_bits})")
        f = self._features(features, m.size)
        out, _ = self._run(f, m, False)
        return out.astype(np.uint64).reshape(shape)

    def decrypt(self, features, ciphertexts) -> np.ndarray:
        """Inverse of :meth:`encrypt`; raises ``ValueError`` on a non-ciphertext."""
        c = np.asarray(ciphertexts, dtype=np.uint64)
        shape = c.shape
        c = np.ascontiguousarray(c.reshape(-1))
        if c.size and c.max() >= np.uint64(1 << self.range_bits):
            raise ValueError(f"ciphertext out of range, must be < 2**{self.range_bits}")
        f = self._features(features, c.size)
        out, valid = self._run(f, c.astype(np.int64), True)
        if not valid.all():
            bad = int(np.flatnonzero(~valid)[0])
            raise ValueError(f"value at position {bad} is not a valid ciphertext for its feature")
        return out.astype(np.uint32).reshape(shape)

    # -- float32 layer -------------------------------------------------------
    def encrypt_float32(self, features, x) -> np.ndarray:
        """Encrypt float32 values (NaN -> :data:`MISSING_CT`).

        Order-preserving on float32: x < t <=> E(x) < E(t); -0.0 and +0.0
        encrypt identically.  See :mod:`ppboost.crypto.floatbits`.
        """
        if self.domain_bits != 32:
            raise ValueError("encrypt_float32 needs domain_bits == 32")
        a = np.asarray(x, dtype=np.float32)
        shape = a.shape
        a = a.reshape(-1)
        f = self._features(features, a.size)
        miss = np.isnan(a)
        out = np.full(a.size, MISSING_CT, np.uint64)
        if (~miss).any():
            u = to_ordered_uint32(a[~miss]).astype(np.int64)
            enc, _ = self._run(np.ascontiguousarray(f[~miss]), u, False)
            out[~miss] = enc.astype(np.uint64)
        return out.reshape(shape)
