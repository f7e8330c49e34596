"""How the data is split across parties: horizontal, vertical and mixed splits.

This is the user-facing data layer (L4, next to ``training.py``).  A split
object takes each party's own table, checks everything that can be checked
*before anything is shared*, and then gives every party a view of its own data
only, so that the training layer can run each party with nothing else:

>>> split = HorizontalSplit({"hospital_a": (Xa, ya), "hospital_b": (Xb, yb)})
>>> split.validate("binary:logistic")          # label range, before any sharing
>>> view = split.party("hospital_a")           # PartyData: X, y, feature_indices, rows
>>> pooled = split.pooled()                    # tests / benchmarks / demo ONLY

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

Feature matrices
----------------
``X`` is a numpy array (numeric dtype; every column quantitative) or a pandas
DataFrame.  In a DataFrame, numeric and boolean columns (including pandas'
nullable ``Int64``/``Float64``/``boolean``) are quantitative features, columns
of dtype ``category`` are categorical features, and any other column (object,
string, datetime, ...) is rejected.  NaN / ``pd.NA`` means missing.  Infinite
values are rejected (xgboost rejects them too).  Every party's view holds its
features as a float32 matrix with NaN for missing and the *shared category
code* for categorical values.

Feature names come from DataFrame columns; numpy columns get xgboost's
default names ``f0, f1, ...`` by global column index (in a horizontal split a
numpy party takes the names of a DataFrame party, if there is one).

How parties agree on category codes without revealing their data
-----------------------------------------------------------------
A categorical column's code list is *schema*, like the column names, and is
fixed before any data is shared; nothing data-dependent (which categories a
party actually has, or how often) is exchanged to agree on it:

* recommended: pass it explicitly, ``categories={"region": ["north", ...]}``,
  e.g. from the data dictionary the parties already agreed on;
* otherwise it is taken from the ``pd.CategoricalDtype`` each party declares
  (its declared domain, not its observed values).  All parties holding that
  column must declare the same set of categories, or the constructor raises
  and asks for ``categories=``; the shared order is that of the first party
  (in dict order) holding the column.

A party should declare the full domain (``pd.Categorical(v,
categories=[...all regions...])``), not only the values it observed; a
declared domain is public.  The number of categories is public anyway (it is
the column's bin count).  Values outside the shared list are an error.  The
code of a category is its index in the shared list, in every party's view and
in :meth:`pooled`, so xgboost trained on ``pooled()`` sees the same codes.

Labels
------
Labels are 1-D (a numpy array, list or pandas Series) with one value per row
of the party's X; they must be finite numbers (NaN labels are rejected at
construction).  The range check needs the objective, so it is done by
:meth:`validate` (``reg:squarederror``: any finite value; ``binary:logistic``:
within [0, 1]; ``multi:softprob``: integers in ``[0, num_class)``).  Each
label holder can run the same check on its own labels
(:meth:`PartyData.validate_labels`), so in a multi-process deployment nobody
needs to see another party's labels to validate.

What is public
--------------
The split's public description -- party names, each party's number of rows
and columns, the feature names and types, the category lists and which party
holds labels -- is what every party learns about the others (DESIGN.md:
shapes and bin counts are public).  Everything in ``PartyData.X`` and
``PartyData.y`` stays with its owner.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

__all__ = [
    "SUPPORTED_OBJECTIVES", "DataValidationError", "PartyData", "PooledData",
    "Split", "HorizontalSplit", "VerticalSplit", "MixedSplit",
    "validate_labels",
]

SUPPORTED_OBJECTIVES = ("reg:squarederror", "binary:logistic", "multi:softprob")

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_RESERVED = ("dealer",)
_BAD_FEATURE_CHARS = ("[", "]", "<")  # xgboost refuses these in feature names


class DataValidationError(ValueError):
    """Bad input data: raised before anything is shared with another party."""


# --------------------------------------------------------------------------
# per-party view and pooled view


@dataclass(frozen=True, eq=False)
class PartyData:
    """One party's own data, and where it sits in the pooled table.

    Attributes
    ----------
    name : str
        The party's name.
    X : np.ndarray, float32, shape (len(rows), len(feature_indices))
        Its features: NaN for missing, shared category codes for categorical
        columns.
    y : np.ndarray of float32, or None
        Its labels (one per row of X), or None if it holds no labels.
    feature_indices : np.ndarray of int64
        The global (pooled) column index of each column of X.
    rows : np.ndarray of int64
        The global (pooled) row index of each row of X.
    feature_names, feature_types : tuple of str
        Names and xgboost types ('q' quantitative, 'c' categorical) of X's
        columns.
    categories : dict
        For each of its categorical columns, the shared code list (public
        schema): code k in X means ``categories[name][k]``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray | None
    feature_indices: np.ndarray
    rows: np.ndarray
    feature_names: tuple
    feature_types: tuple
    categories: dict = field(default_factory=dict)

    @property
    def has_labels(self) -> bool:
        return self.y is not None

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def validate_labels(self, objective: str, num_class: int | None = None) -> None:
        """Check this party's own labels against ``objective`` (local, nothing shared)."""
        if self.y is not None:
            validate_labels(self.y, objective, num_class, where=f"party {self.name!r}")

    def __repr__(self) -> str:
        return (f"PartyData({self.name!r}, rows={self.n_rows}, features={self.n_features}, "
                f"labels={'yes' if self.has_labels else 'no'})")


