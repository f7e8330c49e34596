"""Deployment: each participant is its own `python -m ppboost party|dealer` process.

Every site runs in its own network namespace where they can be made (else on
its own 127.0.x.y address), from its own directory holding only its own data
file and key.  Models are compared with xgboost hist on the pooled / joined
data, built here by the test (which plays the auditor who may see it all).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ppboost.consortium import Consortium, Network

from .same_model import assert_same_model, assert_same_trees

LEVELS = ["north", "south", "east", "west"]
PARAMS = {"objective": "binary:logistic", "max_depth": 2, "max_bin": 16, "eta": 0.3,
          "max_cat_to_onehot": 8}


def _population(n, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"patient_id": [f"P{i:05d}" for i in rng.permutation(10 * n)[:n]]})
    for c in ("age", "bmi", "edss"):
        df[c] = rng.integers(0, 6, n).astype(float)
    df.loc[rng.random(n) < 0.05, "bmi"] = np.nan
    df["region"] = rng.choice(LEVELS, n)
    df["claims"] = rng.integers(0, 5, n).astype(float)
    df["rx"] = rng.integers(0, 3, n).astype(float)
    df["ms"] = ((df["age"] + df["claims"] + rng.normal(size=n)) > 5).astype(int)
    return df


HCOLS = ["patient_id", "age", "bmi", "edss", "region", "ms"]


def write_hospitals(c, parties, n, seed):
    """Each hospital's own CSV: its share of a population's rows (hospital columns);
    returns the population."""
    pop = _population(n, seed)
    for name, rows in zip(parties, np.array_split(np.arange(len(pop)), len(parties))):
        pop.iloc[rows][HCOLS].to_csv(c.site(name) / f"{name}.csv", index=False)
    return pop


def _reference(frame, label, rounds):
    X = frame.drop(columns=[label]).copy()
    X["region"] = pd.Categorical(X["region"], categories=LEVELS)
    d = xgb.DMatrix(X, label=frame[label], enable_categorical=True)
    return xgb.train({**PARAMS, "tree_method": "hist"}, d, rounds), d


def _check_model(model_path, frame, label, rounds):
    ref, d = _reference(frame, label, rounds)
    got = xgb.Booster()
    got.load_model(str(model_path))
    assert_same_model(got, ref, d)


def _ok(res):
    for n, (rc, out, err, _) in res.items():
        assert rc == 0, f"{n} exited {rc}:\n{out}\n{err}"


@pytest.fixture
def net3(request):
    names = request.param
    with Network(names) as net:
        yield net


def _job(split, rounds=2, analyst="h1", **kw):
    job = {"params": PARAMS, "num_boost_round": rounds, "split": split, "label": "ms",
           "id": "patient_id", "analyst": analyst, "categorical": {"region": LEVELS},
           "timeout": 30}
    job.update(kw)
    return job


def test_horizontal_three_hospitals(tmp_path):
    parties = ["h1", "h2", "h3"]
    with Network(parties + ["dealer"]) as net:
        c = Consortium(tmp_path, net, parties)
        pop = write_hospitals(c, parties, 240, 1)
        c.write_job(_job("horizontal"))
        c.start_all("h1")
        res = c.wait(240)
    _ok(res)
    _check_model(c.site("h1") / "model.json", pop[HCOLS].drop(columns=["patient_id"]), "ms", 2)
    for n in ("h2", "h3", "dealer"):
        assert not (c.site(n) / "model.json").exists()
    stats = json.loads((c.site("h2") / "stats.json").read_text())
    assert stats["bytes_sent"] > 0 and len(stats["per_tree"]) == 2
    assert 50 * 2**20 < stats["peak_rss_bytes"] < 4 * 2**30     # this process's own, in bytes
    assert "MB sent" in res["h2"][1] and "rounds" in res["dealer"][1]
    print(f"network: {net.kind} ({net.reason or 'namespaces'})")


def test_vertical_with_psi_partly_overlapping_ids(tmp_path):
    parties = ["hospital", "insurer"]
    with Network(parties + ["dealer"]) as net:
        c = Consortium(tmp_path, net, parties)
        pop = _population(260, 2)
        rng = np.random.default_rng(5)
        hosp = pop.iloc[:220][["patient_id", "age", "bmi", "edss", "region", "ms"]]
        ins = pop.iloc[40:][["patient_id", "claims", "rx"]]
        hosp.sample(frac=1, random_state=1).to_csv(c.site("hospital") / "hospital.csv", index=False)
        ins.sample(frac=1, random_state=2).to_parquet(c.site("insurer") / "insurer.parquet")
        c.write_job(_job("vertical", analyst="hospital"))
        c.start("dealer")
        c.start("hospital", out=True)
        c.start("insurer", data="insurer.parquet")
        res = c.wait(240)
        del rng
    _ok(res)
    joined = hosp.merge(ins, on="patient_id").drop(columns=["patient_id"])
    assert len(joined) == 180
    cols = ["age", "bmi", "edss", "region", "claims", "rx", "ms"]
    _check_model(c.site("hospital") / "model.json", joined[cols], "ms", 2)


def test_mixed_three_hospitals_and_an_insurer(tmp_path):
    parties = ["h1", "insurer", "h2", "h3"]
    with Network(parties + ["dealer"]) as net:
        c = Consortium(tmp_path, net, parties)
        pop = _population(300, 3)
        hcols = ["patient_id", "age", "bmi", "edss", "region", "ms"]
        hosp = {n: pop.iloc[i * 80:(i + 1) * 80][hcols] for i, n in enumerate(["h1", "h2", "h3"])}
        ins = pop.iloc[60:][["patient_id", "claims", "rx"]]       # covers 180 of the 240 patients
        for n, df in hosp.items():
            df.to_csv(c.site(n) / f"{n}.csv", index=False)
        ins.sample(frac=1, random_state=3).to_csv(c.site("insurer") / "insurer.csv", index=False)
        c.write_job(_job("mixed", analyst="h2"))
        c.start_all("h2")
        res = c.wait(300)
    _ok(res)
    pooled = pd.concat([hosp[n] for n in ("h1", "h2", "h3")])
    joined = pooled.merge(ins, on="patient_id", how="left").drop(columns=["patient_id"])
    cols = ["age", "bmi", "edss", "region", "claims", "rx", "ms"]
    _check_model(c.site("h2") / "model.json", joined[cols], "ms", 2)


def test_kill_after_tree_3_of_8_and_resume_gives_the_uninterrupted_model(tmp_path):
    """A party is SIGKILLed once every participant has saved round 3 of 8; all restart with
    --resume and finish.  The reference is an uninterrupted run from the same master seeds
    (fresh checkpoint directories holding only the seeds: --resume with no round saved starts
    at round 0), so the two models must be identical, and both equal xgboost's."""
    import shutil
    import time

    parties = ["h1", "h2", "h3"]
    cols = HCOLS
    with Network(parties + ["dealer"]) as net:
        c = Consortium(tmp_path, net, parties)
        pop = write_hospitals(c, parties, 240, 4)
        c.write_job(_job("horizontal", rounds=8))
        c.start_all("h1", "--checkpoint", "ck")
        deadline = time.monotonic() + 240
        while not all((c.site(n) / "ck" / "round-0003.npz").exists() for n in c.everyone):
            assert time.monotonic() < deadline, "round 3 was never checkpointed"
            assert all(p.poll() is None for p in c.procs.values()), "a participant stopped early"
            time.sleep(0.05)
        c.kill("h2")
        killed = c.wait(60)
        assert killed["h2"][0] != 0 and all(killed[n][0] == 1 for n in ("h1", "h3", "dealer"))
        saved = {n: sorted(f.name for f in (c.site(n) / "ck").glob("round-*")) for n in c.everyone}
        assert all(len(v) >= 3 and len(v) < 8 for v in saved.values()), saved
        for n in c.everyone:                       # checkpoint files are private
            assert all((f.stat().st_mode & 0o077) == 0 for f in (c.site(n) / "ck").iterdir())
            ref = c.site(n) / "ck-ref"
            ref.mkdir()
            for f in ("seed", "checkpoint.json"):
                shutil.copy(c.site(n) / "ck" / f, ref / f)
        c.start_all("h1", "--checkpoint", "ck", "--resume")
        res = c.wait(240)
        _ok(res)
        shutil.move(c.site("h1") / "model.json", tmp_path / "resumed.json")
        shutil.move(c.site("h2") / "stats.json", tmp_path / "resumed-stats.json")
        c.start_all("h1", "--checkpoint", "ck-ref", "--resume")
        ref_res = c.wait(240)
        _ok(ref_res)
    resumed, straight = xgb.Booster(), xgb.Booster()
    resumed.load_model(str(tmp_path / "resumed.json"))
    straight.load_model(str(c.site("h1") / "model.json"))
    _, d = _reference(pop[cols].drop(columns=["patient_id"]), "ms", 8)
    assert_same_trees(resumed, straight)
    assert np.abs(resumed.predict(d, output_margin=True)
                  - straight.predict(d, output_margin=True)).max() <= 1e-6
    _check_model(tmp_path / "resumed.json", pop[cols].drop(columns=["patient_id"]), "ms", 8)
    stats = json.loads((tmp_path / "resumed-stats.json").read_text())
    assert len(stats["per_tree"]) == 8
    assert json.loads((c.site("h2") / "stats.json").read_text())["resumed_from"] == 0
    assert 3 <= stats["resumed_from"] < 8           # ... and it did skip the saved rounds


