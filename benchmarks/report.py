"""The summary of a benchmark run, from the benchmarks' JSON documents.

``evaluate_targets(results)`` marks each row of ``targets.TARGETS``; ``headline(results)``
renders each benchmark's ``registry.Figure`` lines; ``write_summary`` writes SUMMARY.md.
``results`` maps a benchmark name to its document; a document whose ``run_all.status``
is not ``ok`` (failed, timed out, missing) counts as not measured.  No number is ever
filled in: what the JSON does not hold is shown as ``-`` or "not measured".
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from registry import BENCHMARKS
from targets import TARGETS

# --------------------------------------------------------------------------- paths

_TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def resolve(doc, path: str):
    """The value at ``path`` in ``doc`` (syntax in targets.py), or None."""
    for m in _TOKEN.finditer(path):
        key, sel = m.group(1), m.group(2)
        if key is not None:
            if not isinstance(doc, dict):
                return None
            if key in doc:
                doc = doc[key]
            elif "*" in key:
                hits = [k for k in doc if fnmatch.fnmatchcase(str(k), key)]
                if not hits:
                    return None
                doc = doc[hits[0]]
            else:
                return None
        elif "=" in sel:
            field, want = sel.split("=", 1)
            if not isinstance(doc, list):
                return None
            hits = [e for e in doc if isinstance(e, dict) and str(e.get(field)) == want]
            if not hits:
                return None
            doc = hits[0]
        else:
            if not isinstance(doc, list) or not sel.lstrip("-").isdigit() \
                    or not -len(doc) <= int(sel) < len(doc):
                return None
            doc = doc[int(sel)]
    return doc


def _lookup(elem, doc, path: str):
    return resolve(doc, path[1:]) if path.startswith("/") else resolve(elem, path)


def elements(doc, paths) -> list:
    """The elements the ``paths`` name (``x[*]``: every element of list ``x``)."""
    out = []
    for p in paths:
        if p.endswith("[*]"):
            v = resolve(doc, p[:-3])
            out += [e for e in v if isinstance(e, dict)] if isinstance(v, list) else []
        else:
            v = resolve(doc, p)
            if isinstance(v, dict):
                out.append(v)
    return out


def fmt(v) -> str:
    """A number for reading: floats to 3 significant figures or 2 decimals, else as is."""
    if v is None:
        return "-"
    if isinstance(v, float):
        a = abs(v)
        if a >= 1e5:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    return str(v)


_FIELD = re.compile(r"\{([^{}|]+)(?:\|([^{}]*))?\}")


def render(template: str, elem, doc=None) -> str:
    """``template`` with each ``{path}`` / ``{path|default}`` replaced (see registry.py)."""
    doc = elem if doc is None else doc

    def sub(m):
        v = _lookup(elem, doc, m.group(1))
        if v is None and m.group(2) is not None:
            return m.group(2)
        return fmt(v)
    return _FIELD.sub(sub, template)


def ok(doc) -> bool:
    """A document with figures in it (no ``run_all`` block: saved by hand, counts as ok)."""
    return isinstance(doc, dict) and resolve(doc, "run_all.status") in (None, "ok")


# --------------------------------------------------------------------------- targets

def _row(t, measured, what, conditions_ok, cond_note) -> dict:
    if measured is None:
        status = "not measured"
    elif not conditions_ok:
        status = "not comparable"
    else:
        status = "met" if (measured <= t.target if t.op == "<=" else measured >= t.target) \
            else "NOT met"
    note = cond_note if status == "not comparable" else t.note
    return {"area": t.area, "what": what, "measured": measured, "unit": t.unit,
            "target": f"{t.op} {t.target:g}", "status": status, "reference": t.reference,
            "note": note}


def _conditions(t, elem, doc) -> tuple:
    bad = []
    for path, op, want in t.require:
        v = _lookup(elem, doc, path)
        good = v is not None and (v == want if op == "==" else v >= want)
        if not good:
            bad.append(f"{path.lstrip('/')} is {fmt(v)} (the target needs {op} {want:g})")
    return not bad, "; ".join(bad)


def evaluate_targets(results: dict, targets=None) -> list:
    """Every target of ``targets.TARGETS`` against the numbers in ``results``."""
    rows = []
    for t in TARGETS if targets is None else targets:
        doc = results.get(t.bench)
        doc = doc if ok(doc) else {}
        what = render(t.what, doc)
        if t.each is None:
            cases = [(doc, what)]
        else:
            items = resolve(doc, t.each)
            items = [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []
            cases = [(e, f"{what} ({render(t.each_label, e, doc)})") for e in items] or [({}, what)]
        for elem, label in cases:
            measured = _lookup(elem, doc, t.measure)
            if not isinstance(measured, (int, float)) or isinstance(measured, bool):
                measured = None
            if measured is None and t.optional:
                continue
            rows.append(_row(t, measured, label, *_conditions(t, elem, doc)))
    return rows


# --------------------------------------------------------------------------- figures

def headline(results: dict, benchmarks=None) -> list:
    """Each benchmark's Figure lines (``partial`` ones for the lines a timed-out run printed)."""
    lines = []
    for name, doc in results.items():
        b = (BENCHMARKS if benchmarks is None else benchmarks).get(name)
        if b is None or not isinstance(doc, dict):
            continue
        if ok(doc):
            for f in b.figures:
                for e in elements(doc, f.each) if f.each else [doc]:
                    if f.needs is None or resolve(e, f.needs) is not None:
                        lines.append(render(f.template, e, doc))
        elif b.partial is not None and resolve(doc, "run_all.status") == "timeout":
            for e in doc.get("partial_lines", []):
                if isinstance(e, dict) and (b.partial.needs is None
                                            or resolve(e, b.partial.needs) is not None):
                    lines.append(render(b.partial.template, e, doc))
    return lines


