"""The data layer's error: bad input, raised before anything is shared."""
from __future__ import annotations

__all__ = ["DataValidationError"]


class DataValidationError(ValueError):
    """Bad input data: raised before anything is shared with another party."""
