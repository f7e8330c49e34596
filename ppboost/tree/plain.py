"""The plaintext (numpy) backend: the reference the secure backend is tested against.

It follows xgboost ``hist`` arithmetic closely enough to give the same trees:
float32 gradients and margins, float64 histogram sums, float32 gains
(each child's G^2/(H+lambda) rounded to float32, their float32 sum minus the
float32 root gain, as xgboost's ``CalcSplitGain``), first-best tie-breaking in
the public candidate order. Its "secret" objects are plain numpy arrays;
nothing here is private.

Known difference: where a split's loss_chg is itself rounding noise the two
can disagree. With ``lambda = 0`` a pure node has mathematically zero gain,
and xgboost sometimes splits it on a one-ulp float32 residue that this
backend does not reproduce (cause not pinned down; xgboost builds histograms
per thread and by parent-minus-sibling subtraction, which may change last
bits). In a
randomised sweep against xgboost 3.2 with the final code (500 low-cardinality
configurations with NaNs and categorical columns: no mismatch; 270 continuous
ones: 3 mismatches, all such multi:softprob / lambda = 0 cases) nothing else
differed.

With ``trace=True`` every backend call is recorded as
``(method, input shapes, output shapes)`` in :attr:`PlainBackend.trace`, which
the tests use to show the grower's calls do not depend on the data.
"""
from __future__ import annotations

import functools

import numpy as np

from . import losses, split_rule
from .backend import KIND_BACKWARD, KIND_FORWARD, RevealedTree, TreeBackend, TreeLayout
from .binning import BinMapper, fit_bins
from .params import TreeParams

__all__ = ["PlainBackend", "fit_plain", "prepare_plain"]


def _shape(obj):
    if isinstance(obj, np.ndarray):
        return obj.shape
    if isinstance(obj, (list, tuple)):
        return tuple(_shape(o) for o in obj)
    if isinstance(obj, dict):
        return tuple((k, _shape(v)) for k, v in sorted(obj.items()))
    if isinstance(obj, RevealedTree):
        return ("tree", obj.max_depth)
    return type(obj).__name__


def _traced(fn):
    @functools.wraps(fn)
    def wrapper(self, *args):
        out = fn(self, *args)
        if self.trace is not None:
            self.trace.append((fn.__name__, _shape(args), _shape(out)))
        return out
    return wrapper


