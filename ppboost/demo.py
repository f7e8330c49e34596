"""``ppboost demo``: the main job end to end, in one command.

Early multiple-sclerosis (MS) diagnosis across three simulated hospitals and an
insurer (synthetic data, :mod:`ppboost.datasets.ms`):

1. generate the data for 3 hospitals (rows) and the insurer (one extra column);
2. train securely (MPC, mixed split) with ``ppboost.train`` and, in the same
   run, plain xgboost on the pooled data with the same params; AUC, accuracy
   and time side by side;
3. reveal the model to the analyst and save it as xgboost JSON;
4. start the prediction server (``ppboost serve``) as a background process on
   127.0.0.1, enrol a patient user through the Proxy, send encrypted queries
   for a few held-out patients and show the decrypted risk scores next to the
   plaintext model's;
5. say what each party saw (bytes, rounds) and what stayed secret.

It uses only public APIs (``ppboost.train``, ``SecretSharedModel.reveal``,
``ppboost.inference.Proxy`` / ``Client``, the HTTP service and its client),
no network beyond 127.0.0.1, and is sized to finish in a few minutes on a
2-core machine.  If a part of ppboost it needs is missing from the
installation, it says which one and stops with exit code 1: it never shows
made-up results.  The plain-xgboost pooled baseline is for comparison only:
pooling the data is exactly what a real deployment must not do.
"""
from __future__ import annotations

import importlib
import math
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import PPBoostError

__all__ = ["main", "DemoConfig", "DemoUnavailable", "format_table"]


@dataclass(frozen=True)
class DemoConfig:
    """The demo's sizes (defaults keep it within a few minutes on 2 cores)."""

    n_hospitals: int = 3
    n_patients: int = 3000
    n_test: int = 1000
    # with this seed the model splits on the categorical column 'region', so step 4 also
    # serves categorical splits
    seed: int = 2021
    num_boost_round: int = 10
    max_depth: int = 3
    eta: float = 0.3
    max_bin: int = 64            # every MS column has <= 63 distinct values: exact binning
    base_score: float = 0.1      # a public prior (MS prevalence), not estimated from the data
    n_queries: int = 5           # held-out patients sent as encrypted queries
    key_bits: int = 3072         # the user's Paillier modulus (ppboost's default)
    server_timeout: float = 60.0  # seconds to wait for the server to answer /v1/health

    def params(self) -> dict:
        """Training parameters (xgboost names), identical for secure and plain training."""
        return {"objective": "binary:logistic", "max_depth": self.max_depth, "eta": self.eta,
                "max_bin": self.max_bin, "base_score": self.base_score,
                # region has 4 categories: one-vs-rest splits, as ppboost does (see tree/params.py)
                "max_cat_to_onehot": 5}


class DemoUnavailable(PPBoostError, RuntimeError):
    """A part of ppboost the demo needs is not available: the demo stops here.

    A failure of the installation or the machine (a missing module, a prediction
    server that does not start), not of one layer, so it sits directly under
    :class:`~ppboost.errors.PPBoostError`, as ``cli.CliError`` does."""


