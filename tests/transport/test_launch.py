"""One OS process per participant over TLS (ppboost.transport.launch).

Participant functions are module-level so that the 'spawn' children can
import them.  Each launch costs ~1 s of process start-up, so the tests are few
and each checks several things.
"""
from __future__ import annotations

import functools
import os
import time

import numpy as np
import pytest

from ppboost.transport import (
    FederationConfig,
    HandshakeError,
    PeerFailed,
    TransportTimeout,
    make_federation,
    run_inprocess,
    run_local,
    run_processes,
)
from ppboost.transport.base import encoded_size
from ppboost.transport.tls import _grace


# ---------------------------------------------------------------------------- participant code
def exchange(ep):
    """Two rounds, all-to-all: bytes and arrays of several dtypes, including a 2.4 MB one."""
    others = [p for p in range(ep.n_parties + 1) if p != ep.me]
    rng = np.random.default_rng(ep.me)
    mine = [b"from %d" % ep.me, rng.integers(0, 2**63, size=300_000, dtype=np.uint64),
            rng.normal(size=(3, 4)), np.array(ep.me, dtype=np.int8)]
    for p in others:
        for x in mine:
            ep.send(p, x)
    got = {p: [ep.recv(p) for _ in mine] for p in others}
    total = sum(int(g[1][:10].sum() % 1000) for g in got.values())
    for p in others:
        ep.send(p, np.array([total], dtype=np.uint64))
    echoes = {p: int(ep.recv(p)[0]) for p in others}
    return {"got": got, "echoes": echoes, "pid": os.getpid()}


def raise_in_party_1(ep):
    if ep.me == 1:
        ep.send(0, b"about to fail")
        raise ValueError("party 1 found bad input: shape (3,) != (4,)")
    if ep.me == 0:
        assert ep.recv(1) == b"about to fail"
    ep.recv(1)                                    # waits for party 1, who raised


def die_in_party_1(ep, timeout):
    # one good round, then party 1's process vanishes without a word
    for p in range(ep.n_parties + 1):
        if p != ep.me:
            ep.send(p, np.arange(4))
    for p in range(ep.n_parties + 1):
        if p != ep.me:
            ep.recv(p)
    if ep.me == 1:
        os._exit(7)
    t = time.monotonic()
    try:
        ep.recv(1)
    except PeerFailed as exc:
        elapsed = time.monotonic() - t
        assert elapsed < 5.0, f"noticed after {elapsed:.1f}s (recv timeout {timeout}s)"
        raise PeerFailed(f"{exc} [after {elapsed:.2f}s]") from None


def stall_in_party_1(ep):
    if ep.me == 1:
        time.sleep(60)                            # stalls; the launcher terminates it
    t = time.monotonic()
    try:
        ep.recv(1)
    except TransportTimeout as exc:
        elapsed = time.monotonic() - t
        wait = ep.timeout + _grace(ep.timeout)       # the grace lets a chained abort win
        assert wait <= elapsed < wait + 1.5, f"timed out after {elapsed:.2f}s"
        raise TransportTimeout(f"{exc} [after {elapsed:.2f}s]") from None


def idle(ep):
    return ep.me


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("n_parties", [2, 3])
def test_processes_exchange_matches_inprocess(n_parties):
    res, dealer, stats = run_local(n_parties, exchange, exchange, timeout=20, connect_timeout=15)
    allres = res + [dealer]
    assert len({r["pid"] for r in allres} | {os.getpid()}) == n_parties + 2   # separate processes
    ref, ref_dealer, eps = run_inprocess(n_parties, exchange, exchange, timeout=20)
    for a, b in zip(allres, ref + [ref_dealer]):
        assert a["echoes"] == b["echoes"]
        for p in a["got"]:
            for x, y in zip(a["got"][p], b["got"][p]):
                if isinstance(x, bytes):
                    assert x == y
                else:
                    assert x.dtype == y.dtype and x.shape == y.shape
                    np.testing.assert_array_equal(x, y)
    for st, ep in zip(stats, eps):
        assert st.transcript == ep.stats.transcript
        assert st.snapshot() == ep.stats.snapshot()
    assert stats[0].rounds == 2
    per_peer = (encoded_size(b"from 0") + encoded_size(np.zeros(300_000, np.uint64))
                + encoded_size(np.zeros((3, 4))) + encoded_size(np.array(0, np.int8))
                + encoded_size(np.zeros(1, np.uint64)))
    assert stats[0].total_sent == n_parties * per_peer


