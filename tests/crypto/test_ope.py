"""Tests of ppboost.crypto.ope (Boldyreva OPE and its hypergeometric sampler)."""
import math
import os
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppboost.crypto.ope import MISSING_CT, OPE, hypergeometric


# ----------------------------------------------------------------- hypergeometric sampler
def _coins(rng, k=64):
    return rng.integers(0, 2**64, k, dtype=np.uint64)


def test_hgd_stays_in_exact_support_for_extreme_parameters():
    rng = np.random.default_rng(1)
    cases = [(2**48, 2**32, 2**47), (2**48, 1, 2**47), (2**48, 2**48 - 1, 2**47),
             (2**48, 2**48, 2**47), (2**48, 2**32, 1), (20, 7, 10), (3, 2, 2), (2, 1, 1),
             (2**33 + 5, 2**32, 2**32 + 3), (2**40, 2**32 - 1, 2**39)]
    for pop, good, sample in cases:
        lo, hi = max(0, sample - (pop - good)), min(sample, good)
        for _ in range(20):
            k = hypergeometric(pop, good, sample, _coins(rng))
            assert lo <= k <= hi, (pop, good, sample, k)


@pytest.mark.parametrize("pop,good,sample", [(60, 25, 30), (60, 40, 30), (15, 6, 7),
                                              (16, 11, 8)])
def test_hgd_matches_exact_pmf_on_small_population(pop, good, sample):
    # chi-square against the exact pmf (math.comb): HRUA branch (min(sample, pop - sample)
    # >= 10) and exact sequential draws (< 10), good below and above pop / 2
    rng = np.random.default_rng(2)
    n = 4000
    draws = np.array([hypergeometric(pop, good, sample, _coins(rng)) for _ in range(n)])
    pmf = np.array([math.comb(good, k) * math.comb(pop - good, sample - k) if k <= sample else 0
                    for k in range(good + 1)], float) / math.comb(pop, sample)
    obs = np.bincount(draws, minlength=good + 1)
    keep = pmf * n >= 5
    exp = pmf[keep] * n
    chi2 = float((((obs[keep] - exp) ** 2) / exp).sum())
    # dof = keep.sum() - 1 <= 12; the 0.999 quantile of chi2(12) is 32.9
    assert chi2 < 32.9, chi2
    assert obs[~keep].sum() <= max(10, 3 * pmf[~keep].sum() * n)


def test_hgd_mean_and_spread_on_large_population():
    # population 2**48 (the OPE range): mean and variance close to theory
    pop, good, sample = 2**48, 2**32, 2**47
    rng = np.random.default_rng(3)
    d = np.array([hypergeometric(pop, good, sample, _coins(rng)) for _ in range(3000)], float)
    mu = good * sample / pop
    var = sample * good / pop * (pop - good) / pop * (pop - sample) / (pop - 1)
    assert abs(d.mean() - mu) < 5 * math.sqrt(var / len(d))
    assert 0.85 < d.var() / var < 1.15


@pytest.mark.nojit
def test_hgd_returns_minus_one_when_coins_run_out_and_validates():
    assert hypergeometric(1000, 500, 500, np.zeros(0, np.uint64)) == -1
    assert hypergeometric(10, 10, 5, np.zeros(0, np.uint64)) == 5   # single-point support
    with pytest.raises(ValueError, match="good"):
        hypergeometric(10, 11, 5, np.zeros(4, np.uint64))


# ----------------------------------------------------------------- OPE
@pytest.mark.nojit
def test_ope_small_domain_exhaustive_order_and_decrypt():
    o = OPE(bytes(range(32)), domain_bits=6, range_bits=14)
    m = np.arange(64)
    c = o.encrypt(0, m)
    assert np.all(np.diff(c.astype(np.int64)) > 0)
    assert np.array_equal(o.decrypt(0, c), m)


def test_ope_order_injective_random_and_adjacent():
    o = OPE(os.urandom(32))
    rng = np.random.default_rng(4)
    m = np.unique(np.concatenate([
        rng.integers(0, 2**32, 3000),
        np.arange(0, 50), np.arange(2**32 - 50, 2**32),             # extremes
        np.arange(2**31 - 40, 2**31 + 40),                           # around the sign bit
        (rng.integers(0, 2**32 - 2, 100)[:, None] + np.arange(3)[None, :]).ravel(),  # adjacent
    ]))
    c = o.encrypt(7, m)
    assert c.max() < 2**48
    assert np.all(np.diff(c.astype(np.int64)) > 0)          # strictly increasing => injective
    assert np.array_equal(o.decrypt(7, c), m.astype(np.uint32))
    # deterministic, independent of batch composition
    perm = rng.permutation(len(m))
    assert np.array_equal(o.encrypt(7, m[perm]), c[perm])


