"""Deployment faults and bad input: every participant stops with a clear error, nothing hangs.

Each participant is a real process in its own network namespace (or on its
own loopback address), as in test_deploy.py.
"""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from ppboost.consortium import PY, Consortium, Network

from .test_deploy import LEVELS, _job, _population, write_hospitals

TIMEOUT = 20
CONNECT = 15        # seconds the others wait for a participant that never joins


def _horizontal(tmp_path, net, parties=("h1", "h2", "h3"), rounds=2, connect_timeout=40.0,
                **job):
    c = Consortium(tmp_path, net, list(parties), connect_timeout=connect_timeout)
    write_hospitals(c, parties, 240, 7)
    c.write_job(_job("horizontal", rounds=rounds, timeout=TIMEOUT, **job))
    return c


def _all_failed_with(res, text, who=None):
    for n, (rc, out, err, _) in res.items():
        if who is not None and n not in who:
            continue
        assert rc not in (0, None), f"{n} exited {rc}\n{out}\n{err}"
        assert text in err, f"{n}: expected {text!r} in its error, got:\n{err}"


def test_schema_mismatch_stops_everyone_with_the_same_message(tmp_path):
    with Network(["h1", "h2", "h3", "dealer"]) as net:
        c = _horizontal(tmp_path, net)
        df = __import__("pandas").read_csv(c.site("h2") / "h2.csv").drop(columns=["edss"])
        df.to_csv(c.site("h2") / "h2.csv", index=False)
        c.start_all("h1")
        res = c.wait(90)
    _all_failed_with(res, "horizontal split: h2's columns differ from h1's; h2 lacks ['edss']")
    msgs = {err.strip().splitlines()[-1].split("error: ", 1)[1] for _, _, err, _ in res.values()}
    assert len(msgs) == 1, msgs


def test_type_clash_stops_everyone_with_the_same_message(tmp_path):
    """bmi is numeric at h1 but text at h2: every participant stops naming h2 and the column
    (the values stay at h2)."""
    with Network(["h1", "h2", "dealer"]) as net:
        c = _horizontal(tmp_path, net, parties=("h1", "h2"))
        df = __import__("pandas").read_csv(c.site("h2") / "h2.csv")
        df["bmi"] = [f"{v} kg/m2" for v in df["bmi"]]
        df.to_csv(c.site("h2") / "h2.csv", index=False)
        c.start_all("h1")
        res = c.wait(90)
    _all_failed_with(res, "h2: h2 (h2.csv): column 'bmi' is not numeric (it holds text); "
                          "declare it in the job's 'categorical' with its levels, or drop it")
    msgs = {err.strip().splitlines()[-1].split("error: ", 1)[1] for _, _, err, _ in res.values()}
    assert len(msgs) == 1, msgs
    assert all(r[0] == 1 and "kg/m2" not in r[2] for r in res.values())


def test_other_job_file(tmp_path):
    with Network(["h1", "h2", "dealer"]) as net:
        c = _horizontal(tmp_path, net, parties=("h1", "h2"))
        (c.site("h2") / "job.json").write_text(
            (c.site("h2") / "job.json").read_text().replace('"timeout": 20', '"timeout": 21'))
        c.start_all("h1")
        res = c.wait(90)
    _all_failed_with(res, "job file differs")
    assert all("h2 announced job digest" in r[2] for r in res.values())


def test_label_column_at_two_vertical_parties(tmp_path):
    with Network(["hospital", "insurer", "dealer"]) as net:
        c = Consortium(tmp_path, net, ["hospital", "insurer"])
        pop = _population(120, 8)
        pop[["patient_id", "age", "bmi", "ms"]].to_csv(c.site("hospital") / "hospital.csv", index=False)
        pop[["patient_id", "claims", "ms"]].to_csv(c.site("insurer") / "insurer.csv", index=False)
        c.write_job(_job("vertical", analyst="hospital", timeout=TIMEOUT))
        c.start("dealer"), c.start("hospital", out=True), c.start("insurer")
        res = c.wait(90)
    _all_failed_with(res, "vertical split: the label column 'ms' is at 2 parties "
                          "(hospital, insurer); exactly one party may hold it")


def test_missing_data_file_and_value_outside_declared_levels(tmp_path):
    with Network(["h1", "h2", "h3", "dealer"]) as net:
        c = _horizontal(tmp_path, net)
        (c.site("h3") / "h3.csv").unlink()
        df = __import__("pandas").read_csv(c.site("h2") / "h2.csv")
        df.loc[df.index[:3], "region"] = "atlantis"
        df.to_csv(c.site("h2") / "h2.csv", index=False)
        c.start_all("h1")
        res = c.wait(90)
    _all_failed_with(res, "h3: the data file h3.csv does not exist")
    _all_failed_with(res, f"h2: h2 (h2.csv): column 'region' has values outside its "
                          f"declared levels {LEVELS}")
    local = "local detail, not shared: column 'region': 3 row(s) outside the levels"
    assert local in res["h2"][2] and "atlantis" in res["h2"][2]   # the site's own detail
    for n in ("h1", "h3", "dealer"):                        # neither the value nor the count
        assert "atlantis" not in res[n][2] and "3 row(s)" not in res[n][2], res[n][2]
        assert "value(s)" not in res[n][2], res[n][2]


