"""MPC core benchmark: online / offline time, bytes and rounds next to plain numpy.

Usage: python benchmarks/bench_mpc.py [--n 1000000] [--parties 2] [--reps 3] [--only NAME]

Prints one JSON document.  Each benchmark runs the protocol between
in-process parties (threads) with the dealer as its own thread, after a
warm-up that compiles the numba kernels.  Correlated randomness is
prefetched first (offline phase, timed separately: dealer generation and
party-side PRG expansion), then the protocol itself is timed (online phase:
from a barrier on all parties to the last party's finish).  The plain numpy
operation on the same data is timed in the same run.

Each benchmark is a function ``fn(n_elements, n_parties, reps) -> dict`` in
``BENCHMARKS``.  Reported: online wall time (barrier to last finish), online CPU
time of each party thread (``time.thread_time``: robust to other jobs on a
shared machine), offline dealer and party-expand time, bytes and rounds, and
the numpy baseline in wall and CPU time.  The comparison family (ltz, argmax,
reciprocal, sigmoid, exp) is in bench_mpc_nonlinear.py.  The timing harness
(:func:`common.run_timed`, :func:`common.best_of`) is shared with it.
This is not a test.
"""
from __future__ import annotations

import argparse
import time

import common
import numpy as np
from common import best_of, run_timed

common.repo_on_path()

from ppboost.mpc.b2a import b2a  # noqa: E402
from ppboost.mpc.permutation import permute  # noqa: E402
from ppboost.mpc.truncation import mul_fixed, truncate  # noqa: E402


def _compare(out: dict, numpy_fn, reps: int, n: int) -> dict:
    """Add the numpy baseline (wall and CPU) and the slowdown ratios to ``out``."""
    t_np = best_of(numpy_fn, max(reps, 5))
    c_np = best_of(numpy_fn, max(reps, 5), time.thread_time)
    out.update(numpy_seconds=t_np, numpy_cpu_seconds=c_np, elements=n,
               elements_per_second=n / out["online_seconds"],
               slowdown_vs_numpy=out["online_seconds"] / t_np,
               cpu_slowdown_vs_numpy=max(out["online_cpu_seconds_per_party"]) / max(c_np, 1e-9))
    return out


def _best_run(n_parties, setup, online, reps):
    runs = [run_timed(n_parties, setup, online) for _ in range(reps)]
    return min(runs, key=lambda r: r["online_seconds"])


def bench_beaver_mul(n: int, n_parties: int, reps: int) -> dict:
    """Elementwise Beaver product x * y on n ring elements vs numpy uint64 x * y."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2 ** 64, n, dtype=np.uint64)
    Y = rng.integers(0, 2 ** 64, n, dtype=np.uint64)

    def setup(p):
        x = p.share(X if p.id == 0 else None, owner=0, shape=(n,))
        y = p.share(Y if p.id == 1 else None, owner=1, shape=(n,))
        p.dealer.prefetch("beaver", shape=(n,))
        return x, y

    def online(p, state):
        x, y = state
        p._out = x * y

    out = _compare(_best_run(n_parties, setup, online, reps), lambda: X * Y, reps, n)
    return {"name": "beaver_mul", **out}


def bench_owner_permutation(n: int, n_parties: int, reps: int) -> dict:
    """Owner-known permutation of n shared elements vs numpy gather X[sigma]."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2 ** 64, n, dtype=np.uint64)
    sigma = rng.permutation(n)

    def setup(p):
        x = p.share(X if p.id == 1 else None, owner=1, shape=(n,))
        p.dealer.prefetch("perm", shape=(n,), owner=0, count=1)
        return x

    def online(p, x):
        p._out = permute(x, sigma if p.id == 0 else None, 0)

    out = _compare(_best_run(n_parties, setup, online, reps), lambda: X[sigma], reps, n)
    return {"name": "owner_permutation", **out}


def bench_truncation(n: int, n_parties: int, reps: int) -> dict:
    """Fixed-point truncation by 16 bits of n shared values vs numpy's arithmetic shift."""
    rng = np.random.default_rng(2)
    X = rng.integers(-2 ** 62, 2 ** 62, n, dtype=np.int64)

    def setup(p):
        x = p.share(X if p.id == 0 else None, owner=0, shape=(n,))
        p.dealer.prefetch("trunc", shape=(n,), f=16)
        return x

    def online(p, x):
        p._out = truncate(x, 16)

    out = _compare(_best_run(n_parties, setup, online, reps), lambda: X >> 16, reps, n)
    return {"name": "truncation", **out}


def bench_mul_fixed(n: int, n_parties: int, reps: int) -> dict:
    """Fixed-point product (Beaver + truncation) vs numpy float64 multiply."""
    rng = np.random.default_rng(3)
    X, Y = rng.uniform(-100, 100, n), rng.uniform(-100, 100, n)

    def setup(p):
        x = p.share_float(X if p.id == 0 else None, owner=0, shape=(n,))
        y = p.share_float(Y if p.id == 1 else None, owner=1, shape=(n,))
        p.dealer.prefetch_many([("beaver", {"shape": (n,)}), ("trunc", {"shape": (n,), "f": 16})])
        return x, y

    def online(p, state):
        p._out = mul_fixed(*state)

    out = _compare(_best_run(n_parties, setup, online, reps), lambda: X * Y, reps, n)
    return {"name": "mul_fixed", **out}


def bench_b2a(n: int, n_parties: int, reps: int) -> dict:
    """Bit-to-arithmetic conversion of n XOR-shared bits vs numpy's uint8 -> uint64 cast."""
    rng = np.random.default_rng(4)
    B = rng.integers(0, 2, n, dtype=np.uint8)

    def setup(p):
        p.dealer.prefetch("dabit", shape=(n,))
        return B if p.id == 0 else np.zeros(n, np.uint8)

    def online(p, bits):
        p._out = b2a(p, bits)

    out = _compare(_best_run(n_parties, setup, online, reps), lambda: B.astype(np.uint64), reps, n)
    return {"name": "b2a", **out}


#: Benchmarks run by ``main``.
BENCHMARKS = [bench_beaver_mul, bench_owner_permutation, bench_truncation, bench_mul_fixed,
              bench_b2a]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="elements per benchmark")
    ap.add_argument("--parties", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="repetitions (best online time kept)")
    ap.add_argument("--only", default=None, help="run only benchmarks whose name contains this")
    args = ap.parse_args(argv)
    bench_run = common.Run()
    # warm-up: compile / load cached numba kernels outside the timed runs
    for fn in BENCHMARKS:
        if args.only is None or args.only in fn.__name__:
            fn(1000, args.parties, 1)
    results = [fn(args.n, args.parties, args.reps) for fn in BENCHMARKS
               if args.only is None or args.only in fn.__name__]
    common.emit({"n_parties": args.parties, "results": results}, bench_run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
