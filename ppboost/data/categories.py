"""Categorical columns: the shared code list, and values <-> codes.

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
in :meth:`Split.pooled() <ppboost.data.Split.pooled>`, so xgboost trained on
``pooled()`` sees the same codes.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import DataValidationError
from .parse import ParsedParty

__all__ = ["codes_for", "agree_categories", "own_categories", "to_party_matrix",
           "matrix_to_frame"]


def codes_for(raw, shared: tuple, party: str, col: str) -> np.ndarray:
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


def agree_categories(parsed: list, names_per_party: list, explicit: Mapping | None) -> dict:
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


def own_categories(names, types, shared: dict) -> dict:
    return {n: shared[n] for n, t in zip(names, types) if t == "c"}


def to_party_matrix(p: ParsedParty, names: list, shared: dict) -> np.ndarray:
    if p.matrix is not None:
        return p.matrix
    X = np.empty((p.n_rows, len(p.types)), dtype=np.float32)
    for j, t in enumerate(p.types):
        X[:, j] = p.numeric[j] if t == "q" else codes_for(p.raw_cat[j], shared[names[j]],
                                                          p.party, names[j])
    return X


def matrix_to_frame(X, names, types, categories):
    """A float32 matrix (NaN missing, codes for 'c' columns) -> DataFrame with categories."""
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