@dataclass(frozen=True, eq=False)
class PooledData:
    """The pooled table as plain xgboost would see it.

    FOR TESTS, BENCHMARKS AND THE DEMO ONLY: in a real deployment nobody may
    hold this -- pooling the parties' data is exactly what ppboost avoids.

    ``X`` is float32 with NaN for missing and category codes for categorical
    columns; ``feature_types`` marks them 'c' for
    ``xgboost.DMatrix(..., feature_types=..., enable_categorical=True)``
    (see :meth:`dmatrix`).
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    feature_types: list
    categories: dict = field(default_factory=dict)

    def dmatrix(self, **kwargs):
        """``xgboost.DMatrix`` of the pooled data, categorical columns enabled."""
        import xgboost  # imported lazily: the data layer does not need it otherwise

        return xgboost.DMatrix(self.X, label=self.y, feature_names=list(self.feature_names),
                               feature_types=list(self.feature_types),
                               enable_categorical=True, **kwargs)

    def frame(self):
        """The pooled features as a pandas DataFrame (categorical columns as ``category``)."""
        return _matrix_to_frame(self.X, self.feature_names, self.feature_types, self.categories)


# --------------------------------------------------------------------------
# label checks


def _check_objective(objective: str, num_class) -> int | None:
    if objective not in SUPPORTED_OBJECTIVES:
        raise DataValidationError(
            f"objective {objective!r} is not supported; expected one of "
            f"{', '.join(SUPPORTED_OBJECTIVES)}")
    if objective == "multi:softprob":
        if num_class is None:
            raise DataValidationError("objective 'multi:softprob' needs num_class (an int >= 2)")
        if isinstance(num_class, bool) or not isinstance(num_class, (int, np.integer)) \
                or num_class < 2:
            raise DataValidationError(f"num_class == {num_class!r}, must be an int >= 2")
        return int(num_class)
    if num_class is not None and num_class != 1:
        raise DataValidationError(
            f"num_class == {num_class!r} given with objective {objective!r}; num_class is "
            "only used with 'multi:softprob'")
    return None


def _check_finite_labels(y: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{where}: {int(bad.sum())} label(s) are NaN or infinite (first at row {i}); "
            "labels must be finite numbers")


def validate_labels(y: np.ndarray, objective: str, num_class: int | None = None,
                    where: str = "labels") -> None:
    """Check that labels ``y`` are valid for ``objective`` (raises DataValidationError).

    - ``reg:squarederror``: finite;
    - ``binary:logistic``: within [0, 1] (as xgboost requires);
    - ``multi:softprob``: integers in ``[0, num_class)``.
    """
    num_class = _check_objective(objective, num_class)
    y = np.asarray(y, dtype=np.float64)
    _check_finite_labels(y, where)
    if objective == "binary:logistic":
        bad = (y < 0) | (y > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{where}: label {y[i]:g} at row {i} is outside [0, 1] "
                f"({int(bad.sum())} such label(s)); objective 'binary:logistic' needs labels "
                "in [0, 1]")
    elif objective == "multi:softprob":
        bad = (y < 0) | (y >= num_class) | (y != np.floor(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{where}: label {y[i]:g} at row {i} is not a class index "
                f"({int(bad.sum())} such label(s)); objective 'multi:softprob' with "
                f"num_class={num_class} needs integer labels in [0, {num_class - 1}]")


# --------------------------------------------------------------------------
# parsing one party's input


@dataclass
class _Parsed:
    """One party's features before the category codes are agreed."""

    party: str
    n_rows: int
    names: list | None          # None for numpy input (names assigned later)
    types: list                 # 'q' / 'c'
    numeric: dict               # column position -> float32 values
    raw_cat: dict               # column position -> pandas Categorical
    declared: dict              # column position -> tuple of declared categories
    matrix: np.ndarray | None = None  # numpy input: the whole float32 matrix at once