def test_checkpoint_of_another_job_is_refused(tmp_path):
    parties = ["h1", "h2"]
    with Network(parties + ["dealer"]) as net:
        c = Consortium(tmp_path, net, parties)
        write_hospitals(c, parties, 120, 6)
        c.write_job(_job("horizontal", rounds=1))
        c.start_all("h1", "--checkpoint", "ck")
        _ok(c.wait(120))
        c.write_job(_job("horizontal", rounds=2))        # another job: its digest differs
        c.start_all("h1", "--checkpoint", "ck", "--resume")
        res = c.wait(120)
    for n, (rc, _, err, _) in res.items():
        assert rc == 1 and "belongs to another job" in err, (n, err)


def test_analyst_of_its_own_receives_the_model_and_nobody_else(tmp_path):
    """federation init --analyst: the analyst is its own process (not a data party); it alone
    writes the model, which equals xgboost's on the joined data."""
    parties = ["hospital", "insurer"]
    with Network(parties + ["dealer", "analyst"]) as net:
        c = Consortium(tmp_path, net, parties, analyst=True)
        pop = _population(200, 9)
        hosp = pop.iloc[:180][["patient_id", "age", "bmi", "edss", "region", "ms"]]
        ins = pop.iloc[20:][["patient_id", "claims", "rx"]]
        hosp.to_csv(c.site("hospital") / "hospital.csv", index=False)
        ins.sample(frac=1, random_state=4).to_csv(c.site("insurer") / "insurer.csv", index=False)
        c.write_job(_job("vertical", analyst="analyst"))
        for n in c.everyone:
            c.start(n)
        res = c.wait(240)
    _ok(res)
    assert {f.name for f in c.site("analyst").iterdir()} >= {"model.json", "analyst.key"}
    assert not any(f.suffix in (".csv", ".parquet") for f in c.site("analyst").iterdir())
    for n in ("hospital", "insurer", "dealer"):
        assert not (c.site(n) / "model.json").exists()
    joined = hosp.merge(ins, on="patient_id").drop(columns=["patient_id"])
    _check_model(c.site("analyst") / "model.json",
                 joined[["age", "bmi", "edss", "region", "claims", "rx", "ms"]], "ms", 2)
