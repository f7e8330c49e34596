"""Shared test set-up.

Layout: one folder per layer (crypto, transport, mpc, tree, inference, training,
cli), each a package (``__init__.py``), so two test files may share a basename
(they import as ``tests.mpc.test_x`` and ``tests.tree.test_x``).  A helper module
next to its tests is imported relatively (``from .helpers import _bits``); no
test directory is put on ``sys.path``.

Statistical tests (``@pytest.mark.statistical``): a test that checks a
distribution (opened values look uniform, a permutation is about uniform, a
Kolmogorov-Smirnov p-value) over the MPC's randomness runs on fixed streams, so a
failure is reproducible and the test is not flaky.  For the duration of such a
test every ``os.urandom`` draw (the dealer's per-party seeds and its own stream
in ``mpc.dealer.run_dealer``, a ``Party``'s ``PRG()``, secure aggregation's
self-mask seeds) and every X25519 key generation (secure aggregation) comes from
a stream per thread: the in-process transport runs each participant in a
thread named after it ("party 0", "dealer"), so party 0 draws the same bytes in
every run whatever the thread schedule.  ``pytest --fresh-randomness`` runs them
on the operating system's randomness instead, to exercise the statistical claim
itself (``pytest -m statistical --fresh-randomness``, repeated).
"""
from __future__ import annotations

import pytest

from .seeding import seed_randomness


def pytest_addoption(parser):
    parser.addoption("--fresh-randomness", action="store_true", default=False,
                     help="run the tests marked 'statistical' on os.urandom instead of "
                          "fixed per-participant streams")


@pytest.fixture
def seeded_randomness(monkeypatch):
    """The fixed streams of :func:`tests.seeding.seed_randomness` for one test."""
    seed_randomness(monkeypatch)


@pytest.fixture(autouse=True)
def _seed_statistical_tests(request):
    if (request.node.get_closest_marker("statistical") is not None
            and not request.config.getoption("--fresh-randomness")):
        request.getfixturevalue("seeded_randomness")
