"""The trained model while it is still secret-shared, and how its shares travel.

:class:`SecretSharedModel` holds every party's shares of every tree, as the
analyst received them; :meth:`SecretSharedModel.reveal` is the analyst's
step.  :func:`pack_shares` / :func:`unpack_shares` turn one party's shares
into one message (an ``.npz`` archive without pickles, so a peer's message
can never run code) and back.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormatError
from ..tree.params import TreeParams

__all__ = ["SecretSharedModel", "pack_shares", "unpack_shares"]


def pack_shares(trees: list, base: tuple, layout: tuple | None = None) -> bytes:
    """One party's :class:`~ppboost.tree.secure.SharedTree` list and intercept share -> bytes
    (with the public ``layout`` an analyst needs to open them: ``(n_bins, categorical,
    has_missing)``, the last one None for every feature)."""
    arrays, meta = {}, {"trees": [], "base_bits": int(base[1])}
    if layout is not None:
        n_bins, categorical, has_missing = layout
        arrays["n_bins"] = np.asarray(n_bins, np.int64)
        arrays["categorical"] = np.asarray(categorical, bool)
        if has_missing is not None:
            arrays["has_missing"] = np.asarray(has_missing, bool)
    for i, t in enumerate(trees):
        meta["trees"].append({"group": int(t.group), "levels": len(t.onehot),
                              "weight_bits": int(t.weight_bits)})
        for k in range(len(t.onehot)):
            arrays[f"t{i}_onehot{k}"] = np.asarray(t.onehot[k])
            arrays[f"t{i}_cond{k}"] = np.asarray(t.cond[k])
            arrays[f"t{i}_weight{k}"] = np.asarray(t.weight[k])
        arrays[f"t{i}_leaf"] = np.asarray(t.leaf)
    arrays["base"] = np.asarray(base[0], np.uint64)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def unpack_shares(data: bytes, who: str = "a party") -> tuple:
    """Inverse of :func:`pack_shares`: ``(trees, (base_share, bits), layout)`` with
    ``layout`` = ``(n_bins, categorical, has_missing or None)`` or None."""
    from ..tree.secure import SharedTree
    try:
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            trees = []
            for i, t in enumerate(meta["trees"]):
                L = int(t["levels"])
                trees.append(SharedTree(int(t["group"]), [z[f"t{i}_onehot{k}"] for k in range(L)],
                                        [z[f"t{i}_cond{k}"] for k in range(L)],
                                        [z[f"t{i}_weight{k}"] for k in range(L)],
                                        z[f"t{i}_leaf"], int(t["weight_bits"])))
            layout = None if "n_bins" not in z.files else (
                z["n_bins"], z["categorical"],
                z["has_missing"] if "has_missing" in z.files else None)
            return trees, (z["base"], int(meta["base_bits"])), layout
    except (ValueError, KeyError, OSError) as exc:
        raise FormatError(f"the model shares from {who} are malformed: {exc}") from None


@dataclass
class SecretSharedModel:
    """The trained model, still secret-shared: every party's shares, as the analyst holds them.

    ``shares[p]`` holds party p's :class:`~ppboost.tree.secure.SharedTree`
    shares (and ``base_shares[p]`` its share of the intercept); none of them
    alone says anything about the model.  ``stats`` is per party
    (``stats["parties"][name]``: bytes_sent, bytes_recv, rounds, messages,
    online_seconds, setup_seconds, dealer_expand_seconds, per_tree,
    transcript, setup_messages, delivery_bytes) plus ``stats["dealer"]``
    (offline_seconds: time the dealer spent generating material; bytes_sent,
    requests, transcript, ...).  ``online_seconds`` is a party's wall time
    minus the time it spent getting dealer material (expanding its share and
    waiting for the dealer's messages).  With ``offline="overlap"`` the
    dealer works while the parties do, so on a machine with fewer cores than
    participants it is an upper bound; ``offline="before"`` separates the
    phases.
    """

    params: TreeParams
    party_names: list
    n_bins: np.ndarray
    categorical: np.ndarray
    feature_names: list
    shares: list
    base_shares: list
    stats: dict = field(default_factory=dict)
    analyst: str | None = None
    #: differential privacy: the booster attributes of :meth:`ppboost.dp.DPPlan.attributes`
    dp: dict | None = None
    #: the public missing flags of the candidate table (``TreeLayout.has_missing``)
    has_missing: np.ndarray | None = None

    @property
    def num_trees(self) -> int:
        return len(self.shares[0]) if self.shares else 0

    def reveal(self):
        """Open the trees to the analyst: sum shares, prune dummy splits, export.

        Returns an ``xgboost.Booster`` (predict / save_model / load in plain
        xgboost all work; cover and gain are 0).  A differentially private
        model carries ``attr("dp_epsilon")`` (the accountant's spend),
        ``"dp_delta"``, ``"dp_mechanism"`` and ``"dp_params"`` (JSON).
        """
        from ..crypto import fixed
        from ..tree.backend import TreeLayout
        from ..tree.export import to_booster
        from ..tree.secure import open_tree
        layout = TreeLayout(self.n_bins, self.categorical, self.has_missing)
        trees = [open_tree([s[i] for s in self.shares], layout) for i in range(self.num_trees)]
        bits = self.base_shares[0][1]
        tot = None
        for v, _ in self.base_shares:
            v = np.asarray(v, np.uint64)
            tot = v.copy() if tot is None else tot + v
        base = fixed.decode(tot, bits).astype(np.float32)
        booster = to_booster(trees, self.params, base, n_features=len(self.n_bins),
                             categorical=self.categorical)
        default = [f"f{j}" for j in range(len(self.n_bins))]
        if self.feature_names and list(self.feature_names) != default:
            booster.feature_names = list(self.feature_names)   # DataFrame column names
            booster.feature_types = ["c" if c else "q" for c in self.categorical]
        if self.dp:
            booster.set_attr(**self.dp)
        return booster
