"""Differential privacy in federated mode (ppboost.tree.federated_dp).

* ``epsilon=inf`` (or ``dp=None``) is exactly today's federated model;
* the sums the analyst receives are the exact sums plus every party's part, and the
  parts have the right distribution: the total, and the total without any one
  party's part (what that party cannot take out), Kolmogorov-Smirnov on many
  draws made by the real backend over secure aggregation, 2, 3 and 4 parties;
* the accountant's composition of every release matches the spend the booster carries;
* 2 parties train with DP and are refused without; bad input is refused before
  anything is shared; the job-file path (``"dp"`` with ``"mode": "federated"``).
"""
from __future__ import annotations

import functools
import json
import math
import re

import numpy as np
import pytest
from scipy import stats

import ppboost
from ppboost.crypto.prg import PRG
from ppboost.dp import DP, DPError
from ppboost.errors import JobError
from ppboost.training.federated import run_federated_party
from ppboost.training.job import Job
from ppboost.training.runner import run_dealer
from ppboost.training.site import site_from_view
from ppboost.transport.inprocess import run_inprocess

M = 4
BOUNDS = {f"f{j}": (0.0, 10.0, 8) for j in range(M)}
PARAMS = {"objective": "binary:logistic", "max_depth": 2, "eta": 1.0, "lambda": 5.0}


def _data(n_parties, n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, size=(n, M)).astype(np.float32)
    X[rng.random((n, M)) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=n) > 5).astype(np.float32)
    rows = np.array_split(np.arange(n), n_parties)
    return ppboost.HorizontalSplit({f"p{i}": (X[r], y[r]) for i, r in enumerate(rows)}), X, y


def test_epsilon_inf_is_exactly_todays_federated_model():
    data, _, _ = _data(3)
    params = {**PARAMS, "max_bin": 16}
    a = ppboost.train(params, data, 3, mode="federated", verbose=False).reveal()
    b = ppboost.train(params, data, 3, mode="federated", verbose=False,
                      dp=DP(epsilon=math.inf)).reveal()
    assert bytes(a.save_raw("json")) == bytes(b.save_raw("json"))
    assert b.attr("dp_epsilon") is None


@pytest.mark.parametrize("n_parties", [2, 3])
def test_two_and_three_parties_train_with_dp_and_the_spend_is_the_accountants(n_parties):
    import dp_accounting as dpa
    from dp_accounting.rdp import rdp_privacy_accountant as rdp
    data, X, y = _data(n_parties, n=3000)
    rounds, eps = 4, 2.0
    model = ppboost.train(PARAMS, data, rounds, mode="federated", verbose=False,
                          dp=DP(epsilon=eps, delta=1e-6, bounds=BOUNDS))
    booster = model.reveal()
    spent = float(booster.attr("dp_epsilon"))
    assert 0.999 * eps < spent <= eps and float(booster.attr("dp_delta")) == 1e-6
    assert "distributed Gaussian noise" in booster.attr("dp_mechanism")
    p = json.loads(booster.attr("dp_params"))
    assert p["mode"] == "federated" and p["parties"] == n_parties and p["trees"] == rounds
    # sensitivities: a level sqrt((m + 1)(g*^2 + 1)), a tree's leaves sqrt(g*^2 + 1), g* = 1
    assert p["histogram_sensitivity_l2"] == pytest.approx(math.sqrt((M + 1) * 2))
    assert p["leaf_sensitivity_l2"] == pytest.approx(math.sqrt(2))
    assert p["histogram_noise_sigma"] == pytest.approx(
        p["histogram_noise_multiplier"] * p["histogram_sensitivity_l2"])
    D, f = PARAMS["max_depth"], 0.5
    z_t = p["tree_noise_multiplier"]
    assert p["histogram_noise_multiplier"] == pytest.approx(z_t * math.sqrt(D / f))
    assert p["leaf_noise_multiplier"] == pytest.approx(z_t / math.sqrt(1 - f))
    # a fresh accountant, release by release: rounds x (D levels + leaves)
    acc = rdp.RdpAccountant()
    for _ in range(rounds):
        for _ in range(D):
            acc.compose(dpa.GaussianDpEvent(p["histogram_noise_multiplier"]))
        acc.compose(dpa.GaussianDpEvent(p["leaf_noise_multiplier"]))
    assert acc.get_epsilon(1e-6) == pytest.approx(spent, rel=1e-9)
    assert f"N(0, sigma^2 / {n_parties - 1})" in p["noise_parts"]
    # a usable model (about 0.93 to 0.97 in 8 runs of 2 parties)
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(y, booster.predict(xgb.DMatrix(X))) > 0.8
    assert booster.num_boosted_rounds() == rounds


