"""Deployment benchmark: the XORBoost configuration through real `ppboost party` processes.

Issue 11.  The XORBoost configuration (2 parties, vertical split 150 + 150
columns, 25,000 x 300, depth 4, 128 bins, reg:squarederror, eta 0.3; data
from ``common.synthetic()`` as in ``bench_training.py``) over 3 trees, run

- **deployed**: one ``python -m ppboost party`` process per site and one
  ``python -m ppboost dealer`` (:mod:`ppboost.consortium`: a network
  namespace per participant as root, else a 127.0.x.y address each; one
  directory per site holding only its own Parquet file and key).  The
  hospital's file has the id column, its 150 columns and the label; the
  insurer's the id column and its 150 columns, its rows shuffled: the PSI
  runs and aligns them;
- **simulated**: ``ppboost.train()`` on the equivalent ``VerticalSplit``
  (threads in this process, the same runner), in the same run;

and reports for each: bytes, rounds and seconds per tree per party (the
runner's ``per_tree`` stats), set-up seconds and wall seconds, then the
deployed / simulated ratios and whether bytes and rounds per tree are equal.
Both models are compared with each other and with plain ``xgboost.train``
(hist) on the joined data (largest prediction difference).

Where the set-up figures come from (each participant's ``stats.json``, or
``model.stats`` in the simulation):

- ``binning_and_sharing_seconds`` = ``setup_seconds``: the training phase's
  set-up (public plan, secure binning, label sharing, backend set-up);
- ``agreement_seconds``, ``alignment_seconds``, ``delivery_seconds``: the
  runner's three phases outside training, timed apart (``setup_messages``'
  ``agreement_seconds`` / ``alignment_seconds``, and ``delivery_seconds``).
  ``agreement_seconds`` runs from the runner's start to the verdict, so it
  includes waiting for the slowest participant's announcement;
  ``alignment_seconds`` is the PSI and the row alignment (no PSI in the
  simulation, where the split is aligned: a few ms); ``delivery_seconds`` the shares of the
  model to the analyst (``delivery_bytes`` says what it sent: 27.7 MB from
  the insurer for 3 trees at 25,000 x 300);
- ``agreement_psi_delivery_seconds`` = ``wall_seconds - online_seconds -
  dealer_expand_seconds``: all the runner's time outside the training
  phase, the three above and what lies between them (kept for comparison
  with earlier results, and read by the targets);
- ``setup_messages``: bytes and rounds of agreement + PSI;
- ``process_seconds`` (deployed only): from starting the processes to the
  participant's exit, as seen by this script: Python start-up, imports,
  reading the file, joining the TLS mesh, then the runner.

The deployed model is checked in a second deployed run (``--checkpoint``, not
timed): the PSI places the rows in a random agreed order, and xgboost's hist
sketch depends on the row order at 25,000 rows, so the model need not equal
xgboost's on the file order.  The hospital's checkpoint seed lets this script
(the auditor who sees both files) replay that order and train xgboost on the
joined rows in it; ``order_check`` gives both differences and xgboost's own
difference between the two orders.  A third deployed run on loopback
addresses (no namespaces) is timed for comparison (``loopback``; not with
``--quick``).  CPU seconds: every participant's (``/proc/<pid>/stat``), all
processes' (``getrusage`` of the children) and ``train()``'s (``getrusage``
of this process).

PSI at 100,000 ids at each of two parties (target: <= 20 s on this 2-core
machine), measured two ways:

- deployed: a vertical job of 100,000 rows at each site (1 column each, the
  hospital also the label; 90,000 ids in common, each file in its own
  order), 1 tree of depth 1, 16 bins; the PSI figure is the parties'
  ``alignment_seconds`` (the PSI and the row alignment), reported next to
  ``agreement_psi_delivery_seconds`` (above; the tree itself is in
  ``per_tree`` and ``setup_seconds``);
- in process: ``psi_leader`` / ``psi_partner`` (:mod:`ppboost.mpc.psi`)
  between two threads over the in-process transport
  (``run_inprocess``; both parties share one interpreter, so their X25519
  work is serialised by the GIL), and the same two functions in two spawned
  processes over TLS (``ppboost.transport.launch.run_local``; timed inside
  the functions, without process start and mesh connection).

Usage::

    python benchmarks/bench_deploy.py            # XORBoost config, 3 trees; PSI at 100,000 ids
    python benchmarks/bench_deploy.py --quick    # 2,000 x 20, 1 tree; PSI at 5,000 ids
    python benchmarks/bench_deploy.py --rows 5000 --features 40 --trees 2 --psi-ids 20000

The machine is shared with other engineers: timings are noisy.  The load
average and the CPU steal are in the ``machine`` block.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import common
import numpy as np

common.repo_on_path()

PARAMS = {"objective": "reg:squarederror", "max_depth": 4, "max_bin": 128, "eta": 0.3}


# --------------------------------------------------------------------------- figures per party

def _seconds(v):
    return None if v is None else float(v)


def _most(parties: dict, key: str):
    """The largest ``key`` over the parties (None if no party has it)."""
    vals = [p[key] for p in parties.values() if p.get(key) is not None]
    return max(vals) if vals else None


def _party_figures(st: dict, trees: int) -> dict:
    """Bytes, rounds, seconds per tree and the set-up figures of one party's stats."""
    per = st["per_tree"]
    outside = st["wall_seconds"] - st["online_seconds"] - st["dealer_expand_seconds"]
    sm = st.get("setup_messages") or {}
    return {
        "bytes_sent_per_tree": [int(t["bytes_sent"]) for t in per],
        "rounds_per_tree": [int(t["rounds"]) for t in per],
        "seconds_per_tree": [round(float(t["seconds"]), 3) for t in per],
        "mean_seconds_per_tree": float(np.mean([t["seconds"] for t in per])),
        "bytes_sent_training": int(st["bytes_sent"]),
        "rounds_training": int(st["rounds"]),
        "binning_and_sharing_seconds": float(st["setup_seconds"]),
        "agreement_psi_delivery_seconds": float(outside),
        "agreement_seconds": _seconds(sm.get("agreement_seconds")),
        "alignment_seconds": _seconds(sm.get("alignment_seconds")),
        "delivery_seconds": _seconds(st.get("delivery_seconds")),
        "setup_messages_bytes_sent": sm.get("bytes_sent"),
        "setup_messages_rounds": sm.get("rounds"),
        "online_seconds": float(st["online_seconds"]),
        "dealer_expand_seconds": float(st["dealer_expand_seconds"]),
        "delivery_bytes": st.get("delivery_bytes"),
        "wall_seconds": float(st["wall_seconds"]),
        "peak_rss_bytes (this participant's process)": st.get("peak_rss_bytes"),
        "trees": len(per),
    }


