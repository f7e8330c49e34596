"""Run every ppboost benchmark, keep its JSON, draw the plots and write SUMMARY.md.

Usage::

    python benchmarks/run_all.py                      # full run -> benchmarks/results/
    python benchmarks/run_all.py --quick              # tiny sizes -> a new temporary directory
    python benchmarks/run_all.py --only mpc inference --out /tmp/bench
    python benchmarks/run_all.py --summarize benchmarks/results
                                                      # no run: plots + summary from saved JSON

The benchmarks are listed in ``registry.py`` (script, arguments, time limit, results
file, summary lines) and their targets in ``targets.py``.  Each benchmark script runs
in its own subprocess and process group with a time limit; the JSON document it prints
is written to ``<out>/<results file>`` unchanged, with one extra top-level key
``"run_all"`` holding the run's metadata (UTC date, git commit, machine, command, wall
time, load average, CPU steal, exit status).  A benchmark that is missing, fails or
times out is written with ``"run_all": {"status": ...}`` and the tail of its stderr
and nothing else (plus, for a time-out, any complete JSON lines it printed before,
under ``"partial_lines"``); the summary lists it under "not run / failed".  No number
is ever filled in for a benchmark that did not produce it.

Then ``plots.py`` draws the PNGs and ``report.py`` writes ``SUMMARY.md``: the measured
figures next to the targets and the published reference points, each target marked
met / not met, or "not comparable" when the run was not made in the target's
conditions (e.g. ``--quick`` sizes, 1024-bit keys).

This is not a test.  On a shared machine timings are noisy; the load average and the
hypervisor's CPU steal are recorded.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import REPO, StealMeter, load_average, machine, write_json
from registry import BENCHMARKS, Bench
from report import evaluate_targets, ok, write_summary

HERE = common.HERE
DEFAULT_OUT = common.RESULTS


# --------------------------------------------------------------------------- metadata

def _git(*args) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


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
            "load_average_before": load_average()}
    if not path.exists():
        meta.update(status="missing", error=f"{shown} does not exist", seconds=0.0)
        return {"run_all": meta}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        steal = StealMeter()
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
        steal_fraction = steal.fraction()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if log_dir is not None:
        (log_dir / f"{b.name}.stderr.log").write_text(stderr)
    meta.update(seconds=round(seconds, 2), returncode=rc, load_average_after=load_average(),
                cpu_steal_fraction=steal_fraction)
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


# --------------------------------------------------------------------------- main

def load_results(folder: Path, benchmarks=None) -> tuple:
    """The saved documents in ``folder``, each benchmark's from its results file:
    ({name: document}, {name: file name})."""
    res, files = {}, {}
    for name, b in (BENCHMARKS if benchmarks is None else benchmarks).items():
        path = folder / b.results
        if path.exists():
            res[name] = json.loads(path.read_text())
            files[name] = path.name
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
            ap.error(f"unknown benchmark {', '.join(map(repr, bad))}, "
                     f"expected one of {', '.join(BENCHMARKS)}")
    names = a.only or list(BENCHMARKS)
    if a.out is None:
        a.out = Path(tempfile.mkdtemp(prefix="ppboost-bench-quick-")) if a.quick else \
            (a.summarize or DEFAULT_OUT)
    out = a.out.resolve()
    if a.quick and out == DEFAULT_OUT.resolve():
        ap.error(f"--quick must not write to {DEFAULT_OUT.relative_to(REPO)} (the committed results); "
                 "give another --out or none")
    out.mkdir(parents=True, exist_ok=True)
    steal = StealMeter()
    run_meta = {"date_utc": _now(), "quick": a.quick, "git": git_info(), "machine": machine(),
                "load_average_start": load_average(),
                "argv": sys.argv[1:] if argv is None else list(argv)}
    if a.summarize:
        results, files = load_results(a.summarize, BENCHMARKS)
        results = {n: results[n] for n in names if n in results}
        run_meta["summarized_from"] = str(a.summarize)
    else:
        results, files = {}, {}
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
            files[name] = write_json(out / b.results, doc).name
            ra = doc["run_all"]
            print(f"[run_all] {name}: {ra['status']} in {ra['seconds']} s"
                  f"{' - ' + ra['error'] if ra.get('error') else ''}", file=sys.stderr, flush=True)
        run_meta["total_seconds"] = round(time.perf_counter() - t_all, 1)
        run_meta["cpu_steal_fraction"] = steal.fraction()
    run_meta["load_average_end"] = load_average()
    plots = []
    if not a.no_plots:
        sys.path.insert(0, str(HERE))
        import plots as _plots
        plots = _plots.make_all(results, out)
    summary = write_summary(results, out, run_meta, plots, files, BENCHMARKS)
    index = {**run_meta,
             "benchmarks": {n: d.get("run_all", {}).get("status", "saved") for n, d in results.items()},
             "targets": evaluate_targets(results), "plots": [p.name for p in plots]}
    write_json(out / "run_all.json", index)
    print(json.dumps({"out": str(out), "summary": str(summary),
                      "total_seconds": run_meta.get("total_seconds"),
                      "benchmarks": index["benchmarks"],
                      "targets": {r["what"]: r["status"] for r in index["targets"]}}, indent=1))
    return 0 if all(ok(d) for d in results.values()) else 1


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)      # unwinds run_benchmark, which kills the running benchmark


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    raise SystemExit(main())
