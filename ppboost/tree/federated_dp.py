"""Differential privacy in federated mode: every party's noise part on its local sums.

``ppboost.train(params, HorizontalSplit(...), rounds, mode="federated",
dp=ppboost.DP(epsilon, delta, bounds=...))`` (or a federated job's ``"dp"``
object) trains on :class:`DPFederatedBackend`: the federated backend of
:mod:`ppboost.tree.federated` with every released sum made noisy *before*
the secure sum, by a Gaussian part that each data party draws from its own
AES-CTR stream.  The analyst (the aggregation server) then only ever sees
noisy sums; the split search, the node weights, the leaf values and the
whole model are post-processing of them, so they are differentially private
too, towards the analyst, the other parties and every user of the model.

Neighbouring relation: add or remove one training row (at any party).

The mechanism (after Maddock, Cormode, Wang, Maple and Jha, "Federated
Boosted Decision Trees with Differential Privacy", ACM CCS 2022: Gaussian
noise on clipped gradient histograms under secure aggregation; unit hessians
and clipping as DPBoost, Li et al., AAAI 2020):

* **Local and public inputs.**  Each party clips its own gradients to
  [-g*, g*] in the clear (they are local in federated mode), g* =
  min(``clip``, 1) (|p - y| <= 1 for binary:logistic and multi:softprob, the
  two objectives with DP), and takes every hessian as 1, so H is a row
  count.  The cuts are public (:func:`ppboost.tree.secure.dp.public_cuts`,
  equal-width over the declared ``bounds``; no federated sketch) and the
  intercept is the public ``base_score`` (0.5 unless given; no pooled label
  statistics).  Nothing of the set-up is released.
* **Level releases.**  Per level of a tree, every party sends the vector of
  its built nodes' sums: per node, feature and bin (missing bins included)
  G = sum g and H = number of rows, and the node's (G, H); each entry plus
  its part of N(0, sigma_h^2).  The missing counts are not sent (the analyst
  reads them from the noisy H of the missing bins).  One row lies in one
  node of the level and, for every one of the m features, in exactly one
  bin (its value's or the missing bin), so it moves m G entries by g, m H
  entries by 1 and the node's (G, H) by (g, 1): the level's L2 sensitivity
  is **Delta_h = sqrt((m + 1)(g*^2 + 1))** (attained at |g| = g*), whatever
  the number of nodes (they hold disjoint rows: parallel composition inside
  the one vector).  Which nodes are built (one child of each split; the
  other is the parent minus it) and the splits follow from earlier noisy
  releases: post-processing.
* **Leaf release.**  After the last level each party sends, per leaf, its
  (G, n) plus its part of N(0, sigma_l^2); one row is in one leaf and moves
  it by (g, 1): **Delta_l = sqrt(g*^2 + 1)**.  The leaf weight is
  -G~ / (n~ + lambda) with n~ rounded and clipped to [0, n] and G~ to
  [-g* n~, g* n~] (xgboost's min_child_weight test on n~): post-processing.
* **Budget.**  Per tree D = max_depth level releases and one leaf release,
  each the Gaussian mechanism with sigma = z x its sensitivity: z_h for the
  levels, z_l for the leaves.  The Gaussian mechanism with multiplier z is
  (alpha, alpha / (2 z^2))-RDP for every alpha (Mironov, "Renyi
  Differential Privacy", CSF 2017, Prop. 7), and RDP adds under adaptive
  composition, so a tree is exactly one Gaussian of multiplier z_t with
  1 / z_t^2 = D / z_h^2 + 1 / z_l^2.  ``split_share`` f of it goes to the
  levels, evenly: z_h = z_t sqrt(D / f), z_l = z_t / sqrt(1 - f).  z_t is
  calibrated for T = rounds x classes trees with
  :func:`ppboost.dp.gaussian_releases` (``dp-accounting``'s RDP accountant,
  ``calibrate_dp_mechanism``), and the spend is the accountant's
  composition of all T (D + 1) releases (:meth:`FederatedDPPlan.event`),
  which is what the booster carries.  Trees are adaptive (each one's
  gradients depend on the released earlier trees): RDP composition covers
  that.
* **Refusals** (:class:`~ppboost.dp.DPError`, before anything is shared):
  other objectives (reg:squarederror has no public gradient bound and its
  per-round scale would be released unnoised), Laplace leaves, the MPC
  mode's noisy argmax (``split_noise="exponential"``) or fixed noise
  (``split_epsilon``), a missing bound, and a budget too small for the
  trees: a calibrated sigma on a row count (sigma_l, or sigma_h of every
  bin) above n, the number of rows; the error gives the epsilon that even
  the most noise worth having (sigma = n) would spend.

Distributed noise and the assumption on honest parties.  With n data parties
of which secure aggregation tolerates f = floor((n - 1) / 3) dropouts
(:func:`ppboost.mpc.secagg.max_dropouts`), every party draws each entry's
part as N(0, sigma^2 / k) with k = n - f - 1 (:func:`ppboost.dp.noise_part`
with ``n_parties = n - f``), from its own AES-CTR stream (seeded from its
own os.urandom, never known to the dealer or another party).  Every sum has
at least n - f parts; whoever takes part in a sum knows its own part, and
the parts of the at least k other parties sum to N(0, sigma^2) or more.
So the guarantee (epsilon, delta) holds towards **any one participant**
(the analyst included, and any other single party, which sees only the
post-processed model) and towards every outsider, **provided that** every
other data party follows the protocol (semi-honest: it clips, adds its part
and draws it from fresh randomness) and that secure aggregation opens only
the sum (the analyst does not collude with t - 1 = n - f - 1 others, the
Shamir threshold).  With n = 2 (f = 0, k = 1) each party adds the whole
N(0, sigma^2): the analyst's sum minus its own vector is the other party's
histogram *with* N(0, sigma^2) noise, which is what makes 2 parties
acceptable with DP.  Not claimed: a coalition of c >= 2 parties knows c
parts, and the other parts give only (parts - c) / k sigma^2 of the noise; a
party that does not add its part weakens the guarantee towards the others.
The price: without dropouts every sum carries n / k times the calibrated
variance (2x at n = 2, 1.5x at n = 3, 2x at n = 4).

The noise is drawn in float64 and each party's noisy value is rounded to
the fixed-point grid 2^-f before the sum (f from n + 64 standard deviations
of the total noise, :meth:`FederatedDPPlan.frac_bits`); the guarantee is
that of the continuous Gaussian mechanism.  Dropouts work as without DP
(:mod:`ppboost.tree.federated`); a party that drops before the leaf
release leaves its tree with the leaf weights of the last level's noisy
sums.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..dp import DP, NEIGHBOURING, DPError, check_counts, gaussian_releases, noise_part, spent_epsilon
from . import losses, split_rule
from .federated import FederatedBackend, frac_bits_for, from_ring, to_ring
from .params import TreeParams

__all__ = ["FED_MECHANISM", "FederatedDPPlan", "DPFederatedBackend", "check_params",
           "plan_federated", "part_parties"]

#: the mechanism's name as the booster carries it
FED_MECHANISM = ("federated histograms with distributed Gaussian noise: clipped gradients, unit "
                 "hessians, Gaussian noise on every level's histogram sums and every tree's leaf "
                 "sums (a part from every data party, before the secure sum), splits and leaf "
                 "values by post-processing")
#: noise beyond this many standard deviations is treated as impossible when sizing the grid
_TAIL = 64.0
#: objectives with a DP mode (their gradients are bounded by 1)
_OBJECTIVES = ("binary:logistic", "multi:softprob")


def part_parties(n_parties: int) -> int:
    """n - f: the parties of a sum after the tolerated dropouts; a part is N(0, s^2 / (n - f - 1))."""
    from ..mpc.secagg import max_dropouts
    return int(n_parties) - max_dropouts(int(n_parties))


def check_params(dp: DP, params: TreeParams) -> None:
    """What federated DP accepts (DPError otherwise, before anything is shared)."""
    if params.objective not in _OBJECTIVES:
        raise DPError(f"differential privacy is built for {list(_OBJECTIVES)}, not "
                      f"{params.objective!r} (its gradients have no public bound; not built)")
    if dp.leaf_noise != "gaussian":
        raise DPError(f"leaf_noise == {dp.leaf_noise!r}: mode='federated' adds Gaussian noise "
                      f"parts (only 'gaussian' is built for it)")
    if dp.split_noise != "gumbel":
        raise DPError(f"split_noise == {dp.split_noise!r} is the MPC mode's noisy argmax; in "
                      f"mode='federated' the split search is post-processing of the noisy "
                      f"histograms (leave split_noise at its default)")
    if dp.split_epsilon is not None:
        raise DPError("split_epsilon / leaf_noise_multiplier fix the MPC mode's noise; "
                      "mode='federated' calibrates its Gaussian noise from (epsilon, delta)")


@dataclass(frozen=True)
class FederatedDPPlan:
    """The calibrated noise of a federated run; every party computes the same from public facts.

    ``tree_multiplier`` z_t; ``hist_multiplier`` z_h and ``leaf_multiplier`` z_l
    (sigma = z x sensitivity); ``hist_sensitivity`` Delta_h = sqrt((m + 1)(g*^2 + 1))
    of a level's release, ``leaf_sensitivity`` Delta_l = sqrt(g*^2 + 1) of a tree's
    leaf release; ``epsilon_spent`` the RDP accountant's spend at ``dp.delta``;
    ``part_parties`` n - f (each part N(0, sigma^2 / (n - f - 1))).
    """

    dp: DP
    n_trees: int
    depth: int
    n_features: int
    n_rows: int
    n_parties: int
    part_parties: int
    gradient_bound: float
    reg_lambda: float
    tree_multiplier: float
    hist_multiplier: float
    leaf_multiplier: float
    hist_sensitivity: float
    leaf_sensitivity: float
    epsilon_spent: float

    @property
    def delta(self) -> float:
        return self.dp.delta

    @property
    def hist_sigma(self) -> float:
        """sigma_h: the calibrated noise of every entry of a level's sums."""
        return self.hist_multiplier * self.hist_sensitivity

    @property
    def leaf_sigma(self) -> float:
        """sigma_l: the calibrated noise of each leaf's G and n."""
        return self.leaf_multiplier * self.leaf_sensitivity

    def event(self):
        """The whole run as one ``dp_accounting`` DpEvent: T x (D level + 1 leaf Gaussians)."""
        return _events(self.n_trees, self.depth, self.hist_multiplier, self.leaf_multiplier)

    def part(self, rng, sigma: float, shape) -> np.ndarray:
        """This party's noise part of a release whose calibrated noise is N(0, sigma^2)."""
        return noise_part(rng, "gaussian", sigma, self.part_parties, shape)

    def frac_bits(self, sigma: float) -> int:
        """Fractional bits of a noisy sum: |sum| <= n + 64 x the total noise's std."""
        std = sigma * math.sqrt(self.n_parties / (self.part_parties - 1))
        return frac_bits_for(self.n_rows + _TAIL * std + 1.0)

    def attributes(self) -> dict:
        """The booster's attributes: the spend, the mechanism's name and parameters."""
        k = self.part_parties - 1
        params = {
            "mode": "federated", "requested_epsilon": self.dp.epsilon, "delta": self.dp.delta,
            "neighbouring": NEIGHBOURING, "accountant": "dp_accounting RdpAccountant",
            "trees": self.n_trees, "depth": self.depth, "rows": self.n_rows,
            "features": self.n_features, "parties": self.n_parties,
            "gradient_clip": self.gradient_bound, "hessian": 1.0, "reg_lambda": self.reg_lambda,
            "split_share": self.dp.split_share,
            "releases_per_tree": f"{self.depth} level histograms + 1 leaf release",
            "histogram_sensitivity_l2": self.hist_sensitivity,
            "histogram_noise_multiplier": self.hist_multiplier,
            "histogram_noise_sigma": self.hist_sigma,
            "leaf_sensitivity_l2": self.leaf_sensitivity,
            "leaf_noise_multiplier": self.leaf_multiplier, "leaf_noise_sigma": self.leaf_sigma,
            "tree_noise_multiplier": self.tree_multiplier,
            "noise_parts": f"one per data party and entry, N(0, sigma^2 / {k}): the parts of any "
                           f"{k} parties give N(0, sigma^2)",
            "assumption": "every other data party adds its part (semi-honest); secure "
                          "aggregation opens only the sum; no coalition of 2 or more",
            "split_search": "post-processing of the noisy histograms",
            "split_conditions": "public cuts", "intercept": "public base_score",
        }
        return {"dp_epsilon": repr(float(self.epsilon_spent)),
                "dp_delta": repr(float(self.delta)), "dp_mechanism": FED_MECHANISM,
                "dp_params": json.dumps(params, sort_keys=True)}


