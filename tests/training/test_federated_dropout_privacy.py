"""What a dropout opens in federated mode (ppboost.tree.federated_dropout), by attack.

After party p3 drops out, training goes on with the others (``on_dropout="continue"``,
the default).  The analyst then holds sums that included p3 and later sums that do
not.  These tests record exactly what the analyst (the aggregation server) holds, the
aggregated integer sums of every node of every level and its own decisions, subtract
later sums from earlier ones, and compare with p3's true data:

* the threat model's statement is exact: missing counts (any objective) and, for
  reg:squarederror, row counts per bin, at the root and at every node whose path a later
  tree repeats; with no tree summed with p3, its number of positive labels;
* with differential privacy the same differences are p3's counts plus noise that the
  analyst cannot remove, of the variance the noise parts give;
* ``on_dropout="stop"``: every participant stops with an error naming p3, and no sum
  without p3 is ever unmasked.
"""
from __future__ import annotations

import functools
import logging

import numpy as np
import pytest
from scipy import stats

import ppboost
from ppboost.dp import DP
from ppboost.errors import JobError, ProtocolError
from ppboost.training.federated import run_federated_party
from ppboost.training.job import Job
from ppboost.training.runner import run_dealer
from ppboost.training.site import site_from_view
from ppboost.transport.base import PeerFailed
from ppboost.transport.inprocess import run_inprocess
from ppboost.tree import losses
from ppboost.tree.backend import KIND_BACKWARD, KIND_FORWARD
from ppboost.tree.federated import FederatedBackend, Federation, frac_bits_for
from ppboost.tree.federated_binning import bin_codes
from ppboost.tree.federated_dp import FederatedDPPlan

P = 3                                   # the party that drops out (p3)


