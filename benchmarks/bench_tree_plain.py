"""Plain (numpy) tree backend vs xgboost hist: seconds per tree, same model.

The plain backend is the reference implementation of the tree layer that the
secure backend mirrors; this benchmark shows what the oblivious algorithm
(complete trees, every candidate evaluated) costs before any cryptography.
Not a test. Prints JSON. Usage:

    .venv/bin/python benchmarks/bench_tree_plain.py [--quick]

Timings on a shared 2-core machine are noisy.
"""
from __future__ import annotations

import argparse
import time

import common
import numpy as np
import xgboost as xgb

from ppboost.tree import boost, prepare_plain, reveal, to_booster
from ppboost.tree.losses import base_score_repr


def run(n, m, trees, depth=4, max_bin=128, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)).astype(np.float32)
    y = X[:, :min(5, m)].sum(axis=1) + rng.normal(size=n)
    params = {"objective": "reg:squarederror", "max_depth": depth, "max_bin": max_bin}
    t0 = time.perf_counter()
    backend = prepare_plain(params, X, y)
    t_bin = time.perf_counter() - t0
    t0 = time.perf_counter()
    revealed = reveal(backend, boost(backend, trees))
    t_grow = time.perf_counter() - t0
    ours = to_booster(revealed, backend.params, base_score_repr(backend.y, backend.params),
                      n_features=m)
    dtrain = xgb.DMatrix(X, label=y)
    t0 = time.perf_counter()
    ref = xgb.train(params | {"tree_method": "hist"}, dtrain, trees)
    t_xgb = time.perf_counter() - t0
    d = xgb.DMatrix(X)
    diff = float(np.max(np.abs(ours.predict(d) - ref.predict(d))))
    return {"rows": n, "features": m, "trees": trees, "depth": depth, "max_bin": max_bin,
            "plain_binning_s": round(t_bin, 3),
            "plain_s_per_tree": round(t_grow / trees, 4),
            "xgboost_s_per_tree_incl_sketch": round(t_xgb / trees, 4),
            "plain_over_xgboost": round((t_bin + t_grow) / t_xgb, 2),
            "max_abs_prediction_diff": diff}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    args = ap.parse_args()
    bench_run = common.Run()
    rows = [1000, 10000] if args.quick else [1000, 10000, 100000]
    feats = [10, 100] if args.quick else [10, 100, 300]
    out = {
        "xorboost_config": run(2500 if args.quick else 25000, 30 if args.quick else 300,
                               trees=3 if args.quick else 10),
        "scaling": [run(n, m, trees=2) for n in rows for m in feats],
    }
    common.emit(out, bench_run)


if __name__ == "__main__":
    main()
