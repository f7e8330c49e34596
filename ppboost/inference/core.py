"""PPXGBoost encrypted prediction: Proxy, UserKeys, EncryptedModel, Client.

Reference: X. Meng and J. Feigenbaum, "Privacy-Preserving XGBoost
Inference", arXiv:2011.04789 (2020) (PPXGBoost); OPE from Boldyreva et al.
EUROCRYPT 2009 (:mod:`ppboost.crypto.ope`); Paillier (EUROCRYPT 1999) via
:mod:`ppboost.crypto.paillier`.

Roles and what each holds:

* **Proxy** (trusted, set-up only): the plaintext model.  ``enroll(user)``
  draws the user's Paillier key pair, OPE key and pseudonym key, and builds
  the user's :class:`EncryptedModel` (server side, public material only) and
  :class:`UserKeys` (client side, secret).
* **Server**: :meth:`EncryptedModel.predict` on an :class:`EncryptedQuery`.
  It compares OPE ciphertexts (``x < t`` iff ``E(x) < E(t)``, exact on
  float32 through the order-preserving bit trick), multiplies the reached
  leaves' Paillier ciphertexts (one homomorphic sum per output group) and
  re-randomises each result.  It holds no secret.
* **Client**: :meth:`Client.encrypt` / :meth:`Client.decrypt`; adds the
  intercept (``base_score`` mapped to a margin) and applies the link.

Fixed point: every leaf is encoded as ``round(v * 2**FRAC_BITS)`` (one
scale, FRAC_BITS = 32, error <= 2**-33 per leaf), so the server's additions
are plain products mod n^2 and no per-leaf exponent exists.  At enrolment the
Proxy computes B = ``sum over trees of max |leaf|`` (fixed point) and picks
the model's slot width ``slot_bits``: 64 if B < 2**62 (|margin| < 2**30),
else 128 if B < 2**126, else it refuses the model.  Either is far below p/2
for any key >= 1024 bits; this is what makes decryption mod p alone exact.
The slot width is public (it only tells whether B exceeds 2**62).

Packing (batches): with ``pack=True`` (the default), the server packs up
to ``slots = (bits(n)/2 - 2) // slot_bits`` results into one plaintext by
Horner's rule, ``C = E(K) * prod_j E(s_j)^(2**(slot_bits*j))`` with the public
offset K = sum_j 2**(slot_bits - 1) 2**(slot_bits j) (making each slot
non-negative), so one decryption serves up to 23 results for a 3072-bit key
(64-bit slots) at the cost of slot_bits squarings mod n^2 per result.

Server cost: leaves' ciphertexts are combined through precomputed products
over chunks of consecutive trees (:class:`_SumTables`, at most 8192 extra
residues per model, built on first use), and each returned ciphertext is
re-randomised by a short-exponent n-th residue h_s^a (DJN 2010, see
:mod:`ppboost.crypto.paillier`).  The client decrypts mod p only.

Categorical splits (xgboost ``split_type`` 1, see
:mod:`ppboost.inference.xgbmodel`): a node's category set S is stored as
OPE ciphertexts of the half-open float32 intervals [a, b + 1) of its runs of
consecutive categories, encrypted under that feature's OPE function at
enrolment (each distinct (feature, value) once, together with the numeric
thresholds).  The server sends x right iff E(a) <= E(x) < E(b + 1) for one
interval (<=> a <= x < b + 1 <=> int(x) in S for x >= 0; a negative or
huge x is in no interval and goes left, as in xgboost), a missing x to the
default side.  One-vs-rest (|S| = 1) is one interval, an xgboost partition
split one interval per run.

What leaks to the server (OPE's known leakage): each query's path through
every tree (comparison results) and which features are missing.  At a
categorical node that is whether x is one of the node's categories (which
the branch taken reveals anyway), and, as for any OPE ciphertext, the order
of x relative to the interval ends (for a one-vs-rest node: x < c, x in
category c, or x >= c + 1); the model itself shows which nodes are
categorical and how many intervals each has.  Feature indices are replaced
by positions in a keyed-PRF pseudonym order, and thresholds of different
features use independent OPE functions.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass

import numpy as np
from numba import njit
import gmpy2
from gmpy2 import mpz

from ..crypto import paillier as pl
from ..crypto.ope import OPE, MISSING_CT
from ..crypto.prf import new_key, prf_u64, derive_key
from . import _format as fmt
from .xgbmodel import load_xgboost, PlainModel

__all__ = ["Proxy", "Enrollment", "UserKeys", "EncryptedModel", "EncryptedQuery",
           "EncryptedResult", "Client", "FRAC_BITS", "SLOT_CHOICES"]

FRAC_BITS = 32
SLOT_CHOICES = (64, 128)
OPE_RANGE_BITS = 48
_MODEL_MAGIC, _QUERY_MAGIC, _RESULT_MAGIC = b"PPEM", b"PPEQ", b"PPER"
_VERSION = 1          # queries, results, keys files
_MODEL_VERSION = 2    # 2: categorical splits (arrays kind, cat_ptr, cat_lo, cat_hi); 1 still loads
_KEYS_FORMAT = "ppboost-userkeys"


def _feature_order(pseudo_key: bytes, n_features: int) -> np.ndarray:
    """order[j] = the feature sent in query column j (columns sorted by PRF pseudonym)."""
    ids = prf_u64(pseudo_key, b"feature", range(n_features))
    return np.asarray(sorted(range(n_features), key=lambda f: ids[f]), dtype=np.int64)


def _slots_per_ct(n_bits: int, slot_bits: int) -> int:
    return max(1, (n_bits // 2 - 2) // slot_bits)


# --------------------------------------------------------------------------- keys
@dataclass
class UserKeys:
    """A user's secret keys (client side) and the public model facts the client needs.

    Secret: Paillier p, q; the OPE key; the pseudonym key.  Saved as
    versioned JSON with file mode 0600.
    """
    user_id: str
    n: int
    p: int
    q: int
    ope_key: bytes
    pseudo_key: bytes
    n_features: int
    n_outputs: int
    objective: str
    base_margin: list

    @property
    def key_fingerprint(self) -> str:
        return pl.key_fingerprint(self.n)

    def to_dict(self) -> dict:
        return {"format": _KEYS_FORMAT, "version": _VERSION, "user_id": self.user_id,
                "n": hex(self.n), "p": hex(self.p), "q": hex(self.q),
                "ope_key": self.ope_key.hex(), "pseudo_key": self.pseudo_key.hex(),
                "n_features": self.n_features, "n_outputs": self.n_outputs,
                "objective": self.objective, "base_margin": [float(v) for v in self.base_margin],
                "key_fingerprint": self.key_fingerprint}

    def save(self, path) -> None:
        """Write the keys as JSON to ``path`` with permissions 0600 (replaces the file)."""
        data = json.dumps(self.to_dict(), indent=1).encode()
        path = os.fspath(path)
        tmp = f"{path}.tmp{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path) -> "UserKeys":
        with open(os.fspath(path), "rb") as fh:
            raw = fh.read()
        try:
            d = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"keys file {path!s} is not valid JSON") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d) -> "UserKeys":
        what = "keys file"
        if not isinstance(d, dict) or d.get("format") != _KEYS_FORMAT:
            raise ValueError(f"malformed {what}: format must be {_KEYS_FORMAT!r}")
        fmt.get(d, what, "version", int, _VERSION, _VERSION)
        try:
            k = cls(user_id=fmt.get(d, what, "user_id", str),
                    n=int(fmt.get(d, what, "n", str), 16), p=int(fmt.get(d, what, "p", str), 16),
                    q=int(fmt.get(d, what, "q", str), 16),
                    ope_key=bytes.fromhex(fmt.get(d, what, "ope_key", str)),
                    pseudo_key=bytes.fromhex(fmt.get(d, what, "pseudo_key", str)),
                    n_features=fmt.get(d, what, "n_features", int, 1),
                    n_outputs=fmt.get(d, what, "n_outputs", int, 1),
                    objective=fmt.get(d, what, "objective", str),
                    base_margin=list(fmt.get(d, what, "base_margin", list)))
        except ValueError as e:
            if str(e).startswith("malformed"):
                raise
            raise ValueError(f"malformed {what}: {e}") from None
        if k.p * k.q != k.n:
            raise ValueError(f"malformed {what}: p * q != n")
        if len(k.ope_key) != 32 or len(k.pseudo_key) != 32:
            raise ValueError(f"malformed {what}: ope_key and pseudo_key must be 32 bytes")
        if len(k.base_margin) != k.n_outputs:
            raise ValueError(f"malformed {what}: base_margin has {len(k.base_margin)} values, "
                             f"expected n_outputs == {k.n_outputs}")
        if d.get("key_fingerprint", k.key_fingerprint) != k.key_fingerprint:
            raise ValueError(f"malformed {what}: key_fingerprint does not match n")
        return k


# --------------------------------------------------------------------------- kernels
@njit(cache=True)
def _walk(q, left, right, slot, thr, dleft, leafidx, roots, kind, cat_ptr, cat_lo, cat_hi,
          out):
    """out[r, t] = leaf reached by row r in tree t.

    xgboost's rule (cpu_predictor GetNextNode) on OPE ciphertexts: missing ->
    default_left side; a numerical node (kind 0): left iff E(x) < E(t) (<=>
    x < t in float32); a categorical node (kind 1): right iff E(lo) <= E(x) <
    E(hi) for one of its intervals cat_ptr[i] <= k < cat_ptr[i + 1] (<=>
    int(x) is one of its categories), else left.
    """
    missing = np.uint64(0xFFFFFFFFFFFFFFFF)
    for r in range(q.shape[0]):
        for t in range(roots.shape[0]):
            i = roots[t]
            while left[i] >= 0:
                v = q[r, slot[i]]
                if v == missing:
                    go = dleft[i] != 0
                elif kind[i] == 0:
                    go = v < thr[i]
                else:
                    go = True
                    for k in range(cat_ptr[i], cat_ptr[i + 1]):
                        if cat_lo[k] <= v and v < cat_hi[k]:
                            go = False
                            break
                i = left[i] if go else right[i]
            out[r, t] = leafidx[i]


# --------------------------------------------------------------------------- query / result
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
        return fmt.pack(_QUERY_MAGIC, _VERSION, {"key_fingerprint": self.key_fingerprint,
                                                 "n_rows": self.n_rows,
                                                 "n_features": self.n_features},
                        {"ct": self.ct.astype("<u8")})

    @classmethod
    def from_bytes(cls, b) -> "EncryptedQuery":
        what = "query"
        meta, arr = fmt.unpack(what, _QUERY_MAGIC, _VERSION, b, {"ct": ("<u8", 2)})
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
        return fmt.pack(_RESULT_MAGIC, _VERSION,
                        {"key_fingerprint": self.key_fingerprint, "n_rows": self.n_rows,
                         "n_outputs": self.n_outputs, "slots": self.slots,
                         "slot_bits": self.slot_bits,
                         "width": self.width}, {"ct": a})

    @classmethod
    def from_bytes(cls, b) -> "EncryptedResult":
        what = "result"
        meta, arr = fmt.unpack(what, _RESULT_MAGIC, _VERSION, b, {"ct": ("|u1", 2)})
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


# --------------------------------------------------------------------------- model
_MODEL_SCHEMA_V1 = {"left": ("<i4", 1), "right": ("<i4", 1), "slot": ("<i4", 1),
                    "thr": ("<u8", 1), "dleft": ("|u1", 1), "leafidx": ("<i4", 1),
                    "roots": ("<i4", 1), "groups": ("<i4", 1), "leaf_ct": ("|u1", 2)}
_MODEL_SCHEMA = dict(_MODEL_SCHEMA_V1, kind=("|u1", 1), cat_ptr=("<i4", 1), cat_lo=("<u8", 1),
                     cat_hi=("<u8", 1))


class EncryptedModel:
    """One user's encrypted model: public material only (server side).

    Attributes: ``user_id``, ``n_features``, ``n_outputs``,
    ``key_fingerprint`` (hex SHA-256 of the Paillier modulus), ``n`` and
    ``h_s`` (public key and public re-randomisation base).  Trees are flat
    arrays in preorder (children > parent): ``left``/``right`` (-1 at
    leaves), ``slot`` (pseudonymised query column), ``thr`` (OPE
    ciphertexts), ``dleft``, ``leafidx`` (row of ``leaf_ct`` at leaves),
    ``roots`` and ``groups`` per tree; categorical splits: ``kind`` (per
    node, 0 numerical, 1 categorical), ``cat_ptr`` (n_nodes + 1: node i's
    intervals are ``cat_lo``/``cat_hi[cat_ptr[i]:cat_ptr[i + 1]]``, OPE
    ciphertexts of [lo, hi) in float32; empty for numerical nodes).

    Bytes (``to_bytes``/``from_bytes``): magic ``PPEM``, version 2 (version
    1, written before categorical splits, has no ``kind``/``cat_*`` arrays
    and still loads as an all-numerical model), meta
    ``{user_id, n_features, n_outputs, key_fingerprint, n, h_s, ope_range_bits,
    slot_bits}``
    (n and h_s as hex strings) and the arrays above (``leaf_ct`` uint8
    (n_leaves, width) big-endian residues mod n^2).  ``from_bytes`` validates
    everything and raises ``ValueError("malformed model: ...")``.
    """

    def __init__(self, user_id, n_features, n_outputs, n, h_s, left, right, slot, thr, dleft,
                 leafidx, roots, groups, leaf_ct, ope_range_bits=OPE_RANGE_BITS, slot_bits=64,
                 kind=None, cat_ptr=None, cat_lo=None, cat_hi=None):
        self.user_id = user_id
        self.n_features = int(n_features)
        self.n_outputs = int(n_outputs)
        self.n = int(n)
        self.h_s = int(h_s)
        self.left, self.right, self.slot = left, right, slot
        self.thr, self.dleft, self.leafidx = thr, dleft, leafidx
        self.roots, self.groups = roots, groups
        nn = int(np.asarray(left).shape[0])
        self.kind = np.zeros(nn, np.uint8) if kind is None else kind
        self.cat_ptr = np.zeros(nn + 1, np.int32) if cat_ptr is None else cat_ptr
        self.cat_lo = np.zeros(0, np.uint64) if cat_lo is None else cat_lo
        self.cat_hi = np.zeros(0, np.uint64) if cat_hi is None else cat_hi
        self.leaf_ct = list(leaf_ct)
        self.ope_range_bits = ope_range_bits
        if slot_bits not in SLOT_CHOICES:
            raise ValueError(f"slot_bits == {slot_bits}, must be one of {SLOT_CHOICES}")
        self.slot_bits = slot_bits
        self.key_fingerprint = pl.key_fingerprint(self.n)
        self._width = 2 * ((self.n.bit_length() + 7) // 8)
        self._rand = None
        self._tables = None
        self._init_lock = threading.Lock()

    @property
    def n_trees(self) -> int:
        return int(self.roots.shape[0])

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_ct)

    # -- serialisation -------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = self._width
        leaf = np.frombuffer(b"".join(int(c).to_bytes(w, "big") for c in self.leaf_ct),
                             np.uint8).reshape(len(self.leaf_ct), w)
        meta = {"user_id": self.user_id, "n_features": self.n_features,
                "n_outputs": self.n_outputs, "key_fingerprint": self.key_fingerprint,
                "n": hex(self.n), "h_s": hex(self.h_s), "ope_range_bits": self.ope_range_bits,
                "slot_bits": self.slot_bits}
        arrays = {"left": self.left, "right": self.right, "slot": self.slot, "thr": self.thr,
                  "dleft": self.dleft, "leafidx": self.leafidx, "roots": self.roots,
                  "groups": self.groups, "leaf_ct": leaf, "kind": self.kind,
                  "cat_ptr": self.cat_ptr, "cat_lo": self.cat_lo, "cat_hi": self.cat_hi}
        return fmt.pack(_MODEL_MAGIC, _MODEL_VERSION, meta,
                        {k: np.asarray(v).astype(_MODEL_SCHEMA[k][0]) for k, v in arrays.items()})

    @classmethod
    def from_bytes(cls, b) -> "EncryptedModel":
        what = "model"

        def bad(msg):
            return ValueError(f"malformed model: {msg}")

        version = fmt.peek_version(what, _MODEL_MAGIC, b)
        if version == 1:
            meta, a = fmt.unpack(what, _MODEL_MAGIC, 1, b, _MODEL_SCHEMA_V1)
        else:
            meta, a = fmt.unpack(what, _MODEL_MAGIC, _MODEL_VERSION, b, _MODEL_SCHEMA)
        user_id = fmt.get(meta, what, "user_id", str)
        nf = fmt.get(meta, what, "n_features", int, 1, 1 << 24)
        no = fmt.get(meta, what, "n_outputs", int, 1, 1 << 16)
        fp = fmt.get(meta, what, "key_fingerprint", str)
        rb = fmt.get(meta, what, "ope_range_bits", int, 40, 52)
        sb = fmt.get(meta, what, "slot_bits", int, 64, 128)
        if sb not in SLOT_CHOICES:
            raise bad(f"slot_bits == {sb}, must be one of {SLOT_CHOICES}")
        try:
            n = int(fmt.get(meta, what, "n", str), 16)
            h_s = int(fmt.get(meta, what, "h_s", str), 16)
        except ValueError as e:
            if str(e).startswith("malformed"):
                raise
            raise bad("n and h_s must be hex strings") from None
        if n.bit_length() < 512 or n.bit_length() > 16384 or n % 2 == 0:
            raise bad(f"n has {n.bit_length()} bits, expected an odd modulus of 512..16384 bits")
        if pl.key_fingerprint(n) != fp:
            raise bad("key_fingerprint does not match n")
        n2 = n * n
        if not 1 < h_s < n2:
            raise bad("h_s out of range [2, n^2)")
        nn = a["left"].shape[0]
        for k in ("right", "slot", "thr", "dleft", "leafidx"):
            if a[k].shape[0] != nn:
                raise bad(f"array {k!r} has {a[k].shape[0]} entries, expected {nn} (nodes)")
        nt = a["roots"].shape[0]
        if a["groups"].shape[0] != nt:
            raise bad(f"array 'groups' has {a['groups'].shape[0]} entries, expected {nt} (trees)")
        left, right, slot = a["left"], a["right"], a["slot"]
        idx = np.arange(nn)
        inner = left >= 0
        isleaf = ~inner
        if np.any(inner & ((left <= idx) | (left >= nn) | (right <= idx) | (right >= nn))):
            raise bad("children must have larger indices than their parent and exist")
        if np.any(isleaf & (right != -1)) or np.any(left < -1):
            raise bad("a leaf must have left == right == -1")
        if np.any(inner & ((slot < 0) | (slot >= nf))):
            raise bad(f"slot out of range [0, {nf})")
        if np.any(inner & (a["thr"] >= np.uint64(1 << rb))):
            raise bad("threshold ciphertext out of the OPE range")
        if version == 1:
            kind, cat_ptr = np.zeros(nn, np.uint8), np.zeros(nn + 1, np.int32)
            cat_lo, cat_hi = np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        else:
            kind, cat_ptr, cat_lo, cat_hi = (a[k].copy() for k in ("kind", "cat_ptr", "cat_lo",
                                                                   "cat_hi"))
            if kind.shape[0] != nn:
                raise bad(f"array 'kind' has {kind.shape[0]} entries, expected {nn} (nodes)")
            if np.any(kind > 1) or np.any(isleaf & (kind != 0)):
                raise bad("kind must be 0 (numerical) or 1 (categorical, inner nodes only)")
            if cat_ptr.shape[0] != nn + 1:
                raise bad(f"array 'cat_ptr' has {cat_ptr.shape[0]} entries, expected {nn + 1} "
                          "(nodes + 1)")
            ni = cat_lo.shape[0]
            if cat_hi.shape[0] != ni:
                raise bad(f"arrays 'cat_lo' and 'cat_hi' differ in length ({ni} != "
                          f"{cat_hi.shape[0]})")
            if cat_ptr[0] != 0 or cat_ptr[-1] != ni or np.any(np.diff(cat_ptr) < 0):
                raise bad(f"cat_ptr must rise from 0 to {ni} (the number of intervals)")
            if np.any((kind == 0) & (np.diff(cat_ptr) != 0)):
                raise bad("a numerical node must have no category intervals")
            if np.any(cat_hi >= np.uint64(1 << rb)) or np.any(cat_lo >= cat_hi):
                raise bad("category interval ciphertexts must satisfy lo < hi < "
                          f"2**{rb}")
        nl = a["leaf_ct"].shape[0]
        li = a["leafidx"]
        if np.any(isleaf & ((li < 0) | (li >= nl))):
            raise bad(f"leafidx out of range [0, {nl})")
        if nt and (np.any(a["roots"] < 0) or np.any(a["roots"] >= nn)):
            raise bad("tree root out of range")
        if nt and (np.any(a["groups"] < 0) or np.any(a["groups"] >= no)):
            raise bad(f"tree group out of range [0, {no})")
        width = 2 * ((n.bit_length() + 7) // 8)
        if a["leaf_ct"].shape[1] != width:
            raise bad(f"leaf_ct rows are {a['leaf_ct'].shape[1]} bytes, expected {width}")
        raw = a["leaf_ct"].tobytes()
        leaf_ct = [int.from_bytes(raw[i * width:(i + 1) * width], "big") for i in range(nl)]
        for i, c in enumerate(leaf_ct):
            if not 0 < c < n2:
                raise bad(f"leaf ciphertext {i} out of range (0, n^2)")
        return cls(user_id, nf, no, n, h_s, left.copy(), right.copy(), slot.copy(),
                   a["thr"].copy(), a["dleft"].copy(), li.copy(), a["roots"].copy(),
                   a["groups"].copy(), leaf_ct, rb, sb, kind, cat_ptr, cat_lo, cat_hi)

    # -- serving -------------------------------------------------------------
    def validate_query(self, query) -> "EncryptedQuery":
        """Check a query (object or bytes) against this model; ValueError naming the problem."""
        if isinstance(query, (bytes, bytearray, memoryview)):
            query = EncryptedQuery.from_bytes(query)
        if not isinstance(query, EncryptedQuery):
            raise ValueError(f"malformed query: expected EncryptedQuery or bytes, got "
                             f"{type(query).__name__}")
        if query.key_fingerprint != self.key_fingerprint:
            raise ValueError("query key_fingerprint does not match the model's key "
                             f"({query.key_fingerprint[:16]}... != {self.key_fingerprint[:16]}...)")
        ct = query.ct
        if ct.ndim != 2:
            raise ValueError(f"malformed query: ct must be 2-D, got {ct.ndim}-D")
        if ct.shape[1] != self.n_features:
            raise ValueError(f"query has {ct.shape[1]} features, model expects {self.n_features}")
        bad = (ct >= np.uint64(1 << self.ope_range_bits)) & (ct != MISSING_CT)
        if bad.any():
            r, f = np.argwhere(bad)[0]
            raise ValueError(f"ciphertext out of range in row {r}, feature {f}: must be < "
                             f"2**{self.ope_range_bits} or the missing marker 2**64-1")
        return query

    def leaf_indices(self, query) -> np.ndarray:
        """Rows of ``leaf_ct`` reached, int32 (n_rows, n_trees) (validated query)."""
        q = self.validate_query(query)
        out = np.empty((q.n_rows, self.n_trees), np.int32)
        _walk(np.ascontiguousarray(q.ct, dtype=np.uint64), self.left, self.right, self.slot,
              self.thr, self.dleft, self.leafidx, self.roots, self.kind, self.cat_ptr,
              self.cat_lo, self.cat_hi, out)
        return out

    def predict(self, query, pack: bool = True) -> EncryptedResult:
        """Evaluate an encrypted query (object or bytes); no secret needed.

        Inputs: the query (OPE ciphertexts in pseudonym order).  Validates
        first (ValueError naming the problem: fingerprint, feature count,
        ciphertext range, malformed bytes), walks every tree on OPE
        ciphertexts (order tests at numerical nodes, interval tests at
        categorical ones; what the server learns: each row's path and missing
        pattern), multiplies the reached leaves' ciphertexts per output group
        and re-randomises each returned ciphertext.  Nothing is opened.

        Identity: D(prod_t c_leaf(t)) = sum_t leaf(t) * 2**FRAC_BITS (mod n);
        packed: D(C) = sum_j (s_j + 2**95) 2**(96 j).

        Cost: one round (query in, result out); n_rows * n_features uint64
        in, ceil(n_rows * n_outputs / slots) ciphertexts of 2|n| bits out;
        per row and group (n_trees_in_group - 1) products mod n^2, plus
        slot_bits squarings per packed value and ceil(256/6) products per
        returned ciphertext (re-randomisation).
        """
        leaves = self.leaf_indices(query)
        with gmpy2.context(allow_release_gil=True):   # big-int work may overlap across threads
            return self._predict(leaves, pack)

    def prepare(self) -> "EncryptedModel":
        """Build the one-time server state (thread-safe, idempotent; else done by the first predict).

        Leaf residues, the sum tables (<= 8192 extra residues) and the
        re-randomiser's window table (43 x 64 residues mod n^2): up to ~9 MB and
        a few hundred ms for a 3072-bit key.  Returns self.
        """
        if self._rand is None:
            with self._init_lock:
                if self._rand is None:
                    L = [mpz(c) for c in self.leaf_ct]
                    self._tables = _SumTables(self, L, self.n * self.n)
                    self._rand = pl.PublicRandomiser(self.n, self.h_s, window=6)
        return self

    def _predict(self, leaves, pack):
        self.prepare()
        n2 = self._rand.n2
        sums = self._tables.sums(leaves)
        w = self.slot_bits
        slots = _slots_per_ct(self.n.bit_length(), w) if pack else 1
        if slots > 1 and len(sums) > 1:
            n = self._rand.n
            shift = mpz(1) << w
            out = []
            for i in range(0, len(sums), slots):
                chunk = sums[i:i + slots]
                acc = chunk[-1]
                for c in reversed(chunk[:-1]):                   # Horner
                    acc = pow(acc, shift, n2) * c % n2
                # + sum_j 2**95 * 2**(96 j): one public constant, (1 + K n) = E(K)
                k_off = sum(1 << (w * j + w - 1) for j in range(len(chunk)))
                out.append(acc * ((1 + k_off * n) % n2) % n2)
            sums = out
        else:
            slots = 1
        cts = [int(self._rand.rerandomise(c)) for c in sums]
        return EncryptedResult(cts, self.key_fingerprint, leaves.shape[0], self.n_outputs,
                               slots, self._width, w)


class _SumTables:
    """Precomputed products of leaf ciphertexts over chunks of consecutive trees.

    Trees of one output group are cut greedily into chunks whose number of
    leaf combinations is at most ``budget``; for a chunk (t_1..t_k) the table
    holds prod_i c_leaf(t_i) mod n^2 for every combination, so a row's sum
    over the chunk is one lookup (D(table[idx]) = sum_i leaf(t_i)).  A row
    then costs (#chunks - 1) products instead of (#trees - 1).  Only public
    ciphertexts are combined; at most ``max_entries`` new residues are
    stored (a single-tree chunk reuses the leaf ciphertexts).
    """

    def __init__(self, model, L, n2, budget=256, max_entries=8192):
        left, leafidx = model.left, model.leafidx
        self.tree_leaves = []
        for root in model.roots.tolist():
            found, stack = set(), [root]
            while stack:
                i = stack.pop()
                if left[i] < 0:
                    found.add(int(leafidx[i]))
                else:
                    stack.append(int(model.right[i]))
                    stack.append(int(left[i]))
            self.tree_leaves.append(np.asarray(sorted(found), np.int64))
        self.n_outputs = model.n_outputs
        self.chunks = [[] for _ in range(model.n_outputs)]   # per group: (trees, strides, table)
        entries = 0
        for g in range(model.n_outputs):
            trees = np.flatnonzero(model.groups == g).tolist()
            i = 0
            while i < len(trees):
                ch = [trees[i]]
                size = len(self.tree_leaves[trees[i]])
                while (i + len(ch) < len(trees)
                       and size * len(self.tree_leaves[trees[i + len(ch)]]) <= budget
                       and entries + size * len(self.tree_leaves[trees[i + len(ch)]])
                       <= max_entries):
                    size *= len(self.tree_leaves[trees[i + len(ch)]])
                    ch.append(trees[i + len(ch)])
                table = [L[j] for j in self.tree_leaves[ch[0]].tolist()]
                for t in ch[1:]:           # index = sum_i local_i * stride_i, first tree slowest
                    lv = [L[j] for j in self.tree_leaves[t].tolist()]
                    table = [x * y % n2 for x in table for y in lv]
                if len(ch) > 1:
                    entries += len(table)
                strides = np.ones(len(ch), np.int64)
                for k in range(len(ch) - 2, -1, -1):
                    strides[k] = strides[k + 1] * len(self.tree_leaves[ch[k + 1]])
                self.chunks[g].append((np.asarray(ch, np.int64), strides, table))
                i += len(ch)
        self.n2 = n2

    def sums(self, leaves):
        """Per row and group, the product of the reached leaves' ciphertexts."""
        n_rows = leaves.shape[0]
        local = np.empty(leaves.shape, np.int64)
        for t, tl in enumerate(self.tree_leaves):
            local[:, t] = np.searchsorted(tl, leaves[:, t])
        idx = [[(local[:, trees] @ strides).tolist(), table]
               for g in range(self.n_outputs) for trees, strides, table in self.chunks[g]]
        per_group = [len(c) for c in self.chunks]
        n2 = self.n2
        out = []
        for r in range(n_rows):
            k = 0
            for g in range(self.n_outputs):
                if per_group[g] == 0:          # no tree in this group: E(0) = 1
                    out.append(mpz(1))
                    continue
                ix, table = idx[k]
                acc = table[ix[r]]
                for k in range(k + 1, k + per_group[g]):
                    ix, table = idx[k]
                    acc = acc * table[ix[r]] % n2
                k += 1
                out.append(acc)
        return out


# --------------------------------------------------------------------------- client
class Client:
    """Encrypts queries and decrypts results with a user's :class:`UserKeys`."""

    def __init__(self, keys: UserKeys):
        if not isinstance(keys, UserKeys):
            raise ValueError(f"keys must be UserKeys, got {type(keys).__name__}")
        self.keys = keys
        self._ope = OPE(derive_key(keys.ope_key, b"ope"), 32, OPE_RANGE_BITS)
        self._order = _feature_order(keys.pseudo_key, keys.n_features)

    @property
    def key_fingerprint(self) -> str:
        return self.keys.key_fingerprint

    def encrypt(self, X) -> EncryptedQuery:
        """X: 2-D float array (n_rows, n_features), NaN = missing (also 1-D for one row).

        Values are rounded to float32 as xgboost's DMatrix does.  A categorical
        column holds the category codes xgboost sees (e.g. ``Series.cat.codes``
        with -1 replaced by NaN); nothing here depends on which columns are
        categorical.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_rows, n_features), got {X.ndim}-D")
        if X.shape[1] != self.keys.n_features:
            raise ValueError(f"X has {X.shape[1]} features, model expects {self.keys.n_features}")
        Xp = np.ascontiguousarray(X[:, self._order].astype(np.float32))
        feats = np.broadcast_to(self._order, Xp.shape)
        ct = self._ope.encrypt_float32(feats.reshape(-1), Xp.reshape(-1)).reshape(Xp.shape)
        return EncryptedQuery(ct, self.key_fingerprint)

    def decrypt(self, result, output_margin: bool = False) -> np.ndarray:
        """Scores as ``booster.predict`` returns them (margins with ``output_margin``)."""
        if isinstance(result, (bytes, bytearray, memoryview)):
            result = EncryptedResult.from_bytes(result)
        if result.key_fingerprint != self.key_fingerprint:
            raise ValueError("result key_fingerprint does not match these keys")
        if result.n_outputs != self.keys.n_outputs:
            raise ValueError(f"result has {result.n_outputs} outputs, keys expect "
                             f"{self.keys.n_outputs}")
        k = self.keys
        n2 = k.n * k.n
        total = result.n_rows * result.n_outputs
        vals = []
        w = result.slot_bits
        if result.slots > 1 and result.slots * w > k.p.bit_length() - 2:
            raise ValueError(f"result packs {result.slots} slots of {w} bits, more than the key "
                             "allows")
        for c in result.cts:
            if not 0 < c < n2:
                raise ValueError("result ciphertext out of range (0, n^2)")
            m = pl.decrypt_mod_p(c, k.p, k.q, k.n)
            if result.slots == 1:
                vals.append(m)
            else:
                if m < 0:
                    raise ValueError("packed result decrypts to a negative value")
                for _ in range(result.slots):
                    if len(vals) == total:
                        break
                    vals.append((m & ((1 << w) - 1)) - (1 << (w - 1)))
                    m >>= w
        if len(vals) != total:
            raise ValueError(f"result holds {len(vals)} values, expected {total}")
        margin = np.array([v / float(1 << FRAC_BITS) for v in vals], np.float64)
        margin = margin.reshape(result.n_rows, result.n_outputs) + np.asarray(
            k.base_margin, np.float64)[None, :]
        if output_margin:
            return margin[:, 0] if k.n_outputs == 1 else margin
        if k.objective == "binary:logistic":
            return 1.0 / (1.0 + np.exp(-margin[:, 0]))
        if k.objective == "multi:softprob":
            e = np.exp(margin - margin.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return margin[:, 0]


# --------------------------------------------------------------------------- proxy
@dataclass
class Enrollment:
    keys: UserKeys
    model: EncryptedModel


class Proxy:
    """The trusted set-up party: turns a plaintext xgboost model into per-user encrypted models.

    ``model``: xgboost.Booster or path of an xgboost JSON model.
    ``key_bits``: Paillier modulus size (3072 by default).
    """

    def __init__(self, model, key_bits: int = 3072):
        if not isinstance(key_bits, int) or key_bits < 1024 or key_bits % 8:
            raise ValueError(f"key_bits == {key_bits!r}, must be an int >= 1024, multiple of 8")
        self.plain: PlainModel = load_xgboost(model)
        self.key_bits = key_bits
        pm = self.plain
        if not pm.trees:
            raise ValueError("model has 0 trees, must have >= 1")
        self._left = np.concatenate([t.left + (t.left >= 0) * off for t, off in
                                     zip(pm.trees, self._offsets())]).astype(np.int32)
        self._right = np.concatenate([t.right + (t.right >= 0) * off for t, off in
                                      zip(pm.trees, self._offsets())]).astype(np.int32)
        self._feat = np.concatenate([t.feature for t in pm.trees]).astype(np.int64)
        self._thr = np.concatenate([t.threshold for t in pm.trees]).astype(np.float32)
        self._dleft = np.concatenate([t.default_left for t in pm.trees]).astype(np.uint8)
        self._kind = np.concatenate([t.is_cat for t in pm.trees]).astype(np.uint8)
        ptrs, base = [np.zeros(1, np.int64)], 0
        for t in pm.trees:
            ptrs.append(t.cat_ptr[1:].astype(np.int64) + base)
            base += len(t.cat_lo)
        self._cat_ptr = np.concatenate(ptrs).astype(np.int32)
        self._cat_lo = np.concatenate([t.cat_lo for t in pm.trees]).astype(np.float32)
        self._cat_hi = np.concatenate([t.cat_hi for t in pm.trees]).astype(np.float32)
        # the feature of each interval
        self._cat_feat = np.repeat(self._feat, np.diff(self._cat_ptr))
        leafval = np.concatenate([t.leaf_value for t in pm.trees])
        isleaf = self._left < 0
        self._leafidx = np.where(isleaf, np.cumsum(isleaf) - 1, -1).astype(np.int32)
        self._leafval = leafval[isleaf].astype(np.float32)
        self._roots = np.asarray(self._offsets(), np.int32)
        self._groups = np.asarray([t.group for t in pm.trees], np.int32)
        #: xgboost node id of each leaf (row of leaf_ct), for pred_leaf checks
        self.leaf_node_ids = np.concatenate([t.xgb_id for t in pm.trees])[isleaf]
        # fixed-point leaves, one scale; bound of |sum| per group
        self._leafint = [int(round(float(v) * (1 << FRAC_BITS))) for v in self._leafval]
        leaf_tree = np.repeat(np.arange(len(pm.trees)), [len(t.left) for t in pm.trees])[isleaf]
        bound = 0
        for t in range(len(pm.trees)):
            vals = [abs(self._leafint[i]) for i in np.flatnonzero(leaf_tree == t)]
            bound += max(vals) if vals else 0
        fits = [w for w in SLOT_CHOICES if bound < 1 << (w - 2)]
        if not fits:
            w = SLOT_CHOICES[-1]
            raise ValueError(f"model margins too large: sum of max |leaf| over trees is "
                             f"{bound / (1 << FRAC_BITS):.3g}, must be < 2**{w - 2 - FRAC_BITS}")
        self.slot_bits = fits[0]
        self.max_abs_margin = bound / float(1 << FRAC_BITS)
        numeric = ~isleaf & (self._kind == 0)
        # feature -> (numerical nodes, intervals, distinct values, inverse): every distinct
        # (feature, value) among thresholds and interval ends is encrypted once per enrolment
        self._uthr = {}
        for f in np.unique(self._feat[~isleaf]).tolist():
            sel = np.flatnonzero(numeric & (self._feat == f))
            isel = np.flatnonzero(self._cat_feat == f)
            vals = np.concatenate([self._thr[sel], self._cat_lo[isel], self._cat_hi[isel]])
            u, inv = np.unique(vals, return_inverse=True)
            self._uthr[f] = (sel, isel, u, inv)

    def _offsets(self):
        offs, o = [], 0
        for t in self.plain.trees:
            offs.append(o)
            o += len(t.left)
        return offs

    def enroll(self, user_id: str) -> Enrollment:
        """New keys for ``user_id`` and their encrypted model (Enrollment.keys, .model)."""
        if not isinstance(user_id, str) or not user_id or len(user_id) > 256:
            raise ValueError(f"user_id == {user_id!r}, must be a non-empty string of <= 256 chars")
        pm = self.plain
        pub, priv = pl.generate_keypair(self.key_bits)
        ope_key, pseudo_key = new_key(), new_key()
        keys = UserKeys(user_id, int(pub.n), int(priv.p), int(priv.q), ope_key, pseudo_key,
                        pm.n_features, pm.n_outputs, pm.objective,
                        [float(v) for v in pm.base_margin])
        if self.max_abs_margin * (1 << FRAC_BITS) * 4 >= int(priv.p):
            raise ValueError("key too small for this model's margins")
        order = _feature_order(pseudo_key, pm.n_features)
        slot_of = np.empty(pm.n_features, np.int64)
        slot_of[order] = np.arange(pm.n_features)
        # thresholds: each distinct (feature, threshold) encrypted once (the enrolment cache)
        ope = OPE(derive_key(ope_key, b"ope"), 32, OPE_RANGE_BITS)
        thr_ct = np.zeros(len(self._left), np.uint64)
        lo_ct = np.zeros(len(self._cat_lo), np.uint64)
        hi_ct = np.zeros(len(self._cat_hi), np.uint64)
        feats, vals, spans, start = [], [], [], 0
        for f, (sel, isel, u, inv) in self._uthr.items():
            spans.append((sel, isel, inv, start))
            start += len(u)
            feats.append(np.full(len(u), f, np.int64))
            vals.append(u)
        if vals:
            enc = ope.encrypt_float32(np.concatenate(feats), np.concatenate(vals))
            for (sel, isel, inv, start) in spans:
                ns, ni = len(sel), len(isel)
                thr_ct[sel] = enc[start + inv[:ns]]
                lo_ct[isel] = enc[start + inv[ns:ns + ni]]
                hi_ct[isel] = enc[start + inv[ns + ni:]]
        slot = np.where(self._left >= 0, slot_of[np.maximum(self._feat, 0)], -1).astype(np.int32)
        h_s = pl.make_h_s(pub, priv)
        encr = pl.CrtEncryptor(pub, priv, h_s, window=pl.best_window(len(self._leafint)))
        leaf_ct = [encr.encrypt(m) for m in self._leafint]
        model = EncryptedModel(user_id, pm.n_features, pm.n_outputs, int(pub.n), h_s,
                               self._left.copy(), self._right.copy(), slot, thr_ct,
                               self._dleft.copy(), self._leafidx.copy(), self._roots.copy(),
                               self._groups.copy(), leaf_ct, OPE_RANGE_BITS, self.slot_bits,
                               self._kind.copy(), self._cat_ptr.copy(), lo_ct, hi_ct)
        return Enrollment(keys, model)
