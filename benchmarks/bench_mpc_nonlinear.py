"""Comparison-family benchmark: ltz, argmax, reciprocal, sigmoid, exp next to plain numpy.

Usage: python benchmarks/bench_mpc_nonlinear.py [--n 1000000] [--parties 2] [--reps 2] [--only NAME]

Prints one JSON document (same layout as benchmarks/bench_mpc.py; both time
with ``common.run_timed``).  Each protocol runs between in-process parties
(threads) with the dealer as its own thread.  Two figures per protocol:

* ``online_seconds``: all dealer material was prefetched first (offline
  phase; the request plan is recorded in a warm-up run on the same public
  shapes, which is legitimate because requests depend only on shapes), then
  the protocol is timed from a barrier on all parties to the last finish;
* ``with_dealer_seconds``: the same protocol with the dealer answering
  requests on demand (offline and online interleaved, the dealer thread
  competing for the same 2 cores).

The plain numpy operation on the same data is timed in the same run.  This
is not a test.  The machine is shared with other engineers' jobs, so
timings are noisy.
"""
from __future__ import annotations

import argparse
import time

import common
import numpy as np
from common import best_of, run_timed

common.repo_on_path()

from ppboost.crypto import fixed  # noqa: E402
from ppboost.mpc.argmax import argmax  # noqa: E402
from ppboost.mpc.compare import ltz  # noqa: E402
from ppboost.mpc.nonlinear import exp_neg, reciprocal, sigmoid  # noqa: E402


def _recorded_plan(n_parties, make_input, protocol):
    """Run the protocol once (on party 0's view) and record its dealer requests in order."""
    plan = []

    def setup(p):
        x = make_input(p)
        if p.id == 0:
            orig = p.dealer.get

            def rec(kind, **params):
                plan.append((kind, params))
                return orig(kind, **params)
            p.dealer.get = rec
        return x

    run_timed(n_parties, setup, protocol)
    return plan


def _measure(name, n_parties, reps, make_input, protocol, numpy_fn, elements):
    plan = _recorded_plan(n_parties, make_input, protocol)

    def setup_prefetched(p):
        x = make_input(p)
        for kind, params in plan:
            p.dealer.prefetch(kind, **params)
        return x

    runs = [run_timed(n_parties, setup_prefetched, protocol) for _ in range(reps)]
    best = min(runs, key=lambda r: r["online_seconds"])
    on_demand = min((run_timed(n_parties, make_input, protocol) for _ in range(max(1, reps - 1))),
                    key=lambda r: r["online_seconds"])
    t_np = best_of(numpy_fn, max(reps, 5))
    best.update(
        name=name, elements=elements,
        elements_per_second=elements / best["online_seconds"],
        with_dealer_seconds=on_demand["online_seconds"],
        with_dealer_elements_per_second=elements / on_demand["online_seconds"],
        numpy_seconds=t_np, slowdown_vs_numpy=best["online_seconds"] / t_np,
        dealer_requests=len(plan),
    )
    return best


def _sharer(values):
    def make_input(p):
        return p.share(values if p.id == 0 else None, owner=0, shape=values.shape)
    return make_input


def bench_comparison(n: int, n_parties: int, reps: int) -> dict:
    """[x < 0] on n fixed-point values (edaBit + bit-sliced borrow circuit + daBit) vs numpy x < 0."""
    rng = np.random.default_rng(0)
    xf = rng.normal(0, 100, n)
    X = fixed.encode(xf)

    def online(p, x):
        p._out = ltz(p, x)

    return _measure("comparison_ltz", n_parties, reps, _sharer(X), online,
                    lambda: xf < 0, n)


def bench_comparison_bound32(n: int, n_parties: int, reps: int) -> dict:
    """[x < 0] with the declared bound |x| < 2**31 ring units (a 31-bit borrow circuit)."""
    rng = np.random.default_rng(0)
    xf = rng.normal(0, 100, n)
    X = fixed.encode(xf)

    def online(p, x):
        p._out = ltz(p, x, bound_bits=32)

    return _measure("comparison_ltz_bound32", n_parties, reps, _sharer(X), online,
                    lambda: xf < 0, n)


def bench_argmax_38400(n: int, n_parties: int, reps: int, rows: int = 1) -> dict:
    """Secret one-hot argmax over 38,400 candidates (300 features x 128 bins) per row."""
    c = 38_400 if n >= 38_400 else max(2, n)
    rng = np.random.default_rng(1)
    xf = rng.normal(0, 10, (rows, c))
    X = fixed.encode(xf)

    def online(p, x):
        p._out = argmax(p, x)

    def np_fn():
        oh = np.zeros_like(xf)
        oh[np.arange(rows), xf.argmax(axis=1)] = 1
        return oh

    out = _measure(f"argmax_{rows}x{c}", n_parties, reps, _sharer(X), online, np_fn, rows * c)
    out["argmaxes_per_second"] = rows / out["online_seconds"]
    return out


def bench_argmax_8x38400(n: int, n_parties: int, reps: int) -> dict:
    return bench_argmax_38400(n, n_parties, reps, rows=8)


def bench_reciprocal(n: int, n_parties: int, reps: int) -> dict:
    """1/x for x in [0.01, 1000] (secure normalisation + 3 Newton steps) vs numpy 1/x."""
    rng = np.random.default_rng(2)
    xf = np.exp(rng.uniform(np.log(0.01), np.log(1000.0), n))
    X = fixed.encode(xf)

    def online(p, x):
        p._out = reciprocal(x, 0.01, 1000.0)

    return _measure("reciprocal", n_parties, reps, _sharer(X), online, lambda: 1.0 / xf, n)


def bench_sigmoid(n: int, n_parties: int, reps: int) -> dict:
    """sigmoid(x) for x ~ N(0, 8) (octave-wise degree-6 polynomials) vs numpy 1/(1+exp(-x))."""
    rng = np.random.default_rng(3)
    xf = rng.normal(0, 8, n)
    X = fixed.encode(xf)

    def online(p, x):
        p._out = sigmoid(x)

    return _measure("sigmoid", n_parties, reps, _sharer(X), online,
                    lambda: 1.0 / (1.0 + np.exp(-xf)), n)


def bench_exp(n: int, n_parties: int, reps: int) -> dict:
    """exp(x) for x in [-20, 0] (softmax after the max shift) vs numpy exp."""
    rng = np.random.default_rng(4)
    xf = -rng.uniform(0, 20, n)
    X = fixed.encode(xf)

    def online(p, x):
        p._out = exp_neg(x)

    return _measure("exp_nonpositive", n_parties, reps, _sharer(X), online, lambda: np.exp(xf), n)


#: Benchmarks run by ``main``: ``fn(n_elements, n_parties, reps) -> dict``.
BENCHMARKS = [bench_comparison, bench_comparison_bound32, bench_argmax_38400, bench_argmax_8x38400,
              bench_reciprocal, bench_sigmoid, bench_exp]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="elements per benchmark")
    ap.add_argument("--parties", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2, help="repetitions (best online time kept)")
    ap.add_argument("--only", default=None, help="run only benchmarks whose name contains this")
    args = ap.parse_args(argv)
    bench_run = common.Run()
    chosen = [fn for fn in BENCHMARKS if args.only is None or args.only in fn.__name__]
    for fn in chosen:                     # warm-up: load / compile the numba kernels
        fn(1000, args.parties, 1)
    t0 = time.perf_counter()
    results = [fn(args.n, args.parties, args.reps) for fn in chosen]
    common.emit({"n_parties": args.parties, "results": results,
                 "total_seconds": time.perf_counter() - t0}, bench_run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
