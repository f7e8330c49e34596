"""Run every ppboost benchmark, keep its JSON, draw the plots and write SUMMARY.md.

Usage::

    python benchmarks/run_all.py                      # full run -> benchmarks/results/
    python benchmarks/run_all.py --quick              # tiny sizes -> a new temporary directory
    python benchmarks/run_all.py --only mpc inference --out /tmp/bench
    python benchmarks/run_all.py --summarize benchmarks/results --out /tmp/s
                                                      # no run: plots + summary from saved JSON

Each benchmark script (``benchmarks/bench_*.py``, written by the engineer who
owns that part) runs in its own subprocess with a time limit; the JSON
document it prints is parsed and written to ``<out>/<name>.json`` unchanged,
with one extra top-level key ``"run_all"`` holding the run's metadata (UTC
date, git commit, machine, command, wall time, exit status).  A benchmark
that is missing, fails or times out is written as ``<out>/<name>.json`` with
``"run_all": {"status": ...}`` and the tail of its stderr and nothing else
(plus, for a time-out, any complete JSON lines it printed before, under
``"partial_lines"``); the summary lists it under "not run / failed".  No
number is ever filled in for a benchmark that did not produce it.

Then ``plots.py`` draws the PNGs and ``SUMMARY.md`` puts the headline figures
next to the issue's targets and the published reference points; each target
is marked met / not met by comparing the measured number with the target
(see ``TARGETS`` below), or "not comparable" when the run was not made in the
target's conditions (e.g. ``--quick`` sizes, 1024-bit keys).

This is not a test.  The machine is recorded (cpu model, cores, memory, load
average before and after, package versions); on a shared machine timings
are noisy.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as _md
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = HERE / "results"


@dataclass(frozen=True)
class Bench:
    """One benchmark: how to start it (full and --quick) and its time limits (seconds)."""
    name: str
    script: str                      # file in benchmarks/
    full_args: tuple = ()
    quick_args: tuple = ()
    timeout: float = 1800.0
    quick_timeout: float = 120.0
    #: code run with ``python -c`` instead of the script (``{argv}`` -> the argument list)
    entry: str | None = None
    what: str = ""


#: bench_mpc.py run as a script also appends the comparison-family benchmarks of
#: bench_mpc_nonlinear.py; run_all imports it and calls ``main(argv)`` instead so that
#: "mpc" holds only the core protocols and "mpc_nonlinear" the comparison family.
_MPC_ENTRY = ("import sys; sys.path.insert(0, {bench_dir!r}); import bench_mpc; "
              "raise SystemExit(bench_mpc.main({argv!r}))")

BENCHMARKS = {
    b.name: b for b in [
        Bench("training", "bench_training.py", ("--trees", "10"),
              ("--rows", "300", "--features", "4", "--trees", "1"), timeout=5400.0,
              what="secure training (XORBoost config over 10 trees + rows x features scaling)"),
        Bench("tree_plain", "bench_tree_plain.py", (), ("--quick",), timeout=1200.0,
              what="plain (numpy) tree backend vs xgboost hist"),
        Bench("mpc", "bench_mpc.py", ("--n", "1000000"), ("--n", "2000", "--reps", "1"),
              timeout=1200.0, entry=_MPC_ENTRY,
              what="MPC core: Beaver product, owner-known permutation, truncation, b2a"),
        Bench("mpc_nonlinear", "bench_mpc_nonlinear.py", ("--n", "1000000"),
              ("--n", "2000", "--reps", "1"), timeout=1800.0,
              what="MPC comparison family: ltz, argmax, reciprocal, sigmoid, exp"),
        Bench("transport", "bench_transport.py", (), ("--size-mb", "1", "--rounds", "2"),
              timeout=300.0, what="transport throughput: TLS processes vs in-process"),
        Bench("inference", "bench_inference.py", (),
              ("--queries", "5", "--key-bits", "1024", "--skip-big"), timeout=1800.0,
              what="encrypted prediction in process: latency stages, batch, enrolment"),
        Bench("server", "bench_server.py", (),
              ("--key-bits", "1024", "--trees", "5", "--seconds", "0.3", "--latency-n", "5",
               "--clients", "1,2", "--workers", "1"), timeout=1800.0,
              what="encrypted prediction over HTTP: latency, throughput vs clients"),
    ]
}


# --------------------------------------------------------------------------- metadata

def _git(*args) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _version(pkg: str) -> str | None:
    try:
        return _md.version(pkg)
    except _md.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2 ** 20, 1)
    except (OSError, ValueError):
        pass
    return None


def machine() -> dict:
    """The machine and software versions (no heavy imports: versions come from metadata)."""
    return {"cpu_model": _cpu_model(), "cpu_count": os.cpu_count(),
            "memory_GiB": _memory_gib(), "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": _version("numpy"), "numba": _version("numba"),
            "xgboost": _version("xgboost"), "phe": _version("phe"), "gmpy2": _version("gmpy2")}


def git_info() -> dict:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": _git("rev-parse", "HEAD"), "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
            "uncommitted_changes_to_tracked_files": bool(status) if status is not None else None}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- running

def parse_last_json(text: str):
    """The last JSON document in ``text`` that runs to its end (benchmarks may print
    progress lines, themselves JSON, before their final document); None if there is none."""
    stripped = text.rstrip()
    dec = json.JSONDecoder()
    starts = [0] + [i + 1 for i, c in enumerate(stripped) if c == "\n"]
    for s in starts:
        if s < len(stripped) and stripped[s] in "{[":
            try:
                obj, end = dec.raw_decode(stripped, s)
            except json.JSONDecodeError:
                continue
            if not stripped[end:].strip():
                return obj
    return None


def _json_lines(text: str) -> list:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def command_for(b: Bench, quick: bool) -> list:
    args = list(b.quick_args if quick else b.full_args)
    if b.entry is not None:
        return [sys.executable, "-c", b.entry.format(bench_dir=str(HERE), argv=args)]
    return [sys.executable, str(HERE / b.script), *args]


def run_benchmark(b: Bench, quick: bool, timeout: float | None = None, log_dir: Path | None = None) -> dict:
    """Run one benchmark in its own subprocess (own process group, killed on time-out).

    Returns the document to write: the benchmark's JSON plus ``"run_all"`` metadata, or
    only the metadata (status ``missing`` / ``failed`` / ``timeout`` / ``no_json``)."""
    limit = timeout if timeout is not None else (b.quick_timeout if quick else b.timeout)
    cmd = command_for(b, quick)
    path = HERE / b.script
    shown = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    meta = {"benchmark": b.name, "what": b.what, "script": shown,
            "quick": quick, "command": ["python", *cmd[1:]],
            "time_limit_s": limit, "started_utc": _now(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    if not path.exists():
        meta.update(status="missing", error=f"{shown} does not exist", seconds=0.0)
        return {"run_all": meta}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err, text=True,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=limit)
            timed_out = False
        except BaseException as e:            # time-out, or run_all itself interrupted
            if not isinstance(e, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)   # leave no benchmark (or server) behind
                except ProcessLookupError:
                    pass
                proc.wait()
                raise
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGTERM)   # the benchmark and any server it started
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            rc = proc.returncode
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if log_dir is not None:
        (log_dir / f"{b.name}.stderr.log").write_text(stderr)
    meta.update(seconds=round(seconds, 2), returncode=rc,
                load_average_after=[round(x, 2) for x in os.getloadavg()])
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    doc = parse_last_json(stdout) if not timed_out and rc == 0 else None
    if timed_out:
        meta.update(status="timeout", error=f"killed after the {limit:.0f} s time limit",
                    stderr_tail=tail)
        partial = _json_lines(stdout)
        return {"run_all": meta, **({"partial_lines": partial} if partial else {})}
    if rc != 0:
        meta.update(status="failed", error=f"exit status {rc}", stderr_tail=tail)
        return {"run_all": meta}
    if not isinstance(doc, dict):
        meta.update(status="no_json", error="exit status 0 but no JSON document on stdout",
                    stdout_tail=stdout[-2000:], stderr_tail=tail)
        return {"run_all": meta}
    meta["status"] = "ok"
    return {**doc, "run_all": meta}


# --------------------------------------------------------------------------- targets

def _get(doc, *path):
    for k in path:
        if isinstance(doc, dict) and k in doc:
            doc = doc[k]
        elif isinstance(doc, list) and isinstance(k, int) and -len(doc) <= k < len(doc):
            doc = doc[k]
        else:
            return None
    return doc


def _ok(doc) -> bool:
    return isinstance(doc, dict) and _get(doc, "run_all", "status") in (None, "ok")


def _row(area, what, measured, unit, target, op, reference=None, conditions_ok=True, note=""):
    """One summary row; ``op`` is '<=' or '>='; status computed from ``measured``."""
    if measured is None:
        status = "not measured"
    elif not conditions_ok:
        status = "not comparable"
    else:
        met = measured <= target if op == "<=" else measured >= target
        status = "met" if met else "NOT met"
    return {"area": area, "what": what, "measured": measured, "unit": unit,
            "target": f"{op} {target:g}" if target is not None else None, "status": status,
            "reference": reference, "note": note}


def evaluate_targets(results: dict) -> list:
    """The issue's targets against the measured numbers in ``results`` ({name: document})."""
    rows = []
    tr = results.get("training")
    cfg = _get(tr, "xorboost_config") if _ok(tr) else None
    is_ref = bool(cfg) and cfg.get("rows") == 25000 and cfg.get("features") == 300 \
        and cfg.get("depth") == 4 and cfg.get("max_bin") == 128
    cond = "" if is_ref or not cfg else f"run at {cfg.get('rows')} x {cfg.get('features')}"
    rows.append(_row("secure training", "seconds per tree, total (25,000 x 300, depth 4, 128 bins)",
                     _get(cfg, "seconds_per_tree_total"), "s", 10, "<=",
                     "XORBoost: < 90 s per tree", is_ref, cond))
    rows.append(_row("secure training", "seconds per tree, online phase",
                     _get(cfg, "seconds_per_tree_online"), "s", 3, "<=", None, is_ref, cond))
    before = _get(tr, "xorboost_config_offline_before") if _ok(tr) else None
    if before:
        rows.append(_row("secure training", "seconds per tree, online phase after a separate "
                         "offline phase (train(offline='before'))",
                         _get(before, "seconds_per_tree_online"), "s", 3, "<=", None, is_ref, cond))
    rows.append(_row("secure training", "seconds per tree vs XORBoost's published 90 s",
                     _get(cfg, "seconds_per_tree_total"), "s", 90, "<=", "XORBoost (PoPETs 2022)",
                     is_ref, cond))

    inf = results.get("inference") if _ok(results.get("inference")) else None
    bits_ok = _get(inf, "key_bits") == 3072
    kb = "" if inf is None or bits_ok else f"{_get(inf, 'key_bits')}-bit keys, not 3072"
    rows.append(_row("encrypted prediction", "one query end to end, p50, in process",
                     _get(inf, "single_query", "end_to_end", "p50_ms"), "ms", 12, "<=",
                     "PPXGBoost: ~63 ms", bits_ok, kb))
    rows.append(_row("encrypted prediction", "one query end to end, p99, in process",
                     _get(inf, "single_query", "end_to_end", "p99_ms"), "ms", 12, "<=",
                     "PPXGBoost: ~63 ms", bits_ok, kb))
    rows.append(_row("encrypted prediction", "model encryption per user (100 trees, excl. key generation)",
                     _get(inf, "enrolment_reference_model", "model_encryption_excl_keygen_s_median"),
                     "s", 1.0, "<=", "PPXGBoost: ~10 s (target: >= 10x faster)", bits_ok, kb))
    rows.append(_row("encrypted prediction", "enrolment per user incl. Paillier key generation",
                     _get(inf, "enrolment_reference_model", "enroll_total_s_median"),
                     "s", 1.0, "<=", "PPXGBoost: ~10 s (target: >= 10x faster)", bits_ok,
                     kb or "stricter reading: includes key generation"))
    big = _get(inf, "enrolment_4400_leaf_model")
    rows.append(_row("encrypted prediction",
                     f"model encryption, {_get(big, 'leaves') or '~4,400'}-leaf model (excl. key generation)",
                     _get(big, "model_encryption_excl_keygen_s_median"), "s", 14.3, "<=",
                     "PPXGBoost: 143 s (target: >= 10x faster)", bits_ok, kb))

    srv = results.get("server") if _ok(results.get("server")) else None
    s_ok = _get(srv, "key_bits") == 3072 and _get(srv, "batch") == 64
    s_cond = "" if srv is None or s_ok else \
        f"{_get(srv, 'key_bits')}-bit keys, batch {_get(srv, 'batch')} (target: 3072, 64)"
    for run in (_get(srv, "servers") or []):
        lat = _get(run, "latency_single_query", "end_to_end_ms", "p50")
        rows.append(_row("encrypted prediction", f"one query end to end over HTTP, p50 "
                         f"({run.get('workers')} worker(s))", lat, "ms", 12, "<=",
                         "PPXGBoost: ~63 ms", s_ok, s_cond))
        four = [t for t in run.get("throughput", []) if t.get("clients") == 4]
        c_ok = s_ok and bool(four)
        rows.append(_row("encrypted prediction", f"queries/s, 4 concurrent clients x batches of "
                         f"{_get(srv, 'batch')} ({run.get('workers')} worker(s))",
                         four[0]["rows_per_s"] if four else None, "rows/s", 300, ">=", None, c_ok,
                         s_cond))
    if srv is None:
        rows.append(_row("encrypted prediction", "queries/s, 4 concurrent clients x batches of 64",
                         None, "rows/s", 300, ">="))

    mpc = results.get("mpc") if _ok(results.get("mpc")) else None
    by_name = {r.get("name"): r for r in (_get(mpc, "results") or [])}
    for key, label in (("beaver_mul", "Beaver multiplication"),
                       ("owner_permutation", "owner-known permutation")):
        r = by_name.get(key)
        n_ok = r is not None and r.get("elements", 0) >= 10 ** 6
        rows.append(_row("MPC", f"{label}: online time / numpy time ({_get(mpc, 'n_parties') or 2} parties)",
                         _get(r, "slowdown_vs_numpy"), "x", 15, "<=", None, n_ok,
                         "" if r is None or n_ok else f"{r.get('elements')} elements (< 10^6)"))
        rows.append(_row("MPC", f"{label}: the same in thread CPU time (slowest party / numpy)",
                         _get(r, "cpu_slowdown_vs_numpy"), "x", 15, "<=", None, n_ok,
                         "less sensitive to a loaded machine" if r is None or n_ok
                         else f"{r.get('elements')} elements (< 10^6)"))
    nl = results.get("mpc_nonlinear") if _ok(results.get("mpc_nonlinear")) else None
    nl_by = {r.get("name"): r for r in (_get(nl, "results") or [])}
    for key, label in (("comparison_ltz", "comparison [x < 0], 64-bit, dealer material prefetched"),
                       ("comparison_ltz_bound32", "comparison [x < 0], declared bound abs(x) < 2^31")):
        r = nl_by.get(key)
        n_ok = r is not None and r.get("elements", 0) >= 10 ** 6
        rows.append(_row("MPC", label, _get(r, "elements_per_second"), "/s", 1e6, ">=", None, n_ok,
                         "" if r is None or n_ok else f"{r.get('elements')} elements (< 10^6)"))
    return rows


