"""The requested budget (:class:`DP`, validated on construction) and its calibrated noise
(:meth:`DP.plan` -> :class:`DPPlan`); the mechanism is in the :mod:`ppboost.dp` docstring."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .accounting import ZCDP_C, accountant, spent_epsilon, tree_events
from .checks import DPError, check_counts, check_number

__all__ = ["DP", "DPPlan", "NEIGHBOURING", "MECHANISM", "SPLIT_NAMES"]

#: the neighbouring relation of every guarantee here
NEIGHBOURING = "add or remove one training row"
#: the mechanism's name as the booster carries it
MECHANISM = ("DPBoost-style trees in MPC: clipped gradients, unit hessians, {split} per node, "
             "{leaf} leaf noise, distributed noise parts")
#: the split mechanisms' names as the booster carries them
SPLIT_NAMES = {"gumbel": "exponential mechanism (Gumbel-max noisy argmax)",
               "exponential": "report-noisy-max with exponential noise (permute-and-flip)"}

_KEYS = ("epsilon", "delta", "clip", "bounds", "split_share", "leaf_noise", "split_noise",
         "split_epsilon", "leaf_noise_multiplier")
_LEAF_NOISES = ("gaussian", "laplace")
_SPLIT_NOISES = ("gumbel", "exponential")


def _bounds(b) -> dict | None:
    """{feature name: (lo, hi, bins or None)} from a mapping of (lo, hi) / (lo, hi, bins)."""
    if b is None:
        return None
    if not isinstance(b, Mapping):
        raise DPError(f"bounds must map a feature name to (lo, hi) or (lo, hi, bins), "
                      f"got {type(b).__name__}")
    out = {}
    for name, v in b.items():
        if not isinstance(v, (tuple, list)) or len(v) not in (2, 3):
            raise DPError(f"bounds[{name!r}] == {v!r}, must be (lo, hi) or (lo, hi, bins)")
        lo = check_number(f"bounds[{name!r}] lo", v[0])
        hi = check_number(f"bounds[{name!r}] hi", v[1])
        if not lo < hi:
            raise DPError(f"bounds[{name!r}] == {tuple(v)!r}: lo must be < hi")
        bins = None
        if len(v) == 3:
            bins = v[2]
            if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
                raise DPError(f"bounds[{name!r}] bins == {bins!r}, must be an integer >= 2")
            bins = int(bins)
        out[str(name)] = (lo, hi, bins)
    return out


@dataclass(frozen=True)
class DP:
    """The requested differential privacy of the released model.

    Parameters
    ----------
    epsilon : > 0; ``math.inf`` means no differential privacy (exactly the
        model and transcript of ``dp=None``).
    delta : in (0, 1).
    clip : g*, the public bound every gradient is clipped to (in MPC);
        binary:logistic and multi:softprob gradients are in [-1, 1], so the
        bound used is min(clip, 1).
    bounds : {feature name: (lo, hi) or (lo, hi, bins)}: public ranges of the
        numerical features (a data dictionary's, never the data's own).
        Their cuts are ``bins`` (default ``max_bin``) equal-width bins; values
        outside go to the first / last bin.  Categorical features take their
        declared levels.  Every numerical feature needs one.
    split_share : the fraction of each tree's (zCDP) budget spent on split
        selection, spread evenly over its levels; the rest goes to its leaves.
    leaf_noise : ``"gaussian"`` (default) or ``"laplace"``.
    split_noise : ``"gumbel"`` (default: the exponential mechanism, as a
        Gumbel-max noisy argmax) or ``"exponential"`` (report-noisy-max with
        exponential noise).
    split_epsilon, leaf_noise_multiplier : fix the noise instead of
        calibrating it (both or neither): each level's epsilon, and the
        leaves' Gaussian noise multiplier z (sigma = z Delta_V) or, for
        Laplace, 1 / eps_leaf.  ``train`` then refuses the configuration if
        the accountant's spend exceeds (epsilon, delta).

    The mechanism, its sensitivities and the budget split are in the module
    docstring.  Every check here runs before anything is shared.
    """

    epsilon: float
    delta: float = 1e-6
    clip: float = 1.0
    bounds: Any = None
    split_share: float = 0.5
    leaf_noise: str = "gaussian"
    split_noise: str = "gumbel"
    split_epsilon: float | None = None
    leaf_noise_multiplier: float | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "epsilon", check_number("epsilon", self.epsilon, lo=0.0, allow_inf=True))
        set_(self, "delta", check_number("delta", self.delta, lo=0.0, hi=1.0))
        set_(self, "clip", check_number("clip", self.clip, lo=0.0))
        set_(self, "split_share", check_number("split_share", self.split_share, lo=0.0, hi=1.0))
        if self.leaf_noise not in _LEAF_NOISES:
            raise DPError(f"leaf_noise == {self.leaf_noise!r}, must be one of {list(_LEAF_NOISES)}")
        if self.split_noise not in _SPLIT_NOISES:
            raise DPError(f"split_noise == {self.split_noise!r}, must be one of "
                          f"{list(_SPLIT_NOISES)}")
        set_(self, "bounds", _bounds(self.bounds))
        fixed = (self.split_epsilon, self.leaf_noise_multiplier)
        if (fixed[0] is None) != (fixed[1] is None):
            raise DPError("split_epsilon and leaf_noise_multiplier fix the noise together: "
                          "give both or neither")
        if fixed[0] is not None:
            set_(self, "split_epsilon", check_number("split_epsilon", fixed[0], lo=0.0))
            set_(self, "leaf_noise_multiplier",
                 check_number("leaf_noise_multiplier", fixed[1], lo=0.0))

    @property
    def private(self) -> bool:
        """False for epsilon = inf (no noise at all: today's model)."""
        return math.isfinite(self.epsilon)

    # ------------------------------------------------------------------ job file
    def to_dict(self) -> dict:
        """The job file's ``"dp"`` object (canonical: every key; epsilon inf as "inf")."""
        return {"epsilon": self.epsilon if self.private else "inf", "delta": self.delta,
                "clip": self.clip,
                "bounds": None if self.bounds is None else {
                    k: [lo, hi] if b is None else [lo, hi, b]
                    for k, (lo, hi, b) in sorted(self.bounds.items())},
                "split_share": self.split_share, "leaf_noise": self.leaf_noise,
                "split_noise": self.split_noise, "split_epsilon": self.split_epsilon,
                "leaf_noise_multiplier": self.leaf_noise_multiplier}

    @classmethod
    def from_dict(cls, d) -> DP:
        if isinstance(d, DP):
            return d
        if not isinstance(d, Mapping):
            raise DPError(f"dp must be an object with {list(_KEYS)}, got {type(d).__name__}")
        unknown = sorted(k for k in d if k not in _KEYS)
        if unknown:
            raise DPError(f"unknown dp key(s) {unknown}; known keys are {list(_KEYS)}")
        if "epsilon" not in d:
            raise DPError("dp needs an epsilon")
        kw = dict(d)
        if isinstance(kw["epsilon"], str):
            if kw["epsilon"].strip().lower() not in ("inf", "infinity"):
                raise DPError(f"epsilon == {kw['epsilon']!r}, must be a number or 'inf'")
            kw["epsilon"] = math.inf
        return cls(**kw)

    # ------------------------------------------------------------------ calibration
    def plan(self, *, n_trees: int, depth: int, n_rows: int, reg_lambda: float,
             n_parties: int, gradient_bound: float, split_error: float = 0.0,
             leaf_error: float = 0.0, max_leaf: float | None = None) -> DPPlan:
        """The calibrated noise of a run (public inputs only; every party gets the same).

        ``gradient_bound``: g* (clip, capped by the objective's own bound);
        ``split_error`` / ``leaf_error``: bounds on the fixed-point error of
        one computed utility / leaf sum (they widen the sensitivities: two
        such errors per neighbouring pair); ``max_leaf``: the largest count
        a leaf can have (default n).
        Raises :class:`DPError` if the budget is too small for the trees
        (the noise on every leaf's count would exceed ``max_leaf``, or each
        split's noise scale the largest utility any data of n rows can have,
        n g*^2) or, with fixed noise, if the spend exceeds (epsilon, delta).
        """
        if not self.private:
            raise DPError("epsilon is inf: there is no noise to plan")
        check_counts(n_trees=n_trees, depth=depth, n_rows=n_rows, n_parties=n_parties)
        lam = check_number("reg_lambda", reg_lambda, lo=0.0, lo_open=False)
        g = check_number("gradient_bound", gradient_bound, lo=0.0)
        T, D, n = int(n_trees), int(depth), int(n_rows)
        split_range = 3.0 * g * g + 2.0 * float(split_error)
        # one row moves a leaf's (G, n) by (g, 1)
        leaf_sens = (math.sqrt(g * g + 1.0) if self.leaf_noise == "gaussian" else g + 1.0) \
            + 2.0 * float(leaf_error)
        if max_leaf is None:
            max_leaf = float(n)
        if self.split_epsilon is not None:
            es, zl = self.split_epsilon, self.leaf_noise_multiplier
        else:
            es, zl = self.calibrate(T, D)
        event = tree_events(T, D, es, zl, self.leaf_noise, self.split_noise)
        spent = spent_epsilon(event, self.delta)
        if spent > self.epsilon * (1 + 1e-9):
            raise DPError(
                f"this configuration spends epsilon == {spent:.6g} at delta == {self.delta:g} "
                f"({T} trees x ({D} split levels at epsilon {es:.4g} + leaves), RDP accountant), "
                f"more than the requested epsilon == {self.epsilon:g}")
        beta = split_range / es
        if self.leaf_noise == "gaussian":
            leaf_scale = zl * leaf_sens                 # sigma
            leaf_std = leaf_scale
        else:
            leaf_scale = zl * leaf_sens                 # Laplace b = Delta / eps_leaf
            leaf_std = math.sqrt(2.0) * leaf_scale
        where = (f"with epsilon == {self.epsilon:g}, delta == {self.delta:g} over {T} trees of "
                 f"depth {D}")
        if leaf_std > max_leaf:
            raise DPError(
                f"the budget is too small for {T} trees: {where}, the noise on each leaf's row "
                f"count (std {leaf_std:.4g}) would exceed the number of rows ({max_leaf:.4g}); "
                f"give a larger epsilon or fewer trees")
        if beta > n * g * g:
            raise DPError(
                f"the budget is too small for {T} trees: {where}, each split's noise scale "
                f"({beta:.4g}) would exceed the largest utility any data of {n} rows could "
                f"give ({n * g * g:.4g} = n g*^2); give a larger epsilon or fewer trees or levels")
        return DPPlan(dp=self, n_trees=T, depth=D, n_rows=n, n_parties=int(n_parties),
                      reg_lambda=lam, gradient_bound=g, split_epsilon=es,
                      split_range=split_range, split_scale=beta, leaf_sensitivity=leaf_sens,
                      leaf_noise_multiplier=zl, leaf_scale=leaf_scale,
                      epsilon_spent=spent, split_error=float(split_error),
                      leaf_error=float(leaf_error))

    def calibrate(self, T: int, D: int) -> tuple:
        """(eps_split, leaf multiplier) from the per-tree zCDP budget rho_t, calibrated."""
        import dp_accounting as dpa

        f, c = self.split_share, ZCDP_C[self.split_noise]

        def params(rho):
            es = math.sqrt(c * f * rho / D)                   # D eps_split^2 / c = f rho
            # Gaussian: z = 1 / sqrt(2 rho_leaf); Laplace: 1 / eps_leaf, eps_leaf^2 / 2 = rho_leaf
            zl = 1.0 / math.sqrt(2.0 * (1.0 - f) * rho)
            return es, zl

        def event(rho):
            return tree_events(T, D, *params(rho), self.leaf_noise, self.split_noise)

        guess = min(1.0, self.epsilon ** 2 / (8.0 * T))
        rho = dpa.calibrate_dp_mechanism(
            accountant, event, self.epsilon, self.delta,
            dpa.LowerEndpointAndGuess(1e-14, guess), tol=guess * 1e-7)
        # the search returns a value within tol of the boundary on the feasible side;
        # step back until the accountant agrees
        for _ in range(60):
            if spent_epsilon(event(rho), self.delta) <= self.epsilon:
                break
            rho *= 1.0 - 1e-6
        return params(rho)


@dataclass(frozen=True)
class DPPlan:
    """The calibrated noise of one run; every party computes the same from public facts.

    ``split_epsilon`` per level of every tree; ``split_range`` the width within which
    one row moves every utility (3 g*^2 plus the fixed-point errors); ``split_scale``
    beta = split_range / split_epsilon, the split noise's scale (Gumbel or exponential,
    real units; each party draws a whole Gumbel, or a Gamma part of the exponential);
    ``leaf_sensitivity`` the L2 (Gaussian) or L1 (Laplace) sensitivity of a tree's
    leaf sums (G, n); ``leaf_scale`` the noise's sigma or b on each sum;
    ``epsilon_spent`` what the RDP accountant reports at ``dp.delta`` for the
    whole run.
    """

    dp: DP
    n_trees: int
    depth: int
    n_rows: int
    n_parties: int
    reg_lambda: float
    gradient_bound: float
    split_epsilon: float
    split_range: float
    split_scale: float
    leaf_sensitivity: float
    leaf_noise_multiplier: float
    leaf_scale: float
    epsilon_spent: float
    split_error: float = 0.0
    leaf_error: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def delta(self) -> float:
        return self.dp.delta

    def event(self):
        """The whole run as one ``dp_accounting`` DpEvent."""
        return tree_events(self.n_trees, self.depth, self.split_epsilon,
                           self.leaf_noise_multiplier, self.dp.leaf_noise, self.dp.split_noise)

    def attributes(self) -> dict:
        """The booster's attributes: the spend, the mechanism's name and parameters."""
        params = {
            "requested_epsilon": self.dp.epsilon, "delta": self.dp.delta,
            "neighbouring": NEIGHBOURING, "accountant": "dp_accounting RdpAccountant",
            "trees": self.n_trees, "depth": self.depth, "rows": self.n_rows,
            "parties": self.n_parties, "gradient_clip": self.gradient_bound,
            "hessian": 1.0, "reg_lambda": self.reg_lambda,
            "split_share": self.dp.split_share,
            "split_mechanism": SPLIT_NAMES[self.dp.split_noise],
            "split_zcdp_rho_per_level": self.split_epsilon ** 2 / ZCDP_C[self.dp.split_noise],
            "split_epsilon_per_level": self.split_epsilon,
            "split_sensitivity_range": self.split_range,
            "split_noise_scale": self.split_scale,
            "leaf_mechanism": f"{self.dp.leaf_noise} noise on each leaf's (sum of g, row "
                              f"count); weight -G/(n + lambda) from the noisy sums",
            "leaf_sensitivity": self.leaf_sensitivity,
            ("leaf_noise_multiplier" if self.dp.leaf_noise == "gaussian"
             else "leaf_inverse_epsilon"): self.leaf_noise_multiplier,
            "leaf_noise_scale": self.leaf_scale,
            "noise_parts": f"one per data party; any {self.n_parties - 1} give the full noise",
            "split_conditions": "public cuts", "internal_weights": "not released",
            "intercept": "public base_score", "min_child_weight": "not applied",
            **self.extra,
        }
        return {"dp_epsilon": repr(float(self.epsilon_spent)), "dp_delta": repr(float(self.delta)),
                "dp_mechanism": MECHANISM.format(split=SPLIT_NAMES[self.dp.split_noise],
                                                 leaf=self.dp.leaf_noise),
                "dp_params": json.dumps(params, sort_keys=True)}
