"""Tests for benchmarks/ (run_all.py, report.py, registry.py, targets.py, common.py,
plots.py): a --quick smoke run, failure reporting, target evaluation from the targets
table, the shared machine record.  Budget: ~60 s (the smoke run starts real benchmark
subprocesses)."""
import ast
import dataclasses
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import registry  # noqa: E402
import report  # noqa: E402
import run_all  # noqa: E402
import targets  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One real --quick run of the two fastest benchmarks (MPC core, transport), ~10 s.
    (All seven in --quick take ~90 s on the shared 2-core machine: over this file's budget.)"""
    out = tmp_path_factory.mktemp("quick")
    rc = run_all.main(["--quick", "--only", "mpc", "transport", "--out", str(out)])
    return rc, out


def test_quick_run_writes_results_metadata_plots_summary(quick_run):
    rc, out = quick_run
    assert rc == 0
    for name in ("mpc", "transport"):
        doc = json.loads((out / f"{name}.json").read_text())
        ra = doc["run_all"]
        assert ra["status"] == "ok" and ra["quick"] is True and ra["returncode"] == 0
        assert len(ra["git"]["commit"]) == 40
        assert ra["machine"]["cpu_count"] >= 1 and ra["machine"]["numpy"]
        assert ra["date_utc"].endswith("+00:00") and ra["seconds"] > 0
        assert "cpu_steal_fraction" in ra
        # each benchmark records its own machine block (common.Run) with the CPU steal
        m = doc["machine"]
        assert m["cpu_count"] >= 1 and m["numpy"] and m["cpu_model"]
        assert "cpu_steal_fraction" in m and len(m["load_average_end"]) == 3
    # the benchmark's own JSON is kept unchanged next to the metadata
    mpc = json.loads((out / "mpc.json").read_text())
    names = [r["name"] for r in mpc["results"]]
    assert "beaver_mul" in names and "owner_permutation" in names
    assert not any(n.startswith("comparison") for n in names)   # nonlinear ones stay apart
    assert all(r["elements"] == 2000 and r["online_seconds"] > 0 for r in mpc["results"])
    tr = json.loads((out / "transport.json").read_text())
    assert tr["array_MB"] == 1 and tr["tls_processes"]["pingpong_MBps"] > 0
    assert (out / "mpc_slowdown_vs_numpy.png").read_bytes()[:8] == PNG
    assert not (out / "query_latency.png").exists()       # no inference run: no empty plot
    summary = (out / "SUMMARY.md").read_text()
    assert "--quick" in summary
    (skipped,) = [ln.split("Not selected in this run: ", 1)[1] for ln in summary.splitlines()
                  if "Not selected in this run: " in ln]
    assert skipped.rstrip(".").split(", ") == [n for n in registry.BENCHMARKS
                                               if n not in ("mpc", "transport")]
    assert "MPC beaver_mul (2000 elements): online" in summary      # registry Figure line
    assert "transport: TLS processes " in summary
    index = json.loads((out / "run_all.json").read_text())
    status = {r["what"]: r["status"] for r in index["targets"]}
    # quick sizes (2,000 elements, 1024-bit keys) are measured but not comparable with targets
    assert status["Beaver multiplication: online time / numpy time (2 parties)"] == "not comparable"
    assert status["one query end to end, p50, in process"] == "not measured"
    assert status["seconds per tree, online phase"] == "not measured"


def test_summarize_saved_results_gives_same_targets(quick_run, tmp_path):
    _, out = quick_run
    assert run_all.main(["--summarize", str(out), "--out", str(tmp_path), "--no-plots"]) == 0
    a = json.loads((out / "run_all.json").read_text())["targets"]
    b = json.loads((tmp_path / "run_all.json").read_text())["targets"]
    assert a == b


def test_failed_timed_out_and_missing_benchmarks_are_reported(tmp_path, monkeypatch):
    fail = tmp_path / "fail.py"
    fail.write_text("import sys\nprint('boom: no such dataset', file=sys.stderr)\nsys.exit(3)\n")
    slow = tmp_path / "slow.py"
    cell = {"rows": 1000, "features": 10, "trees": 1, "depth": 4, "max_bin": 128,
            "seconds_per_tree_total": 4.0, "seconds_per_tree_online": 2.0,
            "plain_xgboost_seconds_per_tree": 0.1}
    slow.write_text(f"import json, time\nprint(json.dumps({cell!r}), flush=True)\ntime.sleep(60)\n")
    benches = {"server": registry.Bench("server", str(tmp_path / "absent.py")),
               "mpc": registry.Bench("mpc", str(fail)),
               # the real training entry (its partial-line Figure), started on the slow script
               "training": dataclasses.replace(registry.BENCHMARKS["training"], script=str(slow),
                                               quick_timeout=3.0)}
    monkeypatch.setattr(run_all, "BENCHMARKS", benches)
    out = tmp_path / "out"
    rc = run_all.main(["--quick", "--out", str(out), "--timeout", "3"])
    assert rc == 1
    docs = {n: json.loads((out / f"{n}.json").read_text()) for n in benches}
    assert docs["server"]["run_all"]["status"] == "missing"
    assert docs["mpc"]["run_all"]["status"] == "failed"
    assert "boom: no such dataset" in docs["mpc"]["run_all"]["stderr_tail"]
    assert docs["training"]["run_all"]["status"] == "timeout"
    assert docs["training"]["partial_lines"] == [cell]
    # nothing but the metadata (and partial lines) is written for them: no invented numbers
    assert set(docs["mpc"]) == {"run_all"} and set(docs["server"]) == {"run_all"}
    summary = (out / "SUMMARY.md").read_text()
    assert "**Not run or failed:** server, mpc, training" in summary
    assert "secure training 1000 x 10 (finished before the time-out): 4.00 s/tree total" in summary
    assert (out / "training_time_vs_rows.png").read_bytes()[:8] == PNG   # partial, marked so
    index = json.loads((out / "run_all.json").read_text())
    assert index["benchmarks"] == {"server": "missing", "mpc": "failed", "training": "timeout"}
    assert {r["status"] for r in index["targets"]} == {"not measured"}


def test_quick_refuses_committed_results_and_unknown_names(capsys):
    with pytest.raises(SystemExit):
        run_all.main(["--quick", "--out", str(run_all.DEFAULT_OUT)])
    assert "must not write to benchmarks/results" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_all.main(["--only", "trainig"])
    assert "unknown benchmark 'trainig', expected one of training, " in capsys.readouterr().err


def _status(rows, prefix):
    (r,) = [r for r in rows if r["what"].startswith(prefix)]
    return r["status"], r["measured"]


def test_targets_are_computed_from_measured_numbers():
    training = {"xorboost_config": {"rows": 25000, "features": 300, "depth": 4, "max_bin": 128,
                                    "seconds_per_tree_total": 12.5, "seconds_per_tree_online": 2.5}}
    inference = {"key_bits": 3072,
                 "single_query": {"end_to_end": {"p50_ms": 11.0, "p99_ms": 40.0}},
                 "enrolment_reference_model": {"model_encryption_excl_keygen_s_median": 0.6,
                                               "enroll_total_s_median": 1.4}}
    server = {"key_bits": 3072, "batch": 64, "servers": [
        {"workers": 1, "latency_single_query": {"end_to_end_ms": {"p50": 20.0}},
         "throughput": [{"clients": 4, "rows_per_s": 299.0}]},
        {"workers": 2, "latency_single_query": {"end_to_end_ms": {"p50": 9.0}},
         "throughput": [{"clients": 4, "rows_per_s": 301.0}]}]}
    mpc = {"n_parties": 2, "results": [
        {"name": "beaver_mul", "elements": 10 ** 6, "slowdown_vs_numpy": 14.0, "cpu_slowdown_vs_numpy": 16.0},
        {"name": "owner_permutation", "elements": 1000, "slowdown_vs_numpy": 3.0}]}
    nl = {"results": [{"name": "comparison_ltz", "elements": 10 ** 6, "elements_per_second": 9e5}]}
    rows = run_all.evaluate_targets({"training": training, "inference": inference, "server": server,
                                     "mpc": mpc, "mpc_nonlinear": nl})
    assert _status(rows, "seconds per tree, total") == ("NOT met", 12.5)
    assert _status(rows, "seconds per tree, online") == ("met", 2.5)
    assert _status(rows, "seconds per tree vs XORBoost") == ("met", 12.5)
    assert _status(rows, "one query end to end, p50, in") == ("met", 11.0)
    assert _status(rows, "one query end to end, p99, in") == ("NOT met", 40.0)
    assert _status(rows, "model encryption per user") == ("met", 0.6)
    assert _status(rows, "enrolment per user incl") == ("NOT met", 1.4)
    assert _status(rows, "model encryption, ~4,400") == ("not measured", None)
    assert _status(rows, "one query end to end over HTTP, p50 (1") == ("NOT met", 20.0)
    assert _status(rows, "one query end to end over HTTP, p50 (2") == ("met", 9.0)
    assert _status(rows, "queries/s, 4 concurrent clients x batches of 64 (1") == ("NOT met", 299.0)
    assert _status(rows, "queries/s, 4 concurrent clients x batches of 64 (2") == ("met", 301.0)
    assert _status(rows, "Beaver multiplication: online") == ("met", 14.0)
    assert _status(rows, "Beaver multiplication: the same in thread CPU") == ("NOT met", 16.0)
    assert _status(rows, "owner-known permutation: online") == ("not comparable", 3.0)  # 1,000 < 10^6
    assert _status(rows, "comparison [x < 0], 64-bit") == ("NOT met", 9e5)
    # deployment (issue 11): bytes / rounds per tree equal, wall ratio, PSI at 100k ids
    cfg = {"rows": 25000, "features": 300, "depth": 4, "max_bin": 128,
           "max_bytes_per_tree_difference": 0, "max_rounds_per_tree_difference": 2,
           "wall_per_tree_ratio_deployed_over_simulated": 1.25}
    deploy = {"xorboost_config": cfg,
              "psi": {"ids_per_party": 100000, "deployed": {"agreement_psi_delivery_seconds": 8.0},
                      "threads_inprocess": {"seconds": 21.0}}}
    rows = run_all.evaluate_targets({"deploy": deploy})
    assert _status(rows, "bytes per tree, `ppboost party`") == ("met", 0)
    assert _status(rows, "rounds per tree, `ppboost party`") == ("NOT met", 2)
    assert _status(rows, "wall time per tree, deployed") == ("met", 1.25)
    assert _status(rows, "PSI, 100000 ids at each of 2 parties, deployed") == ("met", 8.0)
    assert _status(rows, "PSI, 100000 ids at each of 2 parties, psi_leader/psi_partner in two "
                         "threads") == ("NOT met", 21.0)
    assert _status(rows, "PSI, 100000 ids at each of 2 parties, psi_leader/psi_partner in two "
                         "processes") == ("not measured", None)
    small = {"xorboost_config": {**cfg, "rows": 2000}, "psi": {**deploy["psi"], "ids_per_party": 5000}}
    rows = run_all.evaluate_targets({"deploy": small})
    assert _status(rows, "wall time per tree, deployed")[0] == "not comparable"
    assert _status(rows, "PSI, 5000 ids at each of 2 parties, deployed")[0] == "not comparable"
    # the XORBoost rows need the XORBoost size; 1024-bit keys are not comparable
    small = {**training["xorboost_config"], "rows": 2500}
    rows = run_all.evaluate_targets({"training": {"xorboost_config": small},
                                     "inference": {**inference, "key_bits": 1024}})
    assert _status(rows, "seconds per tree, total")[0] == "not comparable"
    assert _status(rows, "one query end to end, p50, in")[0] == "not comparable"


def test_parse_last_json_skips_progress_lines():
    text = '{"rows": 1}\n{"rows": 2}\n{\n "scaling": [1, 2],\n "x": {"a": 1}\n}\n\n'
    assert run_all.parse_last_json(text) == {"scaling": [1, 2], "x": {"a": 1}}
    assert run_all.parse_last_json("compiling...\nTraceback\n") is None


def test_plots_drawn_from_benchmark_documents(tmp_path):
    import plots
    cell = lambda n, m, t: {"rows": n, "features": m, "trees": 1, "depth": 4, "max_bin": 128,
                            "seconds_per_tree_total": t, "seconds_per_tree_online": t / 3,
                            "plain_xgboost_seconds_per_tree": t / 100}
    training = {"scaling": [cell(1000, 10, 1.0), cell(10000, 10, 4.0), cell(1000, 100, 3.0)],
                "xorboost_config": cell(25000, 300, 40.0)}
    pct = lambda a: {"p50_ms": a, "p99_ms": 3 * a}
    inference = {"key_bits": 3072, "single_query": {k: pct(v) for k, v in (
        ("client_ope", 1.0), ("server", 1.5), ("decrypt", 20.0), ("end_to_end", 25.0))}}
    server = {"key_bits": 3072, "batch": 64, "model": {"trees": 100},
              "plain_xgboost": {"rows_per_s_batch64": 2500.0},
              "in_process_predict": [{"threads": 1, "rows_per_s": 330.0}],
              "servers": [{"workers": w, "latency_single_query": {"end_to_end_ms": {"p50": 30.0, "p99": 60.0}},
                           "throughput": [{"clients": c, "rows_per_s": 250.0 + 10 * c * w} for c in (1, 2, 4)]}
                          for w in (1, 2)]}
    mpc = {"n_parties": 2, "results": [{"name": "beaver_mul", "elements": 10 ** 6, "slowdown_vs_numpy": 9.0}]}
    failed = {"run_all": {"status": "failed"}}
    written = plots.make_all({"training": training, "inference": inference, "server": server,
                              "mpc": mpc, "mpc_nonlinear": failed}, tmp_path)
    assert sorted(p.name for p in written) == sorted([
        "training_time_vs_rows.png", "training_time_vs_features.png", "query_latency.png",
        "throughput_vs_clients.png", "mpc_slowdown_vs_numpy.png"])
    assert all(p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000 for p in written)
    assert plots.make_all({"training": failed}, tmp_path / "none") == []


def test_registry_targets_and_scripts_agree():
    names = set(registry.BENCHMARKS)
    assert "secure_binning" in names
    assert {t.bench for t in targets.TARGETS} <= names
    files = [b.results for b in registry.BENCHMARKS.values()]
    assert len(set(files)) == len(files)
    scripts = {Path(b.script).stem for b in registry.BENCHMARKS.values()}
    for b in registry.BENCHMARKS.values():
        src = (BENCH / b.script).read_text()
        tree = ast.parse(src)
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & scripts, f"{b.script} imports another benchmark script"
        assert "common.emit(" in src and "common.Run(" in src, b.script
        assert "def machine(" not in src, b.script


def _summary_body(path):
    """SUMMARY.md without its header line (the date it was written) and plot links."""
    return path.read_text().split("## Targets", 1)[1].split("## Plots")[0].strip()


def test_committed_results_summarize_to_the_committed_targets(tmp_path):
    """SUMMARY.md and run_all.json in benchmarks/results are what --summarize makes of the
    JSON saved there (every registered benchmark has its file; no stale bench_*.json)."""
    res = run_all.DEFAULT_OUT
    assert not list(res.glob("bench_*.json"))
    saved, files = run_all.load_results(res)
    assert set(saved) == set(registry.BENCHMARKS)
    assert run_all.main(["--summarize", str(res), "--out", str(tmp_path), "--no-plots"]) == 0
    committed = json.loads((res / "run_all.json").read_text())["targets"]
    assert json.loads((tmp_path / "run_all.json").read_text())["targets"] == committed
    assert _summary_body(tmp_path / "SUMMARY.md") == _summary_body(res / "SUMMARY.md")


def test_paths_and_templates():
    doc = {"n": 3, "results": [{"name": "a", "v": 1.23456, "l": [5, 6]}, {"name": "b", "v": None}],
           "plain": {"rows_per_s_batch64": 1e6}}
    assert report.resolve(doc, "results[name=a].v") == 1.23456
    assert report.resolve(doc, "results[1].name") == "b"
    assert report.resolve(doc, "results[name=a].l[-1]") == 6
    assert report.resolve(doc, "results[name=c].v") is None
    assert report.resolve(doc, "results[7]") is None
    assert report.resolve(doc, "plain.rows_per_s_batch*") == 1e6
    assert [e["name"] for e in report.elements(doc, ["results[*]"])] == ["a", "b"]
    e = doc["results"][0]
    assert report.render("{name}: {v} of {/n}, {missing}, {missing|none}", e, doc) == \
        "a: 1.23 of 3, -, none"


def test_common_run_record():
    run = common.Run()
    rec = run.record()
    assert rec["cpu_count"] >= 1 and rec["python"] and rec["wall_seconds"] >= 0
    assert set(rec) >= {"cpu_model", "memory_GiB", "numpy", "xgboost", "load_average_start",
                        "load_average_end", "cpu_steal_fraction", "note"}
    steal = rec["cpu_steal_fraction"]
    assert steal is None or 0 <= steal <= 1
    assert common.best_of(lambda: None, 3) >= 0
