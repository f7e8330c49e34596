"""Parsing one party's input: names, feature matrix, (X, y) entries.

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

Party names are letters, digits, ``_``, ``.`` and ``-`` (not starting with
``.`` or ``-``); ``dealer`` is reserved.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import DataValidationError

__all__ = ["ParsedParty", "check_party_name", "check_party_count", "parse_features",
           "finite_float32", "split_entry", "check_nonempty", "check_feature_names",
           "column_names"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_RESERVED = ("dealer",)
_BAD_FEATURE_CHARS = ("[", "]", "<")  # xgboost refuses these in feature names


@dataclass
class ParsedParty:
    """One party's features before the category codes are agreed."""

    party: str
    n_rows: int
    names: list | None          # None for numpy input (names assigned later)
    types: list                 # 'q' / 'c'
    numeric: dict               # column position -> float32 values
    raw_cat: dict               # column position -> pandas Categorical
    declared: dict              # column position -> tuple of declared categories
    matrix: np.ndarray | None = None  # numpy input: the whole float32 matrix at once


def check_party_name(name) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise DataValidationError(
            f"party name {name!r} is invalid; expected a non-empty str of letters, digits, "
            "'_', '.', '-' (not starting with '.' or '-')")
    if name in _RESERVED:
        raise DataValidationError(f"party name {name!r} is reserved for the dealer; rename the party")


def parse_features(party: str, X) -> ParsedParty:
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
                numeric[j] = finite_float32(
                    col.to_numpy(dtype=np.float64, na_value=np.nan), party, f"column {c!r}")
            else:
                raise DataValidationError(
                    f"party {party!r}: column {c!r} has dtype {dt}; expected a numeric, boolean "
                    "or 'category' dtype (convert text columns to pandas 'category' to use them "
                    "as categorical features, or drop them)")
        return ParsedParty(party, len(X), names, types, numeric, raw_cat, declared)

    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise DataValidationError(
                f"party {party!r}: X has {X.ndim} dimension(s), shape {X.shape}; expected a 2-D "
                "array (n_rows, n_features)")
        if X.dtype.kind not in "biuf":
            raise DataValidationError(
                f"party {party!r}: X has dtype {X.dtype}; expected a numeric array (use a pandas "
                "DataFrame with 'category' columns for categorical features)")
        vals = finite_float32(X, party, "X")
        return ParsedParty(party, X.shape[0], None, ["q"] * X.shape[1], {}, {}, {}, matrix=vals)

    raise DataValidationError(
        f"party {party!r}: features are a {type(X).__name__}; expected a numpy.ndarray or a "
        "pandas.DataFrame")


def finite_float32(vals: np.ndarray, party: str, what: str) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(vals).astype(np.float32)  # beyond float32 range -> inf, caught below
    bad = np.isinf(out)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise DataValidationError(
            f"party {party!r}: {what} has {int(bad.sum())} infinite value(s) (or beyond float32 "
            f"range), first at {tuple(int(i) for i in idx)}; use NaN for missing values")
    return out


def split_entry(party: str, entry, labels_required: bool):
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


def check_nonempty(p: ParsedParty) -> None:
    if p.n_rows == 0 or len(p.types) == 0:
        raise DataValidationError(
            f"party {p.party!r} is empty: X has shape ({p.n_rows}, {len(p.types)}); every party "
            "must hold at least one row and one feature")


def check_feature_names(names: list) -> None:
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


def check_party_count(d: Mapping, what: str, minimum: int = 0) -> None:
    if not isinstance(d, Mapping):
        raise DataValidationError(
            f"{what} expects a dict {{party name: data}}, got a {type(d).__name__}")
    for name in d:
        check_party_name(name)
    if len(d) < minimum:
        raise DataValidationError(
            f"{what} has {len(d)} part{'y' if len(d) == 1 else 'ies'}; "
            f"at least {minimum} parties are needed")


def column_names(parsed, start: int) -> list:
    """Per party, its column names: its DataFrame's, or f{j} by pooled position from ``start``."""
    out = []
    for p in parsed:
        k = len(p.types)
        out.append(p.names if p.names is not None else [f"f{j}" for j in range(start, start + k)])
        start += k
    return out
