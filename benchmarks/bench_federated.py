"""Federated mode (``train(mode="federated")``) next to plain xgboost on the pooled data.

Setting of issue 13: 3 parties in process, 1,000,000 rows x 100 features, depth 6,
256 bins, binary:logistic, 10 trees; in the same run ``xgboost.train(tree_method="hist",
nthread=2)`` on the pooled rows.  Each side runs in its own child process (the same
seeded data, generated there), so that each peak RSS is its own::

    python benchmarks/bench_federated.py                      # the issue's setting
    python benchmarks/bench_federated.py --rows 200000        # smaller
    python benchmarks/bench_federated.py --higgs              # 10,000,000 x 28 (memory)
    python benchmarks/bench_federated.py --quick              # 20,000 x 20, 3 trees
    python benchmarks/bench_federated.py --reps 2             # federated, xgboost, xgboost, federated

Figures: seconds per tree (federated: the mean over the trees, the set-up apart;
xgboost: the mean time of its boosting iterations, the first of which also builds its
quantile index, and the same without that first one), peak RSS of each child, test
AUC of both on held-out rows, bytes and rounds per tree per party, the set-up
(agreement, sketch, binning, intercept) seconds and bytes, and the histogram
kernel against xgboost's per-tree time (``kernel`` and the ``kernel_*`` ratios).

The kernel is measured on the calls training makes: the federated child wraps
``ppboost.tree.federated.local_histograms`` and times every call of every party
(inside the kernel lock: compute only), per boosting round; the calls get the
rows and node slots the grower passes (the rows of the nodes built, the smaller
child of each split, in row order, each with its node's slot).  In process the
parties' kernels take turns on every core, so the sum over the parties per tree
is the kernel's share of a tree's wall time; it is set against xgboost's seconds
per tree on the pooled rows, over every tree ("total") and after the first
("steady state", xgboost's first iteration also builds its quantile index).  The
analyst's calls of one tree (round 1) are also kept and replayed after training,
alone, with 1 thread and with every numba thread (``kernel.replay``); keeping
them adds about depth x 2 x 8 bytes per row of one party to the federated
child's memory (20 MB at 1,000,000 x 100 with 3 parties).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402


def _data(rows, features, test_rows, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    n = rows + test_rows
    X = rng.standard_normal((n, features), dtype=np.float32)
    k = min(features, 10)
    w = rng.standard_normal(k).astype(np.float32)
    z = X[:, :k] @ w + 0.5 * np.sin(3 * X[:, 0]) * X[:, min(1, features - 1)]
    y = (z + rng.standard_normal(n).astype(np.float32) > 0).astype(np.float32)
    return X[:rows], y[:rows], X[rows:], y[rows:]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def part_xgboost(a) -> dict:
    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
    X, y, Xt, yt = _data(a.rows, a.features, a.test_rows, a.seed)
    marks, cpus = [], []

    class Clock(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            marks.append(time.perf_counter())
            cpus.append(time.process_time())
            return False
    t0 = time.perf_counter()
    d = xgb.DMatrix(X, label=y, nthread=2)
    t1 = time.perf_counter()
    params = {"tree_method": "hist", "max_depth": a.depth, "max_bin": a.bins,
              "objective": "binary:logistic", "nthread": 2, "eta": 0.3}
    c1 = time.process_time()
    steal = common.StealMeter()
    load0 = common.load_average()
    b = xgb.train(params, d, a.trees, callbacks=[Clock()])
    t2 = time.perf_counter()
    its = np.diff([t1] + marks)
    cits = np.diff([c1] + cpus)
    auc = roc_auc_score(yt, b.predict(xgb.DMatrix(Xt)))
    return {"dmatrix_seconds": t1 - t0, "train_seconds": t2 - t1,
            "seconds_per_tree": (t2 - t1) / a.trees,
            "seconds_per_tree_after_first": float(its[1:].mean()) if len(its) > 1 else None,
            "first_iteration_seconds": float(its[0]), "test_auc": float(auc),
            "cpu_seconds_per_tree": float(cits.mean()),
            "cpu_seconds_per_tree_after_first": float(cits[1:].mean()) if len(cits) > 1 else None,
            "peak_rss_MB": _rss_mb(), "cpu_steal_fraction": steal.fraction(),
            "load_average_before_after": [load0, common.load_average()]}


def part_federated(a) -> dict:
    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    import ppboost
    X, y, Xt, yt = _data(a.rows, a.features, a.test_rows, a.seed)
    rows = np.array_split(np.arange(a.rows), a.parties)
    data = ppboost.HorizontalSplit({f"hospital_{i}": (X[r], y[r]) for i, r in enumerate(rows)})
    del X, y
    params = {"objective": "binary:logistic", "max_depth": a.depth, "max_bin": a.bins,
              "eta": 0.3}
    trace = KernelTrace(0, min(1, a.trees - 1))
    t0 = time.perf_counter()
    steal = common.StealMeter()
    load0 = common.load_average()
    try:
        model = ppboost.train(params, data, a.trees, mode="federated", verbose=False,
                              timeout=600.0)
    finally:
        trace.close()
    wall = time.perf_counter() - t0
    peak = _rss_mb()
    kernel = trace.figures(a.trees)
    kernel["replay"] = trace.replay()
    del trace
    booster = model.reveal()
    auc = roc_auc_score(yt, booster.predict(xgb.DMatrix(Xt)))
    parties = {}
    for name, st in model.stats["parties"].items():
        pt = st["per_tree"]
        parties[name] = {
            "seconds_per_tree": [round(t["seconds"], 4) for t in pt],
            "cpu_seconds_per_tree": [round(t["cpu_seconds"], 4) for t in pt],
            "bytes_sent_per_tree": [t["bytes_sent"] for t in pt],
            "rounds_per_tree": [t["rounds"] for t in pt],
            "setup_seconds": round(st["setup_seconds"], 3),
            "setup_bytes_sent": st["setup_bytes_sent"],
            "bytes_sent": st["bytes_sent"], "rounds": st["rounds"]}
    first = parties[data.party_names[0]]
    spt = [float(np.mean([p["seconds_per_tree"][i] for p in parties.values()]))
           for i in range(a.trees)]
    binning = model.stats["parties"][data.party_names[0]]["binning"]
    # every party runs in this process: the analyst's process CPU per tree covers them all
    # (and numba's worker threads, which the parties' own thread times miss)
    cpu = [t["process_cpu_seconds"]
           for t in model.stats["parties"][data.party_names[0]]["per_tree"]]
    return {"wall_seconds": wall, "seconds_per_tree": float(np.mean(spt)),
            "cpu_seconds_per_tree_all_parties": float(np.mean(cpu)),
            "cpu_steal_fraction": steal.fraction(),
            "load_average_before_after": [load0, common.load_average()],
            "seconds_per_tree_each": spt, "setup_seconds": first["setup_seconds"],
            "test_auc": float(auc), "peak_rss_MB": peak,
            "sketch_stages": binning.get("stages"), "sketch_counts_opened":
                binning.get("counts_opened"), "parties": parties, "kernel": kernel}


class KernelTrace:
    """Times every ``local_histograms`` call of federated training, per (party, round),
    and keeps the calls of party ``keep_party`` in round ``keep_round`` for a replay."""

    def __init__(self, keep_party: int, keep_round: int):
        import threading

        from ppboost.tree import federated as F
        self.F, self.keep = F, (keep_party, keep_round)
        self.seconds: dict = {}                     # (party, round) -> kernel seconds
        self.calls: list = []                       # the kept calls' arguments
        self.local = threading.local()
        self.kernel, self.before = F.local_histograms, F.FederatedBackend.before_round
        trace = self

        def before_round(backend, rnd):
            trace.local.key = (backend.fed.ep.me, rnd)
            return trace.before(backend, rnd)

        def local_histograms(codes, rows, slot, *args):
            key = getattr(trace.local, "key", None)
            t0 = time.perf_counter()
            out = trace.kernel(codes, rows, slot, *args)
            trace.seconds[key] = trace.seconds.get(key, 0.0) + time.perf_counter() - t0
            if key == trace.keep:
                trace.calls.append((codes, rows, slot) + args)
            return out
        F.local_histograms, F.FederatedBackend.before_round = local_histograms, before_round

    def close(self) -> None:
        self.F.local_histograms, self.F.FederatedBackend.before_round = self.kernel, self.before

    def figures(self, n_rounds: int) -> dict:
        """Seconds per tree: the sum over the parties (in process they take turns), the
        mean per party; each over every tree and after the first."""
        import numpy as np
        parties = sorted({p for p, _ in self.seconds})
        per = np.array([[self.seconds.get((p, r), 0.0) for r in range(n_rounds)]
                        for p in parties])
        tot = per.sum(axis=0)
        return {"all_parties_seconds_per_tree_each": [round(float(v), 4) for v in tot],
                "all_parties_seconds_per_tree": float(tot.mean()),
                "all_parties_seconds_per_tree_after_first":
                    float(tot[1:].mean()) if n_rounds > 1 else None,
                "per_party_seconds_per_tree": float(per.mean()),
                "per_party_seconds_per_tree_after_first":
                    float(per[:, 1:].mean()) if n_rounds > 1 else None}

    def replay(self) -> dict:
        """The kept tree's calls again, alone, with 1 thread and with every numba thread."""
        import numba
        out = {"party": self.keep[0], "round": self.keep[1], "calls": len(self.calls),
               "rows_per_level": [int(c[1].shape[0]) for c in self.calls],
               "slots_per_level": [int(c[7]) for c in self.calls]}
        if self.calls:
            out["rows_per_party"] = int(self.calls[0][0].shape[0])
            out["code_dtype"] = str(self.calls[0][0].dtype)
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            t0 = time.perf_counter()
            for c in self.calls:                    # (codes, rows, slot, g, h, offs, n_bins,
                self.kernel(*c[:8], threads, *c[9:])      # n_slots, threads, has_missing)
            out[f"threads_{threads}_seconds_per_tree"] = time.perf_counter() - t0
        return out


