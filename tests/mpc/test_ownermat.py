"""ppboost.mpc.ownermat: products with an owner-private matrix, against numpy."""
import numpy as np
import pytest

from ppboost.mpc import ring
from ppboost.mpc.ownermat import OwnerMatrix
from ppboost.mpc.simulate import run_parties

from .helpers import _bits

PARTIES = [2, 3]


def _run(n, A, Es, owner, keep_opened=False):
    """Set A up once (owned by ``owner``), multiply it with every E in turn
    (each shared by the last party); returns the opened products and the
    per-party (bytes sent to the other data parties, rounds) of the setup and
    of each product (party 0 also sends the dealer requests, which are not
    counted here)."""
    def f(p):
        es = [p.share(E if p.id == n - 1 else None, owner=n - 1, shape=E.shape) for E in Es]

        def snap():
            st = p.ep.stats
            return sum(v for to, v in st.bytes_sent.items() if to < n), st.rounds

        s0 = snap()
        om = OwnerMatrix(p, A if p.id == owner else None, owner, shape=A.shape)
        s1 = snap()
        outs, costs = [], []
        for e in es:
            b = snap()
            outs.append(om.matmul(e))
            a = snap()
            costs.append((a[0] - b[0], a[1] - b[1]))
        opened = list(p.opened) if p.opened is not None else None
        return [p.reveal(y) for y in outs], (s1[0] - s0[0], s1[1] - s0[1]), costs, opened
    return run_parties(n, f, keep_opened=keep_opened)


@pytest.mark.parametrize("n", PARTIES)
@pytest.mark.parametrize("owner_is", ["first", "last"])
def test_products_equal_numpy(n, owner_is):
    rng = np.random.default_rng(n)
    rows, k = 300, 17
    A = rng.integers(-5, 300, (rows, k)).astype(np.int64)
    Es = [rng.integers(0, 2 ** 64, (k, c), dtype=np.uint64) for c in (1, 4, 3)]
    owner = 0 if owner_is == "first" else n - 1
    res, stats, _ = _run(n, A, Es, owner)
    Au = A.view(np.uint64)
    for got, E in zip(res[0][0], Es):
        assert np.array_equal(got, ring.matmul(Au, E))
    assert stats["by_kind"] == {"zero": 3, "omat_setup": 1, "omat_mul": 3}
    for pid, r in enumerate(res):
        setup, costs = r[1], r[2]
        if pid == owner:       # setup: A - S_q to each other party, once
            assert (n - 1) * rows * k * 8 <= setup[0] < (n - 1) * (rows * k * 8 + 64)
            assert setup[1] <= 1 and all(c[0] == 0 for c in costs)
        else:                  # each product: E_q - R_q (k x c) to the owner, 1 round
            assert setup[0] == 0
            for (sent, rounds), E in zip(costs, Es):
                assert E.size * 8 <= sent < E.size * 8 + 64
                assert rounds == 1 or pid == 0   # party 0's dealer request opens its round


@pytest.mark.statistical
@pytest.mark.parametrize("n", PARTIES)
def test_transcript_shape_and_opened_values_do_not_depend_on_data(n):
    """Two different (A, E) of the same shape: same bytes and rounds per party;
    everything opened (A - S_q to the non-owners, E_q - R_q to the owner) is
    uniform even when A and E are all zero."""
    rows, k, c = 400, 40, 2
    zeros = _run(n, np.zeros((rows, k), np.int64), [np.zeros((k, c), np.uint64)] * 2, 0,
                 keep_opened=True)[0]
    rng = np.random.default_rng(7)
    other = _run(n, rng.integers(0, 257, (rows, k)), [rng.integers(0, 2 ** 64, (k, c),
                                                                   dtype=np.uint64)] * 2, 0)[0]
    for a, b in zip(zeros, other):
        assert a[1] == b[1] and a[2] == b[2]
    assert np.array_equal(zeros[0][0][0], np.zeros((rows, c), np.uint64))
    for pid, r in enumerate(zeros):
        opened = r[3]
        assert len(opened) == (2 * (n - 1) if pid == 0 else 1)
        words = np.concatenate([o.ravel() for o in opened])
        # within 5 standard deviations of 1/2 (64 bits per word)
        assert abs(_bits(words).mean() - 0.5) < 5 * 0.5 / np.sqrt(64 * words.size)
        # every one of the 64 bit positions is about half ones (no structure
        # left by A = 0): within 5 standard deviations of 1/2
        per_pos = np.unpackbits(words.view(np.uint8).reshape(-1, 8), axis=1,
                                bitorder="little").mean(axis=0)
        assert per_pos.shape == (64,)
        assert np.all(np.abs(per_pos - 0.5) < 5 * 0.5 / np.sqrt(words.size))


def test_bad_input():
    def f(p):
        A = np.arange(6).reshape(3, 2)
        if p.id == 0:
            with pytest.raises(ValueError, match="is the owner: pass the matrix A"):
                OwnerMatrix(p, None, 0, shape=(3, 2))
            with pytest.raises(ValueError, match=r"must be 2-D \(n, k\)"):
                OwnerMatrix(p, np.arange(3), 0)
        else:
            with pytest.raises(ValueError, match="is not the owner"):
                OwnerMatrix(p, A, 0)
            with pytest.raises(ValueError, match=r"pass shape=\(n, k\)"):
                OwnerMatrix(p, None, 0)
        with pytest.raises(ValueError, match="owner == 2, must be a party id in 0..1"):
            OwnerMatrix(p, None, 2, shape=(3, 2))
        om = OwnerMatrix(p, A if p.id == 0 else None, 0, shape=(3, 2))
        with pytest.raises(ValueError, match=r"E has shape \(3, 1\), must be \(2, cols\)"):
            om.matmul(p.zeros((3, 1)))
        return p.reveal(om.matmul(p.public(np.ones((2, 1), np.uint64))))

    res = run_parties(2, f)[0]
    assert np.array_equal(res[0], np.array([[1], [5], [9]], np.uint64))
