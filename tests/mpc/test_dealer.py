"""ppboost.mpc.dealer: compressed correlations, registry, requests, prefetch, stats."""
import numpy as np
import pytest

from ppboost.mpc import dealer as dealer_mod
from ppboost.mpc.dealer import Correlation, DealerError
from ppboost.mpc.dealer_client import DealerClient
from ppboost.mpc.kinds import standard_kinds
from ppboost.mpc.simulate import run_parties

PARTIES = [2, 3]


def _material(n, kind, **params):
    res, stats, eps = run_parties(n, lambda p: p.dealer.get(kind, **params))
    return res, stats, eps


@pytest.mark.parametrize("n", PARTIES)
def test_beaver_and_matrix_triples_are_correct(n):
    res, stats, eps = _material(n, "beaver", shape=(4, 5))
    a, b, c = (sum(r[i] for r in res) for i in range(3))
    assert np.array_equal(c, a * b)
    assert stats["by_kind"] == {"beaver": 1} and stats["offline_seconds"] > 0
    # compressed: only the last party received anything beyond its seed (17 bytes framed)
    for pid in range(n - 1):
        assert eps[pid].stats.bytes_recv.get(n, 0) == 17
    assert eps[n - 1].stats.bytes_recv[n] > 20 * 8
    res, _, _ = _material(n, "matmul", a_shape=(3, 4), b_shape=(4, 2))
    A, B, C = (sum(r[i] for r in res) for i in range(3))
    want = (A.astype(object).dot(B.astype(object)) % 2 ** 64).astype(np.uint64)
    assert np.array_equal(C, want)


@pytest.mark.parametrize("n", PARTIES)
def test_trunc_dabit_zero_materials(n):
    res, _, _ = _material(n, "trunc", shape=(1000,), f=16)
    r, r_hi, r_msb = (sum(m[i] for m in res) for i in range(3))
    assert np.array_equal(r_hi, r >> np.uint64(16)) and np.array_equal(r_msb, r >> np.uint64(63))
    res, _, _ = _material(n, "dabit", shape=(500,))
    arith_bits = sum(m[0] for m in res)
    xor_bits = np.bitwise_xor.reduce([m[1] for m in res])
    assert set(np.unique(arith_bits)) == {0, 1}
    assert np.array_equal(arith_bits, xor_bits.astype(np.uint64))
    res, _, _ = _material(n, "zero", shape=(3,), to=0)
    assert not sum(res).any() and res[0].any()


@pytest.mark.parametrize("n", PARTIES)
def test_perm_material_identity(n):
    owner = n - 1
    res, _, _ = _material(n, "perm", shape=(6, 2), owner=owner, count=2)
    invs, ds = res[owner]
    a = sum(res[p][0] for p in range(n) if p != owner)
    for j in range(2):
        c = sum(res[p][1][j] for p in range(n) if p != owner)
        assert np.array_equal(np.sort(invs[j]), np.arange(6))
        pi = np.argsort(invs[j])
        delta = a[pi] - c  # docs/design.md 6.1, step 1: delta = pi(sum a_p) - sum c_p
        assert np.array_equal(ds[j], delta[invs[j]])


class _Square(Correlation):
    """A kind defined outside ppboost: shares of r and r*r."""

    name = "test_square"

    def deal(self, d, shape):
        r = sum(d.random(shape))
        d.share(r * r)

    def expand(self, c, shape):
        return c.random(shape), c.share(shape)


@pytest.mark.parametrize("n", PARTIES)
def test_registry_accepts_kinds_from_other_modules(n):
    kinds = standard_kinds()
    assert kinds.add(_Square) is _Square
    assert "test_square" in kinds and "beaver" in kinds
    assert "test_square" not in standard_kinds()       # one registry per dealer, no global one
    res, stats, _ = run_parties(n, lambda p: p.dealer.get("test_square", shape=(7,)), kinds=kinds)
    r, r2 = sum(m[0] for m in res), sum(m[1] for m in res)
    assert np.array_equal(r2, r * r) and stats["by_kind"] == {"test_square": 1}


def test_a_dealer_without_the_kind_refuses_it():
    """The parties' injected clients know test_square, the dealer's default registry does not."""
    from ppboost.mpc.party import Party
    from ppboost.transport.inprocess import run_inprocess
    kinds = standard_kinds()
    kinds.add(_Square)

    def party(ep):
        p = Party(ep, dealer=DealerClient(ep, kinds))
        p.dealer.get("test_square", shape=(3,))

    with pytest.raises(DealerError, match="dealer: unknown correlation kind 'test_square'"):
        run_inprocess(2, party, dealer_mod.run_dealer, timeout=5)


