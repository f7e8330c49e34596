"""One site's own table: read from its file (or taken from a Split), checked locally.

A :class:`Site` is everything a data party brings to a training job: its
feature matrix (float32, NaN for missing, declared category codes for
categorical columns), its labels if its file has the job's label column, and
either its join ids (a deployment: rows are aligned later by private set
intersection) or its pooled row indices (a simulation from an aligned
:class:`~ppboost.data.Split`).  Nothing here talks to anyone: every check
runs at the owner's site before anything is shared.

:meth:`Site.facts` is the part that is announced to the other participants
(column names and types, row count, whether it holds labels).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import PartyData, validate_labels
from ..errors import DataError
from .job import Job

__all__ = ["Site", "read_site", "site_from_view"]


@dataclass(frozen=True, eq=False)
class Site:
    """A data party's own table (see the module docstring)."""

    name: str
    X: np.ndarray                      # float32, (rows, own features)
    feature_names: tuple
    feature_types: tuple               # 'q' / 'c' per column
    categories: dict = field(default_factory=dict)   # column -> declared levels
    y: np.ndarray | None = None
    ids: np.ndarray | None = None      # join keys as str (deployment)
    rows: np.ndarray | None = None     # pooled row indices (simulation from a Split)

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def has_labels(self) -> bool:
        return self.y is not None

    def facts(self) -> dict:
        """The public facts this site announces: columns and types, rows, labels."""
        return {"columns": [[n, t] for n, t in zip(self.feature_names, self.feature_types)],
                "n_rows": self.n_rows, "has_labels": self.has_labels,
                "aligned": self.rows is not None}

    def take(self, local_rows: np.ndarray, pooled_rows: np.ndarray) -> Site:
        """The sub-table of ``local_rows`` (in that order), placed at ``pooled_rows``."""
        local_rows = np.asarray(local_rows, np.int64)
        return Site(self.name, self.X[local_rows], self.feature_names, self.feature_types,
                    self.categories, None if self.y is None else self.y[local_rows], None,
                    np.asarray(pooled_rows, np.int64))

    def view(self, feature_indices, columns) -> PartyData:
        """This site as the training layer's :class:`~ppboost.data.PartyData`, its columns
        in the agreed order ``columns`` (global indices ``feature_indices``); rows must be placed."""
        if self.rows is None:
            raise DataError(f"{self.name}: rows are not aligned yet")
        pos = [self.feature_names.index(c) for c in columns]
        return PartyData(self.name, self.X[:, pos], self.y, np.asarray(feature_indices, np.int64),
                         self.rows, tuple(columns), tuple(self.feature_types[j] for j in pos),
                         {n: tuple(v) for n, v in self.categories.items() if n in columns})


def site_from_view(view: PartyData) -> Site:
    """A Split's per-party view as a :class:`Site` (its rows are already pooled)."""
    return Site(view.name, np.asarray(view.X, np.float32), tuple(view.feature_names),
                tuple(view.feature_types), {n: list(v) for n, v in view.categories.items()},
                None if view.y is None else np.asarray(view.y, np.float32), None,
                np.asarray(view.rows, np.int64))


