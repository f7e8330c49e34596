"""The per-participant runner in-process: PSI, agreement, site files, job files.

The same ``run_party`` / ``run_dealer`` as the deployed processes, on the
in-process transport, so protocol properties can be checked against numpy
with 2 and 3 parties quickly.
"""
from __future__ import annotations

import functools
import json
import re

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ppboost.errors import AgreementError, DataError, JobError
from ppboost.mpc.psi import hash_ids, psi_leader, psi_partner
from ppboost.training import Job, read_site, run_dealer, run_party
from ppboost.training.agree import check
from ppboost.transport.inprocess import run_inprocess

from .same_model import assert_same_model

PARAMS = {"objective": "reg:squarederror", "max_depth": 2, "max_bin": 8}


def _ids(rng, n, pool):
    return np.array([f"id{k}" for k in rng.choice(pool, n, replace=False)])


# ----------------------------------------------------------------------------- PSI
def _psi(leader_ids, partner_ids, session="s", seed=0):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(partner_ids))
    s1, s2 = rng.bytes(32), rng.bytes(32)

    def leader(ep):
        return psi_leader(ep, 1, leader_ids, session, s1)

    def partner(ep):
        psi_partner(ep, 0, partner_ids, session, s2, order)
        return list(ep.stats.transcript)

    (match, tr), _, eps = run_inprocess(2, [leader, partner], timeout=30)
    return match, order, tr, [list(e.stats.transcript) for e in eps]


def test_psi_finds_exactly_the_intersection():
    rng = np.random.default_rng(1)
    a, b = _ids(rng, 300, 1000), _ids(rng, 250, 1000)
    match, order, _, _ = _psi(a, b)
    for i, j in enumerate(match):
        if j < 0:
            assert a[i] not in set(b)
        else:
            assert b[order[j]] == a[i]
    assert (match >= 0).sum() == len(set(a) & set(b))


def test_psi_transcript_depends_on_the_set_sizes_only():
    rng = np.random.default_rng(2)
    t1 = _psi(_ids(rng, 50, 60), _ids(rng, 40, 60), seed=1)[3]
    t2 = _psi(_ids(rng, 50, 10_000), _ids(rng, 40, 10_000), seed=2)[3]     # ~no overlap
    assert t1 == t2


def test_psi_blinded_values_hide_the_ids():
    """What crosses the wire is neither the ids' hashes nor stable across sessions."""
    ids = np.array([f"p{i}" for i in range(20)])
    got = {}

    def leader(ep, secret):
        psi_leader(ep, 1, ids, "job", secret)

    def partner(ep, secret):
        recv = ep.recv

        def recording(frm):                     # what the partner sees: the leader's message
            value = recv(frm)
            got.setdefault(secret, np.asarray(value))
            return value
        ep.recv = recording
        psi_partner(ep, 0, ids, "job", secret, np.arange(len(ids)))

    for s in (b"\x01" * 32, b"\x02" * 32):
        run_inprocess(2, [functools.partial(leader, secret=s), functools.partial(partner, secret=s)],
                      timeout=30)
    a1, a2 = got[b"\x01" * 32], got[b"\x02" * 32]
    hashes = {bytes(h) for h in hash_ids(ids, "job")}
    assert not any(bytes(r) in hashes for r in a1)
    assert not any(bytes(x) == bytes(y) for x, y in zip(a1, a2))
    assert len({bytes(r) for r in a1}) == len(ids)


# ----------------------------------------------------------------------------- whole runner
def _site(tmp_path, name, df, job):
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return read_site(path, job, name)


def _run(job, sites, names):
    fns = [functools.partial(lambda s, ep: run_party(job, ep, s, names=names), s) for s in sites]
    results, dealer, _ = run_inprocess(len(sites), fns,
                                       lambda ep: run_dealer(job, ep, names=names),
                                       timeout=60, names=names)
    return results, dealer


@pytest.mark.parametrize("n_parties", [2, 3])
def test_vertical_with_psi_in_process_equals_xgboost_on_the_join(tmp_path, n_parties):
    rng = np.random.default_rng(n_parties)
    n = 160
    pop = pd.DataFrame({"pid": [f"P{i}" for i in range(n)],
                        **{f"x{j}": rng.integers(0, 5, n).astype(float) for j in range(6)}})
    pop["y"] = pop["x0"] * 2 - pop["x3"] + rng.normal(size=n)
    cols = np.array_split([f"x{j}" for j in range(6)], n_parties)
    job = Job(params=PARAMS, num_boost_round=2, split="vertical", analyst="p0", label="y", id="pid")
    frames, sites = [], []
    for p in range(n_parties):
        keep = rng.random(n) < 0.85
        df = pop.loc[keep, ["pid", *cols[p]] + (["y"] if p == 0 else [])].sample(frac=1, random_state=p)
        frames.append(df)
        sites.append(_site(tmp_path, f"p{p}", df, job))
    names = [f"p{p}" for p in range(n_parties)] + ["dealer"]
    results, _ = _run(job, sites, names)
    joined = frames[0]
    for df in frames[1:]:
        joined = joined.merge(df, on="pid")
    X = joined[[c for cs in cols for c in cs]]
    d = xgb.DMatrix(X, label=joined["y"])
    ref = xgb.train({**PARAMS, "tree_method": "hist"}, d, 2)
    booster = results[0]["model"].reveal()
    assert_same_model(booster, ref, d)
    assert all(r["model"] is None for r in results[1:])
    # the training phase's transcript excludes the set-up (agreement + PSI)
    st = results[1]["stats"]
    assert st["setup_messages"]["bytes_sent"] > 32 * len(frames[1])
    assert st["transcript"][0] != st["setup_messages"]["transcript"][0]


