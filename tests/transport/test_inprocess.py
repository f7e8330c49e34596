"""In-process transport (ppboost.transport.inprocess): threads and queues."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ppboost.transport import Hub, PeerFailed, TransportTimeout, run_inprocess
from ppboost.transport.base import encoded_size


def _ring(ep):
    n = ep.n_parties + 1
    x = np.arange(6, dtype=np.uint64).reshape(2, 3) + np.uint64(ep.me)
    ep.send((ep.me + 1) % n, x)
    ep.send((ep.me + 1) % n, b"tag%d" % ep.me)
    got = ep.recv((ep.me - 1) % n)
    tag = ep.recv((ep.me - 1) % n)
    x[0, 0] = 99                            # the receiver holds a copy, not our array
    return got, tag


@pytest.mark.parametrize("n_parties", [2, 3])
def test_ring_exchange_with_dealer(n_parties):
    res, dealer, eps = run_inprocess(n_parties, _ring, _ring, timeout=5)
    n = n_parties + 1
    for i, (got, tag) in enumerate(res + [dealer]):
        prev = (i - 1) % n
        np.testing.assert_array_equal(got, np.arange(6, dtype=np.uint64).reshape(2, 3) + np.uint64(prev))
        assert tag == b"tag%d" % prev
        st = eps[i].stats
        nbytes = encoded_size(got) + encoded_size(tag)
        assert st.total_sent == nbytes and st.total_recv == nbytes
        assert st.rounds == 1 and st.messages_sent == 2
        assert st.transcript[:2] == [(i, (i + 1) % n, encoded_size(got)), (i, (i + 1) % n, encoded_size(tag))]


def _raise_in_1(ep, caught):
    if ep.me == 1:
        raise KeyError("party 1 lost its shares")
    t = time.monotonic()
    try:
        ep.recv(1)
    except PeerFailed as exc:
        caught[ep.me] = (str(exc), time.monotonic() - t)
        raise


def test_raising_party_stops_the_others_and_caller_gets_root_cause():
    caught = {}
    t = time.monotonic()
    with pytest.raises(KeyError, match="party 1 lost its shares"):
        run_inprocess(3, lambda ep: _raise_in_1(ep, caught), lambda ep: _raise_in_1(ep, caught), timeout=30)
    assert time.monotonic() - t < 5                   # nobody waited for the 30 s timeout
    assert sorted(caught) == [0, 2, 3]
    for msg, waited in caught.values():
        assert "party 1 failed: KeyError" in msg
        assert waited < 5


def test_stalled_party_gives_timeout_naming_it():
    release = threading.Event()

    def fn(ep):
        if ep.me == 1:
            release.wait(10)          # stalls without sending
            return None
        try:
            return ep.recv(1)
        finally:
            if ep.me == 0:
                release.set()

    t = time.monotonic()
    with pytest.raises(TransportTimeout, match="party 0 waited 0.5s for a message from party 1, which sent nothing"):
        run_inprocess(2, [fn, fn], timeout=0.5)
    assert 0.5 <= time.monotonic() - t < 5


def test_stalled_dealer_is_named():
    gave_up = threading.Event()

    def party(ep):
        try:
            return ep.recv(ep.dealer_id)
        finally:
            gave_up.set()

    def dealer(ep):
        gave_up.wait(10)

    with pytest.raises(TransportTimeout, match="from dealer, which sent nothing"):
        run_inprocess(2, party, dealer, timeout=0.3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_parties == 1, must be >= 2"):
        Hub(1)
    with pytest.raises(ValueError, match="3 party functions for 2 parties"):
        run_inprocess(2, [lambda ep: None] * 3)

    def fn(ep):
        with pytest.raises(ValueError, match="invalid peer id 5"):
            ep.send(5, b"x")
        with pytest.raises(ValueError, match=f"invalid peer id {ep.me}"):
            ep.recv(ep.me)
        with pytest.raises(TypeError, match="object arrays cannot be sent"):
            ep.send(1 - ep.me, np.array([object()]))
        return True

    assert run_inprocess(2, fn)[0] == [True, True]


def test_move_hands_the_array_over_without_a_copy():
    """send(..., move=True) passes the sender's array itself (the caller
    promised not to touch it again); the default copies, so a later change by
    the sender does not reach the receiver.  Byte counts are the same."""
    def party(ep):
        if ep.me == 0:
            a = np.arange(4, dtype=np.uint64)
            b = np.arange(4, dtype=np.uint64)
            ep.send(1, a, move=True)
            ep.send(1, b)
            b[0] = 99
            return a, b, ep.stats.total_sent
        return ep.recv(0), ep.recv(0)

    res, _, _ = run_inprocess(2, [party, party], lambda ep: None)
    a, b, sent = res[0]
    moved, copied = res[1]
    assert moved is a
    assert copied is not b and copied[0] == 0
    assert sent == 2 * encoded_size(a)
