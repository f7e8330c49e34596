"""Tests of ppboost.crypto.prf (AES-based PRF and key derivation)."""
import pytest
from Crypto.Cipher import AES

from ppboost.crypto.prf import derive_key, new_key, prf_block, prf_u64


def test_prf_is_aes_of_the_encoded_block_and_deterministic():
    k = bytes(range(32))
    block = b"feature\0" + (5).to_bytes(8, "little")
    assert prf_block(k, b"feature", 5) == AES.new(k, AES.MODE_ECB).encrypt(block)
    assert prf_u64(k, b"feature", [5, 6]) == prf_u64(k, b"feature", [5, 6])
    assert prf_u64(k, b"feature", [5])[0] == int.from_bytes(prf_block(k, b"feature", 5)[:8],
                                                           "little")


def test_domain_separation_and_distinct_keys():
    k = new_key()
    assert len(k) == 32 and k != new_key()
    assert prf_block(k, b"a", 1) != prf_block(k, b"b", 1)
    assert derive_key(k, b"ope") != derive_key(k, b"pseudo")
    assert derive_key(k, b"ope", 0) != derive_key(k, b"ope", 1)
    assert len(set(prf_u64(k, b"feature", range(1000)))) == 1000


def test_validation():
    with pytest.raises(ValueError, match="32 bytes"):
        prf_block(b"short", b"x", 0)
    with pytest.raises(ValueError, match="label"):
        prf_block(bytes(32), b"much-too-long", 0)
    with pytest.raises(ValueError, match="index"):
        prf_block(bytes(32), b"x", -1)
