"""What a party holds (:class:`PartyData`) and the pooled table (:class:`PooledData`).

Every party's view holds its features as a float32 matrix with NaN for
missing and the *shared category code* for categorical values
(:mod:`ppboost.data.categories`).  Everything in ``PartyData.X`` and
``PartyData.y`` stays with its owner.  :class:`PooledData` puts every
party's data in one place, for tests, benchmarks and the demo only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .categories import matrix_to_frame
from .labels import validate_labels

__all__ = ["PartyData", "PooledData"]


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
        return matrix_to_frame(self.X, self.feature_names, self.feature_types, self.categories)
