"""AES-based pseudorandom function and key derivation (pycryptodome).

``prf(key, label, index)`` is AES-256 in ECB mode applied to one 16-byte block
that encodes a short ASCII label (domain separation) and a 64-bit index.  AES
is a pseudorandom permutation, hence a PRF on distinct blocks (the PRP/PRF
switching lemma; Bellare & Rogaway, "The security of triple encryption",
EUROCRYPT 2006).  ``derive_key`` concatenates two PRF blocks to make a
256-bit sub-key.  This module knows nothing about trees or OPE.
"""
from __future__ import annotations

import os
import struct

from Crypto.Cipher import AES

__all__ = ["KEY_BYTES", "new_key", "prf_block", "prf_u64", "derive_key"]

KEY_BYTES = 32


def new_key() -> bytes:
    """A fresh uniformly random 256-bit key from the OS CSPRNG."""
    return os.urandom(KEY_BYTES)


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes, got {type(key).__name__} of length "
                         f"{len(key) if hasattr(key, '__len__') else '?'}")


def _block(label: bytes, index: int) -> bytes:
    if len(label) > 8:
        raise ValueError(f"label {label!r} is {len(label)} bytes, must be <= 8")
    if not 0 <= index < 2**64:
        raise ValueError(f"index == {index}, must be in [0, 2**64)")
    return label.ljust(8, b"\0") + struct.pack("<Q", index)


def prf_block(key: bytes, label: bytes, index: int) -> bytes:
    """F_key(label || index): 16 pseudorandom bytes."""
    _check_key(key)
    return AES.new(bytes(key), AES.MODE_ECB).encrypt(_block(label, index))


def prf_u64(key: bytes, label: bytes, indices) -> list[int]:
    """The first 64 bits of F_key(label || i) for each i, as Python ints."""
    _check_key(key)
    blocks = b"".join(_block(label, int(i)) for i in indices)
    out = AES.new(bytes(key), AES.MODE_ECB).encrypt(blocks)
    return [int.from_bytes(out[16 * k:16 * k + 8], "little") for k in range(len(out) // 16)]


def derive_key(master: bytes, label: bytes, index: int = 0) -> bytes:
    """A 256-bit sub-key F_master(label || 2i) || F_master(label || 2i+1)."""
    _check_key(master)
    c = AES.new(bytes(master), AES.MODE_ECB)
    return c.encrypt(_block(label, 2 * index) + _block(label, 2 * index + 1))