def test_wrong_key_and_unknown_participant(tmp_path):
    with Network(["h1", "h2", "dealer"]) as net:
        c = _horizontal(tmp_path, net, parties=("h1", "h2"), connect_timeout=CONNECT)
        (c.site("h2") / "h2.key").write_bytes((c.fed / "h1.key").read_bytes())
        t0 = time.monotonic()
        c.start_all("h1")
        res = c.wait(120)
        took = time.monotonic() - t0
    rc, _, err, _ = res["h2"]
    assert rc == 1 and "cannot load certificate" in err and "does the key belong" in err
    _all_failed_with(res, "h2", who=("h1", "dealer"))       # the others name the missing party
    assert took < CONNECT + 15                            # connect timeout + start-up
    bad = subprocess.run([PY, "-m", "ppboost", "party", "--federation", "federation.json",
                          "--me", "h9", "--key", "h1.key", "--job", "job.json", "--data", "h1.csv"],
                         cwd=c.site("h1"), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no participant 'h9'" in bad.stderr


def test_certificate_of_another_federation_is_refused(tmp_path):
    with Network(["h1", "h2", "dealer"]) as net:
        c = _horizontal(tmp_path, net, parties=("h1", "h2"), connect_timeout=CONNECT)
        other = tmp_path / "other"
        subprocess.run([PY, "-m", "ppboost", "federation", "init", str(other), "--party",
                        "h1=127.0.0.1:1", "--party", "h2=127.0.0.1:2", "--dealer", "127.0.0.1:3"],
                       check=True, capture_output=True)
        for suffix in (".crt", ".key"):                      # h2 shows up with a foreign identity
            (c.site("h2") / f"h2{suffix}").write_bytes((other / f"h2{suffix}").read_bytes())
        c.start_all("h1")
        res = c.wait(120)
    for n in res:
        assert res[n][0] not in (0, None), n
    assert "does not verify against the federation CA" in res["h2"][2] \
        or "rejected" in res["h2"][2]


def test_port_already_in_use(tmp_path):
    with Network(["h1", "h2", "dealer"]) as net:
        c = _horizontal(tmp_path, net, parties=("h1", "h2"), connect_timeout=CONNECT)
        host, port = net.addr["h1"], c.port["h1"]
        squat = subprocess.Popen(net.prefix("h1") + [PY, "-c", (
            f"import socket,time;s=socket.create_server(('{host}',{port}));print('up',flush=True);"
            "time.sleep(120)")], stdout=subprocess.PIPE, text=True)
        try:
            assert squat.stdout.readline().strip() == "up"
            c.start_all("h1")
            res = c.wait(120)
        finally:
            squat.kill()
    rc, _, err, _ = res["h1"]
    assert rc == 1 and "cannot listen on" in err and "in use" in err
    _all_failed_with(res, "h1", who=("h2", "dealer"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGSTOP])
def test_killed_participant_stops_the_others_naming_it(tmp_path, sig):
    """SIGKILL (dies), SIGINT (Ctrl-C: it tells the others) or SIGSTOP (stalls: the others
    time out): every other participant exits 1 within the job's timeout + 10 s, naming it."""
    with Network(["h1", "h2", "h3", "dealer"]) as net:
        c = _horizontal(tmp_path, net, rounds=400)
        c.start_all("h1", "--checkpoint", "ck")
        deadline = time.monotonic() + 240                # training under way: round 2 saved
        while not all((c.site(n) / "ck" / "round-0002.npz").exists() for n in c.everyone):
            assert time.monotonic() < deadline, "round 2 was never checkpointed"
            assert all(p.poll() is None for p in c.procs.values()), "a participant stopped early"
            time.sleep(0.05)
        c.kill("h2", sig)
        others = {n: c.procs.pop(n) for n in ("h1", "h3", "dealer")}
        stopped = c.procs
        c.procs = others
        res = c.wait(TIMEOUT + 60)
        took = {n: r[3] for n, r in res.items()}
        c.procs = stopped
        res.update(c.wait(5 if sig == signal.SIGSTOP else 60))    # the stopped one is killed
    for n in ("h1", "h3", "dealer"):
        rc, out, err, _ = res[n]
        assert rc == 1, f"{n} exited {rc}\n{err}"
        assert took[n] < TIMEOUT + 10, (n, took[n])
        assert "h2" in err.strip().splitlines()[-1], err
        if sig == signal.SIGSTOP:   # whoever waited on a waiter reports the stalled one too
            assert "waited" in err and "from h2, which sent nothing (stalled or dead)" in err, err
    if sig == signal.SIGINT:
        assert res["h2"][0] == 130
        assert "interrupted" in res["h1"][2]
