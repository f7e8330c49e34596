"""One user's encrypted model (:class:`EncryptedModel`): public material only, server side.

The Proxy (:mod:`ppboost.inference.proxy`) builds it at enrolment; the server
stores its bytes and evaluates queries with :meth:`EncryptedModel.predict`
(the kernels are in :mod:`ppboost.inference.evaluate`).  It holds no secret.

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

Finite bounds (version 3): for each query column the model holds the OPE
ciphertexts of -FLT_MAX and +FLT_MAX under that feature's function
(``fin_lo``, ``fin_hi``), so the server refuses a query value outside them,
i.e. +-inf (:class:`~ppboost.inference.messages.NonFiniteQuery`, naming the
row and the column).  What this adds to the server's view: whether a value
is infinite (never evaluated) and two more ciphertexts of public values per
feature.
"""
from __future__ import annotations

import threading

import gmpy2
import numpy as np
from gmpy2 import mpz

from ..crypto import paillier as pl
from ..crypto.ope import MISSING_CT
from . import container as fmt
from .evaluate import SumTables, pack_slots, walk
from .keys import OPE_RANGE_BITS
from .messages import SLOT_CHOICES, EncryptedQuery, EncryptedResult, NonFiniteQuery, slots_per_ct

__all__ = ["MODEL_MAGIC", "MODEL_VERSION", "MODEL_SCHEMA_V1", "MODEL_SCHEMA_V2", "MODEL_SCHEMA",
           "EncryptedModel"]

MODEL_MAGIC = b"PPEM"
#: 3: finite bounds (fin_lo, fin_hi); 2: categorical splits (kind, cat_ptr, cat_lo, cat_hi).
#: 1 and 2 still load (without the check of infinite values)
MODEL_VERSION = 3
MODEL_SCHEMA_V1 = {"left": ("<i4", 1), "right": ("<i4", 1), "slot": ("<i4", 1),
                   "thr": ("<u8", 1), "dleft": ("|u1", 1), "leafidx": ("<i4", 1),
                   "roots": ("<i4", 1), "groups": ("<i4", 1), "leaf_ct": ("|u1", 2)}
MODEL_SCHEMA_V2 = dict(MODEL_SCHEMA_V1, kind=("|u1", 1), cat_ptr=("<i4", 1),
                       cat_lo=("<u8", 1), cat_hi=("<u8", 1))
