"""The trusted set-up party: :class:`Proxy` turns a plaintext xgboost model into per-user models.

``Proxy(booster).enroll(user)`` draws the user's Paillier key pair, OPE key
and pseudonym key and returns an :class:`Enrollment`: the user's
:class:`~ppboost.inference.keys.UserKeys` (client side, secret) and
:class:`~ppboost.inference.model.EncryptedModel` (server side, public
material only).  Thresholds and category intervals are OPE-encrypted under
the user's key, each distinct (feature, value) once; leaves are encoded in
fixed point (:data:`~ppboost.inference.messages.FRAC_BITS`) and
Paillier-encrypted; the slot width is chosen from the bound on the margins
(see :mod:`ppboost.inference.messages`).  Each feature's finite bounds, -FLT_MAX
and +FLT_MAX, are OPE-encrypted too (in the same batch), so that the server can
refuse an infinite query value (see :mod:`ppboost.inference.model`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..crypto import paillier as pl
from ..crypto.prf import new_key
from .keys import OPE_RANGE_BITS, UserKeys, feature_order, ope_cipher
from .messages import FRAC_BITS, SLOT_CHOICES
from .model import EncryptedModel
from .xgbmodel import PlainModel, load_xgboost

__all__ = ["Enrollment", "Proxy", "FLT_MAX"]

FLT_MAX = np.finfo(np.float32).max


@dataclass
class Enrollment:
    """What :meth:`Proxy.enroll` returns: the user's keys (secret) and encrypted model (public)."""

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
        # (feature, value) among thresholds, interval ends and the finite bounds
        # -FLT_MAX, +FLT_MAX (last two) is encrypted once per enrolment
        self._uthr = {}
        bounds = np.array([-FLT_MAX, FLT_MAX], np.float32)
        for f in range(pm.n_features):
            sel = np.flatnonzero(numeric & (self._feat == f))
            isel = np.flatnonzero(self._cat_feat == f)
            vals = np.concatenate([self._thr[sel], self._cat_lo[isel], self._cat_hi[isel],
                                   bounds])
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
        order = feature_order(pseudo_key, pm.n_features)
        slot_of = np.empty(pm.n_features, np.int64)
        slot_of[order] = np.arange(pm.n_features)
        # thresholds: each distinct (feature, threshold) encrypted once (the enrolment cache)
        ope = ope_cipher(ope_key)
        thr_ct = np.zeros(len(self._left), np.uint64)
        lo_ct = np.zeros(len(self._cat_lo), np.uint64)
        hi_ct = np.zeros(len(self._cat_hi), np.uint64)
        fin_ct = np.zeros((pm.n_features, 2), np.uint64)      # by feature: E(-FLT_MAX), E(FLT_MAX)
        feats, vals, spans, start = [], [], [], 0
        for f, (sel, isel, u, inv) in self._uthr.items():
            spans.append((f, sel, isel, inv, start))
            start += len(u)
            feats.append(np.full(len(u), f, np.int64))
            vals.append(u)
        if vals:
            enc = ope.encrypt_float32(np.concatenate(feats), np.concatenate(vals))
            for (f, sel, isel, inv, start) in spans:
                ns, ni = len(sel), len(isel)
                thr_ct[sel] = enc[start + inv[:ns]]
                lo_ct[isel] = enc[start + inv[ns:ns + ni]]
                hi_ct[isel] = enc[start + inv[ns + ni:ns + 2 * ni]]
                fin_ct[f] = enc[start + inv[ns + 2 * ni:]]
        slot = np.where(self._left >= 0, slot_of[np.maximum(self._feat, 0)], -1).astype(np.int32)
        h_s = pl.make_h_s(pub, priv)
        encr = pl.CrtEncryptor(pub, priv, h_s, window=pl.best_window(len(self._leafint)))
        leaf_ct = [encr.encrypt(m) for m in self._leafint]
        model = EncryptedModel(user_id, pm.n_features, pm.n_outputs, int(pub.n), h_s,
                               self._left.copy(), self._right.copy(), slot, thr_ct,
                               self._dleft.copy(), self._leafidx.copy(), self._roots.copy(),
                               self._groups.copy(), leaf_ct, OPE_RANGE_BITS, self.slot_bits,
                               self._kind.copy(), self._cat_ptr.copy(), lo_ct, hi_ct,
                               fin_lo=fin_ct[order, 0].copy(), fin_hi=fin_ct[order, 1].copy())
        return Enrollment(keys, model)
