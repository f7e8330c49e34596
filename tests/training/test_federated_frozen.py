"""Federated mode deployed: a party that freezes (SIGSTOP) instead of dying.

A frozen process keeps its TLS connections open and sends nothing, so the others learn
of it only through the job's timeout.  The party stops itself before its sum of a chosen
level (``PPBOOST_FAULT_DIE_AT="round:level:SIGSTOP"``); once it is seen stopped (state T
in /proc), every other participant must exit, naming it, within the timeout + 10 s.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ppboost.consortium import Network

from .test_federated_deploy import TIMEOUT, _consortium, _start


def _stopped(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` is stopped (SIGSTOP)."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] == "T":
                return True
    return False


@pytest.mark.parametrize("n_parties,on_dropout", [(3, None), (4, "stop")])
def test_a_frozen_party_stops_the_others_naming_it(tmp_path, n_parties, on_dropout):
    """The last hospital freezes before its level-1 sum of round 1.  With 3 parties (no
    dropout tolerated) and with 4 and "on_dropout": "stop", the analyst drops it when the
    timeout passes and stops with the protocol's error; the other parties stop with its
    abort; each names the frozen one, and none takes longer than the timeout + 10 s."""
    parties = [f"h{i}" for i in range(1, n_parties + 1)]
    frozen = parties[-1]
    with Network(parties + ["dealer"]) as net:
        c, _, _ = _consortium(tmp_path, net, parties, 600, 4, 34)
        if on_dropout:
            job = json.loads((c.site("h1") / "job.json").read_text())
            c.write_job({**job, "on_dropout": on_dropout})
        _start(c, parties, die=(frozen, "1:1:SIGSTOP"))
        pgid = c.procs[frozen].pid
        deadline = time.monotonic() + 180
        while not _stopped(pgid):
            assert time.monotonic() < deadline, f"{frozen} never froze"
            assert c.procs[frozen].poll() is None, f"{frozen} exited instead of freezing"
            time.sleep(0.05)
        others = {n: c.procs.pop(n) for n in list(c.procs) if n != frozen}
        stopped = c.procs
        c.procs = others
        res = c.wait(TIMEOUT + 60)
        c.procs = stopped
        res.update(c.wait(1))                                # the frozen one is killed
    assert res["dealer"][0] == 0                             # it left after the agreement
    for n in parties[:-1]:
        rc, out, err, took = res[n]
        assert rc == 1, f"{n} exited {rc}\n{err}"
        assert took < TIMEOUT + 10, (n, took)
        last = err.strip().splitlines()[-1]
        assert frozen in last and "dropped out" in last, err
        assert ("tolerates at most 0" if n_parties == 3 else "on_dropout='stop'") in last, err
    # the analyst says why: the frozen party sent nothing within the timeout
    assert f"waited {TIMEOUT:.1f}s for a message from {frozen}, which sent nothing" in res["h1"][2]
