"""Differentially private secure training (ppboost.train(..., dp=ppboost.DP(...))).

* epsilon = inf (and dp=None) gives exactly today's model and transcript;
* with negligible noise the MPC computes the mechanism (a numpy model of it);
* the transcript does not depend on the data;
* the booster carries the spend, which is the accountant's composition;
* bad input is refused before anything is shared.
"""
import json
import math
import os

import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer

import ppboost
from ppboost.dp import DP, DPError
from ppboost.errors import JobError
from ppboost.training.job import Job

from .dp_reference import reference_margins

PARAMS = {"objective": "binary:logistic", "max_depth": 3, "max_bin": 16, "lambda": 5.0,
          "eta": 0.5}


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    X = X.astype(np.float32)[:240, :5]
    y = y[:240].astype(np.float32)
    return X, y


def _split(X, y, parties=2):
    cut = np.linspace(0, len(y), parties + 1).astype(int)
    return ppboost.HorizontalSplit({f"p{i}": (X[cut[i]:cut[i + 1]], y[cut[i]:cut[i + 1]])
                                    for i in range(parties)})


def _bounds(X, bins=12):
    # the tests take the ranges from the data; a deployment takes them from a data dictionary
    return {f"f{j}": (float(X[:, j].min()), float(X[:, j].max()), bins) for j in range(X.shape[1])}


def _transcripts(model):
    st = model.stats
    return ([st["parties"][n]["transcript"] for n in sorted(st["parties"])],
            st["dealer"]["transcript"])


def _seeded_urandom():
    """os.urandom replaced by a stream per thread (participant), so that two runs draw the
    same seeds: secure training's fixed-point roundings depend on its random masks, so two
    unseeded runs of today's model differ in the last bits."""
    import collections
    import hashlib
    import threading
    real, counters = os.urandom, collections.Counter()

    def fake(n):
        if n > 32:
            return real(n)
        name = threading.current_thread().name
        counters[name] += 1
        return hashlib.sha256(f"{name}/{counters[name]}".encode()).digest()[:n]
    return fake


def test_epsilon_inf_is_exactly_todays_model(data, monkeypatch):
    X, y = data
    split = _split(X, y)
    p = dict(PARAMS, max_depth=2)
    monkeypatch.setattr(os, "urandom", _seeded_urandom())
    a = ppboost.train(p, split, 2, verbose=False)
    monkeypatch.setattr(os, "urandom", _seeded_urandom())
    b = ppboost.train(p, split, 2, verbose=False, dp=DP(epsilon=math.inf))
    ba, bb = a.reveal(), b.reveal()
    assert ba.get_dump(dump_format="json") == bb.get_dump(dump_format="json")
    assert bytes(ba.save_raw("json")) == bytes(bb.save_raw("json"))
    d = xgboost.DMatrix(X)
    assert np.array_equal(ba.predict(d), bb.predict(d))
    assert _transcripts(a) == _transcripts(b)
    assert bb.attr("dp_epsilon") is None


def test_negligible_noise_gives_the_mechanism_without_noise(data):
    """The MPC computes clipped gradients, unit hessians, the argmax of the split
    utilities and the leaves -G/(n + lambda): with (absurdly) little noise its margins
    are those of a numpy model of the same algorithm."""
    rng = np.random.default_rng(3)          # continuous features: no exact ties of utility
    X = rng.normal(size=(240, 4)).astype(np.float32)
    y = (rng.random(240) < 1 / (1 + np.exp(-X[:, 0] - X[:, 1] * X[:, 2]))).astype(np.float32)
    split = _split(X, y)
    dp = DP(epsilon=1e300, bounds=_bounds(X, bins=16), split_epsilon=2e4,
            leaf_noise_multiplier=1e-6)
    booster = ppboost.train(PARAMS, split, 3, verbose=False, dp=dp).reveal()
    from ppboost.tree.secure.dp import public_cuts
    cuts = public_cuts(dp, split.feature_names, split.feature_types, {}, PARAMS["max_bin"])
    ties = []
    ref = reference_margins(X, y, cuts, 3, PARAMS["max_depth"], PARAMS["lambda"],
                            PARAMS["eta"], ties=ties)
    assert ties == []                       # the data leaves the noiseless choice unambiguous
    got = booster.predict(xgboost.DMatrix(X), output_margin=True)
    assert np.abs(got - ref).max() < 1e-4
    # complete trees: every node splits; internal weights are not released
    for tree in booster.get_dump(dump_format="json"):
        t = json.loads(tree)

        def depth(node):
            return 0 if "leaf" in node else 1 + min(depth(c) for c in node["children"])
        assert depth(t) == PARAMS["max_depth"]


