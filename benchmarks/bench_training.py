"""Secure training benchmark: the XORBoost configuration and a rows x features scaling table.

XORBoost (PoPETs 2022): 2 parties, 25,000 rows x 300 features, 10 regression
trees of depth 4, 128 bins, < 90 s per tree.  Run here on synthetic data with
2 parties in-process (vertical split, 150 columns each), next to plain
``xgboost.train`` with the same parameters in the same run.

Prints one JSON document: the machine (``common.Run``: cpu, versions, load
average, the hypervisor's CPU steal over the run), per configuration:
seconds per tree (online = the parties' wall time minus the time they spend
getting dealer material, offline = the dealer's generation time + the
parties' expansion; the XORBoost configuration runs twice: with the dealer
working while the parties do, and with a separate offline phase before each
round, ``ppboost.train(offline="before")``, whose online time is the parties
computing alone),
bytes sent per party per tree, rounds per tree, the secure/plain time ratio
and the largest prediction difference between the two models.

Usage::

    python benchmarks/bench_training.py                 # everything (long; XORBoost config over 10 trees)
    python benchmarks/bench_training.py --quick         # small scaling cells only
    python benchmarks/bench_training.py --rows 1000 --features 10 --trees 2

The machine is shared with other engineers: timings are noisy.
"""
from __future__ import annotations

import argparse
import os
import time

import common
import numpy as np


def run(n, m, trees, depth=4, max_bin=128, seed=0, phase="overlap", link=None, keep_stats=False):
    import xgboost as xgb

    import ppboost
    X, y = common.synthetic(n, m, seed)
    h = m // 2
    data = ppboost.VerticalSplit({"a": (X[:, :h], y), "b": X[:, h:]})
    params = {"objective": "reg:squarederror", "max_depth": depth, "max_bin": max_bin,
              "eta": 0.3}
    t0 = time.perf_counter()
    model = ppboost.train(params, data, trees, verbose=False, timeout=3600, offline=phase,
                          link=link)
    wall = time.perf_counter() - t0
    booster = model.reveal()
    dtrain = xgb.DMatrix(X, label=y)
    xparams = {**params, "tree_method": "hist", "nthread": os.cpu_count()}
    xgb.train(xparams, dtrain, 1)                         # warm-up (first-call set-up)
    reps = 3
    t1 = time.perf_counter()
    for _ in range(reps):
        ref = xgb.train(xparams, dtrain, trees)
    plain = (time.perf_counter() - t1) / reps
    diff = float(np.abs(booster.predict(dtrain) - ref.predict(dtrain)).max())
    st = model.stats
    parties = st["parties"]
    dealer = st["dealer"]
    online = max(p["online_seconds"] for p in parties.values())
    setup = max(p["setup_seconds"] for p in parties.values())
    expand = max(p["dealer_expand_seconds"] for p in parties.values())
    offline = dealer["offline_seconds"] + expand
    out = {
        "rows": n, "features": m, "trees": trees, "depth": depth, "max_bin": max_bin,
        "offline_phase": phase,
        "wall_seconds_total": wall,
        "seconds_per_tree_total": wall / trees,
        "seconds_per_tree_online": online / trees,
        "seconds_per_tree_offline": offline / trees,
        "setup_seconds (binning, label sharing, scale)": setup,
        "bytes_sent_per_party_per_tree": {k: v["bytes_sent"] / trees for k, v in parties.items()},
        "rounds_per_tree": {k: v["rounds"] / trees for k, v in parties.items()},
        "per_tree_seconds_party_a": [round(t["seconds"], 3) for t in parties["a"]["per_tree"]],
        "by_step_per_tree_party_a (bytes sent, rounds)": {
            k: {"bytes": v["bytes"] / trees, "rounds": v["rounds"] / trees}
            for k, v in sorted(parties["a"]["by_step"].items(), key=lambda kv: -kv[1]["bytes"])},
        "dealer_bytes_sent_per_tree": dealer["bytes_sent"] / trees,
        "dealer_max_unread_bytes (run-ahead window)": dealer.get("max_unread_bytes"),
        "plain_xgboost_seconds_per_tree": plain / trees,
        "secure_over_plain": (wall / trees) / max(plain / trees, 1e-9),
        "max_prediction_difference": diff,
        "link": st["link"],
    }
    if link is None:               # the same run replayed over the two links of the issue
        out.update({f"replayed_seconds_per_tree_over_{spec}": replayed_link(
            wall, [*parties.values(), dealer], spec) / trees
            for spec in ("1gbit:10ms", "100mbit:50ms")})
    if keep_stats:                 # the per-participant counts and traces, for the link models
        out["_stats"] = [{k: p[k] for k in ("bytes_sent", "bytes_recv", "rounds", "transcript",
                                            "times") if k in p}
                         for p in [*parties.values(), dealer]]
    return out