def test_registry_rejects_duplicates_and_bad_names():
    kinds = standard_kinds()

    class Other(Correlation):
        name = "beaver"

        def deal(self, d):
            pass

        def expand(self, c):
            pass

    class Nameless(Other):
        name = ""

    with pytest.raises(ValueError, match="'beaver' is already registered"):
        kinds.add(Other)
    with pytest.raises(ValueError, match="invalid correlation name"):
        kinds.add(Nameless)
    with pytest.raises(TypeError, match="Correlation subclass"):
        kinds.add(Other())
    with pytest.raises(TypeError, match="needs a Registry"):
        DealerClient(None, ["beaver"])


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(DealerError, match="unknown correlation kind 'nope'; registered kinds:"):
        run_parties(2, lambda p: p.dealer.get("nope", shape=(1,)))


def test_bad_parameters_are_a_clear_error():
    def f(p):
        if p.id == 0:
            p.ep.send(p.ep.dealer_id, dealer_mod.encode_request("beaver", {"shap": [3]}))
        p.ep.recv(p.ep.dealer_id)  # waits; the dealer fails first

    with pytest.raises(DealerError, match=r"bad parameters \{'shap': \[3\]\} for kind 'beaver'"):
        run_parties(2, f, timeout=5)


def test_request_is_data_independent_and_public_only():
    r1 = dealer_mod.encode_request("beaver", {"shape": (3, np.int64(4))})
    r2 = dealer_mod.encode_request("beaver", {"shape": [3, 4]})
    assert r1 == r2 == b'["beaver",{"shape":[3,4]}]'
    with pytest.raises(TypeError, match="public ints/strings/shapes"):
        dealer_mod.encode_request("beaver", {"shape": np.zeros(2)})


@pytest.mark.parametrize("n", PARTIES)
def test_prefetch_gives_same_material_and_checks_order(n):
    def f(p):
        p.dealer.prefetch("beaver", shape=(5,))
        p.dealer.prefetch("trunc", shape=(5,), f=8)
        t0 = p.dealer.requests
        a, b, c = p.dealer.get("beaver", shape=(5,))
        with pytest.raises(DealerError, match="prefetched .*trunc.* but the protocol asked for .*beaver"):
            p.dealer.get("beaver", shape=(5,))
        return a, b, c, t0, p.dealer.expand_seconds

    res, stats, _ = run_parties(n, f)
    a, b, c = (sum(r[i] for r in res) for i in range(3))
    assert np.array_equal(c, a * b)
    assert all(r[3] == 2 for r in res) and all(r[4] > 0 for r in res)
    assert stats["requests"] == 2


@pytest.mark.parametrize("n", PARTIES)
def test_prefetch_many_is_one_request_message(n):
    def f(p):
        sent = p.ep.stats.messages_sent
        p.dealer.prefetch_many([("beaver", {"shape": (4,)}), ("dabit", {"shape": (9,)}),
                                ("beaver", {"shape": (2, 2)})])
        msgs = p.ep.stats.messages_sent - sent
        t1 = p.dealer.get("beaver", shape=(4,))
        bits = p.dealer.get("dabit", shape=(9,))
        t2 = p.dealer.get("beaver", shape=(2, 2))
        return msgs, t1, bits, t2

    res, stats, _ = run_parties(n, f)
    assert res[0][0] == 1 and all(r[0] == 0 for r in res[1:])
    for i in (1, 3):
        a, b, c = (sum(r[i][k] for r in res) for k in range(3))
        assert np.array_equal(c, a * b)
    arith_bits = sum(r[2][0] for r in res)
    assert np.array_equal(arith_bits, np.bitwise_xor.reduce([r[2][1] for r in res]).astype(np.uint64))
    assert stats["requests"] == 3 and stats["by_kind"] == {"beaver": 2, "dabit": 1}
    assert set(stats["seconds_by_kind"]) == {"beaver", "dabit"}