def _summary(parties: dict) -> dict:
    """Across parties: the slowest party's mean seconds per tree, set-up and wall."""
    return {
        "seconds_per_tree": max(p["mean_seconds_per_tree"] for p in parties.values()),
        "binning_and_sharing_seconds": max(p["binning_and_sharing_seconds"]
                                           for p in parties.values()),
        "agreement_psi_delivery_seconds": max(p["agreement_psi_delivery_seconds"]
                                              for p in parties.values()),
        "agreement_seconds": _most(parties, "agreement_seconds"),
        "alignment_seconds": _most(parties, "alignment_seconds"),
        "delivery_seconds": _most(parties, "delivery_seconds"),
        "wall_seconds": max(p["wall_seconds"] for p in parties.values()),
    }


# --------------------------------------------------------------------------- deployed

def _site_frames(X, y, shuffle_seed, n_common=None, extra=0):
    """The hospital's and the insurer's tables (ids, columns; the hospital also the label).

    Both hold ids ``P<k>``; with ``n_common`` < rows, each also has ``rows - n_common``
    ids of its own (``extra`` ids shift the insurer's own ones out of the hospital's range).
    The insurer's rows are shuffled.  Returns (hospital, insurer, joined) where ``joined``
    is the hospital's rows that the insurer has, with every column, in the hospital's order.
    """
    import pandas as pd
    n, m = X.shape
    h = m // 2
    hcols = [f"h{j}" for j in range(h)]
    icols = [f"i{j}" for j in range(m - h)]
    n_common = n if n_common is None else n_common
    hid = np.array([f"P{k:07d}" for k in range(n)])
    # the insurer has the first n_common of the hospital's people, and others of its own
    iid = np.concatenate([hid[:n_common],
                          np.array([f"P{k:07d}" for k in range(n, n + n - n_common)])])
    hosp = pd.DataFrame(X[:, :h], columns=hcols)
    hosp.insert(0, "pid", hid)
    hosp["y"] = y
    # the insurer's own rows: its columns for the common people, then random rows
    rng = np.random.default_rng(shuffle_seed)
    Xi = np.concatenate([X[:n_common, h:],
                         rng.normal(size=(n - n_common, m - h)).astype(np.float32)])
    ins = pd.DataFrame(Xi, columns=icols)
    ins.insert(0, "pid", iid)
    ins = ins.iloc[rng.permutation(len(ins))].reset_index(drop=True)
    joined = (X[:n_common], y[:n_common], hcols + icols)
    return hosp, ins, joined