def replayed_link(wall: float, participants: list, spec: str) -> float:
    """A local run's wall time with its traced (training) phase replayed over ``spec``
    (:func:`ppboost.transport.link.replayed_seconds`); the rest stays as measured."""
    from ppboost.transport.link import Link, replayed_seconds
    runs = [{"me": i, "transcript": p["transcript"], "times": p["times"]}
            for i, p in enumerate(participants)]
    local = Link(float("inf"), 0.0)
    return wall - replayed_seconds(local, runs) + replayed_seconds(Link.parse(spec) or local, runs)


def links(n, m, trees, specs=("local", "1gbit:10ms", "100mbit:50ms")):
    """The same training over emulated links (transport/link.py): measured seconds per
    tree next to two models made from the local run: the issue's formula (compute + max
    over participants of max(sent, received)/bandwidth + rounds x round-trip time) and
    a replay of the local run's message traces over the link (``replayed_seconds``:
    each participant's measured compute between messages, FIFO channels)."""
    from ppboost.transport.link import Link, modelled_seconds
    rows = []
    local = None
    for spec in specs:
        r = run(n, m, trees, link=spec, keep_stats=True)
        stats = r.pop("_stats")
        if local is None:
            local = (r["wall_seconds_total"], stats)
        lk = Link.parse(spec)
        model = local[0] if lk is None else modelled_seconds(lk, local[0], local[1])
        low = local[0] if lk is None else modelled_seconds(lk, local[0], local[1], 1.0)
        replay = replayed_link(local[0], local[1], spec)
        rows.append({"link": spec, "rows": n, "features": m, "trees": trees,
                     "measured_seconds_per_tree": r["seconds_per_tree_total"],
                     "modelled_seconds_per_tree": model / trees,
                     "measured_over_modelled": r["wall_seconds_total"] / model,
                     "replayed_seconds_per_tree": replay / trees,
                     "measured_over_replayed": r["wall_seconds_total"] / replay,
                     "lower_bound_seconds_per_tree (rounds x one-way delay)": low / trees,
                     "bytes_sent_per_party_per_tree": r["bytes_sent_per_party_per_tree"],
                     "rounds_per_tree": r["rounds_per_tree"],
                     "max_prediction_difference": r["max_prediction_difference"]})
        common.progress(rows[-1])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--features", type=int)
    ap.add_argument("--trees", type=int, default=10,
                    help="trees of the XORBoost configuration, or of --rows/--features "
                         "(the scaling cells have their own)")
    ap.add_argument("--skip-xorboost", action="store_true")
    ap.add_argument("--links", metavar="ROWSxFEATURESxTREES",
                    help="only the link table (local, 1gbit:10ms, 100mbit:50ms) at this size, "
                         "e.g. 5000x50x2")
    ap.add_argument("--offline", choices=("overlap", "before"), default="overlap",
                    help="for --rows/--features: when the dealer makes a round's material")
    args = ap.parse_args()
    bench_run = common.Run()
    doc = {}
    if args.links:
        n, m, t = (int(v) for v in args.links.lower().split("x"))
        doc["links"] = links(n, m, t)
        common.emit(doc, bench_run)
        return
    if args.rows:
        doc["runs"] = [run(args.rows, args.features or 10, args.trees, phase=args.offline)]
        common.emit(doc, bench_run)
        return
    cells = [(1000, 10, 2), (1000, 100, 1), (10000, 10, 1)] if args.quick else \
        [(1000, 10, 2), (1000, 100, 1), (1000, 300, 1), (10000, 10, 1), (10000, 100, 1),
         (10000, 300, 1), (100000, 10, 1), (100000, 100, 1), (100000, 300, 1),
         (1000000, 50, 2)]
    doc["scaling"] = []
    for n, m, t in cells:
        doc["scaling"].append(run(n, m, t))
        common.progress(doc["scaling"][-1])
    if not args.quick and not args.skip_xorboost:
        doc["xorboost_config"] = run(25000, 300, args.trees)
        # the same with a separate offline phase per round: online = the parties alone
        doc["xorboost_config_offline_before"] = run(25000, 300, args.trees, phase="before")
    common.emit(doc, bench_run)


if __name__ == "__main__":
    main()