def _check_party_name(name) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DataValidationError(
            f"party name {name!r} is invalid; expected a non-empty str of letters, digits, "
            "'_', '.', '-' (not starting with '.' or '-')")
    if name in _RESERVED:
        raise DataValidationError(f"party name {name!r} is reserved for the dealer; rename the party")


def _parse_features(party: str, X) -> _Parsed:
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        names = []
        for c in X.columns:
            if not isinstance(c, str):
                raise DataValidationError(
                    f"party {party!r}: column name {c!r} is a {type(c).__name__}; "
                    "column names must be str")
            names.append(c)
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise DataValidationError(f"party {party!r}: duplicate column name(s) {dup}")
        types, numeric, raw_cat, declared = [], {}, {}, {}
        for j, c in enumerate(names):
            col = X.iloc[:, j]
            dt = col.dtype
            if isinstance(dt, pd.CategoricalDtype):
                types.append("c")
                raw_cat[j] = col.array
                declared[j] = tuple(dt.categories.tolist())
            elif pd.api.types.is_bool_dtype(dt) or (
                    pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_complex_dtype(dt)):
                types.append("q")
                numeric[j] = _finite_float32(
                    col.to_numpy(dtype=np.float64, na_value=np.nan), party, f"column {c!r}")
            else:
                raise DataValidationError(
                    f"party {party!r}: column {c!r} has dtype {dt}; expected a numeric, boolean "
                    "or 'category' dtype (convert text columns to pandas 'category' to use them "
                    "as categorical features, or drop them)")
        return _Parsed(party, len(X), names, types, numeric, raw_cat, declared)

    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise DataValidationError(
                f"party {party!r}: X has {X.ndim} dimension(s), shape {X.shape}; expected a 2-D "
                "array (n_rows, n_features)")
        if X.dtype.kind not in "biuf":
            raise DataValidationError(
                f"party {party!r}: X has dtype {X.dtype}; expected a numeric array (use a pandas "
                "DataFrame with 'category' columns for categorical features)")
        vals = _finite_float32(X, party, "X")
        return _Parsed(party, X.shape[0], None, ["q"] * X.shape[1], {}, {}, {}, matrix=vals)

    raise DataValidationError(
        f"party {party!r}: features are a {type(X).__name__}; expected a numpy.ndarray or a "
        "pandas.DataFrame")


