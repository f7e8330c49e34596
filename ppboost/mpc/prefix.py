"""Prefix and suffix sums of additive shares (local).

Sums are linear, so each party sums its own shares:
sum_p prefix(x_p) = prefix(sum_p x_p).  Used for cumulative histograms
(docs/design.md, section 6.1, histogram step 3; the tree code calls
``ring.prefix_sum`` directly).
"""
from __future__ import annotations

from . import ring
from .context import AShare

__all__ = ["prefix_sum", "suffix_sum"]


def _check(x, axis):
    if not isinstance(x, AShare):
        raise TypeError(f"expected an AShare, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("prefix/suffix sums need a share with at least one axis")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis == {axis}, must be in {-x.ndim}..{x.ndim - 1} for shape {x.shape}")


def prefix_sum(x: AShare, axis: int = 0) -> AShare:
    """[y] with y[i] = sum_{j <= i} x[j] along ``axis``.

    Inputs: a share x.  Opened: nothing.  Identity: linearity of the sum.
    Cost: 0 rounds, 0 elements (one numba pass).
    """
    _check(x, axis)
    return AShare(x.party, ring.prefix_sum(x.value, axis=axis))


def suffix_sum(x: AShare, axis: int = 0) -> AShare:
    """[y] with y[i] = sum_{j >= i} x[j] along ``axis``.  Cost: 0 rounds, local."""
    _check(x, axis)
    return AShare(x.party, ring.prefix_sum(x.value, axis=axis, reverse=True))
