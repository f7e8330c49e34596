"""The messages between client and server: :class:`EncryptedQuery` and :class:`EncryptedResult`.

A query carries OPE ciphertexts of the client's rows (columns in the user's
pseudonym order, :func:`ppboost.inference.keys.feature_order`); a result
carries Paillier ciphertexts of the margins, one per (row, output group) or
packed several to a ciphertext (:func:`ppboost.inference.evaluate.pack_slots`).
Both travel in the versioned binary container of
:mod:`ppboost.inference.container`; ``from_bytes`` validates everything and
raises ``ValueError("malformed query: ...")`` / ``("malformed result: ...")``.

Fixed point: every leaf is encoded as ``round(v * 2**FRAC_BITS)`` (one
scale, FRAC_BITS = 32, error <= 2**-33 per leaf), so the server's additions
are plain products mod n^2 and no per-leaf exponent exists.  At enrolment the
Proxy computes B = ``sum over trees of max |leaf|`` (fixed point) and picks
the model's slot width ``slot_bits``: 64 if B < 2**62 (|margin| < 2**30),
else 128 if B < 2**126, else it refuses the model.  Either is far below p/2
for any key >= 1024 bits; this is what makes decryption mod p alone exact.
The slot width is public (it only tells whether B exceeds 2**62).
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from . import container as fmt

__all__ = ["FRAC_BITS", "SLOT_CHOICES", "VERSION", "QUERY_MAGIC", "RESULT_MAGIC",
           "slots_per_ct", "EncryptedQuery", "EncryptedResult", "NonFiniteQuery"]

FRAC_BITS = 32
SLOT_CHOICES = (64, 128)
QUERY_MAGIC, RESULT_MAGIC = b"PPEQ", b"PPER"
VERSION = 1          # queries and results


def slots_per_ct(n_bits: int, slot_bits: int) -> int:
    """How many ``slot_bits``-wide results one plaintext of an ``n_bits`` modulus holds."""
    return max(1, (n_bits // 2 - 2) // slot_bits)


class NonFiniteQuery(DataError):
    """A query value that is not a finite number (+-inf, or beyond float32's range).

    ``row`` and ``column``: on the client, the row and the feature of the input
    matrix; on the server, the row and the (pseudonymous) query column.
    """

    def __init__(self, message: str, row: int, column: int):
        super().__init__(message)
        self.row, self.column = int(row), int(column)


class EncryptedQuery:
    """OPE-encrypted rows, columns in the user's pseudonym order.

    ``ct``: uint64 (n_rows, n_features); ``MISSING_CT`` (2**64 - 1) marks a
    missing value.  Bytes: magic ``PPEQ``, version 1, meta
    ``{key_fingerprint, n_rows, n_features}``, array ``ct`` <u8.
    """

    def __init__(self, ct: np.ndarray, key_fingerprint: str):
        self.ct = ct
        self.key_fingerprint = key_fingerprint

    @property
    def n_rows(self) -> int:
        return int(self.ct.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.ct.shape[1])

    def to_bytes(self) -> bytes:
        return fmt.pack(QUERY_MAGIC, VERSION, {"key_fingerprint": self.key_fingerprint,
                                                 "n_rows": self.n_rows,
                                                 "n_features": self.n_features},
                        {"ct": self.ct.astype("<u8")})

    @classmethod
    def from_bytes(cls, b) -> EncryptedQuery:
        what = "query"
        meta, arr = fmt.unpack(what, QUERY_MAGIC, VERSION, b, {"ct": ("<u8", 2)})
        fp = fmt.get(meta, what, "key_fingerprint", str)
        nr = fmt.get(meta, what, "n_rows", int, 0)
        nf = fmt.get(meta, what, "n_features", int, 0)
        if arr["ct"].shape != (nr, nf):
            raise ValueError(f"malformed query: ct has shape {arr['ct'].shape}, "
                             f"header says ({nr}, {nf})")
        return cls(arr["ct"], fp)


class EncryptedResult:
    """Paillier ciphertexts of the margins (without the intercept).

    Unpacked: ``cts[r * n_outputs + k]`` encrypts row r, group k.  Packed
    (``slots > 1``): ``cts[i]`` encrypts sum_j (s_{i*slots+j} + 2**(w-1)) *
    2**(w j), w = ``slot_bits``, over the flattened (row, group) results.
    Bytes: magic ``PPER``, version 1, meta ``{key_fingerprint, n_rows,
    n_outputs, slots, slot_bits, width}``, array ``ct`` uint8 (n_ct, width) big-endian residues mod n^2.
    """

    def __init__(self, cts: list, key_fingerprint: str, n_rows: int, n_outputs: int,
                 slots: int, width: int, slot_bits: int = 64):
        self.cts = cts
        self.key_fingerprint = key_fingerprint
        self.n_rows = n_rows
        self.n_outputs = n_outputs
        self.slots = slots
        self.slot_bits = slot_bits
        self.width = width

    def to_bytes(self) -> bytes:
        buf = b"".join(int(c).to_bytes(self.width, "big") for c in self.cts)
        a = np.frombuffer(buf, np.uint8).reshape(len(self.cts), self.width)
        return fmt.pack(RESULT_MAGIC, VERSION,
                        {"key_fingerprint": self.key_fingerprint, "n_rows": self.n_rows,
                         "n_outputs": self.n_outputs, "slots": self.slots,
                         "slot_bits": self.slot_bits,
                         "width": self.width}, {"ct": a})

    @classmethod
    def from_bytes(cls, b) -> EncryptedResult:
        what = "result"
        meta, arr = fmt.unpack(what, RESULT_MAGIC, VERSION, b, {"ct": ("|u1", 2)})
        fp = fmt.get(meta, what, "key_fingerprint", str)
        nr = fmt.get(meta, what, "n_rows", int, 0)
        no = fmt.get(meta, what, "n_outputs", int, 1, 1 << 16)
        slots = fmt.get(meta, what, "slots", int, 1, 1 << 16)
        slot_bits = fmt.get(meta, what, "slot_bits", int, 64, 128)
        if slot_bits not in SLOT_CHOICES:
            raise ValueError(f"malformed result: slot_bits == {slot_bits}, must be one of "
                             f"{SLOT_CHOICES}")
        width = fmt.get(meta, what, "width", int, 1, 1 << 16)
        n_ct = -(-nr * no // slots)
        if arr["ct"].shape != (n_ct, width):
            raise ValueError(f"malformed result: ct has shape {arr['ct'].shape}, "
                             f"expected ({n_ct}, {width})")
        raw = arr["ct"].tobytes()
        cts = [int.from_bytes(raw[i * width:(i + 1) * width], "big") for i in range(n_ct)]
        return cls(cts, fp, nr, no, slots, width, slot_bits)