@pytest.mark.parametrize("n", PARTIES)
def test_request_ahead_expands_on_use_and_keeps_the_order(n):
    """prefetch_many(expand=False) only sends the request: nothing is expanded
    until ``get`` asks for it; the material is the same as on demand; an eager
    prefetch queued behind pending requests expands them first, so the
    dealer's messages are read in request order."""
    def f(p):
        d = p.dealer
        d.prefetch_many([("beaver", {"shape": (4,)}), ("dabit", {"shape": (9,)})], expand=False)
        expanded = d.requests
        t1 = d.get("beaver", shape=(4,))
        after_first = d.requests
        d.prefetch("beaver", shape=(3,))          # behind the pending dabit
        bits = d.get("dabit", shape=(9,))
        t2 = d.get("beaver", shape=(3,))
        d.prefetch_many([("trunc", {"shape": (2,), "f": 4})], expand=False)
        with pytest.raises(DealerError, match="prefetched .*trunc.* but the protocol asked for .*beaver"):
            d.get("beaver", shape=(2,))
        return expanded, after_first, t1, bits, t2

    res, stats, _ = run_parties(n, f)
    assert all(r[0] == 0 and r[1] == 1 for r in res)
    for i in (2, 4):
        a, b, c = (sum(r[i][k] for r in res) for k in range(3))
        assert np.array_equal(c, a * b)
    arith_bits = sum(r[3][0] for r in res)
    assert np.array_equal(arith_bits, np.bitwise_xor.reduce([r[3][1] for r in res]).astype(np.uint64))
    assert stats["by_kind"] == {"beaver": 2, "dabit": 1, "trunc": 1}


def test_record_lists_the_gets_in_order_and_replays_ahead():
    def f(p):
        d = p.dealer
        d.record()
        first = [d.get("beaver", shape=(3,)), d.get("dabit", shape=(2, 2))]
        log = d.recorded()
        d.prefetch_many(log, expand=False)
        again = [d.get("beaver", shape=(3,)), d.get("dabit", shape=(2, 2))]
        return log, d.recorded(), first, again

    res, stats, _ = run_parties(2, f)
    log, empty, first, again = res[0]
    assert log == [("beaver", {"shape": (3,)}), ("dabit", {"shape": (2, 2)})] and empty == []
    a, b, c = (sum(r[3][0][k] for r in res) for k in range(3))
    assert np.array_equal(c, a * b)
    assert not np.array_equal(first[0][0], again[0][0])      # fresh material, not a copy
    assert stats["by_kind"] == {"beaver": 2, "dabit": 2}


@pytest.mark.parametrize("n", PARTIES)
def test_parties_disagreeing_on_a_shape_fail_clearly(n):
    def f(p):
        return p.dealer.get("beaver", shape=(4,) if p.id == 0 else (5,))

    with pytest.raises(DealerError, match=r"dealer sent 4 elements but this party expected shape \(5,\)"):
        run_parties(n, f, timeout=5)


def test_dealer_idle_timeout_and_wrong_endpoint():
    from ppboost.mpc.party import Party
    from ppboost.transport.base import TransportTimeout
    from ppboost.transport.inprocess import Hub, run_inprocess
    with pytest.raises(ValueError, match="needs the dealer's endpoint"):
        dealer_mod.run_dealer(Hub(2).endpoint(0))

    def party(ep):
        Party(ep)  # takes its seed, then never asks for anything nor closes
        import time
        time.sleep(0.8)

    with pytest.raises(TransportTimeout, match="dealer: no request from party 0"):
        run_inprocess(2, party, lambda ep: dealer_mod.run_dealer(ep, idle_timeout=0.5), timeout=0.2)


@pytest.mark.parametrize("n", PARTIES)
def test_run_ahead_is_bounded_by_the_window(n):
    """40 triples (16 kB of correction each, to the last party) requested ahead: with a
    64 KiB window the dealer never has more than the window unread at a party, one
    message larger than the window still goes through, the material is right and the
    transcript (acknowledgements included) is the same on every run."""
    window = 64 * 1024

    def run(big, **kw):
        def f(p):
            shapes = [(2000,)] * 40 + [(20000,)] * big
            p.dealer.prefetch_many([("beaver", {"shape": s}) for s in shapes], expand=False)
            return [p.dealer.get("beaver", shape=s) for s in shapes]
        return run_parties(n, f, **kw)

    res, stats, eps = run(0, window_bytes=window)
    for i in range(40):
        a, b, c = (sum(r[i][k] for r in res) for k in range(3))
        assert np.array_equal(c, a * b)
    assert 0 < stats["max_unread_bytes"] <= window
    assert eps[n - 1].stats.bytes_sent.get(n, 0) > 0      # the last party acknowledged
    assert [e.stats.rounds for e in eps[:n]] == [1] + [0] * (n - 1)   # acks start no round
    _, unbounded, _ = run(0)                              # the default 256 MiB window
    assert unbounded["max_unread_bytes"] == 40 * 16000
    runs = [run(1, window_bytes=window) for _ in range(2)]          # one 160 kB message
    res, stats, eps = runs[0]
    a, b, c = (sum(r[40][k] for r in res) for k in range(3))
    assert np.array_equal(c, a * b)
    assert stats["max_unread_bytes"] <= window // 4 + 160000
    assert [e.stats.transcript for e in eps] == [e.stats.transcript for e in runs[1][2]]
