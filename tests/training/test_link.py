"""The emulated link of the in-process transport, and the time model it is checked against."""
import time

import numpy as np
import pytest
import xgboost

import ppboost
from ppboost.transport.inprocess import run_inprocess
from ppboost.transport.link import Link, modelled_seconds


def test_parse():
    assert Link.parse("1gbit:10ms") == Link(1.25e8, 0.01)
    assert Link.parse("100mbit:50ms") == Link(1.25e7, 0.05)
    assert Link.parse("local") is None and Link.parse(None) is None
    with pytest.raises(ValueError, match="expected RATE:DELAY"):
        Link.parse("fast")


def test_a_message_takes_size_over_bandwidth_plus_delay():
    link = Link.parse("80mbit:30ms")                     # 10 MB/s
    payload = np.zeros(250_000, np.uint64)               # 2 MB: 0.2 s on the wire

    def sender(ep):
        ep.send(1, payload)
        ep.send(1, payload)                              # queued behind the first

    def receiver(ep):
        t0 = time.monotonic()
        ep.recv(0)
        t1 = time.monotonic()
        ep.recv(0)
        return t1 - t0, time.monotonic() - t0

    (_, (first, second)), _, _ = run_inprocess(2, [sender, receiver], timeout=10, link=link)
    assert first >= 0.23 - 0.02                          # 0.2 s on the wire + 30 ms
    assert second >= 0.43 - 0.02                         # the second waits for the first
    assert second - first >= 0.2 - 0.02


def test_shaped_training_keeps_the_model_and_the_transcript():
    """The link changes when messages arrive, nothing else.  (Whether the shaped time agrees
    with the model is a benchmark figure, bench_training.py --links, not a timed test.)"""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 6, size=(400, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 3] + rng.normal(size=400)).astype(np.float32)
    data = ppboost.VerticalSplit({"a": (X[:, :3], y), "b": X[:, 3:]})
    params = {"max_depth": 2, "max_bin": 8}
    local = ppboost.train(params, data, 1, verbose=False)
    shaped = ppboost.train(params, data, 1, verbose=False, link="200mbit:2ms")
    assert shaped.stats["link"] == "200mbit:2ms" and local.stats["link"] == "local"
    for name in local.stats["parties"]:
        assert shaped.stats["parties"][name]["transcript"] == local.stats["parties"][name]["transcript"]
    d = xgboost.DMatrix(X)
    assert np.abs(shaped.reveal().predict(d) - local.reveal().predict(d)).max() <= 1e-5
    link = Link.parse("200mbit:2ms")
    stats = list(local.stats["parties"].values()) + [local.stats["dealer"]]
    wire = modelled_seconds(link, 0.0, stats)
    assert shaped.stats["wall_seconds"] >= 0.5 * wire       # a lower bound, not a timing target


def test_replay_of_a_ping_pong_and_a_one_way_burst():
    """replayed_seconds on hand-made traces at 1000 B/s and 0.1 s one way.  Ping-pong:
    0 computes 0.5 s and sends 1000 bytes (on the wire 1 s, arrives at 1.6); 1 then
    computes 0.25 s and answers with 500 bytes (arrives at 2.45); 0 computes 0.1 s and
    sends an empty note (arrives at 2.65), which 1 receives last: 2.65 s.  Burst: two
    1000-byte sends queue on the channel: 2.1 s."""
    from ppboost.transport.link import replayed_seconds
    link = Link(1000.0, 0.1)
    tr = [(0, 1, 1000), (1, 0, 500), (0, 1, 0)]
    runs = [{"me": 0, "transcript": tr, "times": [(10.5, 10.5), (10.5, 11.0), (11.1, 11.1)]},
            {"me": 1, "transcript": tr, "times": [(10.0, 10.6), (10.85, 10.85), (10.9, 10.95)]}]
    assert replayed_seconds(link, runs) == pytest.approx(2.65, abs=1e-9)
    assert replayed_seconds(Link(float("inf"), 0.0), runs) == pytest.approx(0.85, abs=1e-9)
    burst = [{"me": p, "transcript": [(0, 1, 1000)] * 2, "times": [(0, 0)] * 2} for p in (0, 1)]
    assert replayed_seconds(link, burst) == pytest.approx(2.1)
    with pytest.raises(ValueError, match="nobody sent"):
        replayed_seconds(link, [{"me": 0, "transcript": [(1, 0, 8)], "times": [(0, 0)]}])
