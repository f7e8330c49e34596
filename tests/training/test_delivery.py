"""Model delivery (runner.deliver): the shares of the finished model reach the analyst only.

An in-process run of the per-participant runner (the code every site runs),
three hospitals and the dealer, with the analyst one of the hospitals (not
the first) or a participant of its own.  Each endpoint's transcript lists
every message it sent or received, in order; what follows the training phase
is the delivery.  There, each party other than the analyst sends exactly one
message, to the analyst, and no participant but the analyst receives
anything.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from ppboost import HorizontalSplit
from ppboost.training.job import Job
from ppboost.training.runner import run_analyst, run_dealer, run_party
from ppboost.training.site import site_from_view
from ppboost.transport.inprocess import run_inprocess

NAMES = ["h1", "h2", "h3"]


def _split(seed=0):
    rng = np.random.default_rng(seed)
    parts = {}
    for n in NAMES:
        X = rng.integers(0, 5, (40, 3)).astype(np.float32)
        parts[n] = (X, (X[:, 0] + rng.normal(size=40) > 2).astype(np.float32))
    return HorizontalSplit(parts)


def _run(analyst: str):
    data = _split()
    own = analyst not in NAMES
    everyone = NAMES + ["dealer"] + (["analyst"] if own else [])
    job = Job(params={"objective": "binary:logistic", "max_depth": 2, "max_bin": 8},
              num_boost_round=2, split="horizontal", analyst=analyst, timeout=60.0)
    sites = [site_from_view(data.party(n)) for n in NAMES]
    fns = [functools.partial(lambda s, ep: run_party(job, ep, s, names=everyone), s) for s in sites]
    out = run_inprocess(len(NAMES), fns, lambda ep: run_dealer(job, ep, names=everyone),
                        timeout=60.0, names=everyone,
                        analyst_fn=(lambda ep: run_analyst(job, ep, names=everyone)) if own else None)
    results, _, eps = out[:3]
    return everyone, results, eps, (out[3] if own else None)


def _after_training(ep, result) -> list:
    """The endpoint's transcript entries after its training phase (setup, training, rest)."""
    full = ep.stats.transcript
    setup, train = result["stats"]["setup_messages"]["transcript"], result["stats"]["transcript"]
    assert full[:len(setup)] == setup and full[len(setup):len(setup) + len(train)] == train
    assert train, "no training messages"
    return full[len(setup) + len(train):]


@pytest.mark.parametrize("analyst", ["h2", "analyst"])
def test_only_the_analyst_receives_the_model_shares(analyst):
    everyone, results, eps, own_result = _run(analyst)
    a = everyone.index(analyst)
    delivered = {}
    for p, (ep, res) in enumerate(zip(eps, results)):       # the data parties
        tail = _after_training(ep, res)
        if p == a:                   # the analyst, a party: receives the others' shares only
            assert res["model"] is not None
            assert all(m[1] == a and m[0] != a for m in tail), tail
            analyst_tail = tail
            continue
        assert res["model"] is None
        # one message, to the analyst, and nothing received after training
        assert len(tail) == 1 and tail[0][:2] == (p, a), (everyone[p], tail)
        assert tail[0][2] == res["stats"]["delivery_bytes"] > 0
        delivered[p] = tail[0][2]
    want = sorted(delivered.items())
    if own_result is None:
        assert sorted((m[0], m[2]) for m in analyst_tail) == want
    else:                            # an analyst of its own: the agreement, then the delivery
        assert own_result["model"] is not None
        got = [m for m in eps[a].stats.transcript if m[1] == a]
        assert sorted((m[0], m[2]) for m in got[-len(NAMES):]) == want
        sent = [m[1] for m in eps[a].stats.transcript if m[0] == a]
        assert sorted(sent) == [q for q in range(len(everyone)) if q != a]   # its announcement
    assert (own_result or results[a])["model"].num_trees == 2