def _data(seed, n=1000, m=5, n_parties=4, objective="binary:logistic"):
    """Integer features, NaNs; labels with steps in f0 and f2, so that later trees repeat
    the earlier trees' first splits (as strong features do)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 12, size=(n, m)).astype(np.float32)
    X[rng.random((n, m)) < 0.08] = np.nan
    s = 3.0 * (np.nan_to_num(X[:, 0]) > 6) + 1.5 * (np.nan_to_num(X[:, 2]) > 5)
    if objective == "reg:squarederror":
        y = (s * 7.5 + rng.normal(size=n)).astype(np.float32)
    else:
        y = (s + rng.normal(size=n) > 2).astype(np.float32)
    rows = [np.sort(r) for r in np.array_split(rng.permutation(n), n_parties)]
    return ppboost.HorizontalSplit({f"p{i}": (X[r], y[r]) for i, r in enumerate(rows)}), X, y, rows


def _run(data, job, leave: dict):
    """Every party and the dealer in threads; returns (results, errors by participant)."""
    names = list(data.party_names) + ["dealer"]
    sites = [site_from_view(data.party(n)) for n in data.party_names]
    errors = {}

    def party(name, site, ep):
        try:
            return run_federated_party(job, ep, site, names=names, leave_at=leave.get(name))
        except Exception as exc:
            errors[name] = exc
            raise

    fns = [functools.partial(party, n, s) for n, s in zip(data.party_names, sites)]
    try:
        res, _, _ = run_inprocess(len(sites), fns, lambda ep: run_dealer(job, ep, names=names),
                                  timeout=30, names=names)
    except Exception:
        res = None
    return res, errors


def _job(params, rounds, **kw):
    return Job(params=params, num_boost_round=rounds, split="horizontal", analyst="p0",
               mode="federated", timeout=20, **kw)


class Analyst:
    """What the analyst holds, recorded at the server: every secure sum it unmasked (with
    its contributors), every level's integer node sums "I" (the built children's and, by
    subtraction, their siblings') with each node's path of decisions, and with DP its own
    noise parts (the one thing it may take out of a sum)."""

    def __init__(self, monkeypatch):
        self.sums, self.levels, self.choices, self.own_parts = [], [], {}, {}
        self.backend = None
        self.current = None
        hist, choose, fsum = (FederatedBackend.histograms, FederatedBackend.choose_splits,
                              Federation.sum)
        part = FederatedDPPlan.part
        spy = self

        def histograms(be, nodes, gh):
            if be.fed.is_server:
                spy.backend = be
                spy.current = (be.round, be.tree_in_round, nodes.level)
            out = hist(be, nodes, gh)
            if be.fed.is_server and "I" in out:
                spy.levels.append({"round": be.round, "level": out["level"],
                                   "I": out["I"].copy(), "with": tuple(be.round_set),
                                   "paths": spy.paths(be, out["level"])})
            return out

        def choose_splits(be, h):
            out = choose(be, h)
            if be.fed.is_server:
                spy.choices[(be.round, be.tree_in_round, h["level"])] = np.asarray(out["choice"])
            return out

        def secure_sum(fed, x, where):
            agg = fsum(fed, x, where)
            if fed.is_server:
                spy.sums.append((where, agg.total.copy(), tuple(agg.included)))
            return agg

        def own_part(plan, rng, sigma, shape):
            out = part(plan, rng, sigma, shape)
            be = spy.backend
            if be is not None and rng is getattr(be, "noise_rng", None) and spy.current:
                spy.own_parts.setdefault(spy.current, out.copy())
            return out

        monkeypatch.setattr(FederatedBackend, "histograms", histograms)
        monkeypatch.setattr(FederatedBackend, "choose_splits", choose_splits)
        monkeypatch.setattr(Federation, "sum", secure_sum)
        monkeypatch.setattr(FederatedDPPlan, "part", own_part)

    def paths(self, be, level):
        """Each node's path from the root as ((candidate, went right), ...) over the
        ancestors that split; None for a node that is empty (right of a "no split")."""
        C = be.layout.n_candidates
        out = []
        for i in range(1 << level):
            path = []
            for up in range(level):
                c = int(self.choices[(be.round, be.tree_in_round, up)][i >> (level - up)])
                bit = (i >> (level - up - 1)) & 1
                if c == C:
                    if bit:
                        path = None
                        break
                    continue
                path.append((c, bit))
            out.append(None if path is None else tuple(path))
        return out

    def differences(self, party):
        """(path, round of the later sum, earlier sum with ``party`` minus the later one
        without it) per node path that a sum without it repeats; int64, the node layout."""
        earlier = {}
        for lv in self.levels:
            if party in lv["with"]:
                for i, path in enumerate(lv["paths"]):
                    if path is not None:
                        earlier.setdefault(path, (lv, i))
        pairs = []
        for lv in self.levels:
            if party not in lv["with"]:
                for i, path in enumerate(lv["paths"]):
                    if path is not None and path in earlier:
                        pre, k = earlier[path]
                        pairs.append((path, lv["round"],
                                      (pre["I"][k] - lv["I"][i]).view(np.int64)))
        return pairs


def _truth(be, X, path):
    """p3's true data in the node of ``path``: its rows there (mask), its missing count per
    feature, its row count per bin (the node layout's bins, missing bins included)."""
    lay = be.layout
    codes = bin_codes(X, be.mapper).astype(np.int64)
    rows = np.ones(X.shape[0], bool)
    for c, bit in path:
        f, t = lay.cand_feature[c], lay.cand_bin[c]
        b = codes[:, f]
        numeric = lay.cand_kind[c] in (KIND_FORWARD, KIND_BACKWARD)
        right = np.where(b == lay.n_bins[f], not lay.cand_default_left[c],
                         b > t if numeric else b == t)
        rows &= right == bool(bit)
    miss = np.array([(codes[rows, j] == lay.n_bins[j]).sum() for j in range(lay.n_features)])
    per_bin = np.concatenate([np.bincount(codes[rows, j], minlength=int(lay.n_bins[j]) + 1)
                              for j in range(lay.n_features)])
    return rows, miss, per_bin


@pytest.mark.parametrize("objective", ["reg:squarederror", "binary:logistic"])
def test_differencing_after_a_dropout_gives_the_dropped_partys_exact_counts(
        objective, monkeypatch, caplog):
    """p3 leaves before its level-2 sum of round 1 (4 parties, depth 3, 5 rounds).  Every
    node of a later tree whose path an earlier tree with p3 had: earlier minus later sum
    = p3's missing count of every feature; with reg:squarederror also its row count in
    every bin and in the node.  The root always pairs; here nodes of every level do.  The
    sketch's pooled missing counts minus a later root's give the same.  The analyst's
    warning names p3 and these counts."""
    data, X, y, rows = _data(21, objective=objective)
    params = {"objective": objective, "max_depth": 3, "eta": 0.3, "max_bin": 16}
    spy = Analyst(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="ppboost.federated"):
        res, errors = _run(data, _job(params, 5), {"p3": (1, 2)})
    assert errors == {} and res[3]["stats"]["left"] == {"round": 1, "level": 2}
    be, Xp = spy.backend, X[rows[P]]
    B, m, f_h = be.B, be.m, be.f_h
    pairs = spy.differences(P)
    assert pairs and all(r >= 2 for _, r, _ in pairs)
    depths = set()
    for path, _, d in pairs:
        _, miss, per_bin = _truth(be, Xp, path)
        assert np.array_equal(d[2 * B:2 * B + m], miss), path
        if objective == "reg:squarederror":         # h = 1: H is a row count (x 2^f_h)
            H = d[B:2 * B]
            assert np.all(H % (1 << f_h) == 0)
            assert np.array_equal(H >> f_h, per_bin), path
            assert d[2 * B + m + 1] >> f_h == per_bin[:int(be.offs[1])].sum()
        depths.add(len(path))
    assert depths == {0, 1, 2}                     # the root, and nodes down to level 2
    # the sketch's pooled missing counts (set-up, every party) minus a later root's
    sketch = next(t for w, t, _ in spy.sums if w == "binning, stage 1")[:m].view(np.int64)
    root = next(lv for lv in spy.levels if lv["round"] == 2 and lv["level"] == 0)
    assert np.array_equal(sketch - root["I"][0, 2 * B:2 * B + m].view(np.int64),
                          np.isnan(Xp).sum(axis=0))
    # the warning at the analyst, and the event, say so
    ev = res[0]["stats"]["dropouts"]
    assert [(e["party"], e["round"]) for e in ev] == [("p3", 1)]
    warned = [r.getMessage() for r in caplog.records if r.name == "ppboost.federated"]
    assert len(warned) == 1 and ev[0]["disclosed"] in warned[0]
    assert "p3" in warned[0] and "missing each feature" in warned[0]
    assert ("row count in every bin of every feature" in warned[0]) == \
        (objective == "reg:squarederror")


def test_a_drop_before_any_tree_also_opens_the_label_count(monkeypatch, caplog):
    """binary:logistic, p3 leaves before its root sum of round 0: no tree had it, but the
    set-up's sums did.  The intercept's pooled label sum minus the others' label sum (from
    round 0's root: every margin is the intercept, g = p0 - y) is p3's number of positive
    labels; the sketch's pooled missing counts minus that root's are its missing counts."""
    data, X, y, rows = _data(5)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "max_bin": 16}
    spy = Analyst(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="ppboost.federated"):
        res, errors = _run(data, _job(params, 3), {"p3": (0, 0)})
    assert errors == {}
    be = spy.backend
    B, m, n = be.B, be.m, X.shape[0]
    f = frac_bits_for(n)
    label_sum = next(t for w, t, _ in spy.sums if w == "intercept").view(np.int64)[0] / 2.0 ** f
    root = next(lv for lv in spy.levels if lv["round"] == 0 and lv["level"] == 0)
    assert P not in root["with"]
    g0 = losses.gradients(np.tile(be.base, (1, 1)), np.zeros(1, np.float32), be.params)[0]
    n_others = n - len(rows[P])                 # rows per party are public facts
    G = root["I"][0, 2 * B + m].view(np.int64) / 2.0 ** be.f_g
    derived = label_sum - (float(g0[0, 0]) * n_others - G)
    assert abs(derived - y[rows[P]].sum()) < 1e-2
    sketch = next(t for w, t, _ in spy.sums if w == "binning, stage 1")[:m].view(np.int64)
    assert np.array_equal(sketch - root["I"][0, 2 * B:2 * B + m].view(np.int64),
                          np.isnan(X[rows[P]]).sum(axis=0))
    warned = [r.getMessage() for r in caplog.records if r.name == "ppboost.federated"]
    assert len(warned) == 1 and "its number of positive labels" in warned[0]


