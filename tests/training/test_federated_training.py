"""Federated mode (train(mode="federated")): xgboost's model, refusals, dropouts at a level.

Data have at most max_bin distinct values per feature (so xgboost's own cuts are the
distinct values, whatever the number of rows), NaNs, and for one test a categorical
column.  Dropouts are simulated in process: a party closes its endpoint before sending
its sum of a chosen level (``leave_at``), as a dying process closes its connections.
"""
from __future__ import annotations

import functools
import zlib

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import ppboost
from ppboost.errors import AgreementError, JobError, ProtocolError
from ppboost.training.federated import FederatedModel, run_federated_party
from ppboost.training.job import Job
from ppboost.training.runner import run_dealer
from ppboost.training.site import site_from_view
from ppboost.transport.inprocess import run_inprocess

from .same_model import assert_same_tree_list, assert_same_trees, trees

TOL = 1e-5
OBJECTIVES = ["reg:squarederror", "binary:logistic", "multi:softprob"]


def _labels(rng, X, objective):
    n = X.shape[0]
    s = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 2])
    if objective == "reg:squarederror":
        return ((s * 2 - np.nan_to_num(X[:, 1]) + rng.normal(size=n)) * 7.5).astype(np.float32)
    if objective == "binary:logistic":
        return (s + rng.normal(size=n) > 9).astype(np.float32)
    return np.clip((s + rng.normal(size=n)) // 6, 0, 2).astype(np.float32)


def _params(objective, **kw):
    p = {"objective": objective, "max_depth": 3, "eta": 0.3, "max_bin": 16}
    if objective == "multi:softprob":
        p["num_class"] = 3
    p.update(kw)
    return p


def _data(seed, n=900, m=5, n_parties=3, objective="binary:logistic"):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 12, size=(n, m)).astype(np.float32)
    X[:, 3] = rng.integers(0, 16, size=n) * 0.25 - 1.0          # 16 distinct values, <= max_bin
    X[rng.random((n, m)) < 0.08] = np.nan
    y = _labels(rng, X, objective)
    rows = np.array_split(rng.permutation(n), n_parties)
    rows = [np.sort(r) for r in rows]
    data = ppboost.HorizontalSplit({f"p{i}": (X[r], y[r]) for i, r in enumerate(rows)})
    return data, X, y, rows


@pytest.mark.parametrize("n_parties", [3, 4])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_same_model_as_xgboost_on_the_pooled_data(objective, n_parties):
    seed = zlib.crc32(f"{objective}-{n_parties}".encode())
    data, _, _, _ = _data(seed, n_parties=n_parties, objective=objective)
    params = _params(objective)
    rounds = 5
    model = ppboost.train(params, data, rounds, mode="federated", verbose=False)
    assert isinstance(model, FederatedModel)
    assert model.num_trees == rounds * (3 if objective == "multi:softprob" else 1)
    booster = model.reveal()
    pooled = data.pooled()
    ref = xgb.train({**params, "tree_method": "hist"}, pooled.dmatrix(), rounds)
    d = pooled.dmatrix()
    diff = np.abs(booster.predict(d, output_margin=True) - ref.predict(d, output_margin=True)).max()
    assert diff <= TOL, diff
    assert_same_trees(booster, ref)
    st = model.stats["parties"]
    assert set(st) == set(data.party_names) and all(s["mode"] == "federated" for s in st.values())
    assert all(s["dropouts"] == [] for s in st.values())
    # every party's traffic per tree is its masked sums and the session: no row-sized messages
    per_tree = st["p1"]["per_tree"]
    assert len(per_tree) == model.num_trees and all(t["bytes_sent"] > 0 for t in per_tree)


def test_categorical_and_missing_values_four_parties():
    rng = np.random.default_rng(11)
    n = 600
    df = pd.DataFrame({
        "age": rng.integers(20, 30, size=n).astype(np.float64),
        "dose": rng.integers(0, 4, size=n).astype(np.float64),
        "region": pd.Categorical(rng.choice(["n", "s", "e", "w"], size=n),
                                 categories=["n", "s", "e", "w"]),
        "score": rng.integers(0, 5, size=n).astype(np.float64),
    })
    df.loc[rng.random(n) < 0.15, "dose"] = np.nan
    y = ((df["age"] - 25) + (df["region"] == "s") * 2 + df["dose"].fillna(5) * 0.5
         + rng.normal(size=n) > 1.5).astype(np.float32).to_numpy()
    parts = np.array_split(np.arange(n), 4)
    data = ppboost.HorizontalSplit({f"h{i}": (df.iloc[r], y[r]) for i, r in enumerate(parts)})
    params = _params("binary:logistic", max_cat_to_onehot=8, max_depth=3)
    booster = ppboost.train(params, data, 4, mode="federated", verbose=False).reveal()
    pooled = data.pooled()
    ref = xgb.train({**params, "tree_method": "hist"}, pooled.dmatrix(), 4)
    d = pooled.dmatrix()
    assert np.abs(booster.predict(d, output_margin=True)
                  - ref.predict(d, output_margin=True)).max() <= TOL
    assert_same_trees(booster, ref)