def test_ope_features_are_independent_functions():
    o = OPE(os.urandom(32))
    m = np.arange(1000, 1200)
    c0, c1 = o.encrypt(0, m), o.encrypt(1, m)
    assert not np.array_equal(c0, c1)
    with pytest.raises(ValueError, match="not a valid ciphertext"):
        o.decrypt(1, c0[:50])    # feature 0's ciphertexts are (almost surely) invalid for 1


def test_ope_float32_exact_comparisons_and_missing():
    o = OPE(os.urandom(32))
    t = np.float32(0.1357)
    x = np.array([np.nextafter(t, np.float32(-1)), t, np.nextafter(t, np.float32(1)),
                  -0.0, 0.0, np.nan, -np.inf, np.inf], np.float32)
    c = o.encrypt_float32(3, x)
    ct = o.encrypt_float32(3, np.array([t], np.float32))[0]
    assert c[0] < ct and c[1] == ct and c[2] > ct
    assert c[3] == c[4]
    assert c[5] == MISSING_CT
    assert c[6] < c[3] < c[7]


def _random_keys_and_values(n=300):
    """300 random keys, each with the extremes and 4 random values of the domain, sorted."""
    rng = np.random.default_rng(5)
    for _ in range(n):
        o = OPE(rng.bytes(32))
        m = np.array(sorted({0, 1, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1,
                             *rng.integers(0, 2**32, 4).tolist()}))
        yield o, int(rng.integers(0, 1000)), m


def test_ope_order_over_many_random_keys():
    # every key: encryptions of extremes and random values are in order
    for o, f, m in _random_keys_and_values():
        c = o.encrypt(f, m)
        assert np.all(np.diff(c.astype(np.int64)) > 0)


@pytest.mark.slow
def test_ope_bounded_time_over_many_random_keys():
    """Wall clock: every key's encryptions finish fast (measured 0.14 ms per value at
    worst on 2 shared cores; the bound, 100 ms, only catches a sampler that loops)."""
    OPE(bytes(32)).encrypt(0, np.array([1, 2]))        # load the compiled kernels first
    worst = 0.0
    for o, f, m in _random_keys_and_values():
        t0 = time.perf_counter()
        o.encrypt(f, m)
        worst = max(worst, (time.perf_counter() - t0) / len(m))
    assert worst < 0.1, f"slowest encryption took {worst * 1e3:.1f} ms per value"


def test_ope_validation():
    with pytest.raises(ValueError, match="32 bytes"):
        OPE(b"short")
    o = OPE(os.urandom(32), domain_bits=8, range_bits=20)
    with pytest.raises(ValueError, match="plaintext out of range"):
        o.encrypt(0, [256])
    with pytest.raises(ValueError, match="ciphertext out of range"):
        o.decrypt(0, [2**20])
    with pytest.raises(ValueError, match="features has 2 entries"):
        o.encrypt([0, 1], [1, 2, 3])


@settings(max_examples=300, deadline=None)
@given(log_pop=st.integers(1, 48), fg=st.floats(0, 1), fs=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_hgd_exact_support_for_arbitrary_parameters(log_pop, fg, fs, seed):
    pop = int(2 ** log_pop * (0.5 + 0.5 * fs)) or 1
    good, sample = int(pop * fg), int(pop * fs)
    coins = np.random.default_rng(seed).integers(0, 2**64, 256, dtype=np.uint64)
    k = hypergeometric(pop, good, sample, coins)
    assert max(0, sample - (pop - good)) <= k <= min(sample, good)


@pytest.mark.slow
def test_hgd_bounded_time_for_arbitrary_parameters():
    """Wall clock: one draw takes bounded time whatever the population (up to 2**48)
    and the fractions, extremes included (measured 0.03 ms at worst over these 2000;
    the bound, 100 ms, only catches a draw that loops over the population)."""
    rng = np.random.default_rng(0)
    hypergeometric(10, 5, 5, _coins(rng, 256))          # load the compiled kernels first
    worst = 0.0
    for i in range(2000):
        log_pop, fg, fs = int(rng.integers(1, 49)), rng.random(), rng.random()
        if i % 4 == 0:
            fg = float(rng.choice([0, 1, 1e-9, 1 - 1e-9]))
        if i % 4 == 1:
            fs = float(rng.choice([0, 1, 1e-9, 1 - 1e-9]))
        pop = int(2 ** log_pop * (0.5 + 0.5 * fs)) or 1
        coins = _coins(rng, 256)
        t0 = time.perf_counter()
        hypergeometric(pop, int(pop * fg), int(pop * fs), coins)
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 0.1, f"slowest draw took {worst * 1e3:.1f} ms"