def test_with_dp_the_differences_carry_noise_the_analyst_cannot_remove(monkeypatch):
    """DP on (binary:logistic, unit hessians, public cuts): p3 leaves at level 1 of round
    1.  Root H of rounds 0 and 1 (with p3) minus root H of rounds 2 and 3 (without), and
    minus the analyst's own noise parts, is p3's row count per bin plus the parts of p3 and
    p1, p2 (twice): N(0, 5 sigma_h^2 / k), k = n - f - 1 = 2, at least 2 sigma_h^2
    (Kolmogorov-Smirnov).  No missing counts are sent."""
    M = 6
    bounds = {f"f{j}": (0.0, 12.0, 8) for j in range(M)}
    data, X, y, rows = _data(8, n=2000, m=M)
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.5, "lambda": 5.0}
    spy = Analyst(monkeypatch)
    res, errors = _run(data, _job(params, 4, dp=DP(epsilon=8.0, bounds=bounds)),
                       {"p3": (1, 1)})
    assert errors == {}
    be = spy.backend
    B, m, f = be.B, be.m, be.f_h
    sigma = be.plan.hist_sigma
    root = {lv["round"]: lv for lv in spy.levels if lv["level"] == 0}
    assert P in root[0]["with"] and P in root[1]["with"] and P not in root[2]["with"]
    _, _, per_bin = _truth(be, X[rows[P]], ())
    z = []
    for pre, post in [(0, 2), (1, 3)]:
        assert not root[pre]["I"][0, 2 * B:2 * B + m].any()       # no missing counts sent
        d = (root[pre]["I"][0] - root[post]["I"][0]).view(np.int64)[B:2 * B] / 2.0 ** f
        own = spy.own_parts[(pre, 0, 0)][0, B:2 * B] - spy.own_parts[(post, 0, 0)][0, B:2 * B]
        z.append((d - own - per_bin) / (sigma * np.sqrt(5 / 2)))
    z = np.concatenate(z)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    assert np.abs(z * np.sqrt(5 / 2)).mean() > 0.5      # nowhere near exact: ~sigma per bin