def _finite_float32(vals: np.ndarray, party: str, what: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(vals).astype(np.float32)  # beyond float32 range -> inf, caught below
    bad = np.isinf(out)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise DataValidationError(
            f"party {party!r}: {what} has {int(bad.sum())} infinite value(s) (or beyond float32 "
            f"range), first at {tuple(int(i) for i in idx)}; use NaN for missing values")
    return out


def _parse_labels(party: str, y, n_rows: int) -> np.ndarray:
    import pandas as pd

    if isinstance(y, (pd.Series, pd.DataFrame)):
        if isinstance(y, pd.DataFrame):
            if y.shape[1] != 1:
                raise DataValidationError(
                    f"party {party!r}: labels have shape {y.shape}; expected one label per row")
            y = y.iloc[:, 0]
        if not (pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)):
            raise DataValidationError(
                f"party {party!r}: labels have dtype {y.dtype}; expected numbers")
        arr = y.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            arr = np.asarray(y)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise DataValidationError(f"party {party!r}: labels cannot be read: {exc}") from exc
        if arr.dtype.kind not in "biuf":
            raise DataValidationError(
                f"party {party!r}: labels have dtype {arr.dtype}; expected numbers")
        arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataValidationError(
            f"party {party!r}: labels have shape {arr.shape}; expected a 1-D array of "
            f"{n_rows} labels")
    if arr.shape[0] != n_rows:
        raise DataValidationError(
            f"party {party!r}: {arr.shape[0]} labels for {n_rows} rows of X; expected one label "
            "per row")
    _check_finite_labels(arr, f"party {party!r}")
    return arr.astype(np.float32)


def _split_entry(party: str, entry, labels_required: bool):
    """(X, y) / X -> (X, y or None)."""
    if isinstance(entry, tuple):
        if len(entry) != 2:
            raise DataValidationError(
                f"party {party!r}: expected (X, y) or X, got a tuple of {len(entry)} items")
        X, y = entry
    else:
        X, y = entry, None
    if y is None and labels_required:
        raise DataValidationError(
            f"party {party!r} has no labels; in a horizontal split every party gives (X, y)")
    return X, y


def _check_nonempty(p: _Parsed) -> None:
    if p.n_rows == 0 or len(p.types) == 0:
        raise DataValidationError(
            f"party {p.party!r} is empty: X has shape ({p.n_rows}, {len(p.types)}); every party "
            "must hold at least one row and one feature")


def _check_feature_names(names: list) -> None:
    for n in names:
        if any(ch in n for ch in _BAD_FEATURE_CHARS) or n == "":
            raise DataValidationError(
                f"feature name {n!r} is invalid: it must be non-empty and must not contain "
                "'[', ']' or '<' (xgboost refuses them)")
    seen = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    dup = sorted(n for n, k in seen.items() if k > 1)
    if dup:
        raise DataValidationError(
            f"duplicate feature name(s) {dup} across parties; every column of the pooled table "
            "needs its own name")


def _matrix_to_frame(X, names, types, categories):
    import pandas as pd

    cols = {}
    for j, (n, t) in enumerate(zip(names, types)):
        if t == "c":
            cats = list(categories[n])
            v = X[:, j]
            codes = np.where(np.isnan(v), -1, np.nan_to_num(v, nan=-1)).astype(np.int64)
            cols[n] = pd.Categorical.from_codes(codes, categories=cats)
        else:
            cols[n] = X[:, j]
    return pd.DataFrame(cols, columns=list(names))


# --------------------------------------------------------------------------
# the split classes


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

    def validate(self, objective: str, num_class: int | None = None) -> "Split":
        """Check every label holder's labels against ``objective``; returns self.

        Call before anything is shared (``ppboost.train`` does).  Each party's
        check only looks at its own labels (:meth:`PartyData.validate_labels`).
        """
        _check_objective(objective, num_class)
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
                    out[:, j] = _codes_for(col.array, self.categories[n], "X", n)
                else:
                    if not (pd.api.types.is_numeric_dtype(col.dtype)
                            or pd.api.types.is_bool_dtype(col.dtype)) \
                            or isinstance(col.dtype, pd.CategoricalDtype):
                        raise DataValidationError(
                            f"X: column {n!r} has dtype {col.dtype}; expected a numeric dtype")
                    out[:, j] = _finite_float32(
                        col.to_numpy(dtype=np.float64, na_value=np.nan), "X", f"column {n!r}")
            return out
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != m:
                raise DataValidationError(
                    f"X has shape {X.shape}; expected (n_rows, {m})")
            if X.dtype.kind not in "biuf":
                raise DataValidationError(f"X has dtype {X.dtype}; expected a numeric array")
            out = _finite_float32(X, "X", "X")
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


