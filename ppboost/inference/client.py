"""The user's side: :class:`Client` encrypts queries and decrypts results with its keys.

Decryption is mod p only (Paillier CRT); the client then adds the intercept
(``base_score`` as a margin, kept in the keys) and applies the objective's
link (sigmoid, softmax or identity), so that ``decrypt`` returns what
``booster.predict`` returns.
"""
from __future__ import annotations

import numpy as np

from ..crypto import paillier as pl
from .keys import UserKeys, feature_order, ope_cipher
from .messages import FRAC_BITS, EncryptedQuery, EncryptedResult, NonFiniteQuery

__all__ = ["Client"]


class Client:
    """Encrypts queries and decrypts results with a user's :class:`UserKeys`."""

    def __init__(self, keys: UserKeys):
        if not isinstance(keys, UserKeys):
            raise ValueError(f"keys must be UserKeys, got {type(keys).__name__}")
        self.keys = keys
        self._ope = ope_cipher(keys.ope_key)
        self._order = feature_order(keys.pseudo_key, keys.n_features)

    @property
    def key_fingerprint(self) -> str:
        return self.keys.key_fingerprint

    def encrypt(self, X) -> EncryptedQuery:
        """X: 2-D float array (n_rows, n_features), NaN = missing (also 1-D for one row).

        Values are rounded to float32 as xgboost's DMatrix does.  A categorical
        column holds the category codes xgboost sees (e.g. ``Series.cat.codes``
        with -1 replaced by NaN); nothing here depends on which columns are
        categorical.  A value that is not finite in float32 (+-inf, or a float64
        beyond float32's range, which xgboost would read as inf) raises
        :class:`~ppboost.inference.messages.NonFiniteQuery` naming its row and
        feature (xgboost and ``ppboost.train`` refuse such values too).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_rows, n_features), got {X.ndim}-D")
        if X.shape[1] != self.keys.n_features:
            raise ValueError(f"X has {X.shape[1]} features, model expects {self.keys.n_features}")
        with np.errstate(over="ignore"):
            X32 = X.astype(np.float32)
        inf = np.isinf(X32)
        if inf.any():
            r, f = (int(v) for v in np.argwhere(inf)[0])
            v = X[r, f]
            what = repr(float(v)) if np.isinf(v) else f"{float(v)!r} (beyond float32's range)"
            raise NonFiniteQuery(f"row {r}, feature {f}: {what} is not a finite number; "
                                 "use NaN for a missing value", r, f)
        Xp = np.ascontiguousarray(X32[:, self._order])
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
