"""The data layer's error: bad input, raised before anything is shared."""
from __future__ import annotations

from ..errors import DataError

__all__ = ["DataValidationError"]


class DataValidationError(DataError):
    """Bad input data: raised before anything is shared with another party.

    A :class:`ppboost.errors.DataError`, hence also a ``ValueError``.
    """