def _cpu(who) -> dict:
    r = resource.getrusage(who)
    return {"user": r.ru_utime, "sys": r.ru_stime}


def _cpu_delta(a, b) -> dict:
    return {"user_seconds": round(b["user"] - a["user"], 2),
            "sys_seconds": round(b["sys"] - a["sys"], 2)}


class _CpuSampler:
    """Each participant's CPU seconds (user, sys) from /proc/<pid>/stat, sampled until it
    exits (the last sample is within ``every`` seconds of its end)."""

    def __init__(self, procs: dict, every: float = 0.2):
        import threading
        self.pids = {n: p.pid for n, p in procs.items()}
        self.last: dict = {}
        self.tick = os.sysconf("SC_CLK_TCK")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self.thread.start()

    def _run(self, every):
        while not self.stop.is_set():
            for n, pid in self.pids.items():
                try:
                    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    if f[0] != "Z":
                        self.last[n] = (int(f[11]) / self.tick, int(f[12]) / self.tick)
                except (OSError, IndexError, ValueError):
                    pass
            self.stop.wait(every)

    def result(self) -> dict:
        self.stop.set()
        self.thread.join()
        return {n: {"user_seconds": round(u, 2), "sys_seconds": round(s_, 2)}
                for n, (u, s_) in self.last.items()}


