"""Paillier helpers over ``phe`` (python-paillier) with gmpy2.

Raw layer on integers (plaintexts are residues mod n, ciphertexts mod n^2);
it knows nothing about trees.  Identities kept (g = n + 1)::

    E(a) = (1 + a n) * rho  mod n^2,  rho an n-th residue
    D(E(a) * E(b) mod n^2) = a + b  mod n            (homomorphic addition)
    D(E(a) * (1 + k n))    = a + k  mod n            (adding a public k)
    D(E(a) * rho') = a for any n-th residue rho'     (re-randomisation)

Fast randomness (Damgard, Jurik, Nielsen, "A generalization of Paillier's
public-key system with applications to electronic voting", IJIS 9(6) 2010,
Sec. 4.2 "short exponent" variant): with h = -x^2 mod n for random x and
h_s = h^n mod n^2 public, the randomiser is rho = h_s^a for a random
``a`` of 2 * 128 bits (``SHORT_EXPONENT_BITS``).  Under the DCR assumption
together with the short-exponent indistinguishability assumption used by
DJN, rho is indistinguishable from a uniform n-th residue, so ciphertexts
and re-randomised results stay semantically secure.  h_s is a fixed base,
so rho is a fixed-base exponentiation with precomputed windows
(:class:`FixedBaseExp`): 256/w modular products instead of a 3072-bit
exponentiation.  Whoever knows p and q (the Proxy) works mod p^2 and q^2 and
combines with the CRT (:class:`CrtEncryptor`).

Decryption mod p only (:func:`decrypt_mod_p`): if every plaintext m used is
known to satisfy |m| < p/2, m is determined by m mod p, which costs one
exponentiation mod p^2 with exponent p - 1 (half of phe's CRT decryption).
The caller must check that bound (the inference layer does, per model).
"""
from __future__ import annotations

import hashlib
import secrets

import gmpy2
from gmpy2 import mpz
from phe import paillier

__all__ = [
    "SHORT_EXPONENT_BITS", "generate_keypair", "key_fingerprint", "FixedBaseExp",
    "CrtEncryptor", "PublicRandomiser", "decrypt_mod_p", "int_to_bytes", "int_from_bytes",
    "make_h_s", "best_window",
]

SHORT_EXPONENT_BITS = 256


def _random_prime(bits: int) -> int:
    """A random prime of exactly ``bits`` bits whose two top bits are set (gmpy2.next_prime)."""
    while True:
        r = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        p = gmpy2.next_prime(r)
        if p.bit_length() == bits:
            return int(p)