class PlainBackend(TreeBackend):
    """numpy backend over binned data held in the clear.

    Parameters
    ----------
    binned : int array (n, m), bin index per entry, missing = ``n_bins[j]``
    y : labels (validated for the objective)
    params : TreeParams
    mapper : the BinMapper that produced ``binned`` (its cuts give split conditions)
    """

    def __init__(self, binned: np.ndarray, y, params: TreeParams, mapper: BinMapper,
                 trace: bool = False):
        binned = np.asarray(binned)
        if binned.ndim != 2 or binned.shape[1] != mapper.n_features:
            raise ValueError(f"binned data has shape {binned.shape}, must be "
                             f"(n, {mapper.n_features})")
        self.params = params
        self.mapper = mapper
        self.layout = TreeLayout(mapper.n_bins, mapper.categorical)
        self.y = losses.check_labels(y, params)
        if self.y.shape[0] != binned.shape[0]:
            raise ValueError(f"{self.y.shape[0]} labels for {binned.shape[0]} rows; "
                             f"must be equal")
        self.n_rows = int(binned.shape[0])
        # column-major so that each feature's bins are contiguous
        self.binned = np.asfortranarray(binned, dtype=np.int32)
        self.trace: list | None = [] if trace else None

    # -- margins and gradients ------------------------------------------------
    @_traced
    def init_margins(self):
        base = losses.base_margin(self.y, self.params)
        return np.tile(base[None, :], (self.n_rows, 1)).astype(np.float32)

    @_traced
    def gradients(self, margins):
        g, h = losses.gradients(margins, self.y, self.params)
        return [(g[:, k].copy(), h[:, k].copy()) for k in range(g.shape[1])]

    # -- tree growing -----------------------------------------------------------
    @_traced
    def root_nodes(self):
        return np.ones((self.n_rows, 1), dtype=np.float64)

    @staticmethod
    def _node_ids(nodes):
        return np.argmax(nodes, axis=1)

    @_traced
    def histograms(self, nodes, gh):
        g, h = gh
        L = nodes.shape[1]
        nid = self._node_ids(nodes)
        g64, h64 = g.astype(np.float64), h.astype(np.float64)
        Gs, Hs, Cs = [], [], []
        for j in range(self.binned.shape[1]):        # one bincount per feature, rows in order
            nbj = int(self.layout.n_bins[j]) + 1
            key = nid * nbj + self.binned[:, j]
            Gs.append(np.bincount(key, weights=g64, minlength=L * nbj).reshape(L, nbj))
            Hs.append(np.bincount(key, weights=h64, minlength=L * nbj).reshape(L, nbj))
            Cs.append(np.bincount(key, minlength=L * nbj).reshape(L, nbj))
        cat = lambda xs: np.concatenate(xs, axis=1) if xs else np.zeros((L, 0))
        # node totals, summed row by row in float64 like xgboost's root sum
        Gt = np.bincount(nid, weights=g64, minlength=L)
        Ht = np.bincount(nid, weights=h64, minlength=L)
        return {"G": cat(Gs), "H": cat(Hs), "count": cat(Cs), "G_node": Gt, "H_node": Ht}

    def _gain(self, G, H):
        return split_rule.gain(G, H, self.params.reg_lambda)

    def _weight(self, G, H):
        return split_rule.weight(G, H, self.params.reg_lambda, self.params.min_child_weight)

    def _candidate_sums(self, hist):
        """(G_L, H_L, G_R, H_R, eligible) for every node x candidate, in table order.

        Filled in place, feature by feature (the candidate table's order, see
        :class:`~ppboost.tree.backend.TreeLayout`); every sum is the same float64
        operation as a per-feature cumsum."""
        lay = self.layout
        G, H, cnt = hist["G"], hist["H"], hist["count"]
        PG, PH = hist["G_node"][:, None], hist["H_node"][:, None]
        L, C = G.shape[0], lay.n_candidates
        GL, HL = np.empty((L, C)), np.empty((L, C))
        GR, HR = np.empty((L, C)), np.empty((L, C))
        elig = np.ones((L, C), dtype=bool)
        offs, coffs = lay.bin_offsets, lay.cand_offsets
        for j in range(lay.n_features):
            nb = int(lay.n_bins[j])
            if nb == 0:
                continue
            o, c = int(offs[j]), int(coffs[j])
            gj, hj = G[:, o:o + nb], H[:, o:o + nb]
            gm, hm = G[:, o + nb:o + nb + 1], H[:, o + nb:o + nb + 1]
            if lay.categorical[j]:
                # per category: (right = {c}, missing left), (right = {c} + missing)
                GR[:, c:c + 2 * nb:2], GR[:, c + 1:c + 2 * nb:2] = gj, gj + gm
                HR[:, c:c + 2 * nb:2], HR[:, c + 1:c + 2 * nb:2] = hj, hj + hm
                np.subtract(PG, GR[:, c:c + 2 * nb], out=GL[:, c:c + 2 * nb])
                np.subtract(PH, HR[:, c:c + 2 * nb], out=HL[:, c:c + 2 * nb])
            else:
                f, b = slice(c, c + nb), slice(c + nb, c + 2 * nb)
                np.cumsum(gj, axis=1, out=GL[:, f])
                np.cumsum(hj, axis=1, out=HL[:, f])
                np.cumsum(gj[:, ::-1], axis=1, out=GR[:, b])    # bins >= i, i = nb-1 .. 0
                np.cumsum(hj[:, ::-1], axis=1, out=HR[:, b])
                np.subtract(PG, GR[:, b], out=GL[:, b])
                np.subtract(PH, HR[:, b], out=HL[:, b])
                np.subtract(PG, GL[:, f], out=GR[:, f])
                np.subtract(PH, HL[:, f], out=HR[:, f])
                elig[:, b] = cnt[:, o + nb:o + nb + 1] > 0
        return GL, HL, GR, HR, elig

    def _best(self, hist):
        """(choice, G_L, H_L) per node: the best valid candidate's index in the table
        (C = do not split) and its left sums (0 where it does not split)."""
        p = self.params
        GL, HL, GR, HR, elig = self._candidate_sums(hist)
        PG, PH = hist["G_node"], hist["H_node"]
        # xgboost: loss_chg = float(float(gain_L + gain_R) - root_gain), all float32
        root_gain = self._gain(PG, PH)
        loss = (self._gain(GL, HL) + self._gain(GR, HR)) - root_gain[:, None]
        valid = elig & (HL >= p.min_child_weight) & (HR >= p.min_child_weight) \
            & np.isfinite(loss)
        L, C = GL.shape
        rows = np.arange(L)
        if C:
            masked = np.where(valid, loss, np.float32(-np.inf))
            best = np.argmax(masked, axis=1)          # first maximum = xgboost tie-break
            bl = masked[rows, best]
            split = split_rule.clears_threshold(bl, p.gamma) \
                & (HL[rows, best] > 0) & (HR[rows, best] > 0)
            choice = np.where(split, best, C)
            return choice, np.where(split, GL[rows, best], 0.0), np.where(split, HL[rows, best], 0.0)
        return np.full(L, C), np.zeros(L), np.zeros(L)

    @_traced
    def choose_splits(self, hist):
        choice, _, _ = self._best(hist)
        L, C = choice.shape[0], self.layout.n_candidates
        onehot = np.zeros((L, C + 1), dtype=np.float64)
        onehot[np.arange(L), choice] = 1.0
        return {"onehot": onehot, "weight": self._weight(hist["G_node"], hist["H_node"])}

    def _choice(self, splits):
        return np.argmax(splits["onehot"], axis=1)

    @_traced
    def route(self, nodes, splits):
        lay = self.layout
        C = lay.n_candidates
        L = nodes.shape[1]
        nid = self._node_ids(nodes)
        ch = self._choice(splits)[nid]                 # candidate index per row
        dummy = ch == C
        chc = np.where(dummy, 0, ch)
        if C == 0:
            left = np.ones(self.n_rows, dtype=bool)
        else:
            feat = lay.cand_feature[chc]
            kind = lay.cand_kind[chc]
            t = lay.cand_bin[chc]
            dl = lay.cand_default_left[chc]
            b = self.binned[np.arange(self.n_rows), feat]
            miss = b == lay.n_bins[feat]
            numeric = (kind == KIND_FORWARD) | (kind == KIND_BACKWARD)
            left = np.where(numeric, b <= t, b != t)
            left = np.where(miss, dl, left)
            left = np.where(dummy, True, left)
        out = np.zeros((self.n_rows, 2 * L), dtype=np.float64)
        out[np.arange(self.n_rows), 2 * nid + (~left).astype(np.int64)] = 1.0
        return out

    @_traced
    def leaf_values(self, nodes, gh):
        g, h = gh
        nid = self._node_ids(nodes)
        L = nodes.shape[1]
        G = np.bincount(nid, weights=g.astype(np.float64), minlength=L)
        H = np.bincount(nid, weights=h.astype(np.float64), minlength=L)
        w = self._weight(G, H)
        # xgboost: float(weight) * float(learning_rate), in float32
        value = (w.astype(np.float32) * np.float32(self.params.eta)).astype(np.float32)
        return {"weight": w, "value": value}

    @_traced
    def update_margins(self, margins, nodes, leaves, group):
        out = margins.copy()
        nid = self._node_ids(nodes)
        out[:, group] = (out[:, group] + leaves["value"][nid]).astype(np.float32)
        return out

    @_traced
    def reveal_tree(self, splits, leaves, group):
        lay = self.layout
        C = lay.n_candidates
        is_split, feat, sbin, dleft, iscat, cond, w = [], [], [], [], [], [], []
        for s in splits:
            ch = self._choice(s)
            sp = ch != C
            chc = np.where(sp, ch, 0) if C else np.zeros_like(ch)
            f = lay.cand_feature[chc] if C else np.zeros_like(ch)
            t = lay.cand_bin[chc] if C else np.zeros_like(ch)
            c = np.zeros(ch.shape[0], dtype=np.float32)
            for i in np.flatnonzero(sp):
                fc = self.mapper.features[f[i]]
                if fc.categorical:
                    c[i] = fc.cuts[t[i]]
                else:
                    c[i] = fc.min_value if t[i] < 0 else fc.cuts[t[i]]
            is_split.append(sp)
            feat.append(np.where(sp, f, 0))
            sbin.append(np.where(sp, t, 0))
            dleft.append(sp & (lay.cand_default_left[chc] if C else False))
            iscat.append(sp & (lay.categorical[f] if C else False))
            cond.append(c)
            w.append(np.asarray(s["weight"], dtype=np.float64))
        return RevealedTree(is_split, feat, sbin, dleft, iscat, cond, w,
                            np.asarray(leaves["weight"], dtype=np.float64), group)