def test_two_parties_are_refused_without_dp():
    data, _, _, _ = _data(1, n_parties=2)
    with pytest.raises(JobError, match="2 parties is refused without differential privacy.*"
                                       "2 parties are accepted: pass dp=ppboost.DP"):
        ppboost.train(_params("binary:logistic"), data, 2, mode="federated", verbose=False)


def test_two_parties_are_refused_at_every_participant_of_a_deployment():
    """Through the runner (as `ppboost party` runs it): the agreement stops everyone with
    the same message."""
    data, _, _, _ = _data(2, n_parties=2)
    job = Job(params=_params("binary:logistic"), num_boost_round=2, split="horizontal",
              analyst="p0", mode="federated", timeout=20)
    names = list(data.party_names) + ["dealer"]
    sites = [site_from_view(data.party(n)) for n in data.party_names]
    msgs = []

    def party(site, ep):
        with pytest.raises(AgreementError) as e:
            run_federated_party(job, ep, site, names=names)
        msgs.append(str(e.value))

    def dealer(ep):
        with pytest.raises(AgreementError) as e:
            run_dealer(job, ep, names=names)
        msgs.append(str(e.value))

    run_inprocess(2, [functools.partial(party, s) for s in sites], dealer, timeout=20,
                  names=names)
    assert len(msgs) == 3 and len(set(msgs)) == 1 and "2 parties is refused" in msgs[0]


def test_other_splits_and_dp_are_refused():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 4, (60, 4)).astype(np.float32)
    y = (X[:, 0] > 1).astype(np.float32)
    v = ppboost.VerticalSplit({"a": (X[:, :2], y), "b": X[:, 2:], "c": X[:, 3:]})
    with pytest.raises(JobError, match="needs a horizontal split"):
        ppboost.train(_params("binary:logistic"), v, 1, mode="federated", verbose=False)
    with pytest.raises(JobError, match="mode 'federated' needs split 'horizontal'"):
        Job(params={}, num_boost_round=1, split="vertical", analyst="a", mode="federated")
    with pytest.raises(JobError, match="mode =="):
        Job(params={}, num_boost_round=1, split="horizontal", analyst="a", mode="fedrated")
    # a job without "mode" keeps its digest (MPC jobs are unchanged)
    j = Job(params={}, num_boost_round=1, split="horizontal", analyst="a")
    assert "mode" not in j.to_dict() and Job.from_dict(j.to_dict()).mode == "mpc"


# ----------------------------------------------------------------------------- dropouts
def _run_with_leave(data, params, rounds, leave: dict):
    """Every party and the dealer in threads; ``leave``: {party name: (round, level)}."""
    job = Job(params=params, num_boost_round=rounds, split="horizontal",
              analyst=data.party_names[0], mode="federated", timeout=20)
    names = list(data.party_names) + ["dealer"]
    sites = [site_from_view(data.party(n)) for n in data.party_names]
    fns = [functools.partial(lambda s, at, ep: run_federated_party(job, ep, s, names=names,
                                                                   leave_at=at),
                             s, leave.get(n)) for n, s in zip(data.party_names, sites)]
    res, _, _ = run_inprocess(len(sites), fns, lambda ep: run_dealer(job, ep, names=names),
                              timeout=20, names=names)
    return res


def _chain(params, X, y, plan):
    """xgboost, one piece at a time: ``plan`` = [(rounds, max_depth, rows)], each piece
    starting from the margins the previous ones left (base_margin)."""
    margins = None
    boosters = []
    for rounds, depth, rows in plan:
        d = xgb.DMatrix(X[rows], label=y[rows])
        if margins is not None:
            d.set_base_margin(margins[rows])
        b = xgb.train({**params, "max_depth": depth, "tree_method": "hist"}, d, rounds)
        full = xgb.DMatrix(X)
        if margins is not None:
            full.set_base_margin(margins)
        margins = b.predict(full, output_margin=True)
        boosters.append(b)
    return margins, boosters


@pytest.mark.parametrize("objective", ["binary:logistic", "reg:squarederror"])
def test_dropout_at_a_chosen_level_four_parties(objective):
    """4 parties; p3 leaves before its sum of level 2 of round 1 (depth 3, 5 rounds).
    Round 1's tree stops at level 2: its level-1 splits and, as leaves, the level-2
    nodes' weights from the sums over everyone, i.e. xgboost's depth-2 tree of that
    round; rounds 2-4 are xgboost on the three remaining parties' rows.  The drop is
    logged, the others finish, and the model is exactly that chain."""
    data, X, y, rows = _data(21, n=1000, n_parties=4, objective=objective)
    params = _params(objective)
    res = _run_with_leave(data, params, 5, {"p3": (1, 2)})
    assert res[3]["stats"]["left"] == {"round": 1, "level": 2}
    model = res[0]["model"]
    ev = res[0]["stats"]["dropouts"]
    assert [(e["party"], e["round"], e["level"]) for e in ev] == [("p3", 1, 2)]
    assert [d["party"] for d in res[0]["stats"]["secagg_drops"]] == ["p3"]
    pooled = np.concatenate(rows)
    survivors = np.sort(np.concatenate(rows[:3]))
    margins, refs = _chain(params, X, y, [(1, 3, pooled), (1, 2, pooled), (3, 3, survivors)])
    booster = model.reveal()
    got = booster.predict(xgb.DMatrix(X), output_margin=True)
    assert np.abs(got - margins).max() <= TOL
    assert_same_tree_list(trees(booster), [t for b in refs for t in trees(b)])