def test_two_parties_without_dp_are_refused():
    data, _, _ = _data(2)
    for dp in (None, DP(epsilon=math.inf)):
        with pytest.raises(JobError, match="2 parties is refused without differential "
                                           "privacy.*2 parties are accepted"):
            ppboost.train(PARAMS, data, 2, mode="federated", verbose=False, dp=dp)


def _no_sharing(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the parties were started")
    import ppboost.transport.inprocess as ip
    monkeypatch.setattr(ip, "run_inprocess", refuse)


def test_bad_input_is_refused_before_anything_is_shared(monkeypatch):
    for kw, msg in (({"epsilon": 0.0}, "epsilon == 0.0, must be > 0"),
                    ({"epsilon": -1.0}, "epsilon == -1.0, must be > 0"),
                    ({"epsilon": 1.0, "delta": 0.0}, "delta == 0.0, must be > 0"),
                    ({"epsilon": 1.0, "delta": 1.0}, "delta == 1.0, must be < 1"),
                    ({"epsilon": 1.0, "delta": 2.0}, "delta == 2.0, must be < 1")):
        with pytest.raises(DPError, match=msg):
            DP(**kw)
        with pytest.raises(JobError, match=msg):
            Job(params=PARAMS, num_boost_round=2, split="horizontal", analyst="p0",
                mode="federated", dp=kw)
    _no_sharing(monkeypatch)
    data, _, _ = _data(2)
    train = functools.partial(ppboost.train, verbose=False, mode="federated")
    with pytest.raises(DPError, match=r"budget is too small for 40 trees.*would exceed the "
                                      r"number of rows \(600\); even noise of std 600 would "
                                      r"spend epsilon == [0-9.]+"):
        train(PARAMS, data, 40, dp=DP(epsilon=0.01, bounds=BOUNDS))
    with pytest.raises(DPError, match="public bounds for every numerical feature"):
        train(PARAMS, data, 2, dp=DP(epsilon=1.0))
    with pytest.raises(DPError, match="built for .*not 'reg:squarederror'"):
        train({**PARAMS, "objective": "reg:squarederror"}, data, 2,
              dp=DP(epsilon=1.0, bounds=BOUNDS))
    with pytest.raises(DPError, match="only 'gaussian'"):
        train(PARAMS, data, 2, dp=DP(epsilon=1.0, bounds=BOUNDS, leaf_noise="laplace"))
    with pytest.raises(DPError, match="calibrates its Gaussian noise"):
        train(PARAMS, data, 2, dp=DP(epsilon=1.0, bounds=BOUNDS, split_epsilon=0.1,
                                     leaf_noise_multiplier=2.0))


def test_too_small_budget_spend_is_what_sigma_n_would_cost():
    """The spend the refusal names is the accountant's for noise std = n on the worst sums."""
    from ppboost.tree.federated_dp import _events, plan_federated
    from ppboost.tree.params import TreeParams
    p = TreeParams.from_dict(PARAMS)
    with pytest.raises(DPError, match=r"would spend epsilon == ") as e:
        plan_federated(DP(epsilon=0.01), p, 600, M, 40, 2)
    named = float(re.search(r"would spend epsilon == ([0-9.e+-]+?)\. Give", str(e.value))[1])
    assert named > 0.01
    ok = plan_federated(DP(epsilon=named * 1.01), p, 600, M, 40, 2)   # just above it: accepted
    assert max(ok.hist_sigma, ok.leaf_sigma) <= 600
    from ppboost.dp import spent_epsilon
    assert spent_epsilon(_events(40, 2, ok.hist_multiplier, ok.leaf_multiplier), 1e-6) \
        == pytest.approx(ok.epsilon_spent)


# ----------------------------------------------------------------------------- the noise
R = 30        # boosting rounds of one depth-1 tree; each releases one root histogram


def _released(n_parties, seeds):
    """Every party runs the DP backend for R rounds of a depth-1 tree over secure
    aggregation; returns per party (exact local sums, the server's released sums)."""
    from ppboost.tree.binning import BinMapper
    from ppboost.tree.federated import Federation, local_histograms
    from ppboost.tree.federated_binning import bin_codes
    from ppboost.tree.federated_dp import DPFederatedBackend, plan_federated
    from ppboost.tree.params import TreeParams
    from ppboost.tree.secure.dp import public_cuts

    data, _, _ = _data(n_parties, n=300 * n_parties, seed=n_parties)
    params = TreeParams.from_dict({**PARAMS, "max_depth": 1, "base_score": 0.5})
    dp = DP(epsilon=1.0, bounds=BOUNDS)
    n = data.n_rows
    plan = plan_federated(dp, params, n, M, R, n_parties)
    cuts = public_cuts(dp, data.feature_names, data.feature_types, {}, 256)
    mapper = BinMapper(tuple(cuts[j] for j in range(M)))
    base = np.zeros(1, np.float32)

    class Recording(DPFederatedBackend):
        def leaf_weights(self, G, cnt):
            self.leaf_sums.append(np.concatenate([G, cnt]))
            return super().leaf_weights(G, cnt)

    def party(pid, ep):
        view = data.party(data.party_names[pid])
        codes = bin_codes(np.asarray(view.X, np.float32), mapper)
        fed = Federation(ep, list(range(n_parties)), 0)
        be = Recording(fed, codes, np.asarray(view.y), params, mapper, n, base, plan,
                       PRG(seeds[pid]))
        be.leaf_sums = []
        margins = be.init_margins()
        exact, released = [], []
        for r in range(R):
            be.before_round(r)
            (g, h), = be.gradients(margins)
            nodes = be.root_nodes()
            hist = be.histograms(nodes, (g, h))
            rows = np.arange(codes.shape[0])
            hh, _, tot = local_histograms(codes, rows, np.zeros_like(rows), g, h, be.offs,
                                          be.layout.n_bins, 1)
            splits = be.choose_splits(hist)
            leaf_nodes = be.route(nodes, splits)
            be.leaf_values(leaf_nodes, (g, h))
            G = np.bincount(leaf_nodes.pos, weights=g.astype(np.float64), minlength=2)
            c = np.bincount(leaf_nodes.pos, minlength=2).astype(np.float64)
            exact.append((np.concatenate([hh[0, :, 0], hh[0, :, 1], tot[0]]),
                          np.concatenate([G, c])))
            if fed.is_server:
                released.append((np.concatenate([hist["G"][0], hist["H"][0],
                                                 [hist["G_node"][0], hist["H_node"][0]]]),
                                 be.leaf_sums[-1]))
        return exact, released, be.B

    res, _, _ = run_inprocess(n_parties, [functools.partial(party, p) for p in range(n_parties)],
                              None, timeout=60, names=list(data.party_names) + ["dealer"])
    return res, plan


def _replay(plan, seed, B):
    """A party's parts, drawn again from its own seed in the backend's order."""
    rng = PRG(seed)
    out = []
    for _ in range(R):
        lvl = plan.part(rng, plan.hist_sigma, (1, 2 * B + 2))[0]
        leaf = plan.part(rng, plan.leaf_sigma, (4,))
        out.append((lvl, leaf))
    return out


@pytest.mark.statistical
@pytest.mark.parametrize("n_parties", [2, 3, 4])
def test_released_sums_are_exact_plus_every_part_with_the_right_distribution(n_parties):
    seeds = [bytes([40 + 10 * n_parties + p]) * 16 for p in range(n_parties)]
    res, plan = _released(n_parties, seeds)
    B = res[0][2]
    parts = [_replay(plan, s, B) for s in seeds]
    k = plan.part_parties - 1                    # each part is N(0, sigma^2 / k)
    assert k == {2: 1, 3: 2, 4: 2}[n_parties]   # 4 parties tolerate one dropout
    released = res[0][1]
    for which, sigma in ((0, plan.hist_sigma), (1, plan.leaf_sigma)):
        exact = np.stack([sum(r[0][t][which] for r in res) for t in range(R)])
        got = np.stack([released[t][which] for t in range(R)])
        part = np.stack([[parts[p][t][which] for t in range(R)] for p in range(n_parties)])
        noise = got - exact
        if which == 1:                           # the leaf weights' inputs: rounding only
            assert np.abs(noise - part.sum(axis=0)).max() < 1e-6 * max(1.0, sigma)
            continue
        # the released sums are the exact sums plus the sum of every party's part
        assert np.abs(noise - part.sum(axis=0)).max() < 1e-6 * sigma
        total = noise.ravel()
        assert total.shape[0] >= 2000
        assert stats.kstest(total / (sigma * math.sqrt(n_parties / k)), "norm").pvalue > 1e-3
        for p in range(n_parties):
            # what party p cannot take out: the others' parts, at least N(0, sigma^2)
            rest = (noise - part[p]).ravel()
            scale = sigma * math.sqrt((n_parties - 1) / k)
            assert scale >= sigma * (1 - 1e-12)
            assert stats.kstest(rest / scale, "norm").pvalue > 1e-3
            # and its own part says nothing about it
            r = np.corrcoef(part[p].ravel(), rest)[0, 1]
            assert abs(r) < 4.0 / math.sqrt(rest.shape[0])


# ----------------------------------------------------------------------------- job file
def _run_job(job, data):
    names = list(data.party_names) + ["dealer"]
    sites = [site_from_view(data.party(n)) for n in data.party_names]
    out = {}

    def party(site, ep):
        try:
            return run_federated_party(job, ep, site, names=names)
        except DPError as exc:
            out.setdefault("errors", []).append(str(exc))

    def dealer(ep):
        try:
            return run_dealer(job, ep, names=names)
        except DPError as exc:
            out.setdefault("errors", []).append(str(exc))

    res, _, _ = run_inprocess(len(sites), [functools.partial(party, s) for s in sites], dealer,
                              timeout=30, names=names)
    return res, out.get("errors", [])


def test_job_file_dp_in_federated_mode_two_parties():
    data, _, _ = _data(2)
    d = {"params": PARAMS, "num_boost_round": 3, "split": "horizontal", "analyst": "p0",
         "mode": "federated",
         "dp": {"epsilon": 2.0, "delta": 1e-6, "bounds": {k: list(v) for k, v in BOUNDS.items()}}}
    job = Job.from_dict(json.loads(json.dumps(d)))
    res, errors = _run_job(job, data)
    assert errors == []
    booster = res[0]["model"].reveal()
    assert res[1]["model"] is None
    assert 1.99 < float(booster.attr("dp_epsilon")) <= 2.0
    assert json.loads(booster.attr("dp_params"))["parties"] == 2
    # too small a budget: every participant, the dealer included, stops with one message
    small = Job.from_dict({**d, "num_boost_round": 40, "dp": {**d["dp"], "epsilon": 0.01}})
    _, errors = _run_job(small, data)
    assert len(errors) == 3 and len(set(errors)) == 1 and "budget is too small" in errors[0]


def test_a_dropout_with_dp_four_parties_keeps_the_guarantee_parts():
    """4 parties tolerate one dropout: the parts are sized for the 3 that remain, and a
    party leaving at a level is handled as without DP."""
    data, _, _ = _data(4, n=800)
    job = Job(params=PARAMS, num_boost_round=3, split="horizontal", analyst="p0",
              mode="federated", timeout=20, dp=DP(epsilon=4.0, bounds=BOUNDS))
    names = list(data.party_names) + ["dealer"]
    sites = [site_from_view(data.party(n)) for n in data.party_names]
    fns = [functools.partial(lambda s, at, ep: run_federated_party(job, ep, s, names=names,
                                                                   leave_at=at),
                             s, (1, 1) if n == "p2" else None)
           for n, s in zip(data.party_names, sites)]
    res, _, _ = run_inprocess(4, fns, lambda ep: run_dealer(job, ep, names=names), timeout=20,
                              names=names)
    model = res[0]["model"]
    assert [e["party"] for e in model.dropouts] == ["p2"]
    p = json.loads(model.reveal().attr("dp_params"))
    assert "N(0, sigma^2 / 2)" in p["noise_parts"] and p["parties"] == 4
    assert model.num_trees == 3