def _codes_for(raw, shared: tuple, party: str, col: str) -> np.ndarray:
    """Map categorical values to their index in the shared code list (NaN for missing)."""
    import pandas as pd

    vals = pd.Series(np.asarray(raw, dtype=object), dtype=object)
    isna = vals.isna().to_numpy()
    codes = pd.Index(list(shared)).get_indexer(vals)
    codes[isna] = -1
    unknown = (codes < 0) & ~isna
    if unknown.any():
        v = vals[np.flatnonzero(unknown)[0]]
        raise DataValidationError(
            f"party {party!r}: column {col!r} has category {v!r}, which is not in the "
            f"agreed category list {list(shared)}")
    out = codes.astype(np.float32)
    out[codes < 0] = np.nan
    return out


def _agree_categories(parsed: list, names_per_party: list, explicit: Mapping | None) -> dict:
    """Fix the shared code list of every categorical column (schema only, no data)."""
    explicit = dict(explicit or {})
    shared: dict = {}
    all_cat_names = {names[j] for p, names in zip(parsed, names_per_party)
                     for j, t in enumerate(p.types) if t == "c"}
    unknown = sorted(set(explicit) - all_cat_names)
    if unknown:
        raise DataValidationError(
            f"categories= names column(s) {unknown} that are not 'category' columns of any "
            "party")
    for p, names in zip(parsed, names_per_party):
        for j, t in enumerate(p.types):
            if t != "c":
                continue
            n = names[j]
            if n in explicit:
                continue
            decl = p.declared[j]
            if n not in shared:
                shared[n] = (p.party, decl)
            elif set(shared[n][1]) != set(decl):
                first, cats = shared[n]
                raise DataValidationError(
                    f"categorical column {n!r}: party {p.party!r} declares categories "
                    f"{list(decl)} but party {first!r} declares {list(cats)}; declare the same "
                    "full category list in every party, or pass categories={...} to agree on it")
    out = {n: tuple(v[1]) for n, v in shared.items()}
    for n, cats in explicit.items():
        cats = tuple(cats)
        if len(set(cats)) != len(cats) or len(cats) == 0:
            raise DataValidationError(
                f"categories[{n!r}] == {list(cats)}; expected a non-empty list of distinct "
                "categories")
        out[n] = cats
    return out


def _own_categories(names, types, shared: dict) -> dict:
    return {n: shared[n] for n, t in zip(names, types) if t == "c"}


def _to_party_matrix(p: _Parsed, names: list, shared: dict) -> np.ndarray:
    if p.matrix is not None:
        return p.matrix
    X = np.empty((p.n_rows, len(p.types)), dtype=np.float32)
    for j, t in enumerate(p.types):
        X[:, j] = p.numeric[j] if t == "q" else _codes_for(p.raw_cat[j], shared[names[j]],
                                                          p.party, names[j])
    return X


def _check_party_count(d: Mapping, what: str, minimum: int = 0) -> None:
    if not isinstance(d, Mapping):
        raise DataValidationError(
            f"{what} expects a dict {{party name: data}}, got a {type(d).__name__}")
    for name in d:
        _check_party_name(name)
    if len(d) < minimum:
        raise DataValidationError(
            f"{what} has {len(d)} part{'y' if len(d) == 1 else 'ies'}; "
            f"at least {minimum} parties are needed")


def _column_names(parsed, start: int) -> list:
    """Per party, its column names: its DataFrame's, or f{j} by pooled position from ``start``."""
    out = []
    for p in parsed:
        k = len(p.types)
        out.append(p.names if p.names is not None else [f"f{j}" for j in range(start, start + k)])
        start += k
    return out