def deployed(root: Path, hosp, ins, params, trees, timeout, *, extra=(),
             prefer_netns=True) -> dict:
    """Run the job through ``ppboost party`` / ``ppboost dealer`` processes.

    ``extra``: more command-line flags for every participant; ``prefer_netns``
    False: loopback addresses even as root."""
    from ppboost.consortium import Consortium, Network

    parties = ["hospital", "insurer"]
    with Network(parties + ["dealer"], prefer_netns=prefer_netns) as net:
        c = Consortium(root, net, parties)
        t0 = time.perf_counter()
        hosp.to_parquet(c.site("hospital") / "hospital.parquet", index=False)
        ins.to_parquet(c.site("insurer") / "insurer.parquet", index=False)
        write_s = time.perf_counter() - t0
        c.write_job({"params": params, "num_boost_round": trees, "split": "vertical",
                     "label": "y", "id": "pid", "analyst": "hospital", "timeout": timeout})
        load0, cpu0 = common.load_average(), _cpu(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        c.start("dealer", *extra)
        c.start("hospital", *extra, data="hospital.parquet", out=True)
        c.start("insurer", *extra, data="insurer.parquet")
        sampler = _CpuSampler(c.procs)
        res = c.wait(timeout * (trees + 4) + 600)
        per_cpu = sampler.result()
        t_all = time.perf_counter() - t0
        cpu = _cpu_delta(cpu0, _cpu(resource.RUSAGE_CHILDREN))
        load1 = common.load_average()
    bad = {n: (rc, err[-2000:]) for n, (rc, _, err, _) in res.items() if rc != 0}
    if bad:
        raise RuntimeError(f"deployed run failed: {bad}")
    stats = {n: json.loads((c.site(n) / "stats.json").read_text()) for n in c.everyone}
    return {"stats": stats, "model": c.site("hospital") / "model.json", "consortium": c,
            "process_seconds": {n: round(r[3], 2) for n, r in res.items()},
            "all_processes_seconds": t_all, "write_files_seconds": write_s,
            "cpu_all_processes": cpu, "cpu_per_participant": per_cpu,
            "load_average_before_after": [load0, load1],
            "network": net.kind, "network_note": net.reason or "one network namespace per participant",
            "stdout": {n: r[1].strip().splitlines()[-1:] for n, r in res.items()}}


# --------------------------------------------------------------------------- simulated

def simulated(X, y, names, params, trees, timeout):
    import pandas as pd

    import ppboost
    h = X.shape[1] // 2
    split = ppboost.VerticalSplit({
        "hospital": (pd.DataFrame(X[:, :h], columns=names[:h]), y),
        "insurer": pd.DataFrame(X[:, h:], columns=names[h:])})
    load0, cpu0 = common.load_average(), _cpu(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    model = ppboost.train(params, split, trees, verbose=False, timeout=timeout)
    wall = time.perf_counter() - t0
    return model, wall, _cpu_delta(cpu0, _cpu(resource.RUSAGE_SELF)), [load0, common.load_average()]


def _equal_per_tree(a: dict, b: dict, key: str) -> int:
    """Largest |a - b| of ``key`` (a per-tree list) over both parties and every tree."""
    return max(abs(x - y) for n in a for x, y in zip(a[n][key], b[n][key]))


def order_check(root, hosp, ins, Xj, yj, names, params, trees, timeout, ref) -> dict:
    """A second deployed run with ``--checkpoint``: the hospital's master seed (CKDIR/seed)
    lets this script, as an auditor, replay the row order the PSI alignment agreed
    (``ppboost.training.runner.align``: the label holder draws the PSI scalar, 4 words,
    then a permutation of the kept rows; every id is kept here).  xgboost trained on the
    joined rows in that order is then compared with the deployed model.  (xgboost's
    hist sketch depends on the row order at this size, so a model trained in the PSI's
    random order need not equal xgboost's on the file order; this run is not timed:
    checkpoints add one dealer mark per round.)"""
    import xgboost as xgb

    from ppboost.crypto.prg import PRG
    dep = deployed(root / "order-check", hosp, ins, params, trees, timeout,
                   extra=("--checkpoint", "ck"))
    seed = (dep["consortium"].site("hospital") / "ck" / "seed").read_bytes()
    rng = PRG(seed)
    rng.uint64(4)                       # the PSI scalar (one partner)
    perm = rng.permutation(len(yj))     # pooled row p is the hospital's file row perm[p]
    xparams = {**params, "tree_method": "hist", "nthread": os.cpu_count()}
    ref_perm = xgb.train(xparams, xgb.DMatrix(Xj[perm], label=yj[perm], feature_names=names),
                         trees)
    b = xgb.Booster()
    b.load_model(str(dep["model"]))
    d = xgb.DMatrix(Xj, feature_names=names)
    p_b, p_perm = b.predict(d), ref_perm.predict(d)
    return {
        "what": "a second deployed run (with --checkpoint, not timed); the PSI's row order "
                "replayed from the hospital's checkpoint seed",
        "max_prediction_difference_vs_xgboost_in_the_psi_row_order": float(np.abs(p_b - p_perm).max()),
        "max_prediction_difference_vs_xgboost_in_file_order": float(np.abs(p_b - ref.predict(d)).max()),
        "xgboost_itself_psi_row_order_vs_file_order": float(np.abs(p_perm - ref.predict(d)).max()),
    }


def loopback_run(root, hosp, ins, params, trees, timeout, sim_parties, sim_sum) -> dict:
    """The same deployed job on 127.0.x.y addresses (no namespaces), for comparison."""
    dep = deployed(root / "loopback", hosp, ins, params, trees, timeout, prefer_netns=False)
    parties = {n: _party_figures(dep["stats"][n], trees) for n in ("hospital", "insurer")}
    summ = _summary(parties)
    return {"network": dep["network"], **summ,
            "seconds_per_tree_per_party": {n: p["seconds_per_tree"] for n, p in parties.items()},
            "wall_per_tree_ratio_over_simulated":
                summ["seconds_per_tree"] / max(sim_sum["seconds_per_tree"], 1e-9),
            "max_bytes_per_tree_difference_vs_simulated":
                _equal_per_tree(parties, sim_parties, "bytes_sent_per_tree"),
            "max_rounds_per_tree_difference_vs_simulated":
                _equal_per_tree(parties, sim_parties, "rounds_per_tree"),
            "dealer_expand_seconds": {n: p["dealer_expand_seconds"] for n, p in parties.items()},
            "cpu_all_processes (getrusage of the children)": dep["cpu_all_processes"],
            "cpu_per_participant (/proc/<pid>/stat, last sample)": dep["cpu_per_participant"],
            "load_average_before_after": dep["load_average_before_after"]}


def xorboost_run(rows, features, trees, timeout, root: Path, *, check_order=True,
                 loopback=False) -> dict:
    import xgboost as xgb

    X, y = common.synthetic(rows, features)
    hosp, ins, (Xj, yj, names) = _site_frames(X, y, shuffle_seed=1)
    params = dict(PARAMS)
    dep = deployed(root / "xorboost", hosp, ins, params, trees, timeout)
    model, sim_wall, sim_cpu, sim_load = simulated(Xj, yj, names, params, trees, timeout)

    dep_parties = {n: _party_figures(dep["stats"][n], trees) for n in ("hospital", "insurer")}
    sim_parties = {n: _party_figures(model.stats["parties"][n], trees)
                   for n in ("hospital", "insurer")}
    dep_sum, sim_sum = _summary(dep_parties), _summary(sim_parties)
    bytes_diff = _equal_per_tree(dep_parties, sim_parties, "bytes_sent_per_tree")
    rounds_diff = _equal_per_tree(dep_parties, sim_parties, "rounds_per_tree")
    same_trees = all(dep_parties[n]["trees"] == sim_parties[n]["trees"] == trees
                     for n in dep_parties)

    # models: deployed (the analyst's model.json), simulated (reveal), plain xgboost hist
    b_dep = xgb.Booster()
    b_dep.load_model(str(dep["model"]))
    b_sim = model.reveal()
    dtrain = xgb.DMatrix(Xj, label=yj, feature_names=names)
    xparams = {**params, "tree_method": "hist", "nthread": os.cpu_count()}
    t0 = time.perf_counter()
    ref = xgb.train(xparams, dtrain, trees)
    plain_s = time.perf_counter() - t0
    d_plain = xgb.DMatrix(Xj)
    p_dep = b_dep.predict(dtrain if b_dep.feature_names else d_plain)
    p_sim = b_sim.predict(dtrain if b_sim.feature_names else d_plain)
    p_ref = ref.predict(dtrain)
    dstats = dep["stats"]["dealer"]
    dep_cpu = sum(dep["cpu_all_processes"].values())
    sim_cpu_s = sum(sim_cpu.values())
    out = {
        "rows": rows, "features": features, "trees": trees, "depth": params["max_depth"],
        "max_bin": params["max_bin"], "objective": params["objective"], "eta": params["eta"],
        "split": "vertical: hospital (id, 150 columns, label), insurer (id, 150 columns, rows "
                 "shuffled); the same ids at both" if features == 300 else
                 f"vertical: hospital (id, {features // 2} columns, label), insurer (id, "
                 f"{features - features // 2} columns, rows shuffled); the same ids at both",
        "network": dep["network"], "network_note": dep["network_note"],
        "deployed": {
            **dep_sum,
            "parties": dep_parties,
            "process_seconds": dep["process_seconds"],
            "all_processes_seconds": dep["all_processes_seconds"],
            "dealer": {"bytes_sent": dstats.get("bytes_sent"), "rounds": dstats.get("rounds"),
                       "peak_rss_bytes": dstats.get("peak_rss_bytes"),
                       "max_unread_bytes": dstats.get("max_unread_bytes")},
            "cpu_all_processes (getrusage of the children)": dep["cpu_all_processes"],
            "cpu_per_participant (/proc/<pid>/stat, last sample)": dep["cpu_per_participant"],
            "load_average_before_after": dep["load_average_before_after"],
            "write_site_files_seconds": dep["write_files_seconds"],
            "stdout_last_lines": dep["stdout"],
        },
        "simulated": {
            **sim_sum,
            "train_wall_seconds": sim_wall,
            "cpu_this_process (getrusage)": sim_cpu,
            "load_average_before_after": sim_load,
            "parties": sim_parties,
            "dealer": {"bytes_sent": model.stats["dealer"].get("bytes_sent"),
                       "rounds": model.stats["dealer"].get("rounds")},
        },
        "wall_per_tree_ratio_deployed_over_simulated":
            dep_sum["seconds_per_tree"] / max(sim_sum["seconds_per_tree"], 1e-9),
        "runner_wall_ratio_deployed_over_simulated":
            dep_sum["wall_seconds"] / max(sim_sum["wall_seconds"], 1e-9),
        "bytes_per_tree_equal": bool(same_trees and bytes_diff == 0),
        "rounds_per_tree_equal": bool(same_trees and rounds_diff == 0),
        "max_bytes_per_tree_difference": int(bytes_diff),
        "max_rounds_per_tree_difference": int(rounds_diff),
        "max_prediction_difference_deployed_vs_simulated": float(np.abs(p_dep - p_sim).max()),
        "max_prediction_difference_deployed_vs_xgboost": float(np.abs(p_dep - p_ref).max()),
        "max_prediction_difference_simulated_vs_xgboost": float(np.abs(p_sim - p_ref).max()),
        "plain_xgboost_seconds_per_tree": plain_s / trees,
        # CPU time (less sensitive to the shared machine's load than wall time); the deployed
        # figure also holds three interpreters' start-up, imports, file reads and the PSI
        "cpu_seconds_deployed_all_processes": round(dep_cpu, 2),
        "cpu_seconds_simulated_train": round(sim_cpu_s, 2),
        "cpu_ratio_deployed_over_simulated": dep_cpu / max(sim_cpu_s, 1e-9),
    }
    if check_order:
        out["order_check"] = order_check(root, hosp, ins, Xj, yj, names, params, trees, timeout,
                                         ref)
    if loopback:
        out["loopback"] = loopback_run(root, hosp, ins, params, trees, timeout, sim_parties,
                                       sim_sum)
    return out


# --------------------------------------------------------------------------- PSI

def _psi_ids(n, n_common, seed):
    rng = np.random.default_rng(seed)
    a = np.array([f"P{k:07d}" for k in range(n)])
    b = np.concatenate([a[:n_common], np.array([f"P{k:07d}" for k in range(n, 2 * n - n_common)])])
    return a[rng.permutation(n)], b[rng.permutation(n)]


def _leader(ids, secret, ep):
    from ppboost.mpc.psi import psi_leader
    t0, c0 = time.perf_counter(), time.thread_time()
    match = psi_leader(ep, 1, ids, "bench-psi", secret)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.thread_time() - c0,
            "matched": int((match >= 0).sum())}


def _partner(ids, secret, seed, ep):
    from ppboost.mpc.psi import psi_partner
    order = np.random.default_rng(seed).permutation(len(ids))
    t0, c0 = time.perf_counter(), time.thread_time()
    psi_partner(ep, 0, ids, "bench-psi", secret, order)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.thread_time() - c0}


