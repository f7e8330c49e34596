"""ppboost: privacy-preserving gradient boosting.

Secure (MPC) XGBoost training across parties that may not pool their data,
and encrypted prediction (PPXGBoost) with inputs the server never sees.

    import ppboost
    data = ppboost.HorizontalSplit({"a": (Xa, ya), "b": (Xb, yb)})
    model = ppboost.train({"objective": "binary:logistic", "max_depth": 3}, data, 10)
    booster = model.reveal()            # an xgboost.Booster, for the analyst only

Heavy modules (numba kernels, xgboost) are imported on first use.
"""
from __future__ import annotations

from ._lazy import lazy_getattr as _lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    "HorizontalSplit": "ppboost.data",
    "VerticalSplit": "ppboost.data",
    "MixedSplit": "ppboost.data",
    "train": "ppboost.training",
    "SecretSharedModel": "ppboost.training",
    "run_party": "ppboost.training",
    "run_dealer": "ppboost.training",
    "Job": "ppboost.training",
    "SecureXGBClassifier": "ppboost.sklearn",
    "SecureXGBRegressor": "ppboost.sklearn",
    "DP": "ppboost.dp",
}

__all__ = sorted(_LAZY) + ["__version__"]  # noqa: PLE0605 - the lazy names


__getattr__ = _lazy_getattr(globals(), _LAZY)


def __dir__():
    return __all__