def test_raising_party_root_cause_reaches_caller():
    t = time.monotonic()
    with pytest.raises(ValueError, match=r"party 1 found bad input: shape \(3,\) != \(4,\)") as info:
        run_local(2, raise_in_party_1, raise_in_party_1, timeout=60, connect_timeout=15)
    assert time.monotonic() - t < 40                  # nobody waited for the 60 s recv timeout
    exc = info.value
    assert exc.participant == 1
    assert "party 1" in str(exc.__cause__) and "raise ValueError" in str(exc.__cause__)
    outcomes = {o.pid: o for o in exc.outcomes}
    assert outcomes[1].status == "error"
    for i in (0, 2):     # the others stopped with PeerFailed naming the root cause
        assert outcomes[i].status == "error"
        assert isinstance(outcomes[i].error, PeerFailed)
        assert "party 1 failed: ValueError: party 1 found bad input" in str(outcomes[i].error)


def test_dead_process_makes_the_others_fail_quickly():
    timeout = 60.0
    t = time.monotonic()
    with pytest.raises(PeerFailed, match=r"party 1 died \(exit code 7\) without reporting") as info:
        run_local(3, functools.partial(die_in_party_1, timeout=timeout),
                  functools.partial(die_in_party_1, timeout=timeout), timeout=timeout, connect_timeout=15)
    assert time.monotonic() - t < 40                  # nobody waited for the 60 s recv timeout
    outcomes = {o.pid: o for o in info.value.outcomes}
    assert outcomes[1].status == "died" and outcomes[1].exitcode == 7
    for i in (0, 2, 3):
        assert outcomes[i].status == "error"
        assert isinstance(outcomes[i].error, PeerFailed)
        assert "party 1 disconnected without closing its endpoint" in str(outcomes[i].error)


def test_stalled_process_times_out_naming_it():
    t = time.monotonic()
    with pytest.raises(TransportTimeout, match="waited 1.5s for a message from party 1, which sent nothing") \
            as info:
        run_local(2, stall_in_party_1, stall_in_party_1, timeout=1.5, connect_timeout=15, grace=1.0)
    elapsed = time.monotonic() - t
    assert 1.5 <= elapsed < 40                        # no hang (process start-up is slow under load)
    outcomes = {o.pid: o for o in info.value.outcomes}
    assert outcomes[1].status == "terminated"
    for i in (0, 2):
        assert outcomes[i].status == "error"
        # the first to time out names party 1; anyone later may instead hear of that failure
        assert isinstance(outcomes[i].error, (TransportTimeout, PeerFailed))
        assert "party 1" in str(outcomes[i].error)


def test_impostor_between_processes(tmp_path):
    cfg, keys = make_federation(tmp_path / "fed", 2, connect_timeout=2.0, timeout=5.0)
    # the dealer presents party 1's certificate and key
    # grace > connect_timeout: the honest ones report their own set-up error, not "terminated"
    with pytest.raises(HandshakeError, match="party 0 rejected dealer: its certificate identifies party 1, "
                                             "but it claims to be dealer") as info:
        run_processes(cfg, {**keys, 2: (cfg.participant(1).cert, keys[1])}, idle, idle, grace=8.0)
    assert info.value.participant == 2
    out = info.value.outcomes
    assert [o.status for o in out] == ["error"] * 3
    assert all(isinstance(o.error, HandshakeError) for o in out)
    assert "dealer did not connect within 2.0s" in str(out[0].error)
    assert "its certificate identifies party 1, but it claims to be dealer" in str(out[0].error)
    # (a certificate from another CA is refused too; tested with threads in test_tls.py)


def test_run_processes_from_config_file(tmp_path):
    cfg, keys = make_federation(tmp_path, 2, timeout=10, connect_timeout=10)
    loaded = FederationConfig.load(tmp_path / "config.json")
    assert loaded == cfg
    res, dealer, stats = run_processes(str(tmp_path / "config.json"), keys, [idle, idle], idle)
    assert res == [0, 1] and dealer == 2
    assert [s.total_sent for s in stats] == [0, 0, 0]


def test_run_processes_validates_arguments(tmp_path):
    cfg, keys = make_federation(tmp_path, 2)
    with pytest.raises(ValueError, match="3 party functions for 2 parties, need exactly 2"):
        run_processes(cfg, keys, [idle] * 3)
    with pytest.raises(ValueError, match=r"no key for participant\(s\) \[2\]"):
        run_processes(cfg, {0: keys[0], 1: keys[1]}, idle)
    with pytest.raises(TypeError, match="the function for party 0 .* cannot be sent to a spawned process.*"
                                        "module-level function"):
        run_processes(cfg, keys, lambda ep: None)


class _Unpicklable(Exception):
    def __init__(self, a, b):          # pickling calls __init__ with one argument: fails
        super().__init__(f"{a}/{b}")


def test_unpicklable_exception_is_reported_by_name():
    from ppboost.transport.launch import ParticipantError, _picklable_error

    err = _picklable_error(_Unpicklable("x", "y"))
    assert isinstance(err, ParticipantError) and str(err) == "_Unpicklable: x/y"
    ok = ValueError("fine")
    assert _picklable_error(ok) is ok
