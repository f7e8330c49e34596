"""Helpers shared by the MPC protocol tests (test-side only; protocols use the dealer)."""
import numpy as np


def _bits(arr):
    """The bits of an opened array: uint8 arrays are already 0/1 bits (opened daBit masks)."""
    arr = np.ascontiguousarray(arr)
    return arr.reshape(-1) if arr.dtype == np.uint8 else np.unpackbits(arr.view(np.uint8))


def _split(rng, x, n_parties):
    """Test-side additive sharing of a plaintext uint64 array (protocol inputs use the dealer)."""
    parts = [rng.integers(0, 2**64, size=x.shape, dtype=np.uint64) for _ in range(n_parties - 1)]
    return parts + [x - sum(parts)]