# --------------------------------------------------------------------------- summary

def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        a = abs(v)
        if a >= 1e5:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    return str(v)


def headline(results: dict) -> list:
    """Extra measured figures (no targets) for the summary."""
    lines = []
    tr = results.get("training")
    if _ok(tr):
        cfg = [tr["xorboost_config"]] if _get(tr, "xorboost_config") else []
        for r in (_get(tr, "scaling") or []) + (_get(tr, "runs") or []) + cfg:
            lines.append(f"secure training {r['rows']} x {r['features']}: "
                         f"{_fmt(r.get('seconds_per_tree_total'))} s/tree total, "
                         f"{_fmt(r.get('seconds_per_tree_online'))} s online, plain xgboost "
                         f"{_fmt(r.get('plain_xgboost_seconds_per_tree'))} s/tree "
                         f"({_fmt(r.get('secure_over_plain'))}x), max prediction difference vs xgboost "
                         f"{_fmt(r.get('max_prediction_difference'))}")
    elif isinstance(tr, dict) and _get(tr, "run_all", "status") == "timeout":
        for r in tr.get("partial_lines", []):
            if "seconds_per_tree_total" in r:
                lines.append(f"secure training {r['rows']} x {r['features']} (finished before the "
                             f"time-out): {_fmt(r['seconds_per_tree_total'])} s/tree total, "
                             f"{_fmt(r.get('seconds_per_tree_online'))} s online, plain xgboost "
                             f"{_fmt(r.get('plain_xgboost_seconds_per_tree'))} s/tree")
    tp = results.get("tree_plain")
    if _ok(tp) and _get(tp, "xorboost_config"):
        c = tp["xorboost_config"]
        lines.append(f"plain ppboost backend {c['rows']} x {c['features']}: {_fmt(c['plain_s_per_tree'])} "
                     f"s/tree vs xgboost {_fmt(c['xgboost_s_per_tree_incl_sketch'])} s/tree")
    mpc = results.get("mpc")
    for r in (_get(mpc, "results") or []) if _ok(mpc) else []:
        lines.append(f"MPC {r['name']} ({r.get('elements')} elements): online {_fmt(r['online_seconds'])} s, "
                     f"{_fmt(r.get('slowdown_vs_numpy'))}x numpy wall, "
                     f"{_fmt(r.get('cpu_slowdown_vs_numpy'))}x numpy CPU")
    nl = results.get("mpc_nonlinear")
    for r in (_get(nl, "results") or []) if _ok(nl) else []:
        lines.append(f"MPC {r['name']} ({r.get('elements')} elements): "
                     f"{_fmt(r.get('elements_per_second'))}/s prefetched, "
                     f"{_fmt(r.get('with_dealer_elements_per_second'))}/s with the dealer on demand")
    tt = results.get("transport")
    if _ok(tt):
        lines.append(f"transport: TLS processes {_fmt(_get(tt, 'tls_processes', 'pingpong_MBps'))} MB/s "
                     f"ping-pong, round trip {_fmt(_get(tt, 'tls_processes', 'small_message_round_trip_us'))} us; "
                     f"in-process {_fmt(_get(tt, 'inprocess_threads', 'pingpong_MBps'))} MB/s")
    srv = results.get("server")
    if _ok(srv):
        plain_rps = _get(srv, "plain_xgboost", f"rows_per_s_batch{_get(srv, 'batch')}")
        lines.append(f"server: plain xgboost {_fmt(plain_rps)}"
                     f" rows/s (batches of {_get(srv, 'batch')}); encrypted in-process ceiling "
                     + ", ".join(f"{_fmt(r['rows_per_s'])} rows/s ({r['threads']} thread(s))"
                                 for r in _get(srv, "in_process_predict") or []))
    return lines


