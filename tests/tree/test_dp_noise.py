"""Distributed noise made in MPC (ppboost.mpc.noise + ppboost.dp.noise_part).

* the total and the sum of any P - 1 parties' parts have the right distribution
  (Kolmogorov-Smirnov on many draws made in MPC, 2 and 3 parties, seeded);
* no single participant can compute the total: a party's view is its own part,
  shares that look uniform and are independent of the total, and no opened value;
  the dealer sees requests only, the same whatever the noise.
"""
import math

import numpy as np
import pytest
from scipy import stats

from ppboost.crypto import fixed
from ppboost.crypto.prg import PRG
from ppboost.dp import DPError, noise_part, uniforms
from ppboost.mpc.arith import reveal
from ppboost.mpc.noise import joint_noise
from ppboost.mpc.shares import AShare
from ppboost.mpc.simulate import run_parties

N = 3000
BITS = 24
SCALE = 2.5


def _draws(P, kind, seeds, n=N, keep_opened=False):
    """Run joint_noise on P parties with party seeds ``seeds``; returns (parts, shares, total)."""
    def fn(party):
        party.prg = PRG(seeds[party.id])            # seeded private stream, for reproducibility
        mine = {}

        def sample(rng, shape):
            mine["part"] = noise_part(rng, kind, SCALE, party.n_parties, shape)
            return mine["part"]

        sh = joint_noise(party, sample, (n,), BITS)
        opened = list(party.opened or [])           # what joint_noise opened (before the test's reveal)
        total = reveal(AShare(party, sh))
        return mine["part"], sh, fixed.decode(total, BITS), opened

    # the dealer's seeds too, so that every share (not only every part) is reproducible
    res, dealer, eps = run_parties(P, fn, keep_opened=keep_opened,
                                   dealer_seeds=[bytes([200 + p]) * 16 for p in range(P)])
    parts = np.stack([r[0] for r in res])
    shares = np.stack([r[1] for r in res])
    return parts, shares, res[0][2], [r[3] for r in res], dealer, eps


def _seeds(P, base):
    return [bytes([base + p]) * 16 for p in range(P)]


def _check_parts(P, kind, seed_base, rest_dist, total_dist=None):
    """``kind`` noise made in MPC by P parties: the opened total is the sum of every
    party's part (to the fixed-point rounding), follows ``total_dist`` (if given), and
    the sum without any one party's part follows ``rest_dist`` (KS p-value > 1e-3)."""
    parts, _, total, _, _, _ = _draws(P, kind, _seeds(P, seed_base))
    assert np.abs(total - parts.sum(axis=0)).max() < P * 2.0 ** -BITS
    if total_dist is not None:
        assert stats.kstest(total, total_dist.cdf).pvalue > 1e-3
    for p in range(P):
        rest = parts.sum(axis=0) - parts[p]
        assert stats.kstest(rest, rest_dist.cdf).pvalue > 1e-3


@pytest.mark.parametrize("P", [2, 3])
def test_exponential_parts_any_p_minus_1_give_exp_and_total_gamma(P):
    # total over P parties: Gamma(P / (P - 1), scale); any P - 1 parts: exactly Exp(scale)
    _check_parts(P, "exponential", 1, stats.expon(scale=SCALE),
                 total_dist=stats.gamma(P / (P - 1), scale=SCALE))


@pytest.mark.parametrize("P", [2, 3])
def test_gaussian_parts_any_p_minus_1_give_the_required_normal(P):
    _check_parts(P, "gaussian", 11, stats.norm(scale=SCALE),
                 total_dist=stats.norm(scale=SCALE * math.sqrt(P / (P - 1))))


@pytest.mark.parametrize("P", [2, 3])
def test_laplace_parts_any_p_minus_1_give_the_required_laplace(P):
    _check_parts(P, "laplace", 21, stats.laplace(scale=SCALE))


@pytest.mark.statistical
@pytest.mark.parametrize("P", [2, 3])
def test_gumbel_parts_are_whole_gumbels(P):
    """Split noise: every party draws a whole Gumbel(scale); the total is the sum of P
    (two-sample KS against numpy's Gumbel sums), any P - 1 parts the sum of P - 1."""
    parts, _, total, _, _, _ = _draws(P, "gumbel", _seeds(P, 71))
    assert np.abs(total - parts.sum(axis=0)).max() < P * 2.0 ** -BITS
    ref = np.random.default_rng(0).gumbel(0, SCALE, size=(P, 20000))
    for p in range(P):
        assert stats.kstest(parts[p], stats.gumbel_r(scale=SCALE).cdf).pvalue > 1e-3
        rest = parts.sum(axis=0) - parts[p]
        assert stats.ks_2samp(rest, ref[:P - 1].sum(axis=0)).pvalue > 1e-3
    assert stats.ks_2samp(total, ref.sum(axis=0)).pvalue > 1e-3


