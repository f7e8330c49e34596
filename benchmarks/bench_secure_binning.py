"""Horizontal binning benchmark: shared_cuts (oblivious sort, opens only the cuts)
next to plain numpy / xgboost on the pooled data, in the same run.

Usage: python benchmarks/bench_secure_binning.py [--rows 10000] [--features 50]
       [--parties 2 3] [--max-bin 256] [--skip-quality]

Prints one JSON document.  For each party count: the rows of an n x m matrix of
continuous features (every value distinct: the quantile path) are split evenly
across the parties, and every party runs
:func:`ppboost.tree.secure_binning.shared_cuts`, once with the fixed-shape sort
and once with the unpadded sort (``fixed_shape=False``) (in-process threads,
the dealer its own thread, the dealer's material fetched on demand: online +
offline together).  Reported: wall time, CPU time per party thread, bytes sent
per party, rounds, and whether the cuts equal
``cuts_from_summary(merge_summaries(...))`` and xgboost's own sketch of the
pooled data.  Plaintext baselines on the same data, in the same run:
``np.unique`` per column and xgboost's own sketch (``fit_bins``: xgboost's
``QuantileDMatrix`` cut computation).  Quality: the fraction of cuts identical
to xgboost's on sklearn's breast_cancer / diabetes split across 2 and 3
parties.  Several engineers share this machine: timings are noisy (the load
average at the start and the end and the CPU steal are recorded).  Not a test.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import common
import numpy as np

common.repo_on_path()

from ppboost.mpc import run_parties  # noqa: E402
from ppboost.tree.binning import (  # noqa: E402
    cuts_from_summary,
    fit_bins,
    merge_summaries,
    summarize_column,
)
from ppboost.tree.secure_binning import shared_cuts  # noqa: E402


def _layout(parts):
    m = parts[0].shape[1]
    return [(j, [(p, parts[p].shape[0]) for p in range(len(parts))]) for j in range(m)]


def _run(parts, max_bin, which):
    layout = _layout(parts)
    P, m = len(parts), parts[0].shape[1]

    def fn(party):
        me = party.id
        t0, c0 = time.perf_counter(), time.thread_time()
        s0 = party.ep.stats.snapshot()
        mine = {(j, me): parts[me][:, j] for j in range(m)}
        cuts = shared_cuts(party, layout, mine, {}, max_bin, fixed_shape=which == "shared_cuts")
        s1 = party.ep.stats.snapshot()
        return (cuts, time.perf_counter() - t0, time.thread_time() - c0,
                s1["sent"] - s0["sent"], s1["rounds"] - s0["rounds"])

    t0 = time.perf_counter()
    res, _, _ = run_parties(P, fn, timeout=3600)
    wall = time.perf_counter() - t0
    return res, wall


def _fraction_equal(cuts, ref):
    """Fraction of features whose cuts (and min_value) are identical to ``ref``'s."""
    same = [np.array_equal(cuts[j].cuts, ref[j].cuts) and cuts[j].min_value == ref[j].min_value
            for j in range(len(ref))]
    return float(np.mean(same))


def _fraction_values(cuts, ref):
    """Fraction of ``ref``'s cut values (over all features) that are among ``cuts``."""
    hit = sum(np.isin(ref[j].cuts, cuts[j].cuts).sum() for j in range(len(ref)))
    return float(hit / sum(ref[j].cuts.shape[0] for j in range(len(ref))))


def bench(n, m, parties, max_bin, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)).astype(np.float32)
    t0 = time.perf_counter()
    for j in range(m):
        np.unique(X[:, j])
    t_unique = time.perf_counter() - t0
    t0 = time.perf_counter()
    xgb_cuts = fit_bins(X, max_bin).features
    t_xgb = time.perf_counter() - t0
    merged = [cuts_from_summary(merge_summaries([summarize_column(X[:, j], max_bin)]), max_bin)
              for j in range(m)]
    out = []
    for P in parties:
        parts = np.array_split(X, P)
        row = {"parties": P, "rows": n, "features": m, "max_bin": max_bin,
               "numpy_unique_seconds": t_unique, "xgboost_sketch_seconds": t_xgb}
        for which in ("shared_cuts", "shared_cuts_unpadded"):
            res, wall = _run(parts, max_bin, which)
            cuts = res[0][0]
            row[which] = {
                "wall_seconds": wall,
                "cpu_seconds_per_party": [r[2] for r in res],
                "bytes_sent_per_party": [r[3] for r in res],
                "rounds": res[0][4],
                "fraction_equal_merged_summary_cuts": _fraction_equal(cuts, merged),
                "fraction_equal_xgboost_sketch_cuts": _fraction_equal(cuts, xgb_cuts),
                "fraction_of_xgboost_cut_values_found": _fraction_values(cuts, xgb_cuts),
            }
            print(json.dumps({which: row[which], "parties": P}), file=sys.stderr, flush=True)
        out.append(row)
    return out


def quality(max_bins=(32, 256)):
    from sklearn.datasets import load_breast_cancer, load_diabetes
    rows = []
    for name, loader in (("breast_cancer", load_breast_cancer), ("diabetes", load_diabetes)):
        X = loader(return_X_y=True)[0].astype(np.float32)
        for max_bin in max_bins:
            ref = fit_bins(X, max_bin).features
            merged = [cuts_from_summary(merge_summaries([summarize_column(X[:, j], max_bin)]),
                                        max_bin) for j in range(X.shape[1])]
            for P in (2, 3):
                res, wall = _run(np.array_split(X, P), max_bin, "shared_cuts")
                cuts = res[0][0]
                rows.append({"dataset": name, "max_bin": max_bin, "parties": P,
                             "features": X.shape[1], "rows": X.shape[0], "wall_seconds": wall,
                             "fraction_equal_xgboost_sketch_cuts": _fraction_equal(cuts, ref),
                             "fraction_of_xgboost_cut_values_found": _fraction_values(cuts, ref),
                             "fraction_equal_merged_summary_cuts": _fraction_equal(cuts, merged)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--parties", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--max-bin", type=int, default=256)
    ap.add_argument("--skip-quality", action="store_true")
    a = ap.parse_args(argv)
    bench_run = common.Run()
    doc = {"results": bench(a.rows, a.features, a.parties, a.max_bin)}
    if not a.skip_quality:
        doc["quality"] = quality()
    common.emit(doc, bench_run)


if __name__ == "__main__":
    main()
