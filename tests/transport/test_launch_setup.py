"""The launcher's participant names and its start-up bound (ppboost.transport.launch).

Participant functions are module-level so that the 'spawn' children can import them.
"""
from __future__ import annotations

import functools
import os
import time

import pytest

from ppboost.transport import HandshakeError, PeerFailed, run_local

NAMES = ["hospital", "insurer", "dealer"]


def idle(ep):
    return None


def report_names(ep):
    return ep.names, ep.name(ep.me)


def die_in_insurer(ep):
    if ep.name(ep.me) == "insurer":
        os._exit(9)
    ep.recv(1)                                    # waits for the insurer, who vanished


class SleepWhenLoaded:
    """Unpickling this sleeps: the child reading its job file stalls, after 'started'."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __reduce__(self):
        return time.sleep, (self.seconds,)


def test_names_reach_the_config_the_endpoints_and_the_outcomes():
    res, dealer, _ = run_local(2, report_names, report_names, timeout=20, connect_timeout=15,
                               names=NAMES)
    assert res == [(NAMES, "hospital"), (NAMES, "insurer")]
    assert dealer == (NAMES, "dealer")


def test_a_dying_named_party_is_named_in_every_outcome():
    with pytest.raises(PeerFailed, match=r"^insurer died \(exit code 9\) without reporting") as info:
        run_local(2, die_in_insurer, die_in_insurer, timeout=20, connect_timeout=15, names=NAMES)
    outcomes = info.value.outcomes
    assert [o.name for o in outcomes] == NAMES
    assert [o.status for o in outcomes] == ["error", "died", "error"]
    for o in (outcomes[0], outcomes[2]):
        assert isinstance(o.error, PeerFailed) and "insurer" in str(o.error), o.error
    everything = str(info.value) + "".join(f"{o.error} {o.traceback}" for o in outcomes)
    assert "party 1" not in everything and "party 0" not in everything


def test_names_are_checked():
    with pytest.raises(ValueError, match="need 3 non-empty names"):
        run_local(2, idle, names=["a", "b"])
    with pytest.raises(ValueError, match="repeat a name"):
        run_local(2, idle, names=["a", "a", "dealer"])


def test_a_child_stalled_loading_its_job_is_named_and_everyone_is_terminated():
    """The insurer's job stalls 120 s as it is unpickled: it started but never began
    connecting, so after connect_timeout (+ the slack) the launcher stops everybody."""
    stall = functools.partial(idle, SleepWhenLoaded(120))
    with pytest.raises(HandshakeError, match=r"^insurer did not start within connect_timeout=2\.0s: "
                       r".* it had started but not loaded its job") as info:
        run_local(2, [idle, stall], idle, timeout=30, connect_timeout=2.0, names=NAMES)
    outcomes = info.value.outcomes
    assert [o.status for o in outcomes] == ["error", "stalled", "error"]
    # the others gave up first, each naming the insurer in its own set-up error
    for o in (outcomes[0], outcomes[2]):
        assert isinstance(o.error, HandshakeError) and "insurer" in str(o.error), o.error
    assert "the launcher terminated every participant" in str(info.value)
