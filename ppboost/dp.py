"""Differential privacy of the released model: the budget, its accounting, the noise parts.

::

    model = ppboost.train(params, split, 20, dp=ppboost.DP(epsilon=1.0, delta=1e-6,
                                                           bounds={"age": (18, 80, 63), ...}))
    booster = model.reveal()
    booster.attr("dp_epsilon"), booster.attr("dp_delta"), booster.attr("dp_mechanism")

MPC protects the data while it is in use; this module is about what the
*finished model* says about its training rows (membership and attribute
inference from the model).  With ``dp=DP(epsilon, delta)`` the training
function itself is (epsilon, delta)-differentially private with respect to
adding or removing one training row (the released trees, leaf values and
intercept), and it is computed inside MPC, so neither a party, nor the
dealer, nor a user of the model can take the noise out.

What this module holds (no MPC code; importable from any layer):

* :class:`DP`: the requested budget and the mechanism's public parameters,
  validated on construction (:class:`DPError` before anything is shared);
* :meth:`DP.plan` -> :class:`DPPlan`: the noise of every released quantity,
  calibrated with ``dp-accounting``'s RDP accountant (no accountant is
  written here), the budget split over trees and levels (below);
* :func:`noise_part`: one party's local part of a distributed noise, sized so
  that the parts of the parties other than any one already give the
  required noise; the MPC side (:mod:`ppboost.mpc.noise`) inputs it as a
  share, the federated side adds it to a local histogram;
* :func:`gaussian_releases` / :func:`gaussian_release_event` /
  :func:`spent_epsilon`: the accountant entries of a sequence of noisy
  (e.g. histogram) releases, for the federated mode.

The mechanism (MPC mode; :mod:`ppboost.tree.secure.dp` runs it)
----------------------------------------------------------------
Let g* be the public gradient bound (``clip``; for binary:logistic and
multi:softprob at most 1, since |p - y| <= 1), every gradient clipped to
[-g*, g*] in MPC and every hessian taken as 1 (DPBoost's setting: with the
true hessians the gain G^2 / H has no bounded sensitivity, because H can be
~0 while |G| is large).  Every tree is complete to ``max_depth`` (every node
splits: whether a node splits is data dependent and would need a budget of
its own), the split conditions come from public cuts (equal-width bins over
public ``bounds``, categories from the declared levels), the internal
nodes' weights are not released (0 in the model), and the intercept is the
public ``base_score`` (0.5 unless given), not the label mean.

Released quantities and their sensitivities (add / remove one row, whose
gradient is g, |g| <= g*):

1. **The split of each node** (feature, bin, default direction), chosen by
   the exponential mechanism on the utilities
   u_c = G_L^2 / (n_L + lambda) + G_R^2 / (n_R + lambda), realised as a
   noisy argmax: argmax_c (u_c + Gumbel noise of scale beta) (the
   Gumbel-max trick; ``split_noise="gumbel"``, default), or report-noisy-max
   with exponential noise (``"exponential"``: permute-and-flip, McKenna &
   Sheldon, NeurIPS 2020; Ding et al. 2021).
   Li et al., "Privacy-Preserving Gradient Boosting Decision Trees"
   (DPBoost, AAAI 2020, Lemma 1) bound the sensitivity of this gain by
   Delta_G = 3 g*^2.  What is used here, the same number read as a range:
   adding a row changes one child's term by
   (G + g)^2 / (n + 1 + lambda) - G^2 / (n + lambda), which lies in
   (-g*^2, 2 g*^2) for every candidate (|G| <= n g*, lambda >= 0), so the
   utilities of all candidates move within an interval of width
   3 g*^2 (removing a row: the mirror interval).  The exponential mechanism
   with scale beta is then eps_split-DP and eps_split-bounded-range with
   eps_split = 3 g*^2 / beta (the probability ratio of any outcome is
   exp((u_c - u'_c) / beta) times a factor common to all outcomes), hence
   eps_split^2 / 8-zCDP (Cesar & Rogers, "Bounding, Concentrating, and
   Truncating: Unifying Privacy Loss Composition for Data Analytics", ALT
   2021).  Report-noisy-max with exponential noise of the same scale is
   eps_split-DP (argmax is unchanged by a common shift, so the effective
   sensitivity is 3 g*^2 / 2 and the scale 2 Delta / eps), counted as
   eps_split^2 / 2-zCDP (Bun & Steinke, TCC 2016, Prop. 1.4).  A row is in
   one node per level, so a level's nodes compose in parallel: each level
   costs one choice.  The fixed-point error of the computed utilities is
   added to the width (:meth:`DP.plan`'s ``split_error``).
2. **The leaf values**: each leaf's sums G = sum g and n (its row count)
   are released with Gaussian noise N(0, sigma^2) on each (default) or
   Laplace noise, and the weight -G~ / (n~ + lambda) (n~ rounded, both
   clipped to what any data could give) is post-processing.  One row is in
   one leaf of a tree and moves its (G, n) by (g, 1): L2 sensitivity
   sqrt(g*^2 + 1), L1 g* + 1, for the whole leaf vector of the tree; sigma =
   z sqrt(g*^2 + 1), or Laplace scale (g* + 1) / eps_leaf.  (Li et al. 2020,
   Lemma 2, bound the weight itself: Delta_V = g* / (1 + lambda); noise on
   the weight then does not shrink with the leaf's rows, while the weight
   from noisy sums has an error of about sigma / (n + lambda).  Released
   sums are what DP histogram methods do; the weight is their
   post-processing.)
3. **The split conditions**: public cut values, no cost.  **The internal
   nodes' weights**: not released.  **The intercept**: public.

Budget: every tree gets the same share; within a tree a fraction
``split_share`` of its zCDP budget rho_t goes to split selection, evenly
over its ``max_depth`` levels (eps_split = sqrt(c split_share rho_t / depth)
with c = 8 for the Gumbel noise and 2 for the exponential noise), the rest
to its leaves (z = 1 / sqrt(2 (1 - split_share) rho_t)).  rho_t is then
calibrated with ``dp_accounting.calibrate_dp_mechanism`` so that the RDP
accountant's composition of all trees x (depth ``ZCDpEvent`` + one
``GaussianDpEvent`` / ``LaplaceDpEvent``) spends at most (epsilon, delta);
the spend the accountant reports is what the booster carries.  Trees are
adaptive (each tree's gradients depend on the earlier released trees);
RDP composition covers that.

Distributed noise.  Each data party p draws its part n_p locally, from its
own AES-CTR stream, and inputs it as a share; the noise is the sum of the
parts.  The parts are sized so that the parts of any P - 1 parties already
give the required noise (a party knows its own part, so its part must not
be needed):

* Gaussian leaves: N(0, s^2 / (P - 1)) per party (any P - 1 sum to
  N(0, s^2)); Laplace leaves: Exp - Exp with Gamma(1 / (P - 1)) parts;
  exponential split noise: Gamma(1 / (P - 1)) parts (any P - 1 sum to
  Exp(beta)).  These distributions are infinitely divisible.
* Gumbel split noise (not usefully divisible): every party draws a whole
  Gumbel(beta).  From any one party's view the noise is a known shift plus
  the sum of P - 1 independent Gumbels, i.e. for every value of all but one
  of them, the exponential mechanism on shifted utilities (a data-independent
  shift leaves the range of u - u' unchanged); a mixture of eps-bounded-range
  mechanisms over the same mixing distribution keeps the guarantee (Renyi
  divergence is jointly quasi-convex, van Erven & Harremoes 2014, Thm. 13).

Anyone who knows no part faces the total, a further mixture: at least as
private.  The dealer contributes nothing and sees no part.  With P parties
the total noise exceeds the required one (P / (P - 1) times the variance for
the divisible parts, P Gumbels for the split noise): the price of no
participant knowing the noise.  Why local parts and not Gumbel noise from
jointly made uniforms (U = sum of the parties' uniforms mod 2^k, then
-log(-log U) in MPC, exactly one Gumbel): two secure logarithms per
candidate and node cost hundreds of rounds per level and put a fixed-point
error into the noise that the analysis would have to carry; a local part
costs no online round (one input sharing per party, whose offline material
is one dealer message to it).

What DP does not protect: the public facts (row counts, parameters, the
bounds), anything a participant learns in the MPC itself (that is the
threat model of the protocols), and neighbouring data sets that differ in
more than one row (a patient with several rows, or a replaced row: twice
epsilon).  The noise is drawn in float64 and rounded to the fixed-point
grid (2^-20 for split utilities, 2^-fo for leaves); the guarantee is the
continuous mechanism's.


For the federated mode: :mod:`ppboost.tree.federated_dp` (docs/protocols.md, section 3b).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import PPBoostError

__all__ = ["DP", "DPPlan", "DPError", "noise_part", "uniforms", "gaussian_releases",
           "gaussian_release_event", "spent_epsilon", "check_counts", "NEIGHBOURING", "MECHANISM"]

#: the neighbouring relation of every guarantee here
NEIGHBOURING = "add or remove one training row"
#: the mechanism's name as the booster carries it
MECHANISM = ("DPBoost-style trees in MPC: clipped gradients, unit hessians, {split} per node, "
             "{leaf} leaf noise, distributed noise parts")
_SPLIT_NAMES = {"gumbel": "exponential mechanism (Gumbel-max noisy argmax)",
                "exponential": "report-noisy-max with exponential noise (permute-and-flip)"}
#: zCDP rho of one eps-DP split choice is eps^2 / c
_ZCDP_C = {"gumbel": 8.0, "exponential": 2.0}

_KEYS = ("epsilon", "delta", "clip", "bounds", "split_share", "leaf_noise", "split_noise",
         "split_epsilon", "leaf_noise_multiplier")
_LEAF_NOISES = ("gaussian", "laplace")
_SPLIT_NOISES = ("gumbel", "exponential")


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


def _number(name, v, *, lo=None, hi=None, lo_open=True, hi_open=True, allow_inf=False):
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
        lo = _number(f"bounds[{name!r}] lo", v[0])
        hi = _number(f"bounds[{name!r}] hi", v[1])
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
        set_(self, "epsilon", _number("epsilon", self.epsilon, lo=0.0, allow_inf=True))
        set_(self, "delta", _number("delta", self.delta, lo=0.0, hi=1.0))
        set_(self, "clip", _number("clip", self.clip, lo=0.0))
        set_(self, "split_share", _number("split_share", self.split_share, lo=0.0, hi=1.0))
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
            set_(self, "split_epsilon", _number("split_epsilon", fixed[0], lo=0.0))
            set_(self, "leaf_noise_multiplier",
                 _number("leaf_noise_multiplier", fixed[1], lo=0.0))

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
        lam = _number("reg_lambda", reg_lambda, lo=0.0, lo_open=False)
        g = _number("gradient_bound", gradient_bound, lo=0.0)
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
            es, zl = self._calibrate(T, D)
        event = _tree_events(T, D, es, zl, self.leaf_noise, self.split_noise)
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

    def _calibrate(self, T: int, D: int) -> tuple:
        """(eps_split, leaf multiplier) from the per-tree zCDP budget rho_t, calibrated."""
        import dp_accounting as dpa

        f, c = self.split_share, _ZCDP_C[self.split_noise]

        def params(rho):
            es = math.sqrt(c * f * rho / D)                   # D eps_split^2 / c = f rho
            # Gaussian: z = 1 / sqrt(2 rho_leaf); Laplace: 1 / eps_leaf, eps_leaf^2 / 2 = rho_leaf
            zl = 1.0 / math.sqrt(2.0 * (1.0 - f) * rho)
            return es, zl

        def event(rho):
            return _tree_events(T, D, *params(rho), self.leaf_noise, self.split_noise)

        guess = min(1.0, self.epsilon ** 2 / (8.0 * T))
        rho = dpa.calibrate_dp_mechanism(
            _accountant, event, self.epsilon, self.delta,
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
        return _tree_events(self.n_trees, self.depth, self.split_epsilon,
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
            "split_mechanism": _SPLIT_NAMES[self.dp.split_noise],
            "split_zcdp_rho_per_level": self.split_epsilon ** 2 / _ZCDP_C[self.dp.split_noise],
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
                "dp_mechanism": MECHANISM.format(split=_SPLIT_NAMES[self.dp.split_noise],
                                                 leaf=self.dp.leaf_noise),
                "dp_params": json.dumps(params, sort_keys=True)}


# ----------------------------------------------------------------------------- accounting
def _accountant():
    from dp_accounting.rdp import rdp_privacy_accountant as rdp
    return rdp.RdpAccountant()


def _tree_events(T: int, D: int, split_epsilon: float, leaf_param: float, leaf_noise: str,
                 split_noise: str = "gumbel"):
    """T x (D eps-DP split choices as eps^2/8-zCDP (Gumbel, bounded range) or eps^2/2-zCDP
    (exponential noise) + one leaf release)."""
    import dp_accounting as dpa
    leaf = (dpa.GaussianDpEvent(leaf_param) if leaf_noise == "gaussian"
            else dpa.LaplaceDpEvent(leaf_param))
    rho = split_epsilon ** 2 / _ZCDP_C[split_noise]
    tree = dpa.ComposedDpEvent([dpa.SelfComposedDpEvent(dpa.ZCDpEvent(rho), D), leaf])
    return dpa.SelfComposedDpEvent(tree, T)


def spent_epsilon(event, delta: float) -> float:
    """epsilon at ``delta`` of a ``dp_accounting`` event, by the RDP accountant."""
    acc = _accountant()
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def gaussian_release_event(noise_multiplier: float, count: int = 1):
    """``count`` adaptive Gaussian releases, each with sigma = noise_multiplier x its L2
    sensitivity (e.g. the noisy histograms of every level of every tree)."""
    import dp_accounting as dpa
    return dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(float(noise_multiplier)), int(count))


def gaussian_releases(dp: DP, n_releases: int, l2_sensitivity: float) -> tuple:
    """(sigma, epsilon spent): the Gaussian noise that makes ``n_releases`` adaptive
    releases of L2 sensitivity ``l2_sensitivity`` (dp.epsilon, dp.delta)-DP together,
    calibrated with the RDP accountant (federated mode: the histograms' noise)."""
    import dp_accounting as dpa
    if not dp.private:
        raise DPError("epsilon is inf: there is no noise to calibrate")
    if isinstance(n_releases, bool) or not isinstance(n_releases, (int, np.integer)) \
            or n_releases < 1:
        raise DPError(f"n_releases == {n_releases!r}, must be an integer >= 1")
    s = _number("l2_sensitivity", l2_sensitivity, lo=0.0)
    z = dpa.calibrate_dp_mechanism(
        _accountant, lambda z: gaussian_release_event(1.0 / z, n_releases), dp.epsilon,
        dp.delta, dpa.LowerEndpointAndGuess(1e-9, 1.0), tol=1e-9)
    mult = 1.0 / z
    for _ in range(60):
        spent = spent_epsilon(gaussian_release_event(mult, n_releases), dp.delta)
        if spent <= dp.epsilon:
            break
        mult *= 1.0 + 1e-6
    return mult * s, spent


# ----------------------------------------------------------------------------- noise parts
def uniforms(rng, shape) -> np.ndarray:
    """Uniforms in (0, 1), 53 bits each, from a :class:`ppboost.crypto.prg.PRG` (AES-CTR,
    e.g. ``party.prg``, which the dealer does not know) or a ``numpy.random.Generator``."""
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if hasattr(rng, "uint64") and hasattr(rng, "pos"):
        w = rng.uint64(shape)
    else:
        w = rng.integers(0, np.iinfo(np.uint64).max, size=shape, dtype=np.uint64,
                         endpoint=True)
    return ((w >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53


def _gamma(rng, shape, a: float, scale: float) -> np.ndarray:
    """Gamma(a, scale) by the inverse CDF (both tails accurate)."""
    from scipy.special import gammainccinv, gammaincinv
    u = uniforms(rng, shape)
    low = u < 0.5
    out = np.empty(u.shape)
    out[low] = gammaincinv(a, u[low])
    out[~low] = gammainccinv(a, 1.0 - u[~low])
    return out * scale


def noise_part(rng, kind: str, scale: float, n_parties: int, shape) -> np.ndarray:
    """One party's part of a distributed noise of ``scale``, float64 of ``shape``.

    The parts of any ``n_parties - 1`` parties sum to exactly the noise:

    * ``"exponential"``: Exp(scale) (mean ``scale``) = sum of n_parties - 1
      Gamma(1 / (n_parties - 1), scale);
    * ``"gaussian"``: N(0, scale^2) = sum of N(0, scale^2 / (n_parties - 1));
    * ``"laplace"``: Laplace(scale) = Exp(scale) - Exp(scale), each a Gamma sum;
    * ``"gumbel"``: a whole Gumbel(0, scale) from every party (not divisible:
      any n_parties - 1 parts give a sum of Gumbels, which the exponential
      mechanism's guarantee covers as a mixture, module docstring).

    The sum of all ``n_parties`` parts has more noise (shape n_parties /
    (n_parties - 1) for the Gamma sums, variance n_parties / (n_parties - 1)
    times for the Gaussian, n_parties Gumbels).  ``rng``: see :func:`uniforms`; it must be the
    party's own (never a dealer-seeded stream).
    """
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)) \
            or n_parties < 2:
        raise DPError(f"n_parties == {n_parties!r}: distributed noise needs >= 2 parties")
    scale = _number("scale", scale, lo=0.0, lo_open=False)
    k = int(n_parties) - 1
    if kind == "exponential":
        return _gamma(rng, shape, 1.0 / k, scale)
    if kind == "gaussian":
        from scipy.special import ndtri
        return ndtri(uniforms(rng, shape)) * (scale / math.sqrt(k))
    if kind == "laplace":
        return _gamma(rng, shape, 1.0 / k, scale) - _gamma(rng, shape, 1.0 / k, scale)
    if kind == "gumbel":
        return -np.log(-np.log(uniforms(rng, shape))) * scale
    raise DPError(f"noise kind == {kind!r}, must be 'exponential', 'gaussian', 'laplace' or "
                  f"'gumbel'")
