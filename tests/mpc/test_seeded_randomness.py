"""tests/conftest.py's fixed streams: with them, an MPC run draws the same randomness every
time (so a statistical test is reproducible); without them, two runs differ."""
import numpy as np

from ppboost.mpc.secagg import SecAgg
from ppboost.mpc.simulate import run_parties
from ppboost.transport.inprocess import run_inprocess

from ..seeding import seed_randomness


def _product(p):
    x = p.share(np.zeros(64, np.uint64) if p.id == 0 else None, 0, shape=(64,))
    z = x * x
    return [o.copy() for o in p.opened], p.reveal(z), p.prg.seed


def _opened():
    res, _, _ = run_parties(3, _product, keep_opened=True)
    return res


def test_fixed_streams_repeat_the_dealer_and_party_randomness(monkeypatch):
    seed_randomness(monkeypatch)
    a = _opened()
    seed_randomness(monkeypatch)          # fresh counters: the same streams again
    b = _opened()
    for ra, rb in zip(a, b):
        assert all(np.array_equal(x, y) for x, y in zip(ra[0], rb[0]))   # opened d, e
        assert ra[2] == rb[2]                                             # Party PRG seed
    assert len({r[2] for r in a}) == 3                                    # one stream per party
    assert not np.array_equal(a[0][0][0], np.zeros_like(a[0][0][0]))     # still masked


def test_without_them_two_runs_differ():
    a, b = _opened(), _opened()
    assert not np.array_equal(a[0][0][0], b[0][0][0])


def _secagg(ep):
    sa = SecAgg(ep, range(3), 0, audit=True)
    sa.open_session(1)
    sa.aggregate(np.zeros(16, np.uint64))
    return sa


def test_fixed_streams_repeat_secure_aggregation_masks(monkeypatch):
    runs = []
    for _ in range(2):
        seed_randomness(monkeypatch)
        res, _, _ = run_inprocess(3, _secagg, None, timeout=20)
        runs.append(sorted((p, y.tobytes()) for (_, _, p, y) in res[0].received))
    assert runs[0] == runs[1]