def test_dropout_at_the_rounds_first_sum_leaves_that_round_to_the_others():
    """p2 leaves before its root sum of round 2: no sum of round 2's gradients had it, so
    round 2 is grown on the other parties' rows (nothing to truncate)."""
    data, X, y, rows = _data(5, n=800, n_parties=4)
    params = _params("binary:logistic")
    res = _run_with_leave(data, params, 4, {"p2": (2, 0)})
    model = res[0]["model"]
    assert [(e["party"], e["round"], e["level"]) for e in res[0]["stats"]["dropouts"]] == \
        [("p2", 2, 0)]
    survivors = np.sort(np.concatenate([rows[0], rows[1], rows[3]]))
    pooled = np.concatenate(rows)
    margins, refs = _chain(params, X, y, [(2, 3, pooled), (2, 3, survivors)])
    booster = model.reveal()
    assert np.abs(booster.predict(xgb.DMatrix(X), output_margin=True) - margins).max() <= TOL
    assert_same_tree_list(trees(booster), [t for b in refs for t in trees(b)])


def test_softprob_dropout_stops_the_tree_and_zeroes_the_rounds_other_classes():
    """multi:softprob, p3 leaves at level 1 of round 1's first tree: that tree keeps its
    root split (leaves: the root's children, summed over everyone), the round's two other
    class trees are single leaves of value 0 (their sums over fewer parties could be set
    against the first tree's: sum_k g_k = 0 per row), and round 2 runs without p3."""
    data, X, y, rows = _data(13, n=900, n_parties=4, objective="multi:softprob")
    params = _params("multi:softprob")
    res = _run_with_leave(data, params, 3, {"p3": (1, 1)})
    got = trees(res[0]["model"].reveal())
    assert len(got) == 9
    t = got[3]
    assert len(t["split_indices"]) == 3 and t["left_children"][1:] == [-1, -1]
    for t in got[4:6]:
        assert t["left_children"] == [-1] and t["base_weights"] == [0.0]
    assert all(len(t["left_children"]) > 1 for t in got[6:])
    assert [(e["party"], e["round"], e["group"], e["level"])
            for e in res[0]["stats"]["dropouts"]] == [("p3", 1, 0, 1)]


def test_departure_between_rounds_leaves_the_next_round_to_the_others():
    data, X, y, rows = _data(6, n=800, n_parties=4)
    params = _params("binary:logistic")
    res = _run_with_leave(data, params, 3, {"p1": (1, -1)})
    ev = res[0]["stats"]["dropouts"]
    assert [(e["party"], e["round"], e["phase"]) for e in ev] == \
        [("p1", 1, "before the round's trees")]
    survivors = np.sort(np.concatenate([rows[0], rows[2], rows[3]]))
    margins, _ = _chain(params, X, y, [(1, 3, np.concatenate(rows)), (2, 3, survivors)])
    got = res[0]["model"].reveal().predict(xgb.DMatrix(X), output_margin=True)
    assert np.abs(got - margins).max() <= TOL


@pytest.mark.parametrize("n_parties,leave", [(3, {"p1": (1, 1)}),
                                             (4, {"p1": (1, 1), "p2": (2, 0)})])
def test_more_dropouts_than_tolerated_stop_with_a_clear_error(n_parties, leave):
    data, _, _, _ = _data(8, n=600, n_parties=n_parties)
    with pytest.raises(ProtocolError, match=r"dropped out .*tolerates at most "
                                            rf"{(n_parties - 1) // 3}"):
        _run_with_leave(data, _params("binary:logistic"), 4, leave)


def test_a_dropout_during_binning_stops_the_job():
    data, _, _, _ = _data(9, n=400, n_parties=4)
    with pytest.raises(ProtocolError, match="p3 dropped out during the federated binning "
                                            r"\(before any tree\): the job stops"):
        _run_with_leave(data, _params("binary:logistic"), 2, {"p3": "binning"})


def test_one_process_per_party_over_tls_gives_the_same_model():
    data, _, _, _ = _data(17, n=500, n_parties=3)
    params = _params("binary:logistic")
    a = ppboost.train(params, data, 3, mode="federated", verbose=False)
    b = ppboost.train(params, data, 3, mode="federated", verbose=False, transport="tls")
    assert b.stats["transport"] == "tls"
    d = data.pooled().dmatrix()
    assert np.array_equal(a.reveal().predict(d, output_margin=True),
                          b.reveal().predict(d, output_margin=True))
    assert_same_trees(a.reveal(), b.reveal())
