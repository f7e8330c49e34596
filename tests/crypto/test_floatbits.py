"""Tests of ppboost.crypto.floatbits (the order-preserving float32 -> uint32 map)."""
import numpy as np
import pytest

from ppboost.crypto.floatbits import from_ordered_uint32, to_ordered_uint32


def test_floatbits_order_on_adversarial_floats():
    f32 = np.float32
    vals = [-np.inf, -np.finfo(f32).max, f32(-1.0), -np.finfo(f32).tiny,
            -np.float32(1e-45), f32(0.0), np.float32(1e-45), np.finfo(f32).tiny,
            f32(1.0), np.nextafter(f32(1.0), f32(2.0)), np.finfo(f32).max, np.inf]
    a = np.array(vals, np.float32)
    u = to_ordered_uint32(a)
    assert np.all(np.diff(u.astype(np.int64)) > 0)
    assert np.array_equal(from_ordered_uint32(u), a)


def test_floatbits_random_pairs_agree_with_float_comparison():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[~np.isnan(x)]
    y = np.roll(x, 1)
    ux, uy = to_ordered_uint32(x), to_ordered_uint32(y)
    assert np.array_equal(x < y, ux < uy)
    assert np.array_equal(x == y, ux == uy)
    # adjacent float32 values map to adjacent-or-increasing integers
    z = np.nextafter(x, np.float32(np.inf))
    ok = np.isfinite(z) & (z != x)
    assert np.all(to_ordered_uint32(z[ok]) > ux[ok])


def test_floatbits_signed_zero_and_nan():
    assert to_ordered_uint32(np.float32(-0.0)) == to_ordered_uint32(np.float32(0.0))
    with pytest.raises(ValueError, match="NaN"):
        to_ordered_uint32(np.array([1.0, np.nan], np.float32))