def _events(T: int, D: int, z_h: float, z_l: float):
    import dp_accounting as dpa
    tree = dpa.ComposedDpEvent([dpa.SelfComposedDpEvent(dpa.GaussianDpEvent(z_h), D),
                                dpa.GaussianDpEvent(z_l)])
    return dpa.SelfComposedDpEvent(tree, T)


def plan_federated(dp: DP, params: TreeParams, n_rows: int, n_features: int, n_trees: int,
                   n_parties: int) -> FederatedDPPlan:
    """The run's :class:`FederatedDPPlan` from public facts (DPError before anything is shared)."""
    if not dp.private:
        raise DPError("epsilon is inf: there is no noise to plan")
    check_params(dp, params)
    check_counts(n_trees=n_trees, n_rows=n_rows, n_features=n_features, n_parties=n_parties)
    T, D, m, n = int(n_trees), int(params.max_depth), int(n_features), int(n_rows)
    g = min(float(dp.clip), 1.0)
    f = dp.split_share
    z_t, _ = gaussian_releases(dp, T, 1.0)           # T tree-sized Gaussians, calibrated
    z_h, z_l = z_t * math.sqrt(D / f), z_t / math.sqrt(1.0 - f)
    dh, dl = math.sqrt((m + 1) * (g * g + 1.0)), math.sqrt(g * g + 1.0)
    spent = spent_epsilon(_events(T, D, z_h, z_l), dp.delta)
    if spent > dp.epsilon * (1 + 1e-9):
        raise DPError(f"this configuration spends epsilon == {spent:.6g} at delta == "
                      f"{dp.delta:g} ({T} trees x ({D} level histograms + leaves), RDP "
                      f"accountant), more than the requested epsilon == {dp.epsilon:g}")
    worst = max(z_h * dh, z_l * dl)
    if worst > n:
        c = n / worst                                  # the most noise worth having: sigma = n
        least = spent_epsilon(_events(T, D, z_h * c, z_l * c), dp.delta)
        what = "each leaf's row count" if z_l * dl >= z_h * dh else "every histogram bin"
        raise DPError(
            f"the budget is too small for {T} trees: with epsilon == {dp.epsilon:g}, delta == "
            f"{dp.delta:g} over {T} trees of depth {D} and {m} features, the noise on {what} "
            f"(std {worst:.4g}) would exceed the number of rows ({n}); even noise of std {n} "
            f"would spend epsilon == {least:.4g}. Give a larger epsilon or fewer trees, levels "
            f"or features")
    return FederatedDPPlan(dp=dp, n_trees=T, depth=D, n_features=m, n_rows=n,
                           n_parties=int(n_parties), part_parties=part_parties(n_parties),
                           gradient_bound=g, reg_lambda=float(params.reg_lambda),
                           tree_multiplier=z_t, hist_multiplier=z_h, leaf_multiplier=z_l,
                           hist_sensitivity=dh, leaf_sensitivity=dl, epsilon_spent=spent)


