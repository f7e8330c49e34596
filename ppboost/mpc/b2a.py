"""Bit-to-arithmetic conversion of XOR-shared bits with daBits.

daBit [Rotaru, Wood, "MArBled circuits", INDOCRYPT 2019]: a uniform bit r
held both as additive shares [r]_A over Z_2^64 and as XOR shares [r]_B.
"""
from __future__ import annotations

import numpy as np

from .party import Party
from .shares import AShare

__all__ = ["b2a", "open_xor_bits"]


def open_xor_bits(party: Party, bits: np.ndarray) -> np.ndarray:
    """Open XOR-shared 0/1 bits to everyone (bit-packed messages).

    Cost: 1 round, ceil(N/8) bytes to each other party.
    """
    count = bits.size
    packed = np.packbits(bits.reshape(-1).astype(np.uint8), bitorder="little")
    for q in range(party.n_parties):
        if q != party.id:
            party.ep.send(q, packed)
    acc = packed.copy()
    for q in range(party.n_parties):
        if q != party.id:
            other = party.ep.recv(q)
            if not isinstance(other, np.ndarray) or other.shape != packed.shape:
                raise ValueError(f"party {party.id}: party {q} opened "
                                 f"{getattr(other, 'shape', None)} packed bits, expected "
                                 f"{packed.shape}: the parties disagree on a shape")
            acc ^= other
    out = np.unpackbits(acc, bitorder="little", count=count).reshape(bits.shape)
    if party.opened is not None:
        party.opened.append(out)
    return out


def b2a(party: Party, bits) -> AShare:
    """Additive shares of bits given as XOR shares.

    Inputs: ``bits``, this party's XOR shares (0/1 integers or bools, any
    shape); the secret bit is b = XOR_p bits_p.  The dealer gives a daBit
    ([r]_A, [r]_B) per element.  Opened: e = b XOR r (uniform, since r is).
    Identity: b = e XOR r = e + r - 2 e r, so party p computes
    [p == 0] * e + r_p * (1 - 2e) over Z_2^64.
    Cost: 1 round, ceil(N/8) bytes to each other party; offline N elements
    + N bits (dealer -> last party).
    """
    if not isinstance(party, Party):
        raise TypeError(f"b2a expects a Party first, got {type(party).__name__}")
    bits = np.asarray(bits)
    if bits.dtype.kind not in "biu":
        raise TypeError(f"b2a expects 0/1 integer or bool bits, got dtype {bits.dtype}")
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ValueError("b2a expects XOR shares of bits: every entry must be 0 or 1")
    bits = bits.astype(np.uint8)
    r_a, r_b = party.dealer.get("dabit", shape=bits.shape)
    e = open_xor_bits(party, bits ^ r_b).astype(np.uint64)
    factor = np.uint64(1) - (e << np.uint64(1))  # 1 - 2e mod 2**64
    out = r_a * factor
    if party.id == 0:
        out = out + e
    return AShare(party, out)
