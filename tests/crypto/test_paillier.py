"""Tests of ppboost.crypto.paillier (CRT encryption, short-exponent randomness, mod-p decryption)."""
import gmpy2
import pytest

from ppboost.crypto import paillier as pl


@pytest.fixture(scope="module")
def keys():
    pub, priv = pl.generate_keypair(1024)
    return pub, priv, pl.make_h_s(pub, priv)


def test_crt_encryption_decrypts_with_phe(keys):
    pub, priv, h_s = keys
    enc = pl.CrtEncryptor(pub, priv, h_s)
    for m in (0, 1, 12345, -7, 2**90, -(2**90)):
        c = enc.encrypt(m)
        assert 0 < c < pub.nsquare
        assert priv.raw_decrypt(c) == m % pub.n
        assert pl.decrypt_mod_p(c, priv.p, priv.q, pub.n) == m


def test_encryption_is_randomised_and_homomorphic(keys):
    pub, priv, h_s = keys
    enc = pl.CrtEncryptor(pub, priv, h_s)
    a, b = enc.encrypt(5), enc.encrypt(5)
    assert a != b
    # D(E(a) * E(b)) = a + b ; D(E(a) * (1 + k n)) = a + k
    assert priv.raw_decrypt(a * b % pub.nsquare) == 10
    assert priv.raw_decrypt(a * (1 + 3 * pub.n) % pub.nsquare) == 8
    assert pl.decrypt_mod_p(enc.encrypt(-3) * enc.encrypt(1) % pub.nsquare,
                            priv.p, priv.q, pub.n) == -2


def test_public_rerandomisation_keeps_plaintext(keys):
    pub, priv, h_s = keys
    c = pl.CrtEncryptor(pub, priv, h_s).encrypt(-42)
    r = pl.PublicRandomiser(pub.n, h_s)
    c2 = int(r.rerandomise(c))
    assert c2 != c and pl.decrypt_mod_p(c2, priv.p, priv.q, pub.n) == -42


def test_h_s_is_an_nth_residue(keys):
    pub, priv, h_s = keys
    # an n-th residue encrypts 0
    assert priv.raw_decrypt(h_s) == 0


@pytest.mark.parametrize("window", [1, 3, 4, 8])
def test_fixed_base_exp_matches_powmod(window):
    mod = gmpy2.next_prime(2**300) * gmpy2.next_prime(2**301)
    f = pl.FixedBaseExp(123456789, mod, exp_bits=64, window=window)
    for e in (0, 1, 2**63 + 12345, 2**64 - 1, 987654321):
        assert f.pow(e) == gmpy2.powmod(123456789, e, mod)
    with pytest.raises(ValueError, match="exponent"):
        f.pow(2**64)


def test_fingerprint_and_validation():
    assert pl.key_fingerprint(12345) == pl.key_fingerprint(12345)
    assert pl.key_fingerprint(12345) != pl.key_fingerprint(12347)
    assert len(pl.key_fingerprint(12345)) == 64
    with pytest.raises(ValueError, match="n_bits == 100"):
        pl.generate_keypair(100)


def test_best_window_grows_with_uses():
    ws = [pl.best_window(n) for n in (1, 100, 1000, 100000)]
    assert ws == sorted(ws) and 2 <= ws[0] and ws[-1] <= 10


def test_generated_keys_have_exact_size_and_prime_factors():
    for bits in (512, 1024):
        pub, priv = pl.generate_keypair(bits)
        assert pub.n.bit_length() == bits and priv.p * priv.q == pub.n and priv.p != priv.q
        assert gmpy2.is_prime(priv.p) and gmpy2.is_prime(priv.q)
        assert priv.p.bit_length() == priv.q.bit_length() == bits // 2
        assert priv.decrypt(pub.encrypt(-12.5)) == -12.5      # a working phe key pair
