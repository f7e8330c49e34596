"""MPC core benchmark: online / offline time, bytes and rounds next to plain numpy.

Usage: python benchmarks/bench_mpc.py [--n 1000000] [--parties 2] [--reps 3] [--only NAME]

Prints one JSON document.  Each benchmark runs the protocol between
in-process parties (threads) with the dealer as its own thread, after a
warm-up that compiles the numba kernels.  Correlated randomness is
prefetched first (offline phase, timed separately: dealer generation and
party-side PRG expansion), then the protocol itself is timed (online phase:
from a barrier on all parties to the last party's finish).  The plain numpy
operation on the same data is timed in the same run.

Other modules add benchmarks by appending a function to ``BENCHMARKS``:
``fn(n_elements, n_parties, reps) -> dict`` (use :func:`run_timed`,
:func:`best_of` and :func:`_compare`).  Reported: online wall time (barrier to
last finish), online CPU time of each party thread (``time.thread_time``:
robust to other jobs on a shared machine), offline dealer and party-expand
time, bytes and rounds, and the numpy baseline in wall and CPU time.
This is not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ppboost.mpc.arith import mul_fixed  # noqa: E402
from ppboost.mpc.b2a import b2a  # noqa: E402
from ppboost.mpc.permutation import permute  # noqa: E402
from ppboost.mpc.truncation import truncate  # noqa: E402
from ppboost.mpc.simulate import run_parties  # noqa: E402


def best_of(fn, reps: int, clock=time.perf_counter) -> float:
    """Smallest time of ``reps`` calls of ``fn()`` on ``clock`` (wall by default;
    ``time.thread_time`` gives CPU time, less sensitive to a loaded machine)."""
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def _compare(out: dict, numpy_fn, reps: int, n: int) -> dict:
    """Add the numpy baseline (wall and CPU) and the slowdown ratios to ``out``."""
    t_np = best_of(numpy_fn, max(reps, 5))
    c_np = best_of(numpy_fn, max(reps, 5), time.thread_time)
    out.update(numpy_seconds=t_np, numpy_cpu_seconds=c_np, elements=n,
               elements_per_second=n / out["online_seconds"],
               slowdown_vs_numpy=out["online_seconds"] / t_np,
               cpu_slowdown_vs_numpy=max(out["online_cpu_seconds_per_party"]) / max(c_np, 1e-9))
    return out


def run_timed(n_parties: int, setup, online, timeout: float = 300.0) -> dict:
    """Run ``state = setup(party)`` (inputs + prefetch: offline), then ``online(party, state)``
    timed from a common barrier; return timings, bytes and rounds of the online phase."""
    barrier = threading.Barrier(n_parties)

    def f(p):
        t0 = time.perf_counter()
        state = setup(p)
        t_setup = time.perf_counter() - t0
        before = p.ep.stats.snapshot()
        barrier.wait()
        t1 = time.perf_counter()
        c1 = time.thread_time()
        online(p, state)
        c2 = time.thread_time()
        t2 = time.perf_counter()
        after = p.ep.stats.snapshot()
        return {"start": t1, "end": t2, "cpu": c2 - c1, "setup": t_setup, "expand": p.dealer.expand_seconds,
                "sent": after["sent"] - before["sent"], "rounds": after["rounds"] - before["rounds"]}

    res, dealer, _ = run_parties(n_parties, f, timeout=timeout)
    return {
        "online_seconds": max(r["end"] for r in res) - min(r["start"] for r in res),
        "online_cpu_seconds_per_party": [r["cpu"] for r in res],
        "offline_dealer_seconds": dealer["offline_seconds"],
        "offline_party_expand_seconds": max(r["expand"] for r in res),
        "online_bytes_sent_per_party": [r["sent"] for r in res],
        "online_rounds": max(r["rounds"] for r in res),
        "offline_bytes_from_dealer": dealer["bytes_sent"],
    }


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


#: Benchmarks run by ``main``; colleagues append theirs (same signature).
BENCHMARKS = [bench_beaver_mul, bench_owner_permutation, bench_truncation, bench_mul_fixed,
              bench_b2a]


def machine() -> dict:
    import numba
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "load_average_1_5_15min": list(os.getloadavg()),
            "note": "shared machine (other engineers' jobs run concurrently): timings are noisy"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="elements per benchmark")
    ap.add_argument("--parties", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5, help="repetitions (best online time kept)")
    ap.add_argument("--only", default=None, help="run only benchmarks whose name contains this")
    args = ap.parse_args(argv)
    # warm-up: compile / load cached numba kernels outside the timed runs
    for fn in BENCHMARKS:
        if args.only is None or args.only in fn.__name__:
            fn(1000, args.parties, 1)
    results = [fn(args.n, args.parties, args.reps) for fn in BENCHMARKS
               if args.only is None or args.only in fn.__name__]
    print(json.dumps({"machine": machine(), "n_parties": args.parties, "results": results},
                     indent=2))
    return 0


# Comparison-family benchmarks (comparison, argmax over 38,400, reciprocal, sigmoid, exp):
# defined in bench_mpc_nonlinear.py (which reuses run_timed from here), appended when run
# as a script.  Added by the comparison-protocols engineer.
if __name__ == "__main__":
    import bench_mpc_nonlinear
    BENCHMARKS.extend(bench_mpc_nonlinear.BENCHMARKS)

if __name__ == "__main__":
    raise SystemExit(main())