def _split_X(X, categorical):
    """numpy array or pandas DataFrame -> float32 array and categorical flags."""
    try:
        import pandas as pd
    except ImportError:          # pragma: no cover
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        cols, cats = [], []
        for name in X.columns:
            s = X[name]
            if isinstance(s.dtype, pd.CategoricalDtype):
                codes = s.cat.codes.to_numpy().astype(np.float32)
                codes[codes < 0] = np.nan
                cols.append(codes)
                cats.append(True)
            elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
                cols.append(s.to_numpy(dtype=np.float32, na_value=np.nan))
                cats.append(False)
            else:
                raise ValueError(f"column {name!r} has dtype {s.dtype}; columns must be "
                                 f"numeric or pandas 'category'")
        Xa = np.stack(cols, axis=1) if cols else np.zeros((len(X), 0), np.float32)
        if categorical is not None:
            raise ValueError("categorical= is given with a DataFrame; use 'category' "
                             "columns instead")
        return Xa, np.array(cats, dtype=bool)
    Xa = np.asarray(X)
    if Xa.ndim != 2:
        raise ValueError(f"X has ndim == {Xa.ndim}, must be 2")
    if not (np.issubdtype(Xa.dtype, np.number) or Xa.dtype == np.bool_):
        raise ValueError(f"X has dtype {Xa.dtype}, must be numeric")
    cat = np.zeros(Xa.shape[1], bool) if categorical is None else np.asarray(categorical, bool)
    if cat.shape != (Xa.shape[1],):
        raise ValueError(f"categorical has shape {cat.shape}, must be ({Xa.shape[1]},)")
    return Xa.astype(np.float32), cat


