"""ppboost.crypto.fixed: float64 <-> Z_2^64 fixed point."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppboost.crypto.fixed import decode, encode, max_abs


@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=20), st.integers(0, 30))
@settings(max_examples=60, deadline=None)
def test_roundtrip_within_half_ulp(xs, f):
    x = np.array(xs)
    assert np.all(np.abs(decode(encode(x, f), f) - x) <= 2.0 ** -(f + 1) + 1e-9 * np.abs(x))


def test_twos_complement_and_ring_addition():
    u = encode([-1.0, 0.5], 16)
    assert u.dtype == np.uint64
    assert u[0] == np.uint64(2 ** 64 - 2 ** 16)
    assert decode(encode(1.25) + encode(-3.5))[()] == pytest.approx(-2.25)


def test_bounds():
    assert max_abs(16) == 2.0 ** 47
    encode([2.0 ** 20 - 1], 16, bound_bits=36)
    with pytest.raises(ValueError, match="exceeds the bound.*must be < 1.04858e\\+06"):
        encode([2.0 ** 20], 16, bound_bits=36)
    with pytest.raises(ValueError, match="exceeds the bound"):
        encode([1e300], 16)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN or infinite"):
        encode([np.nan])
    with pytest.raises(ValueError, match="frac_bits == 70, must be in 0..62"):
        encode([1.0], 70)
    with pytest.raises(TypeError, match="frac_bits must be an int"):
        encode([1.0], 1.5)
    with pytest.raises(TypeError, match="expects a uint64 array"):
        decode(np.array([1, 2], dtype=np.int64))
    with pytest.raises(ValueError, match="bound_bits == 64"):
        encode([1.0], 16, bound_bits=64)