def test_no_common_id_is_a_clear_error(tmp_path):
    job = Job(params=PARAMS, num_boost_round=1, split="vertical", analyst="a", label="y", id="pid")
    a = _site(tmp_path, "a", pd.DataFrame({"pid": ["1", "2"], "x": [1.0, 2.0], "y": [0.0, 1.0]}), job)
    b = _site(tmp_path, "b", pd.DataFrame({"pid": ["3", "4"], "z": [1.0, 2.0]}), job)
    with pytest.raises(DataError, match="no row in common"):
        _run(job, [a, b], ["a", "b", "dealer"])


# ----------------------------------------------------------------------------- agreement
def _facts(kind_cols, labels, rows=None, job="d"):
    facts = []
    for i, (cols, lab) in enumerate(zip(kind_cols, labels)):
        facts.append({"name": f"p{i}", "role": "party", "job": job, "columns": cols,
                      "n_rows": (rows or [10] * len(labels))[i], "has_labels": lab,
                      "aligned": False})
    facts.append({"name": "dealer", "role": "dealer", "job": job})
    return facts, [f"p{i}" for i in range(len(labels))] + ["dealer"]


def _job(split, analyst="p0"):
    return Job(params=PARAMS, num_boost_round=1, split=split, analyst=analyst, label="y", id="id")


def test_agreement_layout_and_errors():
    q = [["a", "q"], ["b", "q"]]
    facts, names = _facts([q, q, q], [True, True, True], rows=[3, 4, 5])
    info = check(facts, names, _job("horizontal"), 3)
    assert info["n_rows"] == 12 and info["feature_names"] == ["a", "b"]
    assert [p["row_offset"] for p in info["parties"].values()] == [0, 3, 7]
    # the same columns in another order at one party are fine
    facts, names = _facts([q, q[::-1]], [True, True])
    assert check(facts, names, _job("horizontal"), 2)["parties"]["p1"]["columns"] == ["a", "b"]
    cases = [
        (_facts([q, [["a", "q"]]], [True, True]), "horizontal",
         "horizontal split: p1's columns differ from p0's; p1 lacks ['b']"),
        (_facts([q, [["a", "c"], ["b", "q"]]], [True, True]), "horizontal",
         "column 'a' is categorical at p1 but numeric at p0"),
        (_facts([q, q], [True, False]), "horizontal", "p1 hold(s) no the label column 'y'"),
        (_facts([q, [["c", "q"]]], [True, True]), "vertical",
         "the label column 'y' is at 2 parties (p0, p1)"),
        (_facts([q, q], [True, False]), "vertical", "column 'a' is at both p0 and p1"),
        (_facts([q, [["c", "q"]]], [True, True]), "mixed", "every party holds labels"),
    ]
    for (facts, names), split, msg in cases:
        with pytest.raises(AgreementError, match=re.escape(msg)):
            check(facts, names, _job(split), len(names) - 1)
    facts, names = _facts([q, q, q], [True] * 3)
    facts[2]["job"] = "other"
    with pytest.raises(AgreementError, match="p2 announced job digest other"):
        check(facts, names, _job("horizontal"), 3)
    facts, names = _facts([q, q], [True] * 2)
    with pytest.raises(AgreementError, match=re.escape(
            "the job's analyst 'zz' is neither a data party of the federation (p0, p1) nor its")):
        check(facts, names, _job("horizontal", analyst="zz"), 2)
    facts[1]["error"] = "the data file x.csv does not exist"
    with pytest.raises(AgreementError, match="p1: the data file x.csv does not exist"):
        check(facts, names, _job("horizontal"), 2)
    facts, names = _facts([q, q], [True] * 2)
    facts[0]["checkpoint"] = True
    with pytest.raises(AgreementError, match="p1, dealer run\\(s\\) without --checkpoint"):
        check(facts, names, _job("horizontal"), 2)
    for f in facts:
        f.update(checkpoint=True, resume=True)
    facts[0]["saved"], facts[1]["saved"], facts[2]["saved"] = [1, 2, 3], [1, 2], [1, 2, 3]
    assert check(facts, names, _job("horizontal"), 2)["resume_from"] == 2


