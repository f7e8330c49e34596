"""PNG plots of the benchmark results (matplotlib, Agg backend).  Used by run_all.py.

``make_all(results, out_dir) -> [paths]`` where ``results`` maps a benchmark
name (``training``, ``mpc``, ``mpc_nonlinear``, ``inference``, ``server``, ...)
to the JSON document that benchmark printed.  A plot whose data is missing is
skipped (not drawn empty).  Not a test.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _ok(doc) -> bool:
    return isinstance(doc, dict) and doc.get("run_all", {}).get("status", "ok") == "ok"


def _subtitle(doc) -> str:
    ra = doc.get("run_all", {})
    m = ra.get("machine") or doc.get("machine") or {}
    bits = [f"{m.get('cpu_count', '?')} cores"]
    if ra.get("date_utc"):
        bits.append(ra["date_utc"][:16].replace("T", " ") + " UTC")
    if ra.get("git", {}).get("commit"):
        bits.append(ra["git"]["commit"][:8])
    if ra.get("load_average_before"):
        bits.append(f"load avg {ra['load_average_before'][0]:g} at start")
    if ra.get("quick"):
        bits.append("--quick sizes")
    return ", ".join(bits)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_points(doc) -> list:
    """Every secure-training measurement in the training benchmark's JSON (deduplicated)."""
    pts, seen = [], set()
    for r in (doc.get("scaling") or []) + (doc.get("runs") or []) + \
            ([doc["xorboost_config"]] if doc.get("xorboost_config") else []):
        key = (r["rows"], r["features"], r.get("trees"))
        if key not in seen:
            seen.add(key)
            pts.append(r)
    return pts