# --------------------------------------------------------------------------- report helpers
def format_table(headers, rows, align=None) -> str:
    """A plain-text table: headers, a rule, rows; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(headers))]
    if align is None:
        align = ["<"] + [">"] * (len(headers) - 1)
    out = []
    for i, r in enumerate(cells):
        out.append("  " + "  ".join(f"{v:{a}{w}}" for v, a, w in zip(r, align, widths)).rstrip())
        if i == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _cell(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return str(v)


def _bytes(n) -> str:
    n = float(n)
    if math.isnan(n):
        return "n/a"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


class _Report:
    def __init__(self, out=None):
        self.out = out or sys.stdout

    def __call__(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, i: int, n: int, title: str) -> None:
        self()
        self(f"[{i}/{n}] {title}")
        self("-" * (len(title) + 6))


def _require(module: str, attr: str | None, what: str):
    """Import ``module`` (and ``attr``) or raise DemoUnavailable naming the missing piece."""
    try:
        mod = importlib.import_module(module)
        return getattr(mod, attr) if attr else mod
    except (ImportError, AttributeError) as e:
        name = f"{module}.{attr}" if attr else module
        raise DemoUnavailable(
            f"{what} needs {name}, which cannot be imported here ({type(e).__name__}: {e}); "
            "the prediction service's packages come with: pip install 'ppboost[server]'") from e


# --------------------------------------------------------------------------- the steps
def _step_data(cfg: DemoConfig, say: _Report):
    from ppboost.datasets import make_ms_hospitals

    ms = make_ms_hospitals(n_hospitals=cfg.n_hospitals, n_patients=cfg.n_patients,
                           n_test=cfg.n_test, seed=cfg.seed)
    rows = []
    for name, (X, y) in ms.hospitals.items():
        rows.append([name, len(y), f"{100 * y.mean():.1f} %", f"{X['age'].mean():.1f}",
                     f"{100 * X['hyperlipidemia'].isna().mean():.0f} %",
                     f"{100 * X['vitamin_d'].isna().mean():.0f} %",
                     X["region"].value_counts().idxmax()])
    say(format_table(["hospital", "patients", "MS", "mean age", "no lipid test",
                      "no vit. D", "main region"], rows))
    say(f"  insurer: column 'med_reimbursements' (medication reimbursed, 100 EUR units) for all "
        f"{ms.mixed.n_rows:,} patients")
    say(f"  held-out test set: {len(ms.y_test):,} patients ({100 * ms.y_test.mean():.1f} % MS)")
    say(f"  features: {', '.join(ms.mixed.feature_names)} "
        f"({sum(t == 'c' for t in ms.mixed.feature_types)} categorical)")
    say(f"  split: {ms.mixed!r}")
    return ms


def _metrics(y, p) -> dict:
    from sklearn.metrics import accuracy_score, roc_auc_score

    return {"auc": float(roc_auc_score(y, p)), "acc": float(accuracy_score(y, p >= 0.5))}


def _dmatrix(X, pooled, booster=None):
    import xgboost

    names = pooled.feature_names
    if booster is not None and booster.feature_names is not None:
        names = list(booster.feature_names)
    return xgboost.DMatrix(X, feature_names=names, feature_types=list(pooled.feature_types),
                           enable_categorical=True)


def _step_train(cfg: DemoConfig, ms, say: _Report) -> dict:
    import xgboost

    params = cfg.params()
    pooled = ms.mixed.pooled()
    X_test = ms.mixed.encode(ms.X_test)
    say(f"  params: {params}, num_boost_round={cfg.num_boost_round}")

    # plain xgboost on the pooled data: the reference (for comparison only)
    # best of 3 runs (train only, DMatrix built before): on a shared machine one run can be
    # slowed down many times by other processes competing for the cores
    dtrain = pooled.dmatrix()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        plain = xgboost.train(params | {"tree_method": "hist"}, dtrain, cfg.num_boost_round)
        times.append(time.perf_counter() - t0)
    t_plain = min(times)
    p_plain = plain.predict(_dmatrix(X_test, pooled))
    res = {"plain": plain, "p_plain": p_plain, "t_plain": t_plain, "X_test": X_test,
           "pooled": pooled, "m_plain": _metrics(ms.y_test, p_plain)}
    say(f"  plain xgboost on the pooled data: {t_plain:.3f} s (best of 3), test AUC "
        f"{res['m_plain']['auc']:.4f}")

    # what each hospital could do alone (its own rows, no insurer column): why collaborate
    alone = []
    X_test_h = ms.horizontal.encode(ms.X_test_hospitals)
    hp = ms.horizontal.pooled()
    for name, view in ms.horizontal.parties.items():
        d = xgboost.DMatrix(view.X, label=view.y, feature_names=hp.feature_names,
                            feature_types=hp.feature_types, enable_categorical=True)
        b = xgboost.train(params | {"tree_method": "hist"}, d, cfg.num_boost_round)
        alone.append(f"{name} {_metrics(ms.y_test, b.predict(_dmatrix(X_test_h, hp)))['auc']:.4f}")
    say(f"  each hospital alone (plain xgboost, own patients, no insurer column), test AUC: "
        f"{', '.join(alone)}")

    from ppboost.training import train
    say(f"  secure training: {len(ms.mixed.parties)} parties "
        f"({', '.join(ms.mixed.party_names)}) + the dealer, in-process threads ...")
    t0 = time.perf_counter()
    model = train(params, ms.mixed, num_boost_round=cfg.num_boost_round, verbose=True)
    t_secure = time.perf_counter() - t0
    n_trees = getattr(model, "num_trees", None) or cfg.num_boost_round
    say(f"  secure training done: {t_secure:.1f} s ({t_secure / n_trees:.1f} s per tree; "
        f"plain xgboost: {1000 * t_plain / cfg.num_boost_round:.1f} ms per tree)")
    res.update(model=model, t_secure=t_secure)
    return res


def _step_reveal(cfg: DemoConfig, ms, res: dict, outdir: Path, say: _Report) -> None:
    import xgboost

    booster = res["model"].reveal()
    path = outdir / "ms_model.json"
    booster.save_model(str(path))
    reloaded = xgboost.Booster(model_file=str(path))
    d = _dmatrix(res["X_test"], res["pooled"], booster)
    p_secure = booster.predict(d)
    same = np.array_equal(p_secure, reloaded.predict(d))
    m_sec = _metrics(ms.y_test, p_secure)
    margin_diff = float(np.max(np.abs(booster.predict(d, output_margin=True)
                                      - res["plain"].predict(_dmatrix(res["X_test"], res["pooled"]),
                                                             output_margin=True))))
    res.update(booster=booster, p_secure=p_secure, m_secure=m_sec, model_path=path,
               margin_diff=margin_diff)
    n_trees = len(booster.get_dump())
    say(f"  revealed to the analyst: {n_trees} trees, saved as xgboost JSON: {path}")
    say(f"  reloaded with plain xgboost.Booster(model_file=...): predictions "
        f"{'identical' if same else 'DIFFERENT (unexpected)'}")
    say()
    say(format_table(
        ["", "secure (ppboost, MPC)", "plain xgboost (pooled)"],
        [["test AUC", m_sec["auc"], res["m_plain"]["auc"]],
         ["test accuracy (p >= 0.5)", m_sec["acc"], res["m_plain"]["acc"]],
         ["training time (s)", f"{res['t_secure']:.2f}", f"{res['t_plain']:.3f}"]]))
    say(f"  largest margin difference between the two models on the test set: {margin_diff:.2e}")
    first = _first_structural_difference(booster, res["plain"])
    if first is None:
        say("  every tree has the same splits as plain xgboost's (leaf values differ only by "
            "fixed-point rounding)")
    else:
        matched = f"trees 1-{first} have the same splits as plain xgboost's; " if first else ""
        say(f"  {matched}tree {first + 1} picks "
            "a different split (e.g. two candidates with almost equal gain, ordered differently "
            "by fixed-point arithmetic), and later trees follow from it")
    res["same_reload"] = same


def _first_structural_difference(a, b) -> int | None:
    """Index of the first tree whose splits differ between boosters a and b (None: none)."""
    import re

    def shape(dump):
        return re.sub(r"leaf=[-+0-9.eE]+|,(gain|cover)=[-+0-9.eE]+", "", dump)

    da, db = a.get_dump(), b.get_dump()
    for i, (x, y) in enumerate(zip(da, db)):
        if shape(x) != shape(y):
            return i
    return None if len(da) == len(db) else min(len(da), len(db))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """``ppboost serve`` as a background OS process on 127.0.0.1 (always stopped on exit)."""

    def __init__(self, outdir: Path, timeout: float):
        self.outdir, self.timeout = outdir, timeout
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_urlsafe(24)
        self.proc = None
        self.log_path = outdir / "server.log"

    def __enter__(self):
        tok = self.outdir / "admin.token"
        fd = os.open(tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.admin_token)
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [sys.executable, "-m", "ppboost.cli", "serve", "--db", str(self.outdir / "models.db"),
               "--host", "127.0.0.1", "--port", str(self.port), "--admin-token-file", str(tok)]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        from ppboost.inference.http_client import ServiceClient, ServiceError

        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise DemoUnavailable(
                    f"the prediction server exited with code {self.proc.returncode} at start-up; "
                    f"its log ({self.log_path}):\n{self._tail()}")
            try:
                with ServiceClient(self.url, timeout=2.0) as svc:
                    svc.health()
                return self
            except ServiceError:
                if time.monotonic() > deadline:
                    raise DemoUnavailable(
                        f"the prediction server did not answer {self.url}/v1/health within "
                        f"{self.timeout:.0f} s; its log:\n{self._tail()}") from None
                time.sleep(0.2)

    def _tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:  # pragma: no cover
            return "(no log)"

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return False


def _step_encrypted(cfg: DemoConfig, ms, res: dict, outdir: Path, say: _Report) -> None:
    from tqdm import tqdm

    Proxy = _require("ppboost.inference", "Proxy", "encrypted prediction (step 4)")
    Client = _require("ppboost.inference", "Client", "encrypted prediction (step 4)")
    http = _require("ppboost.inference.http_client", None, "encrypted prediction (step 4)")
    _require("ppboost.inference.server", "create_app", "the prediction server (step 4)")

    user = "patient_portal"
    with _Server(outdir, cfg.server_timeout) as server:
        say(f"  prediction server: `ppboost serve` pid {server.proc.pid} on {server.url} "
            f"(log {server.log_path})")
        t0 = time.perf_counter()
        try:
            proxy = Proxy(res["booster"], key_bits=cfg.key_bits)
            enrollment = proxy.enroll(user)
        except ValueError as e:  # e.g. a model feature the encrypted service does not support
            raise DemoUnavailable(f"the Proxy cannot encrypt the revealed model: {e}") from e
        blob = enrollment.model.to_bytes()
        t_enroll = time.perf_counter() - t0
        with http.ServiceClient(server.url, admin_token=server.admin_token) as admin:
            answer = admin.upload_model(user, blob)
        token = answer["token"]
        say(f"  the Proxy enrolled user {user!r}: Paillier {cfg.key_bits}-bit key, OPE key, "
            f"encrypted model {_bytes(len(blob))} ({t_enroll:.1f} s); uploaded to the server, "
            "which holds no secret key")
        client = Client(enrollment.keys)
        X = res["X_test"]
        idx = _query_rows(ms.y_test, cfg.n_queries, cfg.seed)
        rows, latencies, qbytes = [], [], []
        with http.ServiceClient(server.url, token=token) as svc:
            for i in tqdm(idx, desc="encrypted queries", unit="query", file=sys.stderr,
                          leave=False):
                t0 = time.perf_counter()
                q = client.encrypt(X[i:i + 1])
                result = svc.predict(user, q)
                score = float(np.asarray(client.decrypt(result), dtype=np.float64).ravel()[0])
                latencies.append(time.perf_counter() - t0)
                qbytes.append(len(q.to_bytes()))
                plain_score = float(res["p_secure"][i])
                rows.append([int(i), ms.hospital_names[int(ms.test_hospital[i])],
                             "MS" if ms.y_test[i] else "no MS", score, plain_score,
                             f"{abs(score - plain_score):.1e}", f"{1000 * latencies[-1]:.0f}"])
    say(format_table(["patient", "hospital", "truth", "decrypted risk", "plaintext model",
                      "|diff|", "ms"], rows))
    say(f"  each query: {_bytes(np.mean(qbytes))} encrypted; median latency "
        f"{1000 * float(np.median(latencies)):.0f} ms end to end (encrypt, HTTP, decrypt; the "
        "first query also loads the model into the server's cache)")
    res["query_max_diff"] = max(float(r[5]) for r in rows)


def _query_rows(y, k: int, seed: int) -> np.ndarray:
    """A few held-out patients, with at least one MS case when there is one."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = min(len(pos), max(1, k // 2))
    pick = np.concatenate([rng.choice(pos, n_pos, replace=False),
                           rng.choice(neg, min(len(neg), k - n_pos), replace=False)])
    return np.sort(pick)