def write_summary(results: dict, out: Path, run_meta: dict, plots: list, files: dict | None = None) -> Path:
    rows = evaluate_targets(results)
    L = ["# ppboost benchmark summary", ""]
    g = run_meta.get("git", {})
    m = run_meta.get("machine", {})
    if run_meta.get("summarized_from"):
        # the figures come from saved files: describe those, not the machine summarising them
        L.append(f"Summary written by `benchmarks/run_all.py --summarize` on {run_meta.get('date_utc')} "
                 f"from the JSON saved in `{run_meta['summarized_from']}` (nothing re-run). Each "
                 "benchmark's date, commit and load average are in the table below where its "
                 "file has a `run_all` block; files written by a benchmark's author have none.")
    else:
        L.append(f"Written by `benchmarks/run_all.py` on {run_meta.get('date_utc')}"
                 f"{' (--quick: tiny sizes, figures not comparable with the targets)' if run_meta.get('quick') else ''}"
                 f" in {_fmt(run_meta.get('total_seconds'))} s.")
        L.append(f"Commit `{(g.get('commit') or '?')[:12]}`"
                 f"{' (with uncommitted changes in the working tree)' if g.get('uncommitted_changes_to_tracked_files') else ''}; "
                 f"{m.get('cpu_model')}, {m.get('cpu_count')} cores, {m.get('memory_GiB')} GiB; "
                 f"Python {m.get('python')}, numpy {m.get('numpy')}, numba {m.get('numba')}, "
                 f"xgboost {m.get('xgboost')}. Load average (1, 5, 15 min) at start "
                 f"{run_meta.get('load_average_start')}, at end {run_meta.get('load_average_end')}.")
    L += ["", "## Targets", "",
          "| area | measured | value | target | status | published reference | note |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        val = f"{_fmt(r['measured'])} {r['unit']}" if r["measured"] is not None else "-"
        L.append(f"| {r['area']} | {r['what']} | {val} | {r['target'] or '-'} {r['unit'] if r['target'] else ''} "
                 f"| **{r['status']}** | {r['reference'] or '-'} | {r['note'] or ''} |")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("met", "NOT met", "not comparable", "not measured")}
    L += ["", "Status counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ".",
          "Statuses are computed from the JSON by `evaluate_targets` in run_all.py.", ""]
    L += ["## Benchmarks run", "",
          "| benchmark | status | date (UTC) | commit | wall s | load avg before -> after | file |",
          "|---|---|---|---|---|---|---|"]
    for name, doc in results.items():
        ra = doc.get("run_all", {}) if isinstance(doc, dict) else {}
        st = ra.get("status", "(saved JSON, not run by run_all)")
        err = f": {ra['error']}" if ra.get("error") else ""
        L.append(f"| {name} | {st}{err} | {(ra.get('date_utc') or '-')[:16]} | "
                 f"{((ra.get('git') or {}).get('commit') or '-')[:8]} | {_fmt(ra.get('seconds'))} | "
                 f"{ra.get('load_average_before', '-')} -> {ra.get('load_average_after', '-')} | "
                 f"{(files or {}).get(name, name + '.json')} |")
    not_run = [n for n, d in results.items() if not _ok(d)]
    if not_run:
        L += ["", "**Not run or failed:** " + ", ".join(not_run) +
              ". Their figures are absent above (\"not measured\"); see each JSON's `run_all` "
              "for the error."]
    skipped = [n for n in BENCHMARKS if n not in results]
    if skipped:
        L += ["", ("No saved result for: " if run_meta.get("summarized_from") else
                   "Not selected in this run: ") + ", ".join(skipped) + "."]
    hl = headline(results)
    if hl:
        L += ["", "## Other measured figures", ""] + [f"- {h}" for h in hl]
    if plots:
        L += ["", "## Plots", ""] + [f"- [{p.name}]({p.name})" for p in plots]
    L.append("")
    path = out / "SUMMARY.md"
    path.write_text("\n".join(L))
    return path


