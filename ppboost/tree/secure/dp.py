"""Differentially private training on shares: clipped gradients, noisy splits, noisy leaves.

The mechanism, the sensitivity of every released quantity and the budget
split are in :mod:`ppboost.dp` (after Li et al., "Privacy-Preserving
Gradient Boosting Decision Trees", AAAI 2020); this module computes it in
MPC, one party's side, in lockstep with the others:

* :func:`plan_run`: the :class:`~ppboost.dp.DPPlan` of a run from public
  facts (objective, n, trees, depth, lambda, parties) and the fixed-point
  plan, whose worst-case rounding errors widen the sensitivities;
* :func:`public_cuts`: equal-width cuts over the public ``bounds`` (and the
  declared levels of categorical features): the split conditions a DP
  model may carry, since cuts computed from the data would be released
  without noise;
* :func:`clip_gradients`: g -> min(max(g, -g*), g*) in MPC (one comparison
  batch, one product batch);
* :func:`noisy_choose_splits`: every node's utilities
  G_L^2/(n_L + lambda) + G_R^2/(n_R + lambda) (unit hessians: H is the row
  count), plus jointly made Gumbel (or exponential) noise
  (:func:`ppboost.mpc.noise.joint_noise` with :func:`ppboost.dp.noise_part`
  parts), then the secret argmax (:func:`ppboost.mpc.argmax.argmax`): the
  exponential mechanism as a noisy argmax.  Every node splits; the internal
  weights are 0 (not released);
* :func:`noisy_leaf_values`: the leaves' sums G and n plus jointly made
  Gaussian (or Laplace) noise, then w = -G~/(n~ + lambda) and eta w;
* :class:`DPSecureBackend`: the :class:`~ppboost.tree.secure.backend.SecureBackend`
  whose gradients, split choice and leaves are the three above.

Opened: only what the protocols open (uniformly masked values); the noise
parts are input sharings.  Every shape is public, so the transcript does
not depend on the data or the noise.  Nothing about the split choice is
data dependent except through the noisy argmax.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...crypto import fixed
from ...dp import DP, DPError, DPPlan, noise_part
from ...mpc import raw
from ...mpc.argmax import argmax
from ...mpc.arith import matmul as matmul_share
from ...mpc.noise import joint_noise
from ...mpc.nonlinear import INTERNAL_BITS
from ...mpc.party import Party
from ...mpc.shares import AShare
from ...mpc.truncation import mul_trunc
from ..binning import FeatureCuts
from ..params import TreeParams
from .backend import SecureBackend, step
from .precision import PrecisionPlan, bits_for, precision_plan
from .split import CandidateMaps, Leaves, Splits, node_weights

__all__ = ["F_DP", "DP_OBJECTIVES", "plan_run", "public_cuts", "model_attributes", "clip_gradients",
           "noisy_choose_splits", "noisy_leaf_values", "DPSecureBackend"]

#: fractional bits of the noisy utilities compared by the argmax
F_DP = 20
#: objectives with a DP mode (their gradients are bounded by 1)
DP_OBJECTIVES = ("binary:logistic", "multi:softprob")
#: noise beyond this many scales is treated as impossible when sizing bounds (tail e^-64)
_TAIL = 64.0


def check_params(params: TreeParams) -> None:
    """The parameters DP training accepts (DPError otherwise, before anything is shared)."""
    if params.objective not in DP_OBJECTIVES:
        raise DPError(f"differential privacy is built for {list(DP_OBJECTIVES)}, not "
                      f"{params.objective!r} (its gradients have no public bound without a "
                      f"public label range; not built)")
    if params.gamma != 0:
        raise DPError(f"gamma == {params.gamma}: with differential privacy every node splits "
                      f"(whether a node splits would need a budget of its own), so gamma must be 0")


def plan_run(dp: DP, params: TreeParams, n_rows: int, n_trees: int, n_parties: int) -> DPPlan:
    """The run's :class:`~ppboost.dp.DPPlan` (raises DPError / ValueError before sharing).

    g* = min(clip, 1) (|p - y| <= 1 for both objectives).  The fixed-point
    errors (:class:`PrecisionPlan`): a computed utility differs from the
    exact one by less than rho S + (|G_L| + |G_R|) lw 2^-fw + 2 lg 2^-Fl
    (rho the reciprocal's relative error, S <= n g*^2, |G_L| + |G_R| <= n g*)
    plus one ulp of the truncation to F_DP bits; two such errors (one per
    neighbouring data set) widen the split sensitivity.  The leaves release
    the exact integer sums (G, n), so their sensitivity needs no widening.
    """
    check_params(params)
    prec = precision_plan(params, n_rows, unit_hessian=True)
    g = min(float(dp.clip), 1.0)
    rho = 2.0 ** -(INTERNAL_BITS - 2) + 2.0 ** -prec.fr
    lw, lg = prec.limbs
    n = int(n_rows)
    split_err = (rho * n * g * g + n * g * lw * 2.0 ** -prec.fw + 2 * lg * 2.0 ** -prec.Fl
                 + 2.0 ** -F_DP)
    return dp.plan(n_trees=int(n_trees), depth=params.max_depth, n_rows=n,
                   reg_lambda=params.reg_lambda, n_parties=int(n_parties), gradient_bound=g,
                   split_error=split_err)


def public_cuts(dp: DP, feature_names, feature_types, categories: dict, max_bin: int) -> dict:
    """{feature index: FeatureCuts} from public facts only (DPError if a bound is missing).

    Numerical feature with bounds (lo, hi[, bins]): B = bins (default
    max_bin) equal-width bins over [lo, hi]; the inner cuts are
    lo + (hi - lo) k / B (k = 1 .. B-1, float32, a value x lands in the first
    bin whose cut is > x), the last cut hi + |hi| + 1e-5 and the minimum
    lo - |lo| - 1e-5, as xgboost writes its own; values outside [lo, hi]
    fall into the first or last bin.  Categorical feature: one bin per
    declared level (codes 0 .. K-1).
    """
    bounds = dp.bounds or {}
    names = [str(f) for f in feature_names]
    unknown = sorted(set(bounds) - set(names))
    if unknown:
        raise DPError(f"dp bounds name unknown feature(s) {unknown}; the features are {names}")
    missing = [f for f, t in zip(names, feature_types) if t != "c" and f not in bounds]
    if missing:
        raise DPError(f"differential privacy needs public bounds for every numerical feature "
                      f"(cuts computed from the data would be released without noise); "
                      f"missing: {missing}. Pass DP(bounds={{name: (lo, hi) or (lo, hi, bins)}}) "
                      f"from the data dictionary")
    out = {}
    for j, (f, t) in enumerate(zip(names, feature_types)):
        if t == "c":
            if f in bounds:
                raise DPError(f"dp bounds[{f!r}]: {f!r} is categorical; its bins are its "
                              f"declared levels")
            levels = categories.get(f)
            if not levels:
                raise DPError(f"categorical feature {f!r} has no declared levels")
            out[j] = FeatureCuts(np.arange(len(levels), dtype=np.float32), 0.0, True)
            continue
        lo, hi, bins = bounds[f]
        B = int(bins or max_bin)
        inner = (lo + (hi - lo) * np.arange(1, B) / B).astype(np.float32)
        last = np.float32(hi + abs(hi) + 1e-5)
        cuts = np.concatenate([inner, [last]]).astype(np.float32)
        if not np.all(np.diff(cuts) > 0):
            raise DPError(f"dp bounds[{f!r}] == {(lo, hi)} with {B} bins: the cuts are not "
                          f"distinct in float32; use fewer bins or a wider range")
        out[j] = FeatureCuts(cuts, float(np.float32(lo - abs(lo) - 1e-5)), False)
    return out


def clip_range(party: Party, x: np.ndarray, lo, hi, bound_bits: int = 64) -> np.ndarray:
    """Shares of min(max(x, lo), hi) elementwise, for public ring values ``lo <= hi``
    (scalars or arrays of x's shape, read as signed).

    s_hi = [hi - x < 0], s_lo = [x - lo < 0] (one comparison batch on 2N elements,
    declared bound ``bound_bits``: |hi - x|, |x - lo| < 2^(bound_bits - 1));
    x + s_hi (hi - x) + s_lo (lo - x) (one Beaver product batch).
    Opened: masks only.  Cost: 7 + 1 rounds.
    """
    n = x.shape[0]
    lo = raw.const(party, np.broadcast_to(np.asarray(lo, np.uint64), x.shape))
    hi = raw.const(party, np.broadcast_to(np.asarray(hi, np.uint64), x.shape))
    s = raw.ltz(party, np.concatenate([hi - x, x - lo]), bound_bits)
    d = raw.mul(party, s, np.concatenate([hi - x, lo - x]))
    return x + d[:n] + d[n:]


def clip_gradients(party: Party, g: np.ndarray, bound: float, frac_bits: int) -> np.ndarray:
    """Shares of min(max(g, -c), c) for shares g at ``frac_bits`` (|g| <= 2), c = ``bound``:
    :func:`clip_range` with the declared bound 2^(frac_bits + 4).  Cost: 7 + 1 rounds."""
    c = int(fixed.encode([bound], frac_bits)[0])
    return clip_range(party, g, np.uint64((-c) % 2 ** 64), np.uint64(c), frac_bits + 4)


def _candidate_sums(maps: CandidateMaps, cum: np.ndarray, tot: np.ndarray):
    """G_L, n_L, G_R, n_R (L, C) from the level's cumulative [G, count] histograms (local)."""
    ncol, L = tot.shape
    cumz = np.concatenate([cum, np.zeros((1, ncol, L), np.uint64)], axis=0)
    GL = (cumz[maps.idx] * maps.coef[:, :, None, None]).sum(axis=1, dtype=np.uint64)
    GR = cumz[maps.tot] - GL
    return GL[:, 0].T, GL[:, 1].T, GR[:, 0].T, GR[:, 1].T


def noisy_choose_splits(party: Party, prec: PrecisionPlan, maps: CandidateMaps,
                        reg_lambda: float, hist, plan: DPPlan) -> Splits:
    """Noisy-argmax split choice of every node of a level (every node splits).

    Utilities u = G_L w_L + G_R w_R with w = G / (n + lambda)
    (:func:`ppboost.tree.secure.split.node_weights`, a limb product for the
    gain; the parent's term is common to all candidates, so it is left
    out), truncated to F_DP bits; plus the shares of the split noise
    (``plan.dp.split_noise``: a Gumbel(beta) from every party, or Gamma
    parts of Exp(beta)), beta = ``plan.split_scale``, made by every party
    (:func:`ppboost.mpc.noise.joint_noise`); the secret one-hot of the
    maximum (:func:`ppboost.mpc.argmax.argmax`).  Sensitivity and epsilon:
    :mod:`ppboost.dp` (range 3 g*^2 + errors, eps_split = range / beta per
    level).  Opened: masks only.
    Cost: the reciprocal and 2 limb products on 2 L C elements, 1 truncation,
    the argmax's ceil(log2 C) levels; P input sharings of L C elements.
    """
    pr = prec
    cum, tot = hist.cum, hist.tot
    L = tot.shape[1]
    C = maps.tot.shape[0]
    gl, nl, gr, nr = _candidate_sums(maps, cum, tot)
    G = np.concatenate([gl.ravel(), gr.ravel()])
    H = np.concatenate([nl.ravel(), nr.ravel()])
    w = node_weights(party, pr, reg_lambda, G, H)
    gain = mul_trunc(AShare(party, G), AShare(party, w), *pr.gain_mul).value
    LC = L * C
    S = gain[:LC] + gain[LC:]
    u = raw.trunc(party, S, pr.Fl - F_DP, pr.Fl + bits_for(2 * pr.Qmax) + 2)
    P = party.n_parties
    noise = joint_noise(party, lambda rng, shape: noise_part(rng, plan.dp.split_noise,
                                                             plan.split_scale, P, shape),
                        (LC,), F_DP)
    oh = argmax(party, AShare(party, (u + noise).reshape(L, C))).value
    onehot = np.concatenate([oh, np.zeros((L, 1), np.uint64)], axis=1)
    return Splits(onehot, np.zeros(L, np.uint64), hist)


def noisy_leaf_values(party: Party, prec: PrecisionPlan, reg_lambda: float, eta: float, fm: int,
                      nodes: np.ndarray, gh, plan: DPPlan) -> Leaves:
    """Leaf weights from noisy sums: w = -G~ / (n~ + lambda), and eta w.

    G = g^T N by one matrix Beaver product, n = N^T 1 (local); every party
    adds its parts of the leaves' noise (``plan.dp.leaf_noise``, scale
    ``plan.leaf_scale``) to both, at fg bits
    (:func:`ppboost.mpc.noise.joint_noise`): the Gaussian (or Laplace)
    mechanism on the per-leaf sums (G, n), whose L2 (L1) sensitivity for one
    row is sqrt(g*^2 + 1) (g* + 1).  The rest is post-processing: n~ rounded
    to an integer, both clipped to what any data could give (n~ in [0, n],
    G~ in [-n g*, n g*]: :func:`clip_range`), w = G~ / (n~ + lambda)
    (:func:`~ppboost.tree.secure.split.node_weights`), no min_child_weight
    test.  Opened: masks only.
    Cost: 1 (matrix product) + 1 (truncation) + 8 (clipping) + the
    reciprocal + 3 (limb product) + 2 (truncations) rounds on 2^depth
    elements; 2P input sharings of 2^depth elements.
    """
    g, _ = gh
    pr = prec
    L = nodes.shape[1]
    n = int(pr.n_rows)
    cnt = nodes.sum(axis=0, dtype=np.uint64)
    G = matmul_share(AShare(party, g[None, :].copy()),
                     AShare(party, np.ascontiguousarray(nodes))).value[0]
    P = party.n_parties
    kind, scale = plan.dp.leaf_noise, plan.leaf_scale

    def part(rng, shape):
        return noise_part(rng, kind, scale, P, shape)

    F = pr.fg                                 # both sums' noise at the gradients' bits
    noise = joint_noise(party, part, (2, L), F)
    Gt = G + noise[0]
    tail = bits_for(n + _TAIL * 2.0 * scale + 1)
    Nt = raw.trunc(party, (cnt << np.uint64(F)) + noise[1], F, F + tail + 1)   # rounded count
    gmax = int(fixed.encode([plan.gradient_bound * n], pr.fg)[0])
    lo = np.concatenate([np.full(L, np.uint64((-gmax) % 2 ** 64)), np.zeros(L, np.uint64)])
    hi = np.concatenate([np.full(L, np.uint64(gmax)), np.full(L, np.uint64(n))])
    both = clip_range(party, np.concatenate([Gt, Nt]), lo, hi,
                      pr.fg + tail + 2)
    w = raw.trunc(party, node_weights(party, pr, reg_lambda, both[:L], both[L:]),
                  pr.fw - pr.fo, pr.w_bits)
    wl = np.uint64(0) - w
    value = raw.trunc(party, wl * fixed.encode([eta], fm)[0], pr.fo,
                      pr.fo + fm + bits_for(pr.Wmax) + 2)
    return Leaves(wl, value)


def model_attributes(dp: DP, params: TreeParams, n_rows, n_trees: int, n_parties: int) -> dict:
    """The booster's DP attributes from public facts, for an analyst that is not a data
    party (the parties' own plan gives the same).  ``n_rows`` None (an analyst that is
    not told the training rows): the spend, which does not depend on n, and the
    per-level and leaf multipliers only."""
    if n_rows is not None:
        return plan_run(dp, params, int(n_rows), n_trees, n_parties).attributes()
    import json
    es, zl = (dp.split_epsilon, dp.leaf_noise_multiplier) if dp.split_epsilon is not None \
        else dp.calibrate(int(n_trees), params.max_depth)
    from ...dp.accounting import spent_epsilon, tree_events
    from ...dp.budget import MECHANISM, SPLIT_NAMES
    spent = spent_epsilon(tree_events(int(n_trees), params.max_depth, es, zl, dp.leaf_noise,
                                      dp.split_noise), dp.delta)
    return {"dp_epsilon": repr(float(spent)), "dp_delta": repr(float(dp.delta)),
            "dp_mechanism": MECHANISM.format(split=SPLIT_NAMES[dp.split_noise],
                                             leaf=dp.leaf_noise),
            "dp_params": json.dumps({"requested_epsilon": dp.epsilon, "delta": dp.delta,
                                     "trees": int(n_trees), "depth": params.max_depth,
                                     "split_epsilon_per_level": es,
                                     "split_mechanism": SPLIT_NAMES[dp.split_noise],
                                     "leaf_mechanism": dp.leaf_noise,
                                     ("leaf_noise_multiplier" if dp.leaf_noise == "gaussian"
                                      else "leaf_inverse_epsilon"): zl,
                                     "accountant": "dp_accounting RdpAccountant"},
                                    sort_keys=True)}


class DPSecureBackend(SecureBackend):
    """The secure backend of differentially private training.

    The arguments of :class:`~ppboost.tree.secure.backend.SecureBackend`, and ``dp``:
    the run's :class:`~ppboost.dp.DPPlan` for these parties (the cuts must be
    :func:`public_cuts`).  Against
    :class:`~ppboost.tree.secure.backend.SecureBackend`: the objective must have a
    DP mode (:func:`check_params`), base_score is public (0.5 unless given),
    hessians are 1, and the gradients, the split choice and the leaves are
    :func:`clip_gradients`, :func:`noisy_choose_splits` and
    :func:`noisy_leaf_values`.  Everything else (set-up, histograms, routing,
    export, opening) is the parent's.
    """

    unit_hessian = True

    def __init__(self, party: Party, plan, params: TreeParams, binned: dict, cuts: dict,
                 labels: dict, offline: str = "overlap", analyst: int | None = None, *,
                 dp: DPPlan):
        self.dp = dp
        super().__init__(party, plan, params, binned, cuts, labels, offline=offline,
                         analyst=analyst)

    def prepare_params(self, party: Party, params: TreeParams) -> TreeParams:
        check_params(params)
        if self.dp.n_parties != party.n_parties:
            raise ValueError(f"the DP plan is for {self.dp.n_parties} parties, not "
                             f"{party.n_parties}")
        if params.base_score is None:          # the label mean would be released unnoised
            params = dataclasses.replace(params, base_score=0.5)
        return params

    @step("gradients")
    def gradients(self, margins) -> list:
        """[(clip(g), None)] per group: h = 1, g clipped to the plan's g*."""
        ghs = self.objective.gradients(margins, hessian=False)
        return [(clip_gradients(self.party, g, self.dp.gradient_bound, self.objective.fm), None)
                for g, _ in ghs]

    @step("split choice")
    def choose_splits(self, hist) -> Splits:
        return noisy_choose_splits(self.party, self.prec, self.candidate_maps,
                                   self.params.reg_lambda, hist, self.dp)

    @step("leaves")
    def leaf_values(self, nodes, gh) -> Leaves:
        return noisy_leaf_values(self.party, self.prec, self.params.reg_lambda,
                                 self.params.eta, self.objective.fm, nodes.indicator, gh,
                                 self.dp)