def psi_in_process(n, n_common, timeout) -> dict:
    from ppboost.transport.inprocess import run_inprocess
    from ppboost.transport.launch import run_local

    a, b = _psi_ids(n, n_common, seed=3)
    s1, s2 = os.urandom(32), os.urandom(32)
    fns = [functools.partial(_leader, a, s1), functools.partial(_partner, b, s2, 4)]
    t0 = time.perf_counter()
    (lead, part), _, eps = run_inprocess(2, fns, timeout=timeout)
    wall = time.perf_counter() - t0
    threads = {"seconds": wall, "leader": lead, "partner": part,
               "bytes_sent": {"leader": eps[0].stats.total_sent, "partner": eps[1].stats.total_sent},
               "matched": lead["matched"]}
    t0 = time.perf_counter()
    (lead, part), _, _ = run_local(2, fns, timeout=timeout)
    procs = {"seconds": max(lead["seconds"], part["seconds"]), "leader": lead, "partner": part,
             "matched": lead["matched"],
             "with_process_start_and_mesh_seconds": time.perf_counter() - t0}
    return {"threads_inprocess": threads, "processes_tls": procs}


def psi_deployed(n, n_common, timeout, root: Path) -> dict:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] + 0.1 * rng.normal(size=n)).astype(np.float32)
    hosp, ins, _ = _site_frames(X, y, shuffle_seed=8, n_common=n_common)
    hosp = hosp.iloc[np.random.default_rng(9).permutation(n)]        # its own order too
    params = {"objective": "reg:squarederror", "max_depth": 1, "max_bin": 16, "eta": 0.3}
    dep = deployed(root / "psi", hosp, ins, params, 1, timeout)
    parties = {nm: _party_figures(dep["stats"][nm], 1) for nm in ("hospital", "insurer")}
    return {"ids_per_party": n, "ids_in_common": n_common, "columns_per_party": 1,
            "job": "vertical, 1 tree of depth 1, 16 bins",
            "network": dep["network"],
            "alignment_seconds": _most(parties, "alignment_seconds"),
            "agreement_psi_delivery_seconds": max(p["agreement_psi_delivery_seconds"]
                                                  for p in parties.values()),
            "parties": {nm: {k: p[k] for k in ("alignment_seconds", "agreement_seconds",
                                               "delivery_seconds", "agreement_psi_delivery_seconds",
                                               "setup_messages_bytes_sent", "setup_messages_rounds",
                                               "binning_and_sharing_seconds", "seconds_per_tree",
                                               "wall_seconds")}
                        for nm, p in parties.items()},
            "process_seconds": dep["process_seconds"]}


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2,000 x 20, 1 tree; PSI at 5,000 ids")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--features", type=int)
    ap.add_argument("--trees", type=int)
    ap.add_argument("--psi-ids", type=int)
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="the job's timeout (seconds a participant waits for a message)")
    ap.add_argument("--skip-psi", action="store_true")
    ap.add_argument("--skip-order-check", action="store_true",
                    help="no second deployed run replaying the PSI's row order")
    ap.add_argument("--skip-loopback", action="store_true",
                    help="no third deployed run on loopback addresses (not run with --quick)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    run = common.Run()
    rows = args.rows or (2000 if args.quick else 25000)
    features = args.features or (20 if args.quick else 300)
    trees = args.trees or (1 if args.quick else 3)
    psi_n = args.psi_ids or (5000 if args.quick else 100_000)
    psi_common = int(0.9 * psi_n)
    doc = {"quick": bool(args.quick)}
    with tempfile.TemporaryDirectory(prefix="ppboost-bench-deploy-") as d:
        root = Path(d)
        doc["xorboost_config"] = xorboost_run(rows, features, trees, args.timeout, root,
                                              check_order=not args.skip_order_check,
                                              loopback=not (args.quick or args.skip_loopback))
        common.progress({"xorboost_config": {k: v for k, v in doc["xorboost_config"].items()
                                             if not isinstance(v, dict)}})
        if not args.skip_psi:
            doc["psi"] = {"ids_per_party": psi_n, "ids_in_common": psi_common,
                          "deployed": psi_deployed(psi_n, psi_common, args.timeout, root),
                          **psi_in_process(psi_n, psi_common, args.timeout)}
    common.emit(doc, run, args.out)


if __name__ == "__main__":
    main()