def _median_doc(docs: list) -> dict:
    """The first run's document with every top-level number replaced by the runs' median."""
    import numpy as np
    out = dict(docs[0])
    for k, v in docs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [d[k] for d in docs if isinstance(d.get(k), (int, float))]
            out[k] = float(np.median(vals))
    return out


def _child(part, a) -> dict:
    cmd = [sys.executable, __file__, "--part", part, "--rows", str(a.rows),
           "--features", str(a.features), "--trees", str(a.trees), "--depth", str(a.depth),
           "--bins", str(a.bins), "--parties", str(a.parties), "--test-rows", str(a.test_rows),
           "--seed", str(a.seed)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{part} failed:\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--trees", type=int, default=10)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--bins", type=int, default=256)
    ap.add_argument("--parties", type=int, default=3)
    ap.add_argument("--test-rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--quick", action="store_true", help="20,000 x 20, 3 trees")
    ap.add_argument("--higgs", action="store_true",
                    help="10,000,000 x 28 (a HIGGS-sized synthetic set): memory and time")
    ap.add_argument("--skip-xgboost", action="store_true")
    ap.add_argument("--reps", type=int, default=1,
                    help="runs of each side, in ABBA order (figures: the medians)")
    ap.add_argument("--part", choices=["xgboost", "federated"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args(argv)
    if a.quick:
        a.rows, a.features, a.trees, a.test_rows = 20_000, 20, 3, 5_000
    if a.higgs:
        a.rows, a.features, a.test_rows = 10_000_000, 28, 500_000
    if a.part:
        fn = {"xgboost": part_xgboost, "federated": part_federated}[a.part]
        print(json.dumps(fn(a)))
        return 0
    run = common.Run()
    setting = {"rows": a.rows, "features": a.features, "trees": a.trees, "max_depth": a.depth,
               "max_bin": a.bins, "parties": a.parties, "objective": "binary:logistic",
               "test_rows": a.test_rows, "transport": "inprocess"}
    common.progress({"setting": setting})
    feds, refs = [], []
    for rep in range(a.reps):       # ABBA order: a drift of the shared machine's load cancels
        order = ("federated", "xgboost") if rep % 2 == 0 else ("xgboost", "federated")
        for part in order:
            if part == "xgboost" and a.skip_xgboost:
                continue
            got = _child(part, a)
            (feds if part == "federated" else refs).append(got)
            common.progress({"rep": rep, part: {k: got.get(k) for k in (
                "seconds_per_tree", "seconds_per_tree_after_first", "peak_rss_MB")}})
    fed = _median_doc(feds)
    doc = {"setting": setting, "reps": a.reps, "federated": fed}
    if a.reps > 1:
        doc["federated_runs"] = feds
    if refs:
        ref = _median_doc(refs)
        doc["xgboost"] = ref
        if a.reps > 1:
            doc["xgboost_runs"] = refs
        doc["ratios"] = {
            "seconds_per_tree_federated_over_xgboost": fed["seconds_per_tree"]
            / ref["seconds_per_tree"],
            "seconds_per_tree_federated_over_xgboost_after_first":
                fed["seconds_per_tree"] / ref["seconds_per_tree_after_first"]
                if ref["seconds_per_tree_after_first"] else None,
            "cpu_seconds_per_tree_federated_over_xgboost_after_first":
                fed["cpu_seconds_per_tree_all_parties"] / ref["cpu_seconds_per_tree_after_first"]
                if ref["cpu_seconds_per_tree_after_first"] else None,
            "test_auc_abs_difference": abs(fed["test_auc"] - ref["test_auc"]),
            "total_seconds_federated_over_xgboost":
                (fed["setup_seconds"] + fed["seconds_per_tree"] * a.trees)
                / (ref["dmatrix_seconds"] + ref["train_seconds"]),
            "peak_rss_federated_over_xgboost": fed["peak_rss_MB"] / ref["peak_rss_MB"],
            "test_auc_difference": fed["test_auc"] - ref["test_auc"]}
        kern = fed["kernel"]            # the median run's figures (the first run's if reps > 1)
        doc["ratios"].update({
            "kernel_seconds_per_tree_over_xgboost": kern["all_parties_seconds_per_tree"]
            / ref["seconds_per_tree"],
            "kernel_seconds_per_tree_over_xgboost_after_first":
                kern["all_parties_seconds_per_tree_after_first"]
                / ref["seconds_per_tree_after_first"]
                if ref["seconds_per_tree_after_first"]
                and kern["all_parties_seconds_per_tree_after_first"] is not None else None,
            "kernel_per_party_seconds_per_tree_over_xgboost_after_first":
                kern["per_party_seconds_per_tree_after_first"]
                / ref["seconds_per_tree_after_first"]
                if ref["seconds_per_tree_after_first"]
                and kern["per_party_seconds_per_tree_after_first"] is not None else None})
    doc["kernel"] = fed.pop("kernel")
    common.emit(doc, run, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
