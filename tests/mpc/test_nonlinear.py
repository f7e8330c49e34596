"""Reciprocal / division / sigmoid / exp on shared fixed-point values (f = 16 fractional bits).

Tolerances (ulp = 2**-16), all derived in ppboost/mpc/nonlinear.py and compared against
the function evaluated at the *encoded* input (input quantisation is not the protocol's error):
* reciprocal: 1 ulp (final truncation) + 2**-(F-2) / x (the normalised value carries F = 28
  bits; its 1-ulp truncation is a relative error 2**-(F-1), doubled for the Newton steps).
* sigmoid / exp: 1 ulp (final truncation) + the polynomial fit's error (asserted below in
  plaintext, < 1e-6 / 2e-6) + 1e-7 for the F-bit Horner truncations.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppboost.crypto import fixed
from ppboost.mpc import nonlinear
from ppboost.mpc.nonlinear import INTERNAL_BITS, divide, exp_neg, reciprocal, sigmoid
from ppboost.mpc.simulate import run_parties

from .helpers import _bits

ULP = 2.0 ** -16


def _q(x):
    return fixed.decode(fixed.encode(x))


def _share_run(n_parties, fn, *arrays, **kw):
    def main(P):
        shares = [P.share(fixed.encode(a) if P.id == 0 else None, owner=0, shape=np.shape(a))
                  for a in arrays]
        return fn(P, *shares)
    return run_parties(n_parties, main, timeout=60, **kw)


def _poly_eval(coefs, fn):
    worst = 0.0
    for (a, b), row in zip(nonlinear._OCTAVES, coefs):
        u = np.linspace(-1, 1, 20001)
        t = (a + b) / 2 + (b - a) / 2 * u
        worst = max(worst, float(np.max(np.abs(np.polynomial.polynomial.polyval(u, row) - fn(t)))))
    return worst


@pytest.mark.nojit
def test_polynomial_fits_are_accurate_in_plaintext():
    assert _poly_eval(nonlinear._SIG_COEFS, lambda t: 1 / (1 + np.exp(-t))) < 1e-6
    assert _poly_eval(nonlinear._EXPNEG_COEFS, lambda t: np.exp(-t)) < 2e-6
    # saturation: the true values beyond 16 are within 1.2e-7 of the saturated constants
    assert 1 - 1 / (1 + math.exp(-16)) < 1.2e-7 and math.exp(-16) < 1.2e-7
    # Horner partial sums stay small so products fit the declared truncation bound
    for coefs in (nonlinear._SIG_COEFS, nonlinear._EXPNEG_COEFS):
        assert np.abs(coefs).sum(axis=1).max() < 4


@pytest.mark.parametrize("n_parties", [2, 3])
@pytest.mark.parametrize("lo,hi", [(0.01, 1000.0), (2.0 ** -16, 2.0 ** 14), (1.0, 1.0)])
def test_reciprocal_matches_numpy(n_parties, lo, hi):
    rng = np.random.default_rng(n_parties)
    x = np.exp(rng.uniform(np.log(lo), np.log(hi), 400))
    x[:2] = [lo, hi]
    x = _q(x)
    res, _, _ = _share_run(n_parties, lambda P, a: P.reveal_float(reciprocal(a, lo, hi)), x)
    err = np.abs(res[0] - 1 / x)
    tol = ULP + 2.0 ** -(INTERNAL_BITS - 2) / x
    assert np.all(err <= tol), f"max error {err.max():.3g}, worst ratio {(err / tol).max():.3g}"


@pytest.mark.parametrize("n_parties", [2, 3])
def test_reciprocal_out_bits_keeps_the_significant_bits(n_parties):
    """out_bits > f: 1/x of a large x (here x up to 25,000 at f = 20, out_bits = 43) keeps a
    relative error of at most 2**-(F-2) + 2**-out_bits / (1/x) (the same budget as above)."""
    f, fo = 20, 43
    rng = np.random.default_rng(5 + n_parties)
    x = np.concatenate([[2.0, 25001.0, 1024.0, 1025.0], rng.integers(2, 25001, 500) + 0.5])

    def main(P):
        P.frac_bits = f
        a = P.share(fixed.encode(x, f) if P.id == 0 else None, owner=0, shape=x.shape)
        r = reciprocal(a, 2.0, 25001.0, out_bits=fo)
        return P.reveal(r)

    res, _, _ = run_parties(n_parties, main, timeout=60)
    got = fixed.decode(res[0], fo)
    rel = np.abs(got * x - 1)
    bound = 2.0 ** -(INTERNAL_BITS - 2) + 2.0 ** -fo * x
    assert np.all(rel <= bound), f"worst ratio {(rel / bound).max():.3g}"
    assert rel.max() < 2.0 ** -24


def test_reciprocal_rejects_bad_out_bits():
    def main(P):
        a = P.share(fixed.encode(np.ones(2)) if P.id == 0 else None, owner=0, shape=(2,))
        with pytest.raises(ValueError, match="out_bits == 70"):
            reciprocal(a, 0.5, 4.0, out_bits=70)
        return True

    res, _, _ = run_parties(2, main, timeout=60)
    assert all(res)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vals=st.lists(st.floats(0.5, 3000.0), min_size=1, max_size=30),
       n_parties=st.sampled_from([2, 3]))
def test_divide_hypothesis(vals, n_parties):
    b = _q(np.array(vals))
    a = _q(np.array(vals[::-1]) * 3.0 - 10.0)
    res, _, _ = _share_run(n_parties, lambda P, x, y: P.reveal_float(divide(x, y, 0.5, 3000.0, 1e5)), a, b)
    # reciprocal error times |a| plus the product's 1-ulp truncation
    tol = 2 * ULP + np.abs(a) * (ULP + 2.0 ** -(INTERNAL_BITS - 2) / b)
    assert np.all(np.abs(res[0] - a / b) <= tol)


@pytest.mark.parametrize("n_parties", [2, 3])
def test_sigmoid_and_exp_match_numpy(n_parties):
    rng = np.random.default_rng(7 + n_parties)
    xs = _q(np.concatenate([[0.0, 1.0, -1.0, 16.0, -16.0, 15.99, 1e4, -1e4],
                            rng.uniform(-20, 20, 600), rng.uniform(-2, 2, 200)]))
    xe = _q(-np.concatenate([[0.0, 1.0, 16.0, 100.0], rng.uniform(0, 20, 600)]))
    res, _, _ = _share_run(n_parties, lambda P, a, b: (P.reveal_float(sigmoid(a)),
                                                      P.reveal_float(exp_neg(b))), xs, xe)
    s, e = res[0]
    ref = 0.5 * (1 + np.tanh(xs / 2))          # sigmoid without overflow
    assert np.max(np.abs(s - ref)) <= ULP + 1e-6 + 1e-7
    assert np.max(np.abs(e - np.exp(xe))) <= ULP + 2e-6 + 1e-7
    # proper saturation: exactly 1 / 0 far out
    assert s[6] == 1.0 and s[7] == 0.0 and e[3] == 0.0


def test_sigmoid_and_exp_with_declared_bound():
    """bound_bits = 32 (|x| < 32768 at f = 16): same accuracy, cheaper comparisons."""
    rng = np.random.default_rng(5)
    xs = _q(np.concatenate([[0.0, 16.0, -16.0, 32767.0, -32767.0], rng.uniform(-40, 40, 300)]))
    res, _, _ = _share_run(2, lambda P, a, b: (P.reveal_float(sigmoid(a, bound_bits=32)),
                                               P.reveal_float(exp_neg(b, bound_bits=32))),
                           xs, -np.abs(xs))
    s, e = res[0]
    assert np.max(np.abs(s - 0.5 * (1 + np.tanh(xs / 2)))) <= ULP + 1e-6 + 1e-7
    assert np.max(np.abs(e - np.exp(-np.abs(xs)))) <= ULP + 2e-6 + 1e-7


def test_nonlinear_transcripts_identical_for_different_inputs():
    rng = np.random.default_rng(3)
    runs = []
    for x in (np.full(100, 1.0), rng.uniform(0.01, 100.0, 100)):
        _, _, eps = _share_run(2, lambda P, a: (reciprocal(a, 0.01, 100.0), sigmoid(a), exp_neg(-a)), x)
        runs.append([(e.stats.transcript, e.stats.rounds) for e in eps])
    assert runs[0] == runs[1]


@pytest.mark.statistical
def test_nonlinear_opened_values_uniform():
    """Sigmoid/exp on all-zero inputs and reciprocal on all-one inputs: the bits of
    every opened array look uniform (6 sigma per array of >= 4096 bits, and overall)."""
    n = 512
    res, _, _ = _share_run(2, lambda P, a, b: (sigmoid(a), exp_neg(a), reciprocal(b, 0.01, 100.0),
                                               list(P.opened))[3],
                           np.zeros(n), np.ones(n), keep_opened=True)
    opened = res[0]              # share() opens nothing; these are all the protocols' openings
    assert len(opened) > 50
    allbits = []
    for arr in opened:
        bits = _bits(arr)
        allbits.append(bits)
        if bits.size >= 4096:
            assert abs(bits.mean() - 0.5) < 6 * np.sqrt(0.25 / bits.size)
    bits = np.concatenate(allbits)
    assert abs(bits.mean() - 0.5) < 6 * np.sqrt(0.25 / bits.size)


def test_nonlinear_bad_input():
    def fn(P):
        a = P.zeros(4)
        with pytest.raises(ValueError, match="0 < lo <= hi"):
            reciprocal(a, 0.0, 1.0)
        with pytest.raises(ValueError, match="0 < lo <= hi"):
            reciprocal(a, 2.0, 1.0)
        with pytest.raises(ValueError, match="must be >= 2\\*\\*-frac_bits"):
            reciprocal(a, 1e-9, 1.0)
        with pytest.raises(ValueError, match="too wide"):
            reciprocal(a, 2.0 ** -16, 2.0 ** 40)
        with pytest.raises(ValueError, match="iterations == 0"):
            reciprocal(a, 1.0, 2.0, iterations=0)
        with pytest.raises(ValueError, match="shapes"):
            divide(a, P.zeros(5), 1.0, 2.0, 10.0)
        with pytest.raises(TypeError, match="AShare"):
            sigmoid(np.zeros(4, np.uint64))
        with pytest.raises(ValueError, match="bound_bits == 20, must be an int in 22..64"):
            sigmoid(a, bound_bits=20)
        with pytest.raises(ValueError, match="bound_bits == 65"):
            exp_neg(a, bound_bits=65)
        with pytest.raises(ValueError, match="softmax: x.shape == \\(2, 2, 2\\)"):
            nonlinear.softmax(P.zeros((2, 2, 2)))
        return True

    assert run_parties(2, fn)[0] == [True, True]


@pytest.mark.parametrize("n_parties", [2, 3])
def test_softmax_matches_numpy(n_parties):
    from ppboost.mpc.nonlinear import softmax
    rng = np.random.default_rng(21)
    x = _q(rng.uniform(-30, 30, size=(20, 5)))
    x[0] = 0.0
    x[1] = [100.0, -100.0, 3.0, 3.0, 99.0]
    res, _, _ = _share_run(n_parties, lambda P, a: (P.reveal_float(softmax(a)),
                                                   P.reveal_float(softmax(a[0]))), x)
    p, p0 = res[0]
    z = np.exp(x - x.max(axis=1, keepdims=True))
    ref = z / z.sum(axis=1, keepdims=True)
    assert np.max(np.abs(p - ref)) <= 3 * ULP + 2e-6
    assert np.max(np.abs(p0 - ref[0])) <= 3 * ULP + 2e-6     # the vector form (c,)


@pytest.mark.nojit
def test_select_kernel_small():
    """Public constants picked by one-hot rows (wrapping uint64 arithmetic)."""
    consts = np.array([[1, 2, 2**63], [5, 6, 7]], np.uint64)
    ind = np.array([[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]], np.uint64)
    out = np.empty((2, 4), np.uint64)
    with np.errstate(over="ignore"):
        nonlinear._select_kernel(consts, ind, out)
    np.testing.assert_array_equal(out, np.array([[1, 2, 2**63, 2], [5, 6, 7, 6]], np.uint64))