class DPFederatedBackend(FederatedBackend):
    """:class:`~ppboost.tree.federated.FederatedBackend` with the mechanism above.

    ``plan``: the run's :class:`FederatedDPPlan`; ``noise_rng``: this party's own
    stream (a :class:`ppboost.crypto.prg.PRG` it seeded; never a shared one).  The
    other arguments are the federated backend's; ``mapper`` must hold public cuts
    and ``base`` the public base_score's margins.
    """

    noisy_sums = True

    def __init__(self, fed, codes, y, params: TreeParams, mapper, n_total: int, base,
                 plan: FederatedDPPlan, noise_rng, threads=None, kernel_lock=None):
        super().__init__(fed, codes, y, params, mapper, n_total, base, threads=threads,
                         kernel_lock=kernel_lock)
        if plan.n_rows != self.n_total or plan.n_features != self.m:
            raise ValueError(f"the DP plan is for {plan.n_rows} rows x {plan.n_features} "
                             f"features, not {self.n_total} x {self.m}")
        self.plan = plan
        self.noise_rng = noise_rng
        self.f_g = self.f_h = plan.frac_bits(plan.hist_sigma)
        self.f_leaf = plan.frac_bits(plan.leaf_sigma)

    def _round_slots(self) -> int:
        p = self.params
        return p.n_groups * (p.max_depth + 1)          # every level, and the leaves

    def gradients(self, margins):
        """Clipped to [-g*, g*] locally; unit hessians (H is a row count)."""
        g, _ = losses.gradients(margins, self.y, self.params)
        gs = np.float32(self.plan.gradient_bound)
        g = np.clip(g, -gs, gs).astype(np.float32)
        return [(g[:, k].copy(), np.ones(g.shape[0], np.float32)) for k in range(g.shape[1])]

    def _level_vector(self, hist, miss, tot) -> np.ndarray:
        """G | H per bin and the node's (G, H), each with this party's noise part; the
        missing counts are not sent (zeros)."""
        S, B = hist.shape[0], self.B
        vals = np.concatenate([hist[:, :, 0], hist[:, :, 1], tot], axis=1)
        vals = vals + self.plan.part(self.noise_rng, self.plan.hist_sigma, vals.shape)
        return np.concatenate([to_ring(vals[:, :B], self.f_g), to_ring(vals[:, B:2 * B], self.f_h),
                               np.zeros((S, self.m), np.uint64),
                               to_ring(vals[:, 2 * B:2 * B + 1], self.f_g),
                               to_ring(vals[:, 2 * B + 1:], self.f_h)], axis=1)

    def histograms(self, nodes, gh):
        out = super().histograms(nodes, gh)
        if "count" in out:                            # server: missing counts = noisy H there
            miss_cols = self.offs[1:] - 1
            out["count"][:, miss_cols] = np.rint(out["H"][:, miss_cols])
        return out

    def leaf_weights(self, G, n) -> np.ndarray:
        """-G~ / (n~ + lambda) from the noisy sums: n~ rounded into [0, n], G~ into
        [-g* n~, g* n~], 0 below min_child_weight (post-processing)."""
        n = np.clip(np.rint(n), 0.0, float(self.n_total))
        lim = self.plan.gradient_bound * n
        G = np.clip(G, -lim, lim)
        return split_rule.weight(G, n, self.params.reg_lambda, self.params.min_child_weight)

    def leaf_values(self, nodes, gh):
        """The leaf release: each party's (G, n) per leaf plus its noise part, one secure sum;
        the analyst announces the weights."""
        if nodes.truncated is not None:
            return super().leaf_values(nodes, gh)
        g, _ = gh
        L = 1 << nodes.level
        G = np.bincount(nodes.pos, weights=g.astype(np.float64), minlength=L)
        cnt = np.bincount(nodes.pos, minlength=L).astype(np.float64)
        vec = np.concatenate([G, cnt])
        vec = vec + self.plan.part(self.noise_rng, self.plan.leaf_sigma, vec.shape)
        group = self.tree_in_round
        agg = self._sum(to_ring(vec, self.f_leaf), f"tree {group}, leaves", nodes.level, group)
        fed = self.fed
        where = f"round {self.round}: tree {group} leaves"
        if fed.is_server:
            if agg.changed:                           # a party left: the last level's weights
                self.broken = True
                w = np.asarray(nodes.leaf, np.float64)
                fed.announce({"fallback": True}, where)
            else:
                tot = from_ring(agg.total, self.f_leaf)
                w = self.leaf_weights(tot[:L], tot[L:])
                fed.announce({"leaf": w.tolist()}, where)
        else:
            msg = fed.hear()
            if msg.get("fallback"):
                self.broken = True
                w = np.asarray(nodes.leaf, np.float64)
            else:
                w = np.asarray(msg["leaf"], np.float64)
        value = (w.astype(np.float32) * np.float32(self.params.eta)).astype(np.float32)
        return {"weight": w, "value": value}