# ----------------------------------------------------------------------------- files
def _read_table(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.exists():
        raise DataError(f"the data file {path} does not exist")
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    raise DataError(f"{path}: unknown file type {suffix!r}; give a .csv or .parquet file")


#: What each objective asks of its labels, for the announced error (no row, no value).
_LABEL_RULE = {"reg:squarederror": "labels must be finite numbers",
               "binary:logistic": "labels must be finite and lie in [0, 1]",
               "multi:softprob": "labels must be integer class indices in [0, num_class)"}


def read_site(path, job: Job, name: str) -> Site:
    """Read this site's CSV or Parquet file and check it against the job, locally.

    - The job's ``id`` column (vertical and mixed splits) gives the join keys;
      it must be present, without missing or repeated values, and is never a
      feature.
    - The ``label`` column, if present, makes this site a label holder; its
      values are checked against the objective here (the error names the
      column and the objective's rule; the first bad row, its value and the
      number of bad labels stay local, in ``local_detail``).
    - Columns declared in ``job.categorical`` become category codes (the
      index of the value in the declared levels); a value outside them is an
      error naming the column (not the value, which stays local: it is in
      the exception's ``local_detail``, with the number of such rows: neither
      is announced).
    - Every other column must be numeric (NaN = missing, no infinities).
    """
    import pandas as pd

    path = Path(path)
    df = _read_table(path)
    where = f"{name} ({path.name})"
    cols = [str(c) for c in df.columns]
    if len(set(cols)) != len(cols):
        raise DataError(f"{where}: a column name appears twice")
    df.columns = cols
    ids = None
    if job.split in ("vertical", "mixed"):
        if job.id is None:
            raise DataError(f"the job's split is {job.split!r} but it names no 'id' column "
                            "to align the parties' rows")
        if job.id not in df.columns:
            raise DataError(f"{where}: no id column {job.id!r} (columns: {cols})")
        idcol = df.pop(job.id)
        if idcol.isna().any():
            raise DataError(f"{where}: the id column {job.id!r} has missing values")
        ids = idcol.astype(str).to_numpy()
        if len(np.unique(ids)) != len(ids):
            raise DataError(f"{where}: the id column {job.id!r} has repeated ids")
    elif job.id is not None and job.id in df.columns:
        df.pop(job.id)
    y = None
    if job.label is not None and job.label in df.columns:
        lab = df.pop(job.label)
        if not pd.api.types.is_numeric_dtype(lab.dtype) and not pd.api.types.is_bool_dtype(lab.dtype):
            raise DataError(f"{where}: the label column {job.label!r} is not numeric")
        y = lab.to_numpy(dtype=np.float64)
        p = job.tree_params
        try:
            validate_labels(y, p.objective, p.num_class if p.objective == "multi:softprob"
                            else None, where=where)
        except DataError as exc:           # announced: the rule only; rows and values stay here
            err = DataError(f"{where}: the label column {job.label!r} has values that objective "
                            f"{p.objective!r} refuses ({_LABEL_RULE[p.objective]})")
            err.local_detail = str(exc)
            raise err from None
        y = y.astype(np.float32)
    if df.shape[1] == 0:
        raise DataError(f"{where}: no feature columns (only the id / label columns)")
    if len(df) == 0:
        raise DataError(f"{where}: the file has no rows")
    X = np.empty(df.shape, np.float32)
    types, cats = [], {}
    for j, col in enumerate(df.columns):
        s = df[col]
        if col in job.categorical:
            levels = [str(v) for v in job.categorical[col]]
            codes = {lv: k for k, lv in enumerate(levels)}
            vals = s.astype("string")
            miss = vals.isna().to_numpy()
            mapped = np.array([codes.get(v, -1) if not m else -2
                               for v, m in zip(vals.to_numpy(dtype=object), miss)], np.int64)
            bad = mapped == -1
            if bad.any():                  # announced: no count, no value (local_detail)
                err = DataError(f"{where}: column {col!r} has values outside its declared "
                                f"levels {levels}")
                seen = sorted(set(vals[bad].astype(str)))
                err.local_detail = (f"column {col!r}: {int(bad.sum())} row(s) outside the levels, "
                                    f"{len(seen)} distinct value(s): {seen[:10]}"
                                    + (" ..." if len(seen) > 10 else ""))
                raise err
            X[:, j] = np.where(mapped < 0, np.nan, mapped)
            types.append("c")
            cats[col] = levels
        else:
            if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
                what = ("it holds text" if pd.api.types.is_string_dtype(s.dtype)
                        or s.dtype == object else f"dtype {s.dtype}")   # pandas 2 / 3 alike
                raise DataError(f"{where}: column {col!r} is not numeric ({what}); declare it in "
                                f"the job's 'categorical' with its levels, or drop it")
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isinf(v).any():
                raise DataError(f"{where}: column {col!r} has infinite values (xgboost refuses them)")
            X[:, j] = v
            types.append("q")
    return Site(name, X, tuple(df.columns), tuple(types), cats, y, ids, None)
