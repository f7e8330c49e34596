"""The checks every part of :mod:`ppboost.dp` runs on public inputs: :class:`DPError` names the
first bad value, before anything is shared."""
from __future__ import annotations

import math

import numpy as np

from ..errors import PPBoostError

__all__ = ["DPError", "check_counts", "check_number"]


class DPError(PPBoostError, ValueError):
    """A differential-privacy configuration that cannot be used (found before anything is shared)."""


def check_counts(**counts) -> None:
    """The public counts of a DP plan: integers >= 1, and ``n_parties`` >= 2 (the noise
    is made of every party's part); DPError naming the first bad one."""
    for name, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise DPError(f"{name} == {v!r}, must be an integer >= 1")
    if counts.get("n_parties", 2) < 2:
        raise DPError(f"n_parties == {counts['n_parties']}: distributed noise needs >= 2 "
                      "data parties")


def check_number(name, v, *, lo=None, hi=None, lo_open=True, hi_open=True, allow_inf=False) -> float:
    """``v`` as a float, or DPError if it is not a number in the given range (open ends
    unless ``lo_open`` / ``hi_open`` say otherwise; infinity only with ``allow_inf``)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise DPError(f"{name} == {v!r}, must be a number")
    v = float(v)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise DPError(f"{name} == {v}, must be a finite number")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise DPError(f"{name} == {v}, must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise DPError(f"{name} == {v}, must be {'<' if hi_open else '<='} {hi}")
    return v
