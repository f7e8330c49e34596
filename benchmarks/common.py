"""What every benchmark shares: the machine it ran on, CPU steal, timing and JSON output.

A benchmark script starts a :class:`Run` first and hands its document to :func:`emit` at
the end::

    run = common.Run()
    doc = {...}                      # the figures, next to plain numpy / xgboost
    common.emit(doc, run)            # adds doc["machine"] and prints the JSON

``doc["machine"]`` (see :meth:`Run.record`) holds the CPU model, core count, memory,
platform, the python / numpy / numba / xgboost / phe / gmpy2 versions, the load average
at the start and the end, and ``cpu_steal_fraction``: the share of the machine's CPU
time the hypervisor gave to other virtual machines during the run (from ``/proc/stat``).
A neighbour's steal slows every figure by about that share.

``run_all.py`` uses :func:`machine`, :class:`StealMeter` and :func:`write_json` too.
Nothing here imports numpy or ppboost at module level: the versions come from the
installed packages' metadata, so ``run_all`` stays light.
"""
from __future__ import annotations

import importlib.metadata as _md
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

SHARED_NOTE = "2-core machine shared with other engineers' jobs: wall times are noisy"
PACKAGES = ("numpy", "numba", "xgboost", "phe", "gmpy2")


# --------------------------------------------------------------------------- machine

def version(pkg: str) -> str | None:
    """The installed version of ``pkg`` (None if it is not installed)."""
    try:
        return _md.version(pkg)
    except _md.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2 ** 20, 1)
    except (OSError, ValueError):
        pass
    return None


def load_average() -> list:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """The machine and the software versions (no timing: see :class:`Run`)."""
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "memory_GiB": memory_gib(),
            "platform": platform.platform(), "python": platform.python_version(),
            **{pkg: version(pkg) for pkg in PACKAGES}}


# --------------------------------------------------------------------------- CPU steal

def cpu_times() -> tuple | None:
    """(steal, total) jiffies of all CPUs from the first line of /proc/stat; None where
    there is no /proc/stat.  Total counts user, nice, system, idle, iowait, irq, softirq
    and steal (guest time is already inside user)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (v[7] if len(v) > 7 else 0), sum(v[:8])


class StealMeter:
    """CPU steal between its creation and each :meth:`fraction` call."""

    def __init__(self):
        self.start = cpu_times()

    def fraction(self) -> float | None:
        """Share of all CPU time since the start that the hypervisor took (steal)."""
        end = cpu_times()
        if self.start is None or end is None or end[1] == self.start[1]:
            return None
        return round((end[0] - self.start[0]) / (end[1] - self.start[1]), 4)


# --------------------------------------------------------------------------- one run

class Run:
    """One benchmark run: started at the top of ``main``, recorded at the end."""

    def __init__(self, note: str = SHARED_NOTE):
        self.note = note
        self.t0 = time.perf_counter()
        self.load_start = load_average()
        self.steal = StealMeter()

    def record(self) -> dict:
        """The ``machine`` block: :func:`machine`, load average at the start and the end,
        the CPU steal over the run and the wall time since the start."""
        return {**machine(), "load_average_start": self.load_start,
                "load_average_end": load_average(),
                "cpu_steal_fraction": self.steal.fraction(),
                "wall_seconds": round(time.perf_counter() - self.t0, 2), "note": self.note}


def emit(doc: dict, run: Run, path: str | Path | None = None) -> dict:
    """Print ``doc`` as one JSON document with ``"machine"`` (``run.record()``) first,
    and also write it to ``path`` if given.  Returns the printed document."""
    out = {"machine": run.record(), **{k: v for k, v in doc.items() if k != "machine"}}
    text = json.dumps(out, indent=1)
    print(text, flush=True)
    if path is not None:
        Path(path).write_text(text + "\n")
    return out


def progress(line: dict) -> None:
    """One finished piece of a long benchmark as a single JSON line on stdout
    (``run_all`` keeps these when the benchmark times out)."""
    print(json.dumps(line), flush=True)


def write_json(path: Path, doc) -> Path:
    """Write ``doc`` as indented JSON (the format of ``benchmarks/results/``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


# --------------------------------------------------------------------------- data

def synthetic(n: int, m: int, seed: int = 0):
    """The regression data of ``bench_training`` and ``bench_deploy``: ``n x m``
    float32 normal features, a label linear in the first ``min(m, 10)`` plus
    ``0.5 sin(3 x0)`` and a little noise; ``(X, y)``."""
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)).astype(np.float32)
    w = rng.normal(size=min(m, 10))
    y = (X[:, :w.shape[0]] @ w + 0.5 * np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=n))
    return X, y.astype(np.float32)


# --------------------------------------------------------------------------- timing

def best_of(fn, reps: int, clock=time.perf_counter) -> float:
    """Smallest time of ``reps`` calls of ``fn()`` on ``clock`` (wall by default;
    ``time.thread_time`` gives CPU time, less sensitive to a loaded machine)."""
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def run_timed(n_parties: int, setup, online, timeout: float = 300.0) -> dict:
    """One MPC protocol between in-process parties (threads; the dealer its own thread).

    Each party runs ``state = setup(party)`` (inputs and prefetched dealer material: the
    offline phase), then ``online(party, state)``, timed from a barrier on all parties.
    Returns the online wall time (barrier to the last party's finish), each party's
    online thread CPU time, the offline dealer and party-expansion times, and the online
    bytes and rounds."""
    import threading

    from ppboost.mpc import run_parties

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
        return {"start": t1, "end": t2, "cpu": c2 - c1, "setup": t_setup,
                "expand": p.dealer.expand_seconds,
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


def repo_on_path() -> None:
    """Make ``import ppboost`` find this checkout when a script is run directly."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