def training_scaling(doc, out: Path) -> list:
    pts = training_points(doc)
    if not pts:
        return []
    written = []
    for x_key, g_key, x_label, g_label, fname in (
            ("rows", "features", "rows (samples)", "features", "training_time_vs_rows.png"),
            ("features", "rows", "features", "rows", "training_time_vs_features.png")):
        fig, ax = plt.subplots(figsize=(10, 5.2))
        groups = sorted({p[g_key] for p in pts})
        for i, g in enumerate(groups):
            sel = sorted((p for p in pts if p[g_key] == g), key=lambda p: p[x_key])
            xs = [p[x_key] for p in sel]
            c = COLORS[i % len(COLORS)]
            ax.plot(xs, [p["seconds_per_tree_total"] for p in sel], "o-", color=c,
                    label=f"secure, total ({g} {g_label})")
            ax.plot(xs, [p["seconds_per_tree_online"] for p in sel], "s--", color=c, alpha=0.8,
                    label=f"secure, online ({g} {g_label})")
            ax.plot(xs, [p["plain_xgboost_seconds_per_tree"] for p in sel], "^:", color=c, alpha=0.8,
                    label=f"plain xgboost hist ({g} {g_label})")
        ref_x = 25000 if x_key == "rows" else 300
        ax.plot([ref_x], [90], marker="X", ms=11, color="red", ls="none",
                label="XORBoost published: 90 s/tree (25,000 x 300)")
        ax.plot([ref_x], [10], marker="*", ms=14, color="green", ls="none",
                label="target: 10 s/tree total (25,000 x 300)")
        ax.plot([ref_x], [3], marker="*", ms=11, color="limegreen", ls="none",
                label="target: 3 s/tree online (25,000 x 300)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(x_label + " (log scale)")
        ax.set_ylabel("seconds per tree (log scale)")
        d = pts[0]
        ax.set_title(f"Secure vs plain training time against {x_key}"
                     f"{' (PARTIAL: benchmark timed out)' if doc.get('partial') else ''}\n"
                     f"depth {d.get('depth')}, {d.get('max_bin')} bins, 2 parties in process\n"
                     f"{_subtitle(doc)}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        written.append(_save(fig, out / fname))
    return written


def query_latency(inf, srv, out: Path) -> list:
    """Horizontal bars: p50 and p99 per stage (in process) and end to end over HTTP."""
    labels, p50, p99 = [], [], []
    if inf is not None:
        sq = inf.get("single_query", {})
        for key, label in (("client_ope", "client: OPE encrypt"), ("server", "server: predict"),
                           ("decrypt", "client: Paillier decrypt"),
                           ("end_to_end", "end to end, in process")):
            if key in sq:
                labels.append(label)
                p50.append(sq[key]["p50_ms"])
                p99.append(sq[key]["p99_ms"])
        pl = sq.get("plain_inplace_predict_nthread1")
        if pl:
            labels.append("plain xgboost inplace_predict")
            p50.append(pl["p50_ms"])
            p99.append(pl["p99_ms"])
    if srv is not None:
        for run in srv.get("servers", []):
            e = run.get("latency_single_query", {}).get("end_to_end_ms")
            if e:
                labels.append(f"end to end over HTTP, {run['workers']} worker(s)")
                p50.append(e["p50"])
                p99.append(e["p99"])
    if not labels:
        return []
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 2.6))
    y = list(range(len(labels)))
    h = 0.38
    ax.barh([v - h / 2 for v in y], p50, height=h, label="p50", color=COLORS[0])
    ax.barh([v + h / 2 for v in y], p99, height=h, label="p99", color=COLORS[1])
    for v, a, b in zip(y, p50, p99):
        ax.text(a, v - h / 2, f" {a:.3g}", va="center", fontsize=7)
        ax.text(b, v + h / 2, f" {b:.3g}", va="center", fontsize=7)
    ax.axvline(12, color="green", ls="--", label="target: 12 ms per query")
    ax.axvline(63, color="red", ls=":", label="PPXGBoost reference: ~63 ms")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per query, one row (log scale)")
    src = inf if inf is not None else srv
    bits = {d.get("key_bits") for d in (inf, srv) if d is not None}
    trees = (srv or {}).get("model", {}).get("trees")
    ax.set_title("Encrypted prediction: query latency percentiles\n"
                 f"{'/'.join(str(b) for b in sorted(bits, key=str))}-bit Paillier"
                 f"{f', {trees} trees' if trees else ''}\n{_subtitle(src)}", fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.set_xlim(right=max(*p99, 63) * 3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    return [_save(fig, out / "query_latency.png")]


def throughput(srv, out: Path) -> list:
    runs = [r for r in srv.get("servers", []) if r.get("throughput")]
    if not runs:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, run in enumerate(runs):
        t = sorted(run["throughput"], key=lambda r: r["clients"])
        ax.plot([r["clients"] for r in t], [r["rows_per_s"] for r in t], "o-", color=COLORS[i],
                label=f"HTTP server, {run['workers']} worker process(es)")
    for j, r in enumerate(srv.get("in_process_predict", [])):
        ax.axhline(r["rows_per_s"], color=COLORS[len(runs) + j], ls="--", alpha=0.8,
                   label=f"in-process predict ceiling, {r['threads']} thread(s)")
    plain = srv.get("plain_xgboost", {}).get(f"rows_per_s_batch{srv.get('batch')}")
    if plain:
        ax.axhline(plain, color="grey", ls=":", label="plain xgboost predict (no encryption)")
    ax.plot([4], [300], marker="*", ms=14, color="green", ls="none",
            label="target: >= 300 rows/s at 4 clients")
    ax.set_yscale("log")
    clients = sorted({r["clients"] for run in runs for r in run["throughput"]})
    ax.set_xticks(clients)
    ax.set_xlabel("concurrent clients (one HTTP connection each)")
    ax.set_ylabel("encrypted rows (queries) per second (log scale)")
    ax.set_title(f"Encrypted prediction service: throughput, batches of {srv.get('batch')} rows\n"
                 f"{srv.get('key_bits')}-bit Paillier, {srv.get('model', {}).get('trees')} trees; "
                 f"clients share the cores with the server\n{_subtitle(srv)}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return [_save(fig, out / "throughput_vs_clients.png")]


def mpc_slowdown(mpc, nl, out: Path) -> list:
    rows = []
    for k, doc in enumerate((mpc, nl)):
        if doc is not None:
            for r in doc.get("results", []):
                if r.get("slowdown_vs_numpy"):
                    rows.append((r["name"], r["slowdown_vs_numpy"], r.get("elements"), k))
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 2.0))
    y = list(range(len(rows)))
    for k, label in ((0, "core (bench_mpc)"), (1, "comparison family (bench_mpc_nonlinear)")):
        sel = [(v, r) for v, r in zip(y, rows) if r[3] == k]
        if sel:
            ax.barh([v for v, _ in sel], [r[1] for _, r in sel], color=COLORS[k], label=label)
    for v, r in zip(y, rows):
        ax.text(r[1], v, f" {r[1]:.3g}x" if r[1] < 100 else f" {r[1]:,.0f}x", va="center", fontsize=7)
    ax.axvline(15, color="green", ls="--", label="target for Beaver product and permutation: 15x")
    ax.set_xlim(left=min(1.0, min(r[1] for r in rows) / 2), right=max(r[1] for r in rows) * 4)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r[0]} ({r[2]:,} el.)" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("online wall time / numpy wall time on the same data (log scale)")
    src = mpc if mpc is not None else nl
    ax.set_title(f"MPC protocols: slowdown vs plain numpy, {src.get('n_parties', 2)} parties in process\n"
                 f"{_subtitle(src)}", fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return [_save(fig, out / "mpc_slowdown_vs_numpy.png")]


def make_all(results: dict, out: Path) -> list:
    out = Path(out)
    get = lambda k: results.get(k) if _ok(results.get(k)) else None
    written = []
    tr = results.get("training")
    if get("training"):
        written += training_scaling(get("training"), out)
    elif isinstance(tr, dict) and tr.get("run_all", {}).get("status") == "timeout" and \
            any("seconds_per_tree_total" in r for r in tr.get("partial_lines", [])):
        # the cells finished before the time limit (printed one JSON line each), marked partial
        part = {"runs": [r for r in tr["partial_lines"] if "seconds_per_tree_total" in r],
                "run_all": {**tr["run_all"], "quick": tr["run_all"].get("quick")}, "partial": True}
        written += training_scaling(part, out)
    if get("inference") or get("server"):
        written += query_latency(get("inference"), get("server"), out)
    if get("server"):
        written += throughput(get("server"), out)
    if get("mpc") or get("mpc_nonlinear"):
        written += mpc_slowdown(get("mpc"), get("mpc_nonlinear"), out)
    return written
