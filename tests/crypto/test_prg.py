"""ppboost.crypto.prg: AES-CTR stream of uint64 words with random access."""
import numpy as np
import pytest
from Crypto.Cipher import AES

from ppboost.crypto.prg import PRG, _fisher_yates

SEED = bytes(range(16))


def test_matches_aes_ctr_keystream():
    words = PRG(SEED).at(0, 6)
    ks = AES.new(SEED, AES.MODE_CTR, nonce=b"", initial_value=0).encrypt(bytes(48))
    assert np.array_equal(words, np.frombuffer(ks, dtype="<u8"))


def test_sequential_draws_equal_one_long_draw():
    a = PRG(SEED)
    parts = [a.uint64(3), a.uint64((2, 2)), a.uint64(5)]
    whole = PRG(SEED).uint64(12)
    assert np.array_equal(np.concatenate([p.ravel() for p in parts]), whole)
    assert a.pos == 12


@pytest.mark.parametrize("offset,count", [(0, 1), (1, 1), (3, 7), (10, 0), (17, 33)])
def test_random_access_matches_stream(offset, count):
    prg = PRG(SEED)
    full = prg.at(0, 60)
    assert np.array_equal(prg.at(offset, count), full[offset:offset + count])
    idx = np.array([[5, 0], [59, 13]])
    assert np.array_equal(prg.words_at(idx), full[idx])
    assert prg.pos == 0


def test_different_seeds_differ_and_same_seed_repeats():
    assert not np.array_equal(PRG(SEED).uint64(4), PRG(bytes(16)).uint64(4))
    assert np.array_equal(PRG(SEED).uint64(4), PRG(SEED).uint64(4))
    assert PRG().seed != PRG().seed


def test_bits_are_balanced_and_deterministic():
    b = PRG(SEED).bits((1000, 20))
    assert b.shape == (1000, 20) and set(np.unique(b)) <= {0, 1}
    assert abs(b.mean() - 0.5) < 0.02  # 20000 bits: 5.6 sigma
    assert np.array_equal(b, PRG(SEED).bits((1000, 20)))


def test_permutation_is_a_permutation_and_uniformish():
    prg = PRG(SEED)
    for n in (0, 1, 2, 50):
        p = prg.permutation(n)
        assert np.array_equal(np.sort(p), np.arange(n))
    # position of element 0 over many 4-permutations: about uniform
    counts = np.bincount([int(np.argmax(prg.permutation(4) == 0)) for _ in range(2000)],
                         minlength=4)
    assert counts.min() > 400


@pytest.mark.nojit
def test_fisher_yates_kernel():
    words = np.arange(10, dtype=np.uint64) * np.uint64(7919)
    p = _fisher_yates(words)
    assert np.array_equal(np.sort(p), np.arange(10))


@pytest.mark.parametrize("bad", [b"short", b"x" * 17, "a" * 16, 123])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="16 bytes"):
        PRG(bad)


def test_bad_offsets():
    with pytest.raises(ValueError, match=">= 0"):
        PRG(SEED).at(-1, 3)
    with pytest.raises(ValueError, match=">= 0"):
        PRG(SEED).words_at([-2])