MODEL_SCHEMA = dict(MODEL_SCHEMA_V2, fin_lo=("<u8", 1), fin_hi=("<u8", 1))


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
    ciphertexts of [lo, hi) in float32; empty for numerical nodes);
    ``fin_lo``/``fin_hi`` (per query column: E(-FLT_MAX), E(+FLT_MAX), or
    ``None`` for a model of version 1 or 2).

    Bytes (``to_bytes``/``from_bytes``): magic ``PPEM``, version 3 (version
    2 has no ``fin_*`` arrays; version 1, written before categorical splits,
    has no ``kind``/``cat_*`` arrays either and loads as an all-numerical
    model; both load without the check of infinite values), meta
    ``{user_id, n_features, n_outputs, key_fingerprint, n, h_s, ope_range_bits,
    slot_bits}``
    (n and h_s as hex strings) and the arrays above (``leaf_ct`` uint8
    (n_leaves, width) big-endian residues mod n^2).  ``from_bytes`` validates
    everything and raises ``ValueError("malformed model: ...")``.
    """

    def __init__(self, user_id, n_features, n_outputs, n, h_s, left, right, slot, thr, dleft,
                 leafidx, roots, groups, leaf_ct, ope_range_bits=OPE_RANGE_BITS, slot_bits=64,
                 kind=None, cat_ptr=None, cat_lo=None, cat_hi=None, fin_lo=None, fin_hi=None):
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
        if (fin_lo is None) != (fin_hi is None):
            raise ValueError("fin_lo and fin_hi go together")
        self.fin_lo = None if fin_lo is None else np.asarray(fin_lo, np.uint64)
        self.fin_hi = None if fin_hi is None else np.asarray(fin_hi, np.uint64)
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
        version, schema = 2, MODEL_SCHEMA_V2
        if self.fin_lo is not None:
            version, schema = MODEL_VERSION, MODEL_SCHEMA
            arrays.update(fin_lo=self.fin_lo, fin_hi=self.fin_hi)
        return fmt.pack(MODEL_MAGIC, version, meta,
                        {k: np.asarray(v).astype(schema[k][0]) for k, v in arrays.items()})

    @classmethod
    def from_bytes(cls, b) -> EncryptedModel:
        what = "model"

        def bad(msg):
            return ValueError(f"malformed model: {msg}")

        version = fmt.peek_version(what, MODEL_MAGIC, b)
        if version == 1:
            meta, a = fmt.unpack(what, MODEL_MAGIC, 1, b, MODEL_SCHEMA_V1)
        elif version == 2:
            meta, a = fmt.unpack(what, MODEL_MAGIC, 2, b, MODEL_SCHEMA_V2)
        else:
            meta, a = fmt.unpack(what, MODEL_MAGIC, MODEL_VERSION, b, MODEL_SCHEMA)
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
        fin_lo = fin_hi = None
        if version >= 3:
            fin_lo, fin_hi = a["fin_lo"].copy(), a["fin_hi"].copy()
            if fin_lo.shape[0] != nf or fin_hi.shape[0] != nf:
                raise bad(f"arrays 'fin_lo' and 'fin_hi' have {fin_lo.shape[0]} and "
                          f"{fin_hi.shape[0]} entries, expected {nf} (features)")
            if np.any(fin_lo >= fin_hi) or np.any(fin_hi >= np.uint64(1 << rb)):
                raise bad(f"finite bounds must satisfy fin_lo < fin_hi < 2**{rb}")
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
                   a["groups"].copy(), leaf_ct, rb, sb, kind, cat_ptr, cat_lo, cat_hi,
                   fin_lo, fin_hi)

    # -- serving -------------------------------------------------------------
    def validate_query(self, query) -> EncryptedQuery:
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
        if self.fin_lo is not None:
            inf = (ct != MISSING_CT) & ((ct < self.fin_lo[None, :]) | (ct > self.fin_hi[None, :]))
            if inf.any():
                r, c = (int(v) for v in np.argwhere(inf)[0])
                raise NonFiniteQuery(
                    f"row {r}, column {c} (the query's pseudonymous feature column): the value "
                    "is not a finite number (+inf or -inf); send a finite value, or NaN for a "
                    "missing one", r, c)
        return query

    def leaf_indices(self, query) -> np.ndarray:
        """Rows of ``leaf_ct`` reached, int32 (n_rows, n_trees) (validated query)."""
        q = self.validate_query(query)
        out = np.empty((q.n_rows, self.n_trees), np.int32)
        walk(np.ascontiguousarray(q.ct, dtype=np.uint64), self.left, self.right, self.slot,
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
        packed (w = slot_bits): D(C) = sum_j (s_j + 2**(w - 1)) 2**(w j).

        Cost: one round (query in, result out); n_rows * n_features uint64
        in, ceil(n_rows * n_outputs / slots) ciphertexts of 2|n| bits out;
        per row and group (n_trees_in_group - 1) products mod n^2, plus
        slot_bits squarings per packed value and ceil(256/6) products per
        returned ciphertext (re-randomisation).
        """
        leaves = self.leaf_indices(query)
        with gmpy2.context(allow_release_gil=True):   # big-int work may overlap across threads
            return self._predict(leaves, pack)

    def prepare(self) -> EncryptedModel:
        """Build the one-time server state (thread-safe, idempotent; else done by the first predict).

        Leaf residues, the sum tables (<= 8192 extra residues) and the
        re-randomiser's window table (43 x 64 residues mod n^2): up to ~9 MB and
        a few hundred ms for a 3072-bit key.  Returns self.
        """
        if self._rand is None:
            with self._init_lock:
                if self._rand is None:
                    L = [mpz(c) for c in self.leaf_ct]
                    self._tables = SumTables(self, L, self.n * self.n)
                    self._rand = pl.PublicRandomiser(self.n, self.h_s, window=6)
        return self

    def _predict(self, leaves, pack):
        self.prepare()
        n2 = self._rand.n2
        sums = self._tables.sums(leaves)
        w = self.slot_bits
        slots = slots_per_ct(self.n.bit_length(), w) if pack else 1
        if slots > 1 and len(sums) > 1:
            sums = pack_slots(sums, self._rand.n, n2, w, slots)
        else:
            slots = 1
        cts = [int(self._rand.rerandomise(c)) for c in sums]
        return EncryptedResult(cts, self.key_fingerprint, leaves.shape[0], self.n_outputs,
                               slots, self._width, w)