# --------------------------------------------------------------------------- SUMMARY.md

def _steal(doc) -> str:
    v = resolve(doc, "machine.cpu_steal_fraction")
    if v is None:
        v = resolve(doc, "run_all.cpu_steal_fraction")
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "-"


def write_summary(results: dict, out: Path, run_meta: dict, plots: list, files: dict | None = None,
                  benchmarks=None) -> Path:
    """Write ``out/SUMMARY.md``: targets, the benchmarks' status and other figures."""
    benchmarks = BENCHMARKS if benchmarks is None else benchmarks
    rows = evaluate_targets(results)
    L = ["# ppboost benchmark summary", ""]
    g = run_meta.get("git", {})
    m = run_meta.get("machine", {})
    if run_meta.get("summarized_from"):
        # the figures come from saved files: describe those, not the machine summarising them
        L.append(f"Summary written by `benchmarks/run_all.py --summarize` on {run_meta.get('date_utc')} "
                 f"from the JSON saved in `{run_meta['summarized_from']}` (nothing re-run). Each "
                 "benchmark's date, commit, load average and CPU steal are in the table below "
                 "where its file records them.")
    else:
        steal = run_meta.get("cpu_steal_fraction")
        quick = " (--quick: tiny sizes, figures not comparable with the targets)" \
            if run_meta.get("quick") else ""
        dirty = " (with uncommitted changes in the working tree)" \
            if g.get("uncommitted_changes_to_tracked_files") else ""
        L.append(f"Written by `benchmarks/run_all.py` on {run_meta.get('date_utc')}{quick}"
                 f" in {fmt(run_meta.get('total_seconds'))} s.")
        L.append(f"Commit `{(g.get('commit') or '?')[:12]}`{dirty}; "
                 f"{m.get('cpu_model')}, {m.get('cpu_count')} cores, {m.get('memory_GiB')} GiB; "
                 f"Python {m.get('python')}, numpy {m.get('numpy')}, numba {m.get('numba')}, "
                 f"xgboost {m.get('xgboost')}. Load average (1, 5, 15 min) at start "
                 f"{run_meta.get('load_average_start')}, at end {run_meta.get('load_average_end')}; "
                 f"CPU steal over the run {'-' if steal is None else f'{100 * steal:.1f}%'}.")
    L += ["", "## Targets", "",
          "| area | measured | value | target | status | published reference | note |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        val = f"{fmt(r['measured'])} {r['unit']}" if r["measured"] is not None else "-"
        L.append(f"| {r['area']} | {r['what']} | {val} | {r['target']} {r['unit']} "
                 f"| **{r['status']}** | {r['reference'] or '-'} | {r['note'] or ''} |")
    counts = {s: sum(r["status"] == s for r in rows)
              for s in ("met", "NOT met", "not comparable", "not measured")}
    L += ["", "Status counts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ".",
          "Targets are the rows of `benchmarks/targets.py`; statuses are computed from the JSON "
          "by `evaluate_targets` in `benchmarks/report.py`.", ""]
    L += ["## Benchmarks run", "",
          "| benchmark | status | date (UTC) | commit | wall s | load avg before -> after "
          "| CPU steal | file |",
          "|---|---|---|---|---|---|---|---|"]
    for name, doc in results.items():
        ra = doc.get("run_all", {}) if isinstance(doc, dict) else {}
        st = ra.get("status", "(saved JSON, not run by run_all)")
        err = f": {ra['error']}" if ra.get("error") else ""
        b = benchmarks.get(name)
        L.append(f"| {name} | {st}{err} | {(ra.get('date_utc') or '-')[:16]} | "
                 f"{((ra.get('git') or {}).get('commit') or '-')[:8]} | {fmt(ra.get('seconds'))} | "
                 f"{ra.get('load_average_before', '-')} -> {ra.get('load_average_after', '-')} | "
                 f"{_steal(doc)} | "
                 f"{(files or {}).get(name, b.results if b else name + '.json')} |")
    not_run = [n for n, d in results.items() if not ok(d)]
    if not_run:
        L += ["", "**Not run or failed:** " + ", ".join(not_run) +
              ". Their figures are absent above (\"not measured\"); see each JSON's `run_all` "
              "for the error."]
    skipped = [n for n in benchmarks if n not in results]
    if skipped:
        L += ["", ("No saved result for: " if run_meta.get("summarized_from") else
                   "Not selected in this run: ") + ", ".join(skipped) + "."]
    hl = headline(results, benchmarks)
    if hl:
        L += ["", "## Other measured figures", ""] + [f"- {h}" for h in hl]
    if plots:
        L += ["", "## Plots", ""] + [f"- [{p.name}]({p.name})" for p in plots]
    L.append("")
    path = out / "SUMMARY.md"
    path.write_text("\n".join(L))
    return path