# ----------------------------------------------------------------------------- files
def test_site_files_are_checked_locally(tmp_path):
    job = Job(params={"objective": "binary:logistic"}, num_boost_round=1, split="vertical",
              analyst="a", label="y", id="pid", categorical={"r": ["n", "s"]})
    df = pd.DataFrame({"pid": ["1", "2", "3"], "x": [1.0, np.nan, 3.0], "r": ["n", "s", None],
                       "y": [0, 1, 0]})
    df.to_parquet(tmp_path / "a.parquet")
    site = read_site(tmp_path / "a.parquet", job, "a")
    assert site.feature_names == ("x", "r") and site.feature_types == ("q", "c")
    np.testing.assert_array_equal(site.X[:, 1], [0, 1, np.nan])
    assert list(site.ids) == ["1", "2", "3"] and site.has_labels
    bad = [
        (df.drop(columns=["pid"]), "no id column 'pid'"),
        (df.assign(pid=["1", "1", "2"]), "repeated ids"),
        (df.assign(x=[1.0, np.inf, 0.0]), "column 'x' has infinite values"),
        (df.assign(x=["a", "b", "c"]), "column 'x' is not numeric"),
        (df.assign(r=["n", "e", "w"]), "column 'r' has values outside its declared levels"),
        (df.assign(y=[0, 2, 0]), "the label column 'y' has values that objective "
                                 "'binary:logistic' refuses (labels must be finite and lie in [0, 1])"),
        (df[["pid", "y"]], "no feature columns"),
    ]
    for frame, msg in bad:
        frame.to_csv(tmp_path / "b.csv", index=False)
        with pytest.raises(DataError, match=re.escape(msg)) as got:
            read_site(tmp_path / "b.csv", job, "b")
        if "label column" in msg:      # the row and the value stay at the site
            assert "row" not in str(got.value) and " 2 " not in str(got.value)
            assert "label 2 at row 1 is outside [0, 1]" in got.value.local_detail
    with pytest.raises(DataError, match="does not exist"):
        read_site(tmp_path / "none.csv", job, "b")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        (tmp_path / "c.xlsx").write_text("x")
        read_site(tmp_path / "c.xlsx", job, "b")


def test_job_files(tmp_path):
    good = {"params": PARAMS, "num_boost_round": 3, "split": "mixed", "analyst": "h",
            "label": "y", "id": "pid", "categorical": {"r": ["a", "b"]}, "timeout": 5}
    (tmp_path / "job.json").write_text(json.dumps(good))
    job = Job.load(tmp_path / "job.json")
    assert job.digest == Job.from_dict(dict(reversed(list(good.items())))).digest
    assert job.digest != Job.from_dict({**good, "num_boost_round": 4}).digest
    for change, msg in [({"split": "diagonal"}, "split == 'diagonal'"),
                        ({"num_boost_round": 0}, "num_boost_round == 0"),
                        ({"timeout": -1}, "timeout == -1"),
                        ({"colour": 1}, "unknown job key(s) ['colour']"),
                        ({"params": {"max_depth": 0}}, "max_depth == 0"),
                        ({"categorical": {"r": []}}, "non-empty list"),
                        ({"id": "y"}, "label and id are both 'y'")]:
        with pytest.raises((JobError, ValueError), match=re.escape(msg)):
            Job.from_dict({**good, **change})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(JobError, match="not valid JSON"):
        Job.load(tmp_path / "bad.json")


def test_an_analyst_of_its_own_in_process(tmp_path):
    """run_analyst as participant n_parties + 1: it alone gets a model; the parties get None."""
    from ppboost.training import run_analyst
    rng = np.random.default_rng(11)
    job = Job(params=PARAMS, num_boost_round=1, split="horizontal", analyst="auditor", label="y")
    frames = [pd.DataFrame({"x": rng.integers(0, 4, 50).astype(float),
                            "y": rng.normal(size=50)}) for _ in range(2)]
    sites = [_site(tmp_path, f"p{i}", f, job) for i, f in enumerate(frames)]
    names = ["p0", "p1", "dealer", "auditor"]
    fns = [functools.partial(lambda s, ep: run_party(job, ep, s, names=names), s) for s in sites]
    results, _, _, analyst = run_inprocess(2, fns, lambda ep: run_dealer(job, ep, names=names),
                                           timeout=60, names=names,
                                           analyst_fn=lambda ep: run_analyst(job, ep, names=names))
    assert all(r["model"] is None for r in results)
    pooled = pd.concat(frames)
    d = xgb.DMatrix(pooled[["x"]], label=pooled["y"])
    ref = xgb.train({**PARAMS, "tree_method": "hist"}, d, 1)
    assert_same_model(analyst["model"].reveal(), ref, d)
