"""How the data is split across parties: horizontal, vertical and mixed splits.

This is the user-facing data layer (L4, next to ``training.py``).  A split
object takes each party's own table, checks everything that can be checked
*before anything is shared*, and then gives every party a view of its own data
only, so that the training layer can run each party with nothing else:

>>> split = HorizontalSplit({"hospital_a": (Xa, ya), "hospital_b": (Xb, yb)})
>>> split.validate("binary:logistic")          # label range, before any sharing
>>> view = split.party("hospital_a")           # PartyData: X, y, feature_indices, rows
>>> pooled = split.pooled()                    # tests / benchmarks / demo ONLY

Modules: :mod:`~ppboost.data.splits` (the three kinds of split and what is
public), :mod:`~ppboost.data.views` (:class:`PartyData`, :class:`PooledData`),
:mod:`~ppboost.data.parse` (feature matrices, party names),
:mod:`~ppboost.data.categories` (how parties agree on category codes without
revealing their data), :mod:`~ppboost.data.labels` (label checks).
"""
from .errors import DataValidationError
from .labels import SUPPORTED_OBJECTIVES, validate_labels
from .splits import HorizontalSplit, MixedSplit, Split, VerticalSplit
from .views import PartyData, PooledData

__all__ = [
    "SUPPORTED_OBJECTIVES", "DataValidationError", "PartyData", "PooledData",
    "Split", "HorizontalSplit", "VerticalSplit", "MixedSplit",
    "validate_labels",
]