def _check_finite(Xa: np.ndarray):
    bad = np.isinf(Xa)
    if np.any(bad):
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise ValueError(f"X column {j} contains +/-inf; features must be finite or NaN "
                         f"(missing)")


def check_onehot(mapper: BinMapper, params: TreeParams):
    """ValueError if a categorical feature has max_cat_to_onehot or more categories
    (only one-vs-rest splits are built)."""
    if params.max_cat_to_onehot is None:
        return
    for j, fc in enumerate(mapper.features):
        if fc.categorical and fc.n_bins >= params.max_cat_to_onehot:
            raise ValueError(
                f"feature {j} has {fc.n_bins} categories and max_cat_to_onehot == "
                f"{params.max_cat_to_onehot}; only one-vs-rest splits are supported, so "
                f"max_cat_to_onehot must be > {fc.n_bins} (or left unset)")


def prepare_plain(params, X, y, categorical=None, trace=False) -> PlainBackend:
    """Validate, bin and build a :class:`PlainBackend`."""
    p = params if isinstance(params, TreeParams) else TreeParams.from_dict(params)
    Xa, cat = _split_X(X, categorical)
    _check_finite(Xa)
    if Xa.shape[0] == 0:
        raise ValueError("X has 0 rows, needs >= 1")
    mapper = fit_bins(Xa, p.max_bin, cat)
    check_onehot(mapper, p)
    return PlainBackend(mapper.transform(Xa), y, p, mapper, trace=trace)


def fit_plain(params, X, y, num_boost_round: int = 10, categorical=None):
    """Train with the plain backend; returns an ``xgboost.Booster``.

    ``X`` is a numpy array (``categorical`` flags optional) or a pandas
    DataFrame ('category' columns are categorical, NaN is missing). The later
    ``ppboost.train`` calls the secure backend the same way.
    """
    from .export import to_booster
    from .grower import boost, reveal
    backend = prepare_plain(params, X, y, categorical)
    trees = reveal(backend, boost(backend, num_boost_round))
    names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
    return to_booster(trees, backend.params, losses.base_score_repr(backend.y, backend.params),
                      n_features=backend.layout.n_features,
                      categorical=backend.layout.categorical, feature_names=names)
