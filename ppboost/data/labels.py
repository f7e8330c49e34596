"""Labels: parsing one party's labels and checking them against the objective.

Labels are 1-D (a numpy array, list or pandas Series) with one value per row
of the party's X; they must be finite numbers (NaN labels are rejected at
construction, by :func:`parse_labels`).  The range check needs the
objective, so it is done by :func:`validate_labels` (``reg:squarederror``:
any finite value; ``binary:logistic``: within [0, 1]; ``multi:softprob``:
integers in ``[0, num_class)``).  Each label holder can run the same check on
its own labels (:meth:`~ppboost.data.PartyData.validate_labels`), so in a
multi-process deployment nobody needs to see another party's labels to
validate.

The rule itself is written once, in :func:`ppboost.tree.losses.check_label_values`
(which the tree layer's ``check_labels`` uses too); this module adds the
objective and ``num_class`` checks, the party-named messages and
:class:`~ppboost.data.DataValidationError`.
"""
from __future__ import annotations

import numpy as np

from ..tree.losses import check_finite_labels, check_label_values
from ..tree.params import OBJECTIVES
from .errors import DataValidationError

__all__ = ["SUPPORTED_OBJECTIVES", "check_objective", "validate_labels", "parse_labels"]

SUPPORTED_OBJECTIVES = OBJECTIVES


def check_objective(objective: str, num_class) -> int | None:
    """Check ``objective`` and its ``num_class``; returns num_class (multi:softprob) or None."""
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


def validate_labels(y: np.ndarray, objective: str, num_class: int | None = None,
                    where: str = "labels") -> None:
    """Check that labels ``y`` are valid for ``objective`` (raises DataValidationError).

    - ``reg:squarederror``: finite;
    - ``binary:logistic``: within [0, 1] (as xgboost requires);
    - ``multi:softprob``: integers in ``[0, num_class)``.
    """
    num_class = check_objective(objective, num_class)
    check_label_values(y, objective, num_class, where=where, error=DataValidationError)


def parse_labels(party: str, y, n_rows: int) -> np.ndarray:
    """One party's labels -> float32 (n_rows,); finite numbers, one per row of X."""
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
    check_finite_labels(arr, where=f"party {party!r}", error=DataValidationError)
    return arr.astype(np.float32)
