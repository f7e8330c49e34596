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

What this package holds (no MPC code; importable from any layer), each name
importable from ``ppboost.dp``:

* :class:`DP` (:mod:`~ppboost.dp.budget`): the requested budget and the
  mechanism's public parameters, validated on construction (:class:`DPError`,
  :mod:`~ppboost.dp.checks`, before anything is shared);
* :meth:`DP.plan` -> :class:`DPPlan` (:mod:`~ppboost.dp.budget`): the noise of
  every released quantity, calibrated with ``dp-accounting``'s RDP accountant
  (no accountant is written here), the budget split over trees and levels
  (below);
* :func:`noise_part` (:mod:`~ppboost.dp.noise`): one party's local part of a
  distributed noise, sized so that the parts of the parties other than any
  one already give the required noise; the MPC side
  (:mod:`ppboost.mpc.noise`) inputs it as a share, the federated side adds it
  to a local histogram;
* :func:`gaussian_releases` / :func:`gaussian_release_event` /
  :func:`spent_epsilon` (:mod:`~ppboost.dp.accounting`, with the trees'
  entries): the accountant entries of a sequence of noisy (e.g. histogram)
  releases, for the federated mode.

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


For the federated mode: :mod:`ppboost.tree.federated_dp` (docs/protocols.md, section 5).
"""
from .accounting import gaussian_release_event, gaussian_releases, spent_epsilon
from .budget import DP, MECHANISM, NEIGHBOURING, DPPlan
from .checks import DPError, check_counts
from .noise import noise_part, uniforms

__all__ = ["DP", "DPPlan", "DPError", "noise_part", "uniforms", "gaussian_releases",
           "gaussian_release_event", "spent_epsilon", "check_counts", "NEIGHBOURING", "MECHANISM"]