# --------------------------------------------------------------------------- main

def load_results(folder: Path) -> tuple:
    """Saved benchmark documents ``<folder>/<name>.json`` (name in BENCHMARKS; also accepts
    the benchmark authors' own ``bench_<name>.json``): ({name: document}, {name: file name})."""
    res, files = {}, {}
    for name, b in BENCHMARKS.items():
        for cand in (folder / f"{name}.json", folder / f"{Path(b.script).stem}.json"):
            if cand.exists():
                res[name] = json.loads(cand.read_text())
                files[name] = cand.name
                break
    return res, files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes (smoke test); writes to a new temporary directory unless --out")
    ap.add_argument("--only", nargs="+", metavar="NAME", help=f"subset of: {', '.join(BENCHMARKS)}")
    ap.add_argument("--out", type=Path, help=f"output directory (default {DEFAULT_OUT.relative_to(REPO)}, "
                                              "or a temporary directory with --quick)")
    ap.add_argument("--timeout", type=float, help="time limit per benchmark in seconds "
                                                  "(default: each benchmark's own)")
    ap.add_argument("--summarize", type=Path, metavar="DIR",
                    help="run nothing: plots and SUMMARY.md from the JSON saved in DIR")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    if a.only:
        bad = [n for n in a.only if n not in BENCHMARKS]
        if bad:
            ap.error(f"unknown benchmark {', '.join(map(repr, bad))}, expected one of {', '.join(BENCHMARKS)}")
    names = a.only or list(BENCHMARKS)
    if a.out is None:
        a.out = Path(tempfile.mkdtemp(prefix="ppboost-bench-quick-")) if a.quick else \
            (a.summarize or DEFAULT_OUT)
    out = a.out.resolve()
    if a.quick and out == DEFAULT_OUT.resolve():
        ap.error(f"--quick must not write to {DEFAULT_OUT.relative_to(REPO)} (the committed results); "
                 "give another --out or none")
    out.mkdir(parents=True, exist_ok=True)
    run_meta = {"date_utc": _now(), "quick": a.quick, "git": git_info(), "machine": machine(),
                "load_average_start": [round(x, 2) for x in os.getloadavg()],
                "argv": sys.argv[1:] if argv is None else list(argv)}
    if a.summarize:
        results, files = load_results(a.summarize)
        results = {n: results[n] for n in names if n in results}
        run_meta["summarized_from"] = str(a.summarize)
    else:
        results, files = {}, None
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        t_all = time.perf_counter()
        for name in names:
            b = BENCHMARKS[name]
            print(f"[run_all] {name}: {' '.join(command_for(b, a.quick)[1:])[:120]}", file=sys.stderr,
                  flush=True)
            doc = run_benchmark(b, a.quick, a.timeout, logs)
            doc["run_all"].update(date_utc=run_meta["date_utc"], git=run_meta["git"],
                                  machine=run_meta["machine"])
            results[name] = doc
            (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
            ra = doc["run_all"]
            print(f"[run_all] {name}: {ra['status']} in {ra['seconds']} s"
                  f"{' - ' + ra['error'] if ra.get('error') else ''}", file=sys.stderr, flush=True)
        run_meta["total_seconds"] = round(time.perf_counter() - t_all, 1)
    run_meta["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    plots = []
    if not a.no_plots:
        sys.path.insert(0, str(HERE))
        import plots as _plots
        plots = _plots.make_all(results, out)
    summary = write_summary(results, out, run_meta, plots, files)
    index = {**run_meta, "benchmarks": {n: d.get("run_all", {}).get("status", "saved") for n, d in results.items()},
             "targets": evaluate_targets(results), "plots": [p.name for p in plots]}
    (out / "run_all.json").write_text(json.dumps(index, indent=1) + "\n")
    print(json.dumps({"out": str(out), "summary": str(summary), "total_seconds": run_meta.get("total_seconds"),
                      "benchmarks": index["benchmarks"],
                      "targets": {r["what"]: r["status"] for r in index["targets"]}}, indent=1))
    return 0 if all(_ok(d) for d in results.values()) else 1


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)      # unwinds run_benchmark, which kills the running benchmark


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    raise SystemExit(main())