def _traffic(stats) -> dict | None:
    """Read one participant's traffic from whatever ``model.stats`` holds for it."""
    if stats is None:
        return None
    if hasattr(stats, "snapshot"):
        stats = stats.snapshot()
    elif not isinstance(stats, dict):
        stats = {k: getattr(stats, k) for k in dir(stats) if not k.startswith("_")}
    out = {}
    for key, names in (("sent", ("sent", "bytes_sent", "total_sent")),
                       ("recv", ("recv", "received", "bytes_recv", "bytes_received",
                                 "total_recv")),
                       ("rounds", ("rounds",)),
                       ("seconds", ("online_seconds", "offline_seconds", "seconds"))):
        for n in names:
            v = stats.get(n)
            if isinstance(v, dict):
                v = sum(v.values())
            if isinstance(v, (int, float, np.integer, np.floating)):
                out[key] = v
                break
    return out or None


def _step_parties(ms, res: dict, say: _Report) -> None:
    stats = getattr(res["model"], "stats", None)
    if not stats:
        say("  per-party traffic: not reported by this version of ppboost.train "
            "(SecretSharedModel.stats is missing)")
    else:
        # documented format (ppboost.training): {"parties": {name: {...}}, "dealer": {...}}
        parties = stats.get("parties") if isinstance(stats, dict) else None
        if isinstance(parties, dict):
            entries = list(parties.items()) + [("dealer", stats.get("dealer"))]
        else:
            entries = list(stats.items()) if isinstance(stats, dict) else []
        rows = []
        for name, s in entries:
            t = _traffic(s)
            if t is None:
                continue
            if name == "dealer" and "recv" not in t and isinstance(s, dict) \
                    and isinstance(s.get("transcript"), list) and isinstance(parties, dict):
                dealer_id = len(parties)
                t["recv"] = sum(n for _, r, n in s["transcript"] if r == dealer_id)
            p = ms.mixed.parties.get(name)
            holds = (f"{p.n_rows:,} rows x {p.n_features} cols"
                     + (" + labels" if p.has_labels else "")) if p else "randomness only"
            rows.append([name, holds, _bytes(t.get("sent", float("nan"))),
                         _bytes(t.get("recv", float("nan"))), t.get("rounds", "n/a"),
                         f"{t['seconds']:.2f}" if "seconds" in t else "n/a"])
        if rows:
            say(format_table(["participant", "holds", "sent", "received", "rounds",
                              "busy s"], rows))
            say("  (busy s: a party's online seconds, its wall time minus the time spent "
                "getting dealer material; the dealer's offline seconds, spent producing "
                "correlated randomness: from the second boosting round on it prepares each "
                "round's material while the parties work)")
            if isinstance(stats, dict) and "wall_seconds" in stats:
                say(f"  secure training wall time {stats['wall_seconds']:.1f} s over the "
                    f"{stats.get('transport', 'in-process')} transport, "
                    f"{res['model'].num_trees if hasattr(res['model'], 'num_trees') else '?'} "
                    "trees; shared 2-core machine, timings are noisy")
        else:
            say(f"  per-party traffic: model.stats is in a format the demo does not read: "
                f"{stats!r:.300}")
    say()
    say("  What stayed secret:")
    for line in (
        "- each hospital's patients, labels and the insurer's column never left their owner in "
        "the clear: other parties only received values masked with fresh randomness;",
        "- during training nobody learned split features, thresholds, leaf values or which "
        "patients went where; only the public shapes, bin counts, depth, number of trees and "
        "objective;",
        "- the dealer only handed out correlated randomness and saw no data;",
        "- the analyst learned the finished model (no per-node patient counts / cover "
        "statistics); the Proxy knew the model and the user's keys;",
        "- the prediction server never saw a query's values or its score: it compared "
        "order-preserving ciphertexts and added Paillier ciphertexts. It did learn each query's "
        "path through the trees and which features were missing (OPE's leakage).",
    ):
        say(textwrap.fill(line, width=96, initial_indent="    ", subsequent_indent="      "))


