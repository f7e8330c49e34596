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
kernel alone against xgboost's per-tree time.
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
    t0 = time.perf_counter()
    steal = common.StealMeter()
    load0 = common.load_average()
    model = ppboost.train(params, data, a.trees, mode="federated", verbose=False,
                          timeout=600.0)
    wall = time.perf_counter() - t0
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
            "test_auc": float(auc), "peak_rss_MB": _rss_mb(),
            "sketch_stages": binning.get("stages"), "sketch_counts_opened":
                binning.get("counts_opened"), "parties": parties}


def part_kernel(a) -> dict:
    """The local histogram kernel alone, one party's rows, one tree's levels (the nodes
    built are half the rows below the root, as the subtraction trick gives)."""
    import numba
    import numpy as np

    from ppboost.tree.binning import fit_bins
    from ppboost.tree.federated import local_histograms
    from ppboost.tree.federated_binning import bin_codes
    X, y, _, _ = _data(a.rows // a.parties, a.features, 1, a.seed)
    mapper = fit_bins(X[:50000], a.bins)
    codes = bin_codes(X, mapper)
    del X
    n = codes.shape[0]
    rng = np.random.default_rng(0)
    g = rng.standard_normal(n).astype(np.float32)
    h = rng.random(n).astype(np.float32)
    offs = np.concatenate([[0], np.cumsum(mapper.n_bins + 1)]).astype(np.int64)
    out = {}
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        local_histograms(codes, np.arange(1000), np.zeros(1000, np.int64), g, h, offs,
                         mapper.n_bins, 1, threads)                 # compile / warm up
        t0 = time.perf_counter()
        for level in range(a.depth):
            S = max(1, 1 << max(level - 1, 0))
            rows = np.arange(n) if level == 0 else np.sort(rng.choice(n, n // 2, replace=False))
            slot = rng.integers(0, S, rows.shape[0])
            local_histograms(codes, rows, slot, g, h, offs, mapper.n_bins, S, threads)
        out[f"threads_{threads}_seconds_per_tree"] = time.perf_counter() - t0
    out["rows_per_party"] = n
    out["code_dtype"] = str(codes.dtype)
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
    ap.add_argument("--part", choices=["xgboost", "federated", "kernel"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args(argv)
    if a.quick:
        a.rows, a.features, a.trees, a.test_rows = 20_000, 20, 3, 5_000
    if a.higgs:
        a.rows, a.features, a.test_rows = 10_000_000, 28, 500_000
    if a.part:
        fn = {"xgboost": part_xgboost, "federated": part_federated, "kernel": part_kernel}[a.part]
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
    doc["kernel"] = _child("kernel", a)
    common.emit(doc, run, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
