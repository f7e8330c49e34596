"""Secure aggregation (ppboost.mpc.secagg) at the protocol level, over the in-process transport.

A party "drops out" by closing its endpoint and returning: its peers' receives from it
fail at once (as a closed TLS connection does), everyone else goes on.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from ppboost.errors import ProtocolError
from ppboost.mpc import secagg
from ppboost.mpc.secagg import SecAgg, max_dropouts, shamir_reconstruct, shamir_share, threshold
from ppboost.transport.base import PeerFailed
from ppboost.transport.inprocess import run_inprocess

N = 5000


def _inputs(n_parties, slots, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.integers(0, 2**64, N, dtype=np.uint64) for _ in range(slots)]
            for _ in range(n_parties)]


def _run(n_parties, slots, xs, server=0, leave=None, timeout=20.0):
    """Every party opens one session of ``slots`` and aggregates its vectors; ``leave``:
    {party: slot} -- that party closes its endpoint instead of aggregating that slot."""
    leave = leave or {}

    def party(ep):
        sa = SecAgg(ep, range(n_parties), server, audit=True)
        u2 = sa.open_session(slots)
        outs = []
        for k in range(slots):
            if leave.get(ep.me) == k:
                ep.close()
                return {"left": k, "session": sa._session}
            outs.append(sa.aggregate(xs[ep.me][k], f"slot {k}"))
        return {"u2": u2, "outs": outs, "sa": sa, "session": sa._session}

    res, _, _ = run_inprocess(n_parties, party, None, timeout=timeout)
    return res


def test_thresholds():
    assert [(n, max_dropouts(n), threshold(n)) for n in (3, 4, 5, 7, 10)] == \
        [(3, 0, 3), (4, 1, 3), (5, 1, 4), (7, 2, 5), (10, 3, 7)]


def test_shamir_any_t_shares_reconstruct_and_t_minus_1_do_not():
    s = int.from_bytes(b"\x01" * 32, "big")
    sh = shamir_share(s, [1, 2, 3, 4, 5], 3)
    for pick in ([1, 2, 3], [2, 4, 5], [1, 3, 5]):
        assert shamir_reconstruct({x: sh[x] for x in pick}) == s
    assert shamir_reconstruct({x: sh[x] for x in [1, 2]}) != s


@pytest.mark.parametrize("n_parties,server", [(3, 0), (4, 2)])
def test_no_dropout_sums_and_pairwise_masks_cancel(n_parties, server):
    slots = 3
    xs = _inputs(n_parties, slots)
    res = _run(n_parties, slots, xs, server=server)
    sa = res[server]["sa"]
    assert all(r["u2"] == list(range(n_parties)) for r in res)
    for k in range(slots):
        out = res[server]["outs"][k]
        assert out.included == list(range(n_parties)) and out.dropped == []
        assert np.array_equal(out.total, sum(xs[p][k] for p in range(n_parties)))
        # the masked vectors minus the inputs and the self masks: the pairwise masks, sum 0
        # (the server's own vector is not masked: nothing in it to hide from itself)
        ys = {p: y for (_, slot, p, y) in sa.received if slot == k}
        clients = [p for p in range(n_parties) if p != server]
        assert sorted(ys) == clients
        pair = [ys[p] - xs[p][k] - secagg.self_mask(res[p]["session"].b[k], N) for p in clients]
        assert all(np.any(m != 0) for m in pair)          # each party's is not zero ...
        assert not np.any(sum(pair))                        # ... their sum is
        for r in res:
            if r["sa"] is not sa:
                assert r["outs"][k].total is None           # clients learn no sum
    # no dropout: only self-mask seeds were reconstructed, never a key
    assert {kind for (_, _, kind, _) in sa.recovered} == {"b"}


@pytest.mark.statistical
def test_masked_messages_are_uniform():
    """Vectors of zeros and of ones: the server receives bytes indistinguishable from
    uniform (chi-square over the 256 byte values), and the same statistics either way."""
    n_parties, slots = 3, 2
    xs = [[np.zeros(N * 8, np.uint64), np.ones(N * 8, np.uint64)] for _ in range(n_parties)]

    def party(ep):
        sa = SecAgg(ep, range(n_parties), 0, audit=True)
        sa.open_session(slots)
        for k in range(slots):
            sa.aggregate(xs[ep.me][k])
        return sa

    res, _, _ = run_inprocess(n_parties, party, None, timeout=20)
    from scipy.stats import chisquare
    for (_, k, p, y) in res[0].received:
        counts = np.bincount(y.view(np.uint8), minlength=256)
        assert chisquare(counts).pvalue > 1e-4, (k, p)
        bits = np.unpackbits(y.view(np.uint8)).mean()
        assert abs(bits - 0.5) < 0.005


def test_dropout_recovers_exactly_the_missing_masks():
    """4 parties, party 3 drops out at slot 2 of 4: the sums of slots 2 and 3 are the
    survivors' exactly; the server reconstructs party 3's slot-2 and slot-3 keys (the
    masks it shared with the survivors there) and the survivors' self-mask seeds, and
    nothing else: no survivor's key, no seed of party 3, no key of party 3 for slots 0-1.
    (The server, party 0, masks nothing of its own, so no mask of it is recovered.)"""
    n_parties, slots, gone, at = 4, 4, 3, 2
    xs = _inputs(n_parties, slots, seed=1)
    res = _run(n_parties, slots, xs, leave={gone: at})
    sa = res[0]["sa"]
    assert res[gone]["left"] == at
    survivors = [0, 1, 2]
    for k in range(slots):
        out = res[0]["outs"][k]
        who = list(range(n_parties)) if k < at else survivors
        assert out.included == who
        assert np.array_equal(out.total, sum(xs[p][k] for p in who))
    assert [d["id"] for d in sa.drops] == [gone] and "slot 2" in sa.drops[0]["where"]
    assert res[0]["outs"][at].dropped == [gone] and res[0]["outs"][at + 1].dropped == []
    rec = sorted(sa.recovered)
    clients = [1, 2, 3]
    want = sorted([(0, k, "b", p) for k in range(slots)
                   for p in (clients if k < at else survivors[1:])]
                  + [(0, k, "sk", gone) for k in range(at, slots)])
    assert rec == want
    # the reconstructed key is party 3's real slot key, and its masks with the survivors
    # are exactly what the survivors added for it
    sess = {p: res[p]["session"] for p in range(n_parties)}
    for k in range(at, slots):
        ys = {p: y for (_, slot, p, y) in sa.received if slot == k}
        for u in survivors[1:]:                       # the clients (0 is the server)
            others = [v for v in survivors[1:] if v != u]
            pks = {v: sess[v].pks[v][k] for v in others}
            partial = secagg.masked_input(xs[u][k], u, sess[u].b[k], sess[u].sk[k], pks, 0, k)
            missing = ys[u] - partial                 # what u added for party 3 alone
            seed = secagg.pair_seed(sess[gone].sk[k], sess[u].pks[u][k],
                                    secagg._context(0, k, u, gone))
            m = secagg.PRG(seed).at(0, N)
            assert np.array_equal(missing, m if u < gone else -m)


def test_departure_before_the_session_is_a_smaller_aggregation():
    n_parties = 4

    def party(ep):
        if ep.me == 2:
            ep.close()
            return None
        sa = SecAgg(ep, range(n_parties), 0)
        u2 = sa.open_session(1)
        return u2, sa.aggregate(np.full(10, ep.me + 1, np.uint64)), sa.drops

    res, _, _ = run_inprocess(n_parties, party, None, timeout=20)
    u2, out, drops = res[0]
    assert u2 == [0, 1, 3] and out.included == [0, 1, 3]
    assert np.array_equal(out.total, np.full(10, 1 + 2 + 4, np.uint64))
    assert [d["id"] for d in drops] == [2]


@pytest.mark.parametrize("n_parties,gone", [(3, [1]), (4, [1, 3])])
def test_too_many_dropouts_stop_with_a_clear_error(n_parties, gone):
    def party(ep):
        sa = SecAgg(ep, range(n_parties), 0)
        sa.open_session(2)
        sa.aggregate(np.ones(10, np.uint64))
        if ep.me in gone:
            ep.close()
            return None
        sa.aggregate(np.ones(10, np.uint64))
        return "done"

    with pytest.raises(ProtocolError, match=rf"dropped out .*tolerates at most "
                                            rf"{max_dropouts(n_parties)}"):
        run_inprocess(n_parties, party, None, timeout=20)


def test_a_client_refuses_to_reveal_both_seed_and_key_of_a_party():
    """A server that asks for party 2 both as included and as dropped (which would give
    it party 2's self mask and its pairwise masks, hence x_2) is refused."""
    def party(ep):
        if ep.me != 0:
            sa = SecAgg(ep, range(3), 0)
            sa.open_session(1)
            with pytest.raises(ProtocolError, match="refuses an inconsistent unmasking"):
                sa.aggregate(np.ones(4, np.uint64))
            return "refused"
        sa = SecAgg(ep, range(3), 0)
        sa.open_session(1)
        for p in (1, 2):
            ep.recv(p)
        bad = json.dumps({"session": 0, "slot": 0, "included": [0, 1, 2], "dropped": [2]})
        for p in (1, 2):
            ep.send(p, bad.encode())
        return "asked"

    res, _, _ = run_inprocess(3, party, None, timeout=20)
    assert res == ["asked", "refused", "refused"]


def test_losing_the_server_names_it():
    def party(ep):
        sa = SecAgg(ep, range(3), 0)
        sa.open_session(2)
        sa.aggregate(np.ones(4, np.uint64))
        if ep.me == 0:
            ep.close()
            return None
        with pytest.raises(PeerFailed, match="party 0"):
            sa.aggregate(np.ones(4, np.uint64))
        return "stopped"

    res, _, _ = run_inprocess(3, party, None, timeout=20)
    assert res[1:] == ["stopped", "stopped"]