def test_dp_transcript_does_not_depend_on_the_data(data):
    X, y = data
    rng = np.random.default_rng(5)
    X2 = rng.normal(size=X.shape).astype(np.float32) * X.std(axis=0) + X.mean(axis=0)
    y2 = rng.integers(0, 2, size=y.shape).astype(np.float32)
    dp = DP(epsilon=2.0, bounds=_bounds(X))
    a = ppboost.train(PARAMS, _split(X, y), 2, verbose=False, dp=dp)
    b = ppboost.train(PARAMS, _split(X2, y2), 2, verbose=False, dp=dp)
    assert _transcripts(a) == _transcripts(b)


def test_booster_carries_the_accountants_spend(data):
    import dp_accounting as dpa
    from dp_accounting.rdp import rdp_privacy_accountant as rdp

    X, y = data
    dp = DP(epsilon=1.5, delta=1e-5, bounds=_bounds(X))
    booster = ppboost.train(dict(PARAMS, **{"lambda": 30.0}), _split(X, y, parties=3), 3,
                            verbose=False, dp=dp).reveal()
    spent = float(booster.attr("dp_epsilon"))
    assert float(booster.attr("dp_delta")) == 1e-5
    params = json.loads(booster.attr("dp_params"))
    assert "exponential mechanism" in booster.attr("dp_mechanism")
    assert params["split_zcdp_rho_per_level"] == pytest.approx(
        params["split_epsilon_per_level"] ** 2 / 8)
    assert params["trees"] == 3 and params["depth"] == 3 and params["parties"] == 3
    assert 1.4 < spent <= 1.5                                 # calibrated to the request
    # the same composition, event by event, by a fresh RDP accountant
    acc = rdp.RdpAccountant()
    for _ in range(params["trees"]):
        for _ in range(params["depth"]):
            # the exponential mechanism (Gumbel) is eps-bounded-range: eps^2/8-zCDP
            acc.compose(dpa.ZCDpEvent(params["split_epsilon_per_level"] ** 2 / 8))
        acc.compose(dpa.GaussianDpEvent(params["leaf_noise_multiplier"]))
    assert acc.get_epsilon(1e-5) == pytest.approx(spent, rel=1e-9)
    # and the noise scales follow from the sensitivities
    assert params["split_noise_scale"] == pytest.approx(
        params["split_sensitivity_range"] / params["split_epsilon_per_level"])
    assert params["leaf_noise_scale"] == pytest.approx(
        params["leaf_noise_multiplier"] * params["leaf_sensitivity"])
    assert params["split_sensitivity_range"] >= 3.0 and params["split_sensitivity_range"] < 3.01
    assert params["leaf_sensitivity"] == pytest.approx(math.sqrt(2.0))   # (G, n) of a leaf


def test_laplace_leaves_and_the_sklearn_wrapper(data):
    X, y = data
    clf = ppboost.SecureXGBClassifier(n_estimators=2, max_depth=2, max_bin=16, reg_lambda=5.0,
                                      dp_epsilon=4.0, dp_delta=1e-6, dp_bounds=_bounds(X))
    clf.fit(_split(X, y))
    assert 3.9 < float(clf.booster_.attr("dp_epsilon")) <= 4.0
    assert clf.predict_proba(X).shape == (len(y), 2)
    assert clf.get_params()["dp_epsilon"] == 4.0
    dp = DP(epsilon=4.0, bounds=_bounds(X), leaf_noise="laplace", split_noise="exponential")
    b = ppboost.train(dict(PARAMS, max_depth=2), _split(X, y), 2, verbose=False, dp=dp).reveal()
    params = json.loads(b.attr("dp_params"))
    assert params["leaf_mechanism"].startswith("laplace")
    assert params["leaf_sensitivity"] == pytest.approx(2.0)              # L1 of (G, n)
    assert "permute-and-flip" in params["split_mechanism"]
    assert params["split_zcdp_rho_per_level"] == pytest.approx(
        params["split_epsilon_per_level"] ** 2 / 2)
    assert 3.9 < float(b.attr("dp_epsilon")) <= 4.0


def test_job_file_dp_key():
    base = {"params": PARAMS, "num_boost_round": 3, "split": "horizontal", "analyst": "a"}
    plain = Job.from_dict(base)
    assert "dp" not in plain.to_dict()                        # digests of jobs without dp unchanged
    job = Job.from_dict(dict(base, dp={"epsilon": 1.0, "bounds": {"age": [18, 80, 63]}}))
    assert job.dp == DP(epsilon=1.0, bounds={"age": (18, 80, 63)})
    assert job.digest != plain.digest
    again = Job.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again.digest == job.digest and again.dp == job.dp
    assert Job.from_dict(dict(base, dp={"epsilon": "inf"})).dp.private is False
    with pytest.raises(JobError, match="unknown dp key"):
        Job.from_dict(dict(base, dp={"epsilon": 1.0, "sigma": 3}))
    with pytest.raises(JobError, match="epsilon"):
        Job.from_dict(dict(base, dp={"epsilon": -1}))