# --------------------------------------------------------------------------- main
def main(config: DemoConfig | None = None, outdir: str | os.PathLike | None = None,
         out=None) -> int:
    """Run the demo; returns the process exit code (0 = every step done)."""
    cfg = config or DemoConfig()
    say = _Report(out)
    t_start = time.perf_counter()
    outdir = Path(outdir) if outdir is not None else Path(tempfile.mkdtemp(prefix="ppboost-demo-"))
    outdir.mkdir(parents=True, exist_ok=True)
    say("ppboost demo: early MS diagnosis across hospitals, without pooling their data")
    say("=" * 78)
    import xgboost

    say(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, xgboost {xgboost.__version__}; files in {outdir}")
    say("The data is synthetic (ppboost.datasets.ms documents the generating model).")
    n = 5
    try:
        say.step(1, n, "Data: 3 hospitals hold their patients, the insurer one more column")
        ms = _step_data(cfg, say)
        say.step(2, n, "Training: secure (MPC, mixed split) vs plain xgboost on pooled data")
        res = _step_train(cfg, ms, say)
        say.step(3, n, "Reveal the model to the analyst and export it as xgboost JSON")
        _step_reveal(cfg, ms, res, outdir, say)
        say.step(4, n, "Encrypted prediction: a patient queries the server, encrypted")
        _step_encrypted(cfg, ms, res, outdir, say)
        say.step(5, n, "What each party saw")
        _step_parties(ms, res, say)
    except DemoUnavailable as e:
        say()
        say(f"DEMO STOPPED: {e}")
        say("Nothing after this point was run; no result above was made up.")
        return 1
    say()
    say(f"Done in {time.perf_counter() - t_start:.1f} s. Model: {res['model_path']}")
    ok = res.get("same_reload", False)
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