def test_on_dropout_stop_stops_every_participant_before_any_sum_without_the_party(
        monkeypatch):
    """The same dropout with "on_dropout": "stop": the analyst stops where it misses p3's
    masked vector (before unmasking), every other participant stops with an error naming
    p3, and no unmasked sum ever lacks p3."""
    data, _, _, _ = _data(21, objective="reg:squarederror")
    params = {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.3, "max_bin": 16}
    spy = Analyst(monkeypatch)
    res, errors = _run(data, _job(params, 5, on_dropout="stop"), {"p3": (1, 2)})
    assert res is None and set(errors) == {"p0", "p1", "p2"}
    assert isinstance(errors["p0"], ProtocolError)
    assert "p3 dropped out" in str(errors["p0"]) and "on_dropout='stop'" in str(errors["p0"])
    for name in ("p1", "p2"):
        assert isinstance(errors[name], PeerFailed) and "p3 dropped out" in str(errors[name])
    assert spy.sums and all(P in inc for _, _, inc in spy.sums)
    assert any(w.startswith("round 1, tree 0, level 1") for w, _, _ in spy.sums)


def test_on_dropout_stop_without_a_dropout_is_the_same_model():
    data, X, _, _ = _data(3, n=600)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "max_bin": 16}
    a, _ = _run(data, _job(params, 3), {})
    b, errors = _run(data, _job(params, 3, on_dropout="stop"), {})
    assert errors == {}
    assert bytes(a[0]["model"].reveal().save_raw("json")) == \
        bytes(b[0]["model"].reveal().save_raw("json"))


def test_on_dropout_in_the_job_file():
    base = {"params": {}, "num_boost_round": 1, "split": "horizontal", "analyst": "a",
            "mode": "federated"}
    assert "on_dropout" not in Job.from_dict(base).to_dict()     # the digest stays as it was
    stop = Job.from_dict({**base, "on_dropout": "stop"})
    assert stop.on_dropout == "stop" and Job.from_dict(stop.to_dict()) == stop
    assert stop.digest != Job.from_dict(base).digest
    with pytest.raises(JobError, match="on_dropout == 'halt', must be one of"):
        Job.from_dict({**base, "on_dropout": "halt"})
    with pytest.raises(JobError, match="on_dropout is for mode 'federated'"):
        Job.from_dict({**base, "mode": "mpc", "on_dropout": "stop"})


def test_train_takes_on_dropout_and_checks_it_before_sharing():
    """``ppboost.train(on_dropout=...)`` is the job's key: "stop" trains the same model when
    nobody drops out; a bad value, or "stop" in MPC mode, is refused by the job's own check."""
    data, _, _, _ = _data(3, n=600)
    params = {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "max_bin": 16}
    a = ppboost.train(params, data, 2, mode="federated", verbose=False)
    b = ppboost.train(params, data, 2, mode="federated", verbose=False, on_dropout="stop")
    assert bytes(a.reveal().save_raw("json")) == bytes(b.reveal().save_raw("json"))
    with pytest.raises(JobError, match="on_dropout == 'halt', must be one of"):
        ppboost.train(params, data, 2, mode="federated", verbose=False, on_dropout="halt")
    with pytest.raises(JobError, match="on_dropout is for mode 'federated'"):
        ppboost.train(params, data, 2, verbose=False, on_dropout="stop")