def _parse_horizontal(parties: Mapping, where: str):
    """Parse the row-owning parties: same columns; every party holds labels."""
    parsed, labels = [], []
    for name, entry in parties.items():
        X, y = _split_entry(name, entry, labels_required=True)
        p = _parse_features(name, X)
        _check_nonempty(p)
        labels.append(_parse_labels(name, y, p.n_rows))
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
    See the module docstring for inputs, categories and what is public.
    """

    kind = "horizontal"

    def __init__(self, parties: Mapping, *, categories: Mapping | None = None) -> None:
        _check_party_count(parties, "HorizontalSplit", minimum=2)
        parsed, labels, names = _parse_horizontal(parties, "horizontal split")
        _check_feature_names(names)
        shared = _agree_categories(parsed, [names] * len(parsed), categories)
        views, start = {}, 0
        fidx = np.arange(len(names), dtype=np.int64)
        for p, y in zip(parsed, labels):
            rows = np.arange(start, start + p.n_rows, dtype=np.int64)
            start += p.n_rows
            views[p.party] = PartyData(p.party, _to_party_matrix(p, names, shared), y,
                                       fidx.copy(), rows, tuple(names), tuple(p.types),
                                       _own_categories(names, p.types, shared))
        self._finish(views, start, names, parsed[0].types,
                     {n: shared[n] for n, t in zip(names, parsed[0].types) if t == "c"})


class VerticalSplit(Split):
    """Parties own different columns for the same rows; exactly one holds the labels.

    ``VerticalSplit({"hospital": (X1, y), "insurer": X2}, categories=None)``:
    rows are aligned (row i is the same individual at every party) and every
    party has the same number of rows.  Pooled columns are the parties'
    columns in dict order.  See the module docstring.
    """

    kind = "vertical"

    def __init__(self, parties: Mapping, *, categories: Mapping | None = None) -> None:
        _check_party_count(parties, "VerticalSplit", minimum=2)
        parsed, ys = [], []
        for name, entry in parties.items():
            X, y = _split_entry(name, entry, labels_required=False)
            p = _parse_features(name, X)
            _check_nonempty(p)
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
        labels = [None if y is None else _parse_labels(p.party, y, p.n_rows)
                  for p, y in zip(parsed, ys)]
        names_pp = _column_names(parsed, 0)
        names = [n for ns in names_pp for n in ns]
        _check_feature_names(names)
        shared = _agree_categories(parsed, names_pp, categories)
        views, start = {}, 0
        rows = np.arange(ref.n_rows, dtype=np.int64)
        types = []
        for p, y, ns in zip(parsed, labels, names_pp):
            k = len(p.types)
            views[p.party] = PartyData(p.party, _to_party_matrix(p, ns, shared), y,
                                       np.arange(start, start + k, dtype=np.int64), rows.copy(),
                                       tuple(ns), tuple(p.types),
                                       _own_categories(ns, p.types, shared))
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
        _check_party_count(horizontal, "MixedSplit(horizontal=...)")
        _check_party_count(vertical, "MixedSplit(vertical=...)")
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
            p = _parse_features(name, X)
            _check_nonempty(p)
            vparsed.append(p)
            vrows.append(_resolve_rows(name, rows, p.n_rows, n_rows, offsets))

        names_pp = [hnames] + _column_names(vparsed, len(hnames))
        names = [n for ns in names_pp for n in ns]
        _check_feature_names(names)
        shared = _agree_categories(hparsed + vparsed,
                                   [hnames] * len(hparsed) + names_pp[1:], categories)
        views = {}
        hidx = np.arange(len(hnames), dtype=np.int64)
        for p, y in zip(hparsed, hlabels):
            s, k = offsets[p.party]
            views[p.party] = PartyData(p.party, _to_party_matrix(p, hnames, shared), y, hidx.copy(),
                                       np.arange(s, s + k, dtype=np.int64), tuple(hnames),
                                       tuple(p.types), _own_categories(hnames, p.types, shared))
        types = list(hparsed[0].types)
        start = len(hnames)
        for p, rows, ns in zip(vparsed, vrows, names_pp[1:]):
            k = len(p.types)
            views[p.party] = PartyData(p.party, _to_party_matrix(p, ns, shared), None,
                                       np.arange(start, start + k, dtype=np.int64), rows,
                                       tuple(ns), tuple(p.types),
                                       _own_categories(ns, p.types, shared))
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

