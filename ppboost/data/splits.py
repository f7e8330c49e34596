"""The split classes: horizontal, vertical and mixed splits of the pooled table.

Three kinds of split
--------------------
``HorizontalSplit({name: (X, y), ...})``
    Parties own different rows (patients) with the same columns.  Every party
    holds the labels of its own rows.  Pooled rows are the parties' rows
    concatenated in the dict's order.
``VerticalSplit({name: (X, y) or X, ...})``
    Parties own different columns for the same rows (aligned, same order).
    Exactly one party holds the labels.  Pooled columns are the parties'
    columns concatenated in the dict's order.
``MixedSplit(horizontal={name: (X, y), ...}, vertical={name: (X, rows), ...})``
    Both: the ``horizontal`` parties own rows (with labels, same columns, as in
    a horizontal split) and each ``vertical`` party adds columns for some or
    all of those rows (it holds no labels).  ``rows`` tells which pooled row
    each row of the vertical party's ``X`` belongs to:

    * ``None``: all pooled rows, in pooled order (row ``i`` of ``X`` is
      pooled row ``i``) -- e.g. an insurer with one column for every patient
      of the three hospitals;
    * a 1-D integer array of pooled row indices (distinct), one per row of X;
    * a dict ``{horizontal party name: local row indices}``: the rows of ``X``
      are those parties' rows, in the dict's order (how an insurer would
      naturally line up its records with each hospital's patient list).

    Pooled rows the vertical party does not cover are missing (NaN) in its
    columns.  Pooled columns: the horizontal columns, then each vertical
    party's columns in the dict's order.  The alignment itself (which of the
    insurer's records is which hospital patient) is agreed before ppboost is
    called, e.g. by private set intersection on patient ids; it is outside
    ppboost, and the ``rows`` of a vertical party are not part of
    :meth:`Split.public_info`.

What is public
--------------
The split's public description -- party names, each party's number of rows
and columns, the feature names and types, the category lists and which party
holds labels -- is what every party learns about the others
(docs/threat-model.md, "Public in every training run": shapes and bin
counts are public).  Everything in ``PartyData.X`` and
``PartyData.y`` stays with its owner.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .categories import agree_categories, codes_for, own_categories, to_party_matrix
from .errors import DataValidationError
from .labels import check_objective, parse_labels
from .parse import (
    check_feature_names,
    check_nonempty,
    check_party_count,
    column_names,
    finite_float32,
    parse_features,
    split_entry,
)
from .views import PartyData, PooledData

__all__ = ["Split", "HorizontalSplit", "VerticalSplit", "MixedSplit"]


class Split:
    """Common part of every split: public description, party views, pooled view.

    Not constructed directly: use :class:`HorizontalSplit`,
    :class:`VerticalSplit` or :class:`MixedSplit`.

    Public attributes: ``kind`` ('horizontal' / 'vertical' / 'mixed'),
    ``n_rows``, ``n_features``, ``feature_names``, ``feature_types``,
    ``categories`` (feature name -> tuple of categories, the shared code list),
    ``party_names``, ``label_holders``, ``parties`` (name -> :class:`PartyData`).
    """

    kind = "abstract"

    def __init__(self) -> None:  # pragma: no cover - set up by subclasses
        raise TypeError("use HorizontalSplit, VerticalSplit or MixedSplit")

    # ---- construction helpers used by the subclasses
    def _finish(self, parties: dict, n_rows: int, names: list, types: list,
                categories: dict) -> None:
        self.parties = parties
        self.n_rows = int(n_rows)
        self.feature_names = list(names)
        self.feature_types = list(types)
        self.categories = dict(categories)
        self.n_features = len(names)
        holders = [n for n, p in parties.items() if p.y is not None]
        self.label_holders = holders
        for p in parties.values():
            for a in (p.X, p.feature_indices, p.rows) + ((p.y,) if p.y is not None else ()):
                a.setflags(write=False)

    # ---- public interface
    @property
    def party_names(self) -> list:
        return list(self.parties)

    @property
    def shape(self) -> tuple:
        return (self.n_rows, self.n_features)

    def party(self, name: str) -> PartyData:
        """The view of party ``name``: its own data only."""
        try:
            return self.parties[name]
        except KeyError:
            raise KeyError(f"no party named {name!r}; parties are {self.party_names}") from None

    def validate(self, objective: str, num_class: int | None = None) -> Split:
        """Check every label holder's labels against ``objective``; returns self.

        Call before anything is shared (``ppboost.train`` does).  Each party's
        check only looks at its own labels (:meth:`PartyData.validate_labels`).
        """
        check_objective(objective, num_class)
        for p in self.parties.values():
            p.validate_labels(objective, num_class)
        return self

    def public_info(self) -> dict:
        """What every party knows about the split (shapes, names, types, categories)."""
        return {
            "kind": self.kind,
            "n_rows": self.n_rows,
            "n_features": self.n_features,
            "feature_names": list(self.feature_names),
            "feature_types": list(self.feature_types),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "label_holders": list(self.label_holders),
            "parties": {n: {"n_rows": p.n_rows, "n_features": p.n_features,
                            "feature_indices": p.feature_indices.tolist(),
                            "has_labels": p.has_labels}
                        for n, p in self.parties.items()},
        }

    def pooled(self) -> PooledData:
        """The pooled X, y as plain xgboost would see them.

        FOR TESTS, BENCHMARKS AND THE DEMO ONLY (to compare with plain
        xgboost): it puts every party's data in one place, which is exactly
        what a real deployment must never do.  Rows a party does not cover
        (mixed split) are NaN in its columns.
        """
        X = np.full((self.n_rows, self.n_features), np.nan, dtype=np.float32)
        y = np.full(self.n_rows, np.nan, dtype=np.float32)
        for p in self.parties.values():
            X[np.ix_(p.rows, p.feature_indices)] = p.X
            if p.y is not None:
                y[p.rows] = p.y
        assert not np.isnan(y).any(), "internal error: a pooled row has no label"
        return PooledData(X, y, list(self.feature_names), list(self.feature_types),
                          dict(self.categories))

    def encode(self, X) -> np.ndarray:
        """Encode new data with the pooled columns (e.g. a test set) like :meth:`pooled`.

        ``X`` is a DataFrame with the split's column names (categorical columns
        as ``category`` dtype or plain labels; they are mapped to the shared
        codes), or a numeric array already in the pooled encoding.  Returns a
        float32 matrix with NaN for missing.
        """
        import pandas as pd

        m = self.n_features
        if isinstance(X, pd.DataFrame):
            missing = [n for n in self.feature_names if n not in X.columns]
            if missing:
                raise DataValidationError(
                    f"X lacks column(s) {missing}; expected the columns {self.feature_names}")
            out = np.empty((len(X), m), dtype=np.float32)
            for j, (n, t) in enumerate(zip(self.feature_names, self.feature_types)):
                col = X[n]
                if t == "c":
                    out[:, j] = codes_for(col.array, self.categories[n], "X", n)
                else:
                    if not (pd.api.types.is_numeric_dtype(col.dtype)
                            or pd.api.types.is_bool_dtype(col.dtype)) \
                            or isinstance(col.dtype, pd.CategoricalDtype):
                        raise DataValidationError(
                            f"X: column {n!r} has dtype {col.dtype}; expected a numeric dtype")
                    out[:, j] = finite_float32(
                        col.to_numpy(dtype=np.float64, na_value=np.nan), "X", f"column {n!r}")
            return out
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != m:
                raise DataValidationError(
                    f"X has shape {X.shape}; expected (n_rows, {m})")
            if X.dtype.kind not in "biuf":
                raise DataValidationError(f"X has dtype {X.dtype}; expected a numeric array")
            out = finite_float32(X, "X", "X")
            for j, (n, t) in enumerate(zip(self.feature_names, self.feature_types)):
                if t == "c":
                    v = out[:, j]
                    ok = np.isnan(v) | ((v >= 0) & (v < len(self.categories[n])) & (v == np.floor(v)))
                    if not ok.all():
                        raise DataValidationError(
                            f"X: column {n!r} holds {v[~ok][0]:g}, not a category code in "
                            f"[0, {len(self.categories[n]) - 1}]")
            return out
        raise DataValidationError(
            f"X is a {type(X).__name__}; expected a numpy.ndarray or a pandas.DataFrame")

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {p.n_rows}x{p.n_features}{' +y' if p.has_labels else ''}"
                          for n, p in self.parties.items())
        return f"{type(self).__name__}({self.n_rows} rows x {self.n_features} features; {parts})"


def _parse_horizontal(parties: Mapping, where: str):
    """Parse the row-owning parties: same columns; every party holds labels."""
    parsed, labels = [], []
    for name, entry in parties.items():
        X, y = split_entry(name, entry, labels_required=True)
        p = parse_features(name, X)
        check_nonempty(p)
        labels.append(parse_labels(name, y, p.n_rows))
        parsed.append(p)
    ref = parsed[0]
    for p in parsed[1:]:
        if len(p.types) != len(ref.types):
            raise DataValidationError(
                f"{where}: party {p.party!r} has {len(p.types)} features but party {ref.party!r} "
                f"has {len(ref.types)}; parties holding rows must have the same columns")
    named = [p for p in parsed if p.names is not None]
    names = named[0].names if named else [f"f{j}" for j in range(len(ref.types))]
    for p in named[1:]:
        if p.names != names:
            raise DataValidationError(
                f"{where}: feature names differ: party {p.party!r} has {p.names} but party "
                f"{named[0].party!r} has {names}; parties holding rows must have the same "
                "columns in the same order")
    for p in parsed:
        if p.types != ref.types:
            j = next(j for j in range(len(p.types)) if p.types[j] != ref.types[j])
            kind = {"q": "numeric", "c": "categorical"}
            raise DataValidationError(
                f"{where}: column {names[j]!r} is {kind[p.types[j]]} at party {p.party!r} but "
                f"{kind[ref.types[j]]} at party {ref.party!r}; dtypes must agree across parties")
    return parsed, labels, names


class HorizontalSplit(Split):
    """Parties own different rows with the same columns; each holds its rows' labels.

    ``HorizontalSplit({"hospital_a": (Xa, ya), "hospital_b": (Xb, yb)},
    categories=None)``.  Pooled rows are the parties' rows in dict order.
    Inputs: :mod:`ppboost.data.parse`; categories: :mod:`ppboost.data.categories`;
    what is public: this module's docstring.
    """

    kind = "horizontal"

    def __init__(self, parties: Mapping, *, categories: Mapping | None = None) -> None:
        check_party_count(parties, "HorizontalSplit", minimum=2)
        parsed, labels, names = _parse_horizontal(parties, "horizontal split")
        check_feature_names(names)
        shared = agree_categories(parsed, [names] * len(parsed), categories)
        views, start = {}, 0
        fidx = np.arange(len(names), dtype=np.int64)
        for p, y in zip(parsed, labels):
            rows = np.arange(start, start + p.n_rows, dtype=np.int64)
            start += p.n_rows
            views[p.party] = PartyData(p.party, to_party_matrix(p, names, shared), y,
                                       fidx.copy(), rows, tuple(names), tuple(p.types),
                                       own_categories(names, p.types, shared))
        self._finish(views, start, names, parsed[0].types,
                     {n: shared[n] for n, t in zip(names, parsed[0].types) if t == "c"})


class VerticalSplit(Split):
    """Parties own different columns for the same rows; exactly one holds the labels.

    ``VerticalSplit({"hospital": (X1, y), "insurer": X2}, categories=None)``:
    rows are aligned (row i is the same individual at every party) and every
    party has the same number of rows.  Pooled columns are the parties'
    columns in dict order.  Inputs: :mod:`ppboost.data.parse`.
    """

    kind = "vertical"

    def __init__(self, parties: Mapping, *, categories: Mapping | None = None) -> None:
        check_party_count(parties, "VerticalSplit", minimum=2)
        parsed, ys = [], []
        for name, entry in parties.items():
            X, y = split_entry(name, entry, labels_required=False)
            p = parse_features(name, X)
            check_nonempty(p)
            parsed.append(p)
            ys.append(y)
        ref = parsed[0]
        for p in parsed[1:]:
            if p.n_rows != ref.n_rows:
                raise DataValidationError(
                    f"vertical split: party {p.party!r} has {p.n_rows} rows but party "
                    f"{ref.party!r} has {ref.n_rows}; in a vertical split every party holds the "
                    "same (aligned) rows")
        holders = [p.party for p, y in zip(parsed, ys) if y is not None]
        if len(holders) == 0:
            raise DataValidationError(
                "vertical split: no party holds labels; exactly one party must give (X, y)")
        if len(holders) > 1:
            raise DataValidationError(
                f"vertical split: {len(holders)} parties hold labels ({', '.join(holders)}); "
                "exactly one party must give (X, y), the others give X only")
        labels = [None if y is None else parse_labels(p.party, y, p.n_rows)
                  for p, y in zip(parsed, ys)]
        names_pp = column_names(parsed, 0)
        names = [n for ns in names_pp for n in ns]
        check_feature_names(names)
        shared = agree_categories(parsed, names_pp, categories)
        views, start = {}, 0
        rows = np.arange(ref.n_rows, dtype=np.int64)
        types = []
        for p, y, ns in zip(parsed, labels, names_pp):
            k = len(p.types)
            views[p.party] = PartyData(p.party, to_party_matrix(p, ns, shared), y,
                                       np.arange(start, start + k, dtype=np.int64), rows.copy(),
                                       tuple(ns), tuple(p.types),
                                       own_categories(ns, p.types, shared))
            types += p.types
            start += k
        self._finish(views, ref.n_rows, names, types,
                     {n: shared[n] for n, t in zip(names, types) if t == "c"})


class MixedSplit(Split):
    """Some parties own rows (with labels); others add columns for some or all of them.

    ``MixedSplit(horizontal={"hospital_a": (Xa, ya), ...},
    vertical={"insurer": (X_ins, rows)}, categories=None)``

    - ``horizontal``: at least one party; same rules as :class:`HorizontalSplit`
      (same columns, each party holds its rows' labels).  Pooled rows are these
      parties' rows in dict order.
    - ``vertical``: at least one party, each giving ``(X, rows)`` or just ``X``
      (meaning ``rows=None``).  Vertical parties hold no labels.  ``rows``:
      ``None`` (all pooled rows, in order), a 1-D int array of distinct pooled
      row indices (one per row of X), or a dict ``{horizontal party: local row
      indices}`` (X's rows are those, in dict order).  Pooled rows it does not
      cover are missing (NaN) in its columns.
    - at least 2 parties in total.

    Example (the demo): 3 hospitals hold their own patients; an insurer holds
    one extra column (reimbursements for past medication) for all of them:
    ``MixedSplit(horizontal={"h1": (X1, y1), "h2": (X2, y2), "h3": (X3, y3)},
    vertical={"insurer": (X_ins, None)})``.
    """

    kind = "mixed"

    def __init__(self, horizontal: Mapping, vertical: Mapping, *,
                 categories: Mapping | None = None) -> None:
        check_party_count(horizontal, "MixedSplit(horizontal=...)")
        check_party_count(vertical, "MixedSplit(vertical=...)")
        if len(horizontal) == 0:
            raise DataValidationError(
                "MixedSplit: horizontal is empty; at least one party must hold rows with labels")
        if len(vertical) == 0:
            raise DataValidationError(
                "MixedSplit: vertical is empty; use HorizontalSplit when no party adds columns")
        both = sorted(set(horizontal) & set(vertical))
        if both:
            raise DataValidationError(
                f"MixedSplit: party name(s) {both} appear in both horizontal and vertical")
        if len(horizontal) + len(vertical) < 2:  # pragma: no cover - implied by the above
            raise DataValidationError("MixedSplit: at least 2 parties are needed")
        hparsed, hlabels, hnames = _parse_horizontal(horizontal, "mixed split (horizontal)")
        offsets, start = {}, 0
        for p in hparsed:
            offsets[p.party] = (start, p.n_rows)
            start += p.n_rows
        n_rows = start

        vparsed, vrows = [], []
        for name, entry in vertical.items():
            if isinstance(entry, tuple):
                if len(entry) != 2:
                    raise DataValidationError(
                        f"party {name!r}: expected (X, rows) or X, got a tuple of {len(entry)} "
                        "items")
                X, rows = entry
            else:
                X, rows = entry, None
            p = parse_features(name, X)
            check_nonempty(p)
            vparsed.append(p)
            vrows.append(_resolve_rows(name, rows, p.n_rows, n_rows, offsets))

        names_pp = [hnames] + column_names(vparsed, len(hnames))
        names = [n for ns in names_pp for n in ns]
        check_feature_names(names)
        shared = agree_categories(hparsed + vparsed,
                                   [hnames] * len(hparsed) + names_pp[1:], categories)
        views = {}
        hidx = np.arange(len(hnames), dtype=np.int64)
        for p, y in zip(hparsed, hlabels):
            s, k = offsets[p.party]
            views[p.party] = PartyData(p.party, to_party_matrix(p, hnames, shared), y, hidx.copy(),
                                       np.arange(s, s + k, dtype=np.int64), tuple(hnames),
                                       tuple(p.types), own_categories(hnames, p.types, shared))
        types = list(hparsed[0].types)
        start = len(hnames)
        for p, rows, ns in zip(vparsed, vrows, names_pp[1:]):
            k = len(p.types)
            views[p.party] = PartyData(p.party, to_party_matrix(p, ns, shared), None,
                                       np.arange(start, start + k, dtype=np.int64), rows,
                                       tuple(ns), tuple(p.types),
                                       own_categories(ns, p.types, shared))
            types += p.types
            start += k
        self._finish(views, n_rows, names, types,
                     {n: shared[n] for n, t in zip(names, types) if t == "c"})


def _resolve_rows(party: str, rows, n_x: int, n_rows: int, offsets: dict) -> np.ndarray:
    """A vertical party's ``rows`` argument -> pooled row index of each row of its X."""
    if rows is None:
        if n_x != n_rows:
            raise DataValidationError(
                f"party {party!r}: X has {n_x} rows but the horizontal parties hold {n_rows}; "
                "with rows=None it must cover every pooled row, otherwise give rows=")
        return np.arange(n_rows, dtype=np.int64)
    if isinstance(rows, Mapping):
        parts = []
        for h, local in rows.items():
            if h not in offsets:
                raise DataValidationError(
                    f"party {party!r}: rows names {h!r}, which is not a horizontal party "
                    f"({', '.join(offsets)})")
            s, k = offsets[h]
            loc = _int_index(party, local, f"rows[{h!r}]")
            if loc.size and (loc.min() < 0 or loc.max() >= k):
                raise DataValidationError(
                    f"party {party!r}: rows[{h!r}] holds index {int(loc[(loc < 0) | (loc >= k)][0])}"
                    f", outside [0, {k - 1}] (party {h!r} has {k} rows)")
            parts.append(loc + s)
        idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    else:
        idx = _int_index(party, rows, "rows")
        if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
            raise DataValidationError(
                f"party {party!r}: rows holds index {int(idx[(idx < 0) | (idx >= n_rows)][0])}, "
                f"outside [0, {n_rows - 1}] (the pooled rows of the horizontal parties)")
    if idx.shape[0] != n_x:
        raise DataValidationError(
            f"party {party!r}: rows gives {idx.shape[0]} row indices for {n_x} rows of X; "
            "expected one pooled row index per row")
    if np.unique(idx).shape[0] != idx.shape[0]:
        raise DataValidationError(f"party {party!r}: rows holds duplicate row indices")
    return idx.astype(np.int64)


def _int_index(party: str, v, what: str) -> np.ndarray:
    arr = np.asarray(v)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise DataValidationError(
            f"party {party!r}: {what} must be a 1-D array of integer row indices, got "
            f"dtype {arr.dtype} and shape {arr.shape}")
    return arr.astype(np.int64)
