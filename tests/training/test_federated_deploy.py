"""Federated mode deployed: every site its own `python -m ppboost party` process over mutual
TLS (its own network namespace where possible), `"mode": "federated"` in the job file.

A dropout is a real death: the party's process SIGKILLs itself before sending a chosen
level's sum (PPBOOST_FAULT_DIE_AT=round:level), so its connections break mid-run.
"""
from __future__ import annotations

import json
import os

import numpy as np
import xgboost as xgb

from ppboost.consortium import Consortium, Network
from ppboost.training.federated import FAULT_ENV

from .same_model import assert_same_model, assert_same_trees
from .test_deploy import _population
from .test_federated_training import _run_with_leave

COLS = ["patient_id", "age", "bmi", "edss", "claims", "ms"]
PARAMS = {"objective": "binary:logistic", "max_depth": 3, "max_bin": 16, "eta": 0.3}
TIMEOUT = 20


def _consortium(tmp_path, net, parties, n, rounds, seed):
    c = Consortium(tmp_path, net, parties, connect_timeout=40.0)
    pop = _population(n, seed)[COLS]
    parts = np.array_split(np.arange(len(pop)), len(parties))
    for name, rows in zip(parties, parts):
        pop.iloc[rows].to_csv(c.site(name) / f"{name}.csv", index=False)
    c.write_job({"params": PARAMS, "num_boost_round": rounds, "split": "horizontal",
                 "label": "ms", "id": "patient_id", "analyst": parties[0],
                 "mode": "federated", "timeout": TIMEOUT})
    frame = pop.drop(columns=["patient_id"])
    return c, frame, parts


def _start(c, parties, die=None):
    for n in c.everyone:
        old = os.environ.pop(FAULT_ENV, None)
        if die and n == die[0]:
            os.environ[FAULT_ENV] = die[1]
        try:
            c.start(n, out=(n == parties[0]))
        finally:
            os.environ.pop(FAULT_ENV, None)
            if old is not None:
                os.environ[FAULT_ENV] = old


def _model(path):
    b = xgb.Booster()
    b.load_model(str(path))
    return b


def test_three_hospitals_federated_equals_xgboost(tmp_path):
    parties = ["h1", "h2", "h3"]
    with Network(parties + ["dealer"]) as net:
        c, frame, _ = _consortium(tmp_path, net, parties, 600, 4, 31)
        _start(c, parties)
        res = c.wait(240)
    for n, (rc, out, err, _) in res.items():
        assert rc == 0, f"{n} exited {rc}:\n{out}\n{err}"
    got = _model(c.site("h1") / "model.json")
    d = xgb.DMatrix(frame.drop(columns=["ms"]), label=frame["ms"])
    ref = xgb.train({**PARAMS, "tree_method": "hist"}, d, 4)
    assert_same_model(got, ref, d)
    for n in ("h2", "h3", "dealer"):
        assert not (c.site(n) / "model.json").exists()
    st = json.loads((c.site("h2") / "stats.json").read_text())
    assert st["mode"] == "federated" and len(st["per_tree"]) == 4 and st["dropouts"] == []


def test_a_party_killed_at_a_chosen_level_is_tolerated_with_four(tmp_path):
    """h4's process dies before its sum of level 1 of round 2: h1-h3 finish, the drop is
    in the analyst's stats, and the model is the in-process run with the same dropout."""
    parties = ["h1", "h2", "h3", "h4"]
    with Network(parties + ["dealer"]) as net:
        c, frame, parts = _consortium(tmp_path, net, parties, 800, 5, 32)
        _start(c, parties, die=("h4", "2:1"))
        res = c.wait(240)
    for n in ("h1", "h2", "h3", "dealer"):
        rc, out, err, _ = res[n]
        assert rc == 0, f"{n} exited {rc}:\n{out}\n{err}"
    assert res["h4"][0] not in (0, None)                       # killed
    st = json.loads((c.site("h1") / "stats.json").read_text())
    assert [(e["party"], e["round"], e["level"]) for e in st["dropouts"]] == [("h4", 2, 1)]
    assert "h4" in res["h1"][2] and "dropped out" in res["h1"][2]     # logged at the analyst
    got = _model(c.site("h1") / "model.json")
    # the same run in process, h4 leaving at the same point
    import ppboost
    X = frame.drop(columns=["ms"]).to_numpy(np.float32)
    y = frame["ms"].to_numpy(np.float32)
    data = ppboost.HorizontalSplit({n: (X[r], y[r]) for n, r in zip(parties, parts)})
    sim = _run_with_leave(data, PARAMS, 5, {"h4": (2, 1)})[0]["model"].reveal()
    named = xgb.DMatrix(frame.drop(columns=["ms"]))
    assert np.abs(got.predict(named, output_margin=True)
                  - sim.predict(xgb.DMatrix(X), output_margin=True)).max() <= 1e-6
    assert_same_trees(got, sim)


def test_a_party_killed_beyond_the_tolerance_stops_everyone_clearly(tmp_path):
    """With 3 parties no dropout is tolerated: h1 (the analyst) stops with the protocol's
    message and the others with its abort, each naming h3, well within the timeout."""
    parties = ["h1", "h2", "h3"]
    with Network(parties + ["dealer"]) as net:
        c, _, _ = _consortium(tmp_path, net, parties, 600, 6, 33)
        _start(c, parties, die=("h3", "1:2"))
        res = c.wait(TIMEOUT + 60)
    assert res["dealer"][0] == 0
    for n in ("h1", "h2"):
        rc, out, err, took = res[n]
        assert rc == 1, f"{n} exited {rc}\n{err}"
        last = err.strip().splitlines()[-1]
        assert "h3" in last and "tolerates at most 0" in last, err
        assert took < TIMEOUT + 10
