"""agree.announce: a peer's stop that carries the agreement's verdict gives the same message.

Announcements from different peers may arrive in any order, so a participant
can see a peer's stop (it already found the disagreement) before the last
announcement.  It must then stop with the same AgreementError text as
everyone else, not with the stop report that wraps it.
"""
from __future__ import annotations

import json

import pytest

from ppboost.errors import AgreementError
from ppboost.training.agree import announce
from ppboost.transport.base import PeerFailed

NAMES = ["h1", "h2", "dealer"]


class _Ep:
    """Participant 2 (the dealer): h1's announcement is there, then h1's stop arrives."""
    me = 2

    def __init__(self, failure: str):
        self.failure = failure
        self.sent = []

    def send(self, to, payload):
        self.sent.append(to)

    def recv(self, frm):
        if frm == 0:
            return json.dumps({"name": "h1"}).encode()
        raise PeerFailed(self.failure)


def test_a_peer_stopped_by_the_verdict_gives_the_verdict():
    msg = "h2: h2 (h2.csv): column 'bmi' is not numeric (it holds text)"
    ep = _Ep(f"dealer stopped: h1 failed: AgreementError: {msg}")
    with pytest.raises(AgreementError) as got:
        announce(ep, NAMES, {"name": "dealer"})
    assert str(got.value) == msg and ep.sent == [0, 1]


def test_any_other_stop_is_reported_as_it_is():
    ep = _Ep("dealer stopped: h1 failed: DataError: something else")
    with pytest.raises(PeerFailed, match="h1 failed: DataError: something else"):
        announce(ep, NAMES, {"name": "dealer"})


def test_a_stop_while_sending_the_announcement_gives_the_verdict_too():
    msg = "h2: the data file h2.csv does not exist"

    class Ep(_Ep):
        def send(self, to, payload):
            if to == 1:
                raise PeerFailed(f"dealer stopped sending to h2: h1 failed: AgreementError: {msg}")

    with pytest.raises(AgreementError, match=f"^{msg}$"):
        announce(Ep(""), NAMES, {"name": "dealer"})