@pytest.mark.statistical
def test_a_party_view_is_its_part_and_uniform_shares_only():
    """Party 0's view: its own part, its shares, dealer messages; nothing opened.  Its
    shares look uniform and are uncorrelated with the total; with its own seed (so its
    own part) fixed, the total still changes with the other parties' seeds."""
    P = 3
    runs = []
    for other in (31, 41):
        seeds = [bytes([7]) * 16] + [bytes([other + p]) * 16 for p in range(1, P)]
        runs.append(_draws(P, "gaussian", seeds, keep_opened=True))
    (parts_a, sh_a, tot_a, opened_a, _, eps_a), (parts_b, sh_b, tot_b, _, _, _) = runs
    assert all(o == [] for o in opened_a)                        # nothing is opened
    assert np.array_equal(parts_a[0], parts_b[0])                # same own part
    assert np.abs(tot_a - tot_b).max() > 1.0                     # but another total
    # what party 0 received in joint_noise came from the dealer only (before the
    # test's own reveal): no message from another party carries anything about a part
    me = eps_a[0]
    dealer_id = me.dealer_id
    recv = [(f, n) for f, t, n in me.stats.transcript if t == 0]
    first_from_party = next(i for i, (f, _) in enumerate(recv) if f != dealer_id)
    assert all(f == dealer_id for f, _ in recv[:first_from_party])
    for p in range(P):
        u = sh_a[p].astype(np.float64) / 2.0 ** 64
        assert stats.kstest(u, "uniform").pvalue > 1e-3          # uniform-looking shares
        assert abs(np.corrcoef(u, tot_a)[0, 1]) < 0.1            # independent of the total
    # the total is not what party 0 can compute from its part and its share
    own = parts_a[0]
    assert np.corrcoef(own, tot_a)[0, 1] < 0.9


def test_the_dealer_sees_the_same_requests_whatever_the_noise():
    t = []
    for base in (51, 61):
        _, _, _, _, dealer, eps = _draws(2, "exponential", _seeds(2, base), n=200)
        d = eps[-1]
        t.append([(f, to, n) for f, to, n in d.stats.transcript])
    assert t[0] == t[1]


def test_noise_part_checks():
    rng = PRG(bytes(16))
    with pytest.raises(DPError, match="n_parties"):
        noise_part(rng, "gaussian", 1.0, 1, 4)
    with pytest.raises(DPError, match="noise kind"):
        noise_part(rng, "cauchy", 1.0, 2, 4)
    g = noise_part(rng, "gumbel", 1.0, 2, 10000)
    assert abs(g.mean() - np.euler_gamma) < 0.05
    with pytest.raises(DPError, match="scale"):
        noise_part(rng, "gaussian", -1.0, 2, 4)
    u = uniforms(np.random.default_rng(0), 1000)
    assert u.min() > 0 and u.max() < 1
    assert noise_part(np.random.default_rng(0), "exponential", 1.0, 3, (2, 3)).shape == (2, 3)


def test_clip_gradients_in_mpc():
    from ppboost.tree.secure.dp import clip_gradients
    g = np.concatenate([np.linspace(-1.0, 1.0, 41), [-0.3, 0.3, 0.29999, -0.30001]])
    enc = fixed.encode(g, 24)

    def fn(party):
        sh = enc.copy() if party.id == 0 else np.zeros_like(enc)
        out = clip_gradients(party, sh, 0.3, 24)
        return fixed.decode(reveal(AShare(party, out)), 24)

    res, _, _ = run_parties(2, fn)
    assert np.abs(res[0] - np.clip(g, -0.3, 0.3)).max() < 2.0 ** -23


def test_gaussian_releases_for_the_federated_mode():
    """The accountant entry of T noisy histogram releases: sigma = multiplier x sensitivity,
    and the spend is a fresh RDP accountant's composition of the same releases."""
    import dp_accounting as dpa
    from dp_accounting.rdp import rdp_privacy_accountant as rdp

    from ppboost.dp import DP, gaussian_release_event, gaussian_releases, spent_epsilon
    dp = DP(epsilon=1.0, delta=1e-6)
    sigma, spent = gaussian_releases(dp, 40, l2_sensitivity=3.0)
    assert 0.999 < spent <= 1.0
    acc = rdp.RdpAccountant()
    for _ in range(40):
        acc.compose(dpa.GaussianDpEvent(sigma / 3.0))
    assert acc.get_epsilon(1e-6) == pytest.approx(spent, rel=1e-9)
    assert spent_epsilon(gaussian_release_event(sigma / 3.0, 40), 1e-6) == pytest.approx(spent)
    with pytest.raises(DPError, match="inf"):
        gaussian_releases(DP(epsilon=math.inf), 4, 1.0)