def generate_keypair(n_bits: int = 3072):
    """A fresh (phe.PaillierPublicKey, phe.PaillierPrivateKey) with an n of exactly n_bits bits.

    Like ``phe.generate_paillier_keypair`` (random primes from the OS CSPRNG
    and gmpy2.next_prime), but the two top bits of p and q are set, so
    p * q always has n_bits bits and no prime search is thrown away (phe
    retries until the product has the right length: ~3.3 prime searches on
    average instead of 2).
    """
    if not isinstance(n_bits, int) or n_bits < 512 or n_bits % 8:
        raise ValueError(f"n_bits == {n_bits!r}, must be an int >= 512 and a multiple of 8")
    while True:
        p, q = _random_prime(n_bits // 2), _random_prime(n_bits // 2)
        if p != q and (p * q).bit_length() == n_bits:
            break
    pub = paillier.PaillierPublicKey(p * q)
    return pub, paillier.PaillierPrivateKey(pub, p, q)


def key_fingerprint(n: int) -> str:
    """Hex SHA-256 of the public modulus (big-endian), naming a public key."""
    n = int(n)
    return hashlib.sha256(b"ppboost-paillier-v1" + n.to_bytes((n.bit_length() + 7) // 8, "big")
                          ).hexdigest()


def int_to_bytes(x: int, width: int) -> bytes:
    return int(x).to_bytes(width, "big")


def int_from_bytes(b: bytes) -> int:
    return int.from_bytes(b, "big")


class FixedBaseExp:
    """base^e mod modulus for e < 2**exp_bits, with a precomputed window table.

    Table entry [i][d] = base^(d * 2^(w i)); a power costs exp_bits / w
    modular products (Brickell-Gordon-McCurley-Wilson fixed-base windowing,
    EUROCRYPT 1992, in its simplest form).
    """

    def __init__(self, base, modulus, exp_bits: int = SHORT_EXPONENT_BITS, window: int = 4):
        if window < 1 or window > 10:
            raise ValueError(f"window == {window}, must be in [1, 10]")
        self.modulus = mpz(modulus)
        self.window = window
        self.n_windows = -(-exp_bits // window)
        self.exp_bits = exp_bits
        g = mpz(base) % self.modulus
        tables = []
        for _ in range(self.n_windows):
            row = [mpz(1), g]
            for _ in range(2, 1 << window):
                row.append(row[-1] * g % self.modulus)
            tables.append(row)
            g = row[-1] * g % self.modulus  # g^(2^w)
        self._tables = tables

    def pow(self, e: int):
        if e < 0 or e >> self.exp_bits:
            raise ValueError(f"exponent must be in [0, 2**{self.exp_bits})")
        mask = (1 << self.window) - 1
        acc = mpz(1)
        mod = self.modulus
        e = int(e)
        for row in self._tables:
            d = e & mask
            if d:
                acc = acc * row[d] % mod
            e >>= self.window
        return acc


def best_window(n_uses: int, exp_bits: int = SHORT_EXPONENT_BITS) -> int:
    """Window w minimising table cost ceil(b/w)(2^w - 2) + n_uses * ceil(b/w) products."""
    def cost(w):
        k = -(-exp_bits // w)
        return k * ((1 << w) - 2) + n_uses * k
    return min(range(2, 11), key=cost)


def make_h_s(public_key, private_key) -> int:
    """h_s = (-x^2)^n mod n^2 for a random unit x, computed with the CRT (DJN 2010)."""
    n = mpz(public_key.n)
    p, q = mpz(private_key.p), mpz(private_key.q)
    while True:
        x = mpz(secrets.randbelow(int(n) - 2) + 2)
        if gmpy2.gcd(x, n) == 1:
            break
    h = (-x * x) % n
    p2, q2 = p * p, q * q
    hp = gmpy2.powmod(h, n % (p * (p - 1)), p2)
    hq = gmpy2.powmod(h, n % (q * (q - 1)), q2)
    return int(_crt(hp, hq, p2, q2, gmpy2.invert(q2, p2)))


def _crt(xp, xq, p2, q2, q2_inv_p2):
    return xq + q2 * (((xp - xq) * q2_inv_p2) % p2)


class CrtEncryptor:
    """Encryption by the key owner (knows p, q): E(m) = (1 + m n) h_s^a mod n^2, via CRT.

    Inputs: integers m (any sign; reduced mod n).  Cost per encryption:
    2 * ceil(256 / window) products mod p^2 / q^2 plus a CRT combination,
    instead of a 3072-bit exponentiation mod n^2.
    """

    def __init__(self, public_key, private_key, h_s: int, window: int = 8):
        self.n = mpz(public_key.n)
        self.n2 = self.n * self.n
        p, q = mpz(private_key.p), mpz(private_key.q)
        self.p2, self.q2 = p * p, q * q
        self._q2inv = gmpy2.invert(self.q2, self.p2)
        self._fp = FixedBaseExp(mpz(h_s) % self.p2, self.p2, window=window)
        self._fq = FixedBaseExp(mpz(h_s) % self.q2, self.q2, window=window)

    def encrypt(self, m: int) -> int:
        a = secrets.randbits(SHORT_EXPONENT_BITS)
        gm = (1 + (mpz(m) % self.n) * self.n)
        cp = gm % self.p2 * self._fp.pow(a) % self.p2
        cq = gm % self.q2 * self._fq.pow(a) % self.q2
        return int(_crt(cp, cq, self.p2, self.q2, self._q2inv))


class PublicRandomiser:
    """Re-randomisation with only the public key and the public h_s.

    D(c * h_s^a) = D(c); c * h_s^a is distributed like a fresh encryption of
    D(c) under the DJN short-exponent assumption.  ``rerandomise`` costs
    ceil(256 / window) products mod n^2.
    """

    def __init__(self, n: int, h_s: int, window: int = 4):
        self.n = mpz(n)
        self.n2 = self.n * self.n
        self._f = FixedBaseExp(mpz(h_s), self.n2, window=window)

    def rerandomise(self, c):
        return mpz(c) * self._f.pow(secrets.randbits(SHORT_EXPONENT_BITS)) % self.n2


def decrypt_mod_p(c, p, q, n) -> int:
    """The plaintext m mod p, returned in (-p/2, p/2).

    m mod p = L_p(c^(p-1) mod p^2) * h_p mod p with L_p(u) = (u - 1) / p and
    h_p = L_p(g^(p-1) mod p^2)^-1 = (-q)^-1 mod p for g = n + 1 (Paillier
    1999, Sec. 7 "decryption using Chinese remaindering").  Equals the true
    plaintext only if |m| < p/2 (the caller checks that bound).
    """
    p = mpz(p)
    p2 = p * p
    u = gmpy2.powmod(mpz(c) % p2, p - 1, p2)
    hp = gmpy2.invert(-mpz(q) % p, p)
    m = ((u - 1) // p) * hp % p
    if m > p // 2:
        m -= p
    return int(m)