@pytest.mark.parametrize("kw, match", [
    ({"epsilon": 0.0}, "epsilon == 0.0, must be > 0"),
    ({"epsilon": -1.0}, "epsilon"),
    ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": 1.0, "delta": 0.0}, "delta"),
    ({"epsilon": 1.0, "delta": 1.0}, "delta"),
    ({"epsilon": 1.0, "delta": 1.5}, "delta"),
    ({"epsilon": 1.0, "clip": 0.0}, "clip"),
    ({"epsilon": 1.0, "split_share": 1.0}, "split_share"),
    ({"epsilon": 1.0, "leaf_noise": "cauchy"}, "leaf_noise"),
    ({"epsilon": 1.0, "split_noise": "laplace"}, "split_noise"),
    ({"epsilon": 1.0, "bounds": {"f0": (2, 1)}}, "lo must be < hi"),
    ({"epsilon": 1.0, "split_epsilon": 0.1}, "both or neither"),
])
def test_bad_dp_arguments(kw, match):
    with pytest.raises(DPError, match=match):
        DP(**kw)


def _no_sharing(monkeypatch):
    import ppboost.transport.inprocess as inproc

    def refuse(*a, **k):
        raise AssertionError("training started: something would have been shared")
    monkeypatch.setattr(inproc, "run_inprocess", refuse)


def test_refusals_come_before_anything_is_shared(data, monkeypatch):
    X, y = data
    split = _split(X, y)
    _no_sharing(monkeypatch)
    with pytest.raises(DPError, match="too small for 400 trees"):
        ppboost.train(PARAMS, split, 400, verbose=False, dp=DP(epsilon=0.1, bounds=_bounds(X)))
    with pytest.raises(DPError, match=r"spends epsilon == .* more than the requested"):
        ppboost.train(PARAMS, split, 3, verbose=False,
                      dp=DP(epsilon=1.0, bounds=_bounds(X), split_epsilon=1.0,
                            leaf_noise_multiplier=1.0))
    with pytest.raises(DPError, match=r"missing: \['f4'\]"):
        b = _bounds(X)
        del b["f4"]
        ppboost.train(PARAMS, split, 3, verbose=False, dp=DP(epsilon=50.0, bounds=b))
    with pytest.raises(DPError, match="unknown feature"):
        ppboost.train(PARAMS, split, 3, verbose=False,
                      dp=DP(epsilon=50.0, bounds=dict(_bounds(X), age=(0, 1))))
    with pytest.raises(DPError, match="reg:squarederror"):
        ppboost.train(dict(PARAMS, objective="reg:squarederror"), split, 3, verbose=False,
                      dp=DP(epsilon=1.0, bounds=_bounds(X)))
    with pytest.raises(DPError, match="gamma"):
        ppboost.train(dict(PARAMS, gamma=0.5), split, 3, verbose=False,
                      dp=DP(epsilon=1.0, bounds=_bounds(X)))


def test_an_analyst_outside_the_parties_gets_the_same_attributes():
    from ppboost.tree.params import TreeParams
    from ppboost.tree.secure.dp import model_attributes, plan_run
    p = TreeParams.from_dict(PARAMS)
    dp = DP(epsilon=2.0, bounds={"f0": (0, 1)})
    parties = plan_run(dp, p, 240, 4, 3).attributes()
    assert model_attributes(dp, p, 240, 4, 3) == parties
    blind = model_attributes(dp, p, None, 4, 3)          # not told the row count
    assert blind["dp_epsilon"] == parties["dp_epsilon"]
    assert blind["dp_mechanism"] == parties["dp_mechanism"]


def test_dp_multiclass_and_vertical_split(data):
    """multi:softprob (one tree per class and round, each composed) and a vertical split
    (every party bins its columns with the public cuts) run with DP."""
    X, y = data
    rng = np.random.default_rng(1)
    y3 = rng.integers(0, 3, size=len(y)).astype(np.float32)
    split = ppboost.VerticalSplit({"a": (X[:, :3], y3), "b": X[:, 3:]})
    p = dict(PARAMS, objective="multi:softprob", num_class=3, max_depth=2)
    b = ppboost.train(p, split, 2, verbose=False, dp=DP(epsilon=8.0, bounds=_bounds(X))).reveal()
    params = json.loads(b.attr("dp_params"))
    assert params["trees"] == 6                               # 2 rounds x 3 classes
    assert 7.9 < float(b.attr("dp_epsilon")) <= 8.0
    pr = b.predict(xgboost.DMatrix(X, feature_names=b.feature_names))
    assert pr.shape == (len(y), 3) and np.allclose(pr.sum(axis=1), 1, atol=1e-5)
