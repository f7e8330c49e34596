"""The split rule both backends apply (xgboost ``hist``, depthwise).

For a node with sums (G, H) and a candidate that sends (G_L, H_L) left and
(G_R, H_R) right [Chen & Guestrin 2016, eq. 7, without the factor 1/2 and
gamma, as xgboost's ``CalcSplitGain`` computes it]:

* gain(G, H) = G^2 / (H + lambda);
* loss_chg = gain(G_L, H_L) + gain(G_R, H_R) - gain(G, H);
* a candidate is valid iff H_L >= min_child_weight and H_R >= min_child_weight;
* the node splits on its best valid candidate iff loss_chg > kRtEps (1e-6)
  and loss_chg >= gamma (:func:`clears_threshold`); xgboost 3.2 applies
  gamma when it decides to expand a node, so "do not split" includes it;
* node weight w = -G / (H + lambda) if H >= min_child_weight and H > 0,
  else 0 (xgboost's ``CalcWeight``); a leaf stores eta * w.

The plain backend evaluates these in float32 / float64 as xgboost does
(:func:`gain`, :func:`weight`, :func:`clears_threshold`).  The secure
backend evaluates the same formulas on fixed-point shares
(:mod:`ppboost.tree.secure.split`) and compares the winner with the one
public (or, for scaled labels, secret) threshold :func:`threshold_units`.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["KRT_EPS", "gain", "weight", "clears_threshold", "threshold_units"]

#: xgboost's kRtEps: a split must gain strictly more than this
KRT_EPS = 1e-6
#: thresholds in ring units stay below this (the loss of an invalid candidate is -2^61)
_MAX_UNITS = (1 << 61) - 1


def gain(G, H, reg_lambda: float) -> np.ndarray:
    """float32 G^2 / (H + lambda), 0 where H <= 0, as xgboost's
    ``CalcGainGivenWeight`` (double arithmetic, returned as float)."""
    G = np.asarray(G, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.asarray(np.divide(G * G, H + reg_lambda))   # the same float64 operations
    if out.ndim == 0:
        return np.where(H > 0, out, 0.0).astype(np.float32)
    out[np.broadcast_to(~(H > 0), out.shape)] = 0.0               # in place: fewer copies
    return out.astype(np.float32)


def weight(G, H, reg_lambda: float, min_child_weight: float) -> np.ndarray:
    """w = -G / (H + lambda) where H >= min_child_weight and H > 0, else 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (H >= min_child_weight) & (H > 0)
        return np.where(ok, -G / (H + reg_lambda), 0.0)


def clears_threshold(loss_chg, gamma: float) -> np.ndarray:
    """[loss_chg > kRtEps and loss_chg >= gamma], compared in float32 as xgboost does."""
    return (loss_chg > np.float32(KRT_EPS)) & (loss_chg >= np.float32(gamma))


def threshold_units(gamma: float, frac_bits: int) -> int:
    """The same test on an integer loss at ``frac_bits`` fractional bits.

    The smallest t with [loss >= t] <=> [loss > kRtEps and loss >= gamma] for
    integer losses: t = max(ceil(gamma 2^f), floor(kRtEps 2^f) + 1), capped
    below 2^61.  ``frac_bits`` may be any integer (the secure backend scales
    the loss of normalised labels by 2^-2e).
    """
    sc = 2.0 ** frac_bits
    t = max(math.ceil(gamma * sc), math.floor(KRT_EPS * sc) + 1)
    return min(t, _MAX_UNITS)
