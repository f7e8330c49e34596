"""The accountant entries of ppboost's DP mechanisms, by ``dp-accounting``'s RDP accountant
(no accountant is written here): the trees of the MPC mode (:func:`tree_events`), a
sequence of Gaussian releases for the federated mode (:func:`gaussian_releases`), and the
epsilon an event spends (:func:`spent_epsilon`)."""
from __future__ import annotations

import numpy as np

from .checks import DPError, check_number

__all__ = ["ZCDP_C", "accountant", "tree_events", "spent_epsilon", "gaussian_release_event",
           "gaussian_releases"]

#: zCDP rho of one eps-DP split choice is eps^2 / c
ZCDP_C = {"gumbel": 8.0, "exponential": 2.0}


def accountant():
    """A fresh ``dp_accounting`` RDP accountant."""
    from dp_accounting.rdp import rdp_privacy_accountant as rdp
    return rdp.RdpAccountant()


def tree_events(T: int, D: int, split_epsilon: float, leaf_param: float, leaf_noise: str,
                split_noise: str = "gumbel"):
    """T x (D eps-DP split choices as eps^2/8-zCDP (Gumbel, bounded range) or eps^2/2-zCDP
    (exponential noise) + one leaf release)."""
    import dp_accounting as dpa
    leaf = (dpa.GaussianDpEvent(leaf_param) if leaf_noise == "gaussian"
            else dpa.LaplaceDpEvent(leaf_param))
    rho = split_epsilon ** 2 / ZCDP_C[split_noise]
    tree = dpa.ComposedDpEvent([dpa.SelfComposedDpEvent(dpa.ZCDpEvent(rho), D), leaf])
    return dpa.SelfComposedDpEvent(tree, T)


def spent_epsilon(event, delta: float) -> float:
    """epsilon at ``delta`` of a ``dp_accounting`` event, by the RDP accountant."""
    acc = accountant()
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def gaussian_release_event(noise_multiplier: float, count: int = 1):
    """``count`` adaptive Gaussian releases, each with sigma = noise_multiplier x its L2
    sensitivity (e.g. the noisy histograms of every level of every tree)."""
    import dp_accounting as dpa
    return dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(float(noise_multiplier)), int(count))


def gaussian_releases(dp, n_releases: int, l2_sensitivity: float) -> tuple:
    """(sigma, epsilon spent): the Gaussian noise that makes ``n_releases`` adaptive
    releases of L2 sensitivity ``l2_sensitivity`` (dp.epsilon, dp.delta)-DP together,
    calibrated with the RDP accountant (federated mode: the histograms' noise)."""
    import dp_accounting as dpa
    if not dp.private:
        raise DPError("epsilon is inf: there is no noise to calibrate")
    if isinstance(n_releases, bool) or not isinstance(n_releases, (int, np.integer)) \
            or n_releases < 1:
        raise DPError(f"n_releases == {n_releases!r}, must be an integer >= 1")
    s = check_number("l2_sensitivity", l2_sensitivity, lo=0.0)
    z = dpa.calibrate_dp_mechanism(
        accountant, lambda z: gaussian_release_event(1.0 / z, n_releases), dp.epsilon,
        dp.delta, dpa.LowerEndpointAndGuess(1e-9, 1.0), tol=1e-9)
    mult = 1.0 / z
    for _ in range(60):
        spent = spent_epsilon(gaussian_release_event(mult, n_releases), dp.delta)
        if spent <= dp.epsilon:
            break
        mult *= 1.0 + 1e-6
    return mult * s, spent
