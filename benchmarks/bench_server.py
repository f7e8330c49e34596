"""HTTP and HTTPS benchmark of the encrypted prediction service, and its soak (not a test).

Model: xgboost ``binary:logistic``, 100 trees of depth 6 on breast_cancer;
3072-bit Paillier by default.  The server runs as its own process
(``python -m ppboost.cli serve``), once per ``--workers`` value and scheme:
plain HTTP on 127.0.0.1 (``servers``) and HTTPS with a throwaway CA and an
ECDSA P-256 server certificate (``servers_https``; the clients verify it).
``https_vs_http`` compares the two at each client count.

Measured:

- ``latency``: one query (one row) at a time, end to end through HTTP:
  client OPE encryption + POST (octet-stream) + server evaluation +
  client decryption.  p50/p99 and the split into encrypt / HTTP round trip
  (server evaluation included) / decrypt.
- ``throughput``: C concurrent clients (threads of this process, one HTTP
  connection each) send batches of B pre-encrypted rows for ``--seconds``;
  rows/s counted on answered requests.  Encryption is done before the clock
  starts and results are not decrypted in the loop: this measures the server.
- ``in_process_predict``: ``EncryptedModel.predict`` on the same batches
  without HTTP, 1 and 2 threads: the ceiling the server can reach.
- ``plain``: ``booster.predict`` on the same rows in this process
  (single-row latency, and rows/s for batches of B).

``--soak`` runs only the soak instead (:func:`soak`, also used by the test
suite): 8 clients for at most 30 s against one HTTPS server, each sending a
seeded mix of valid queries (octet-stream and JSON, every answer decrypted and
compared with ``booster.predict``) and invalid requests (wrong token, another
user's id, garbage bytes, a body one byte over the limit, an infinite value,
a traversal id, an upload aborted mid-body, health checks).  Measured: the
status of every answer against the expected one, 5xx count, decryption
errors, and the server's RSS after the warm-up and at the end.

Prints one JSON document (and writes it to ``--out`` if given).  The machine
is shared and has 2 cores: the clients run on the same cores as the server,
so throughput figures are a lower bound and noisy.

    python benchmarks/bench_server.py                # full run (a few minutes)
    python benchmarks/bench_server.py --quick        # 1024-bit keys, 20 trees, short
    python benchmarks/bench_server.py --soak         # the soak, 30 s
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common
import httpx
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

REPO = common.REPO
common.repo_on_path()

from ppboost.inference import Client, Proxy  # noqa: E402
from ppboost.inference.http_client import ServiceClient  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1e3, q))


def make_tls(d: Path) -> dict:
    """A throwaway CA and a server certificate for 127.0.0.1 (ECDSA P-256): file paths."""
    from ppboost.transport.certs import generate_ca, issue_participant_cert, write_cert, write_key
    ca, ca_key = generate_ca("bench-https", days=2)
    cert, key = issue_participant_cert(ca, ca_key, "bench-https", 0, 1,
                                       hosts=("127.0.0.1", "localhost"), days=2)
    return {"ca": write_cert(ca, d / "ca.crt"), "cert": write_cert(cert, d / "server.crt"),
            "key": write_key(key, d / "server.key")}


def start_server(db, admin_file, workers, max_batch, log, tls=None):
    """The server process; ``tls`` (the dict of :func:`make_tls`) makes it HTTPS."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "ppboost.cli", "serve", "--db", str(db), "--port", str(port),
           "--admin-token-file", str(admin_file), "--workers", str(workers),
           "--max-batch", str(max_batch)]
    if tls:
        cmd += ["--tls-cert", tls["cert"], "--tls-key", tls["key"]]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=tls["ca"]) if tls else True
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/v1/health", timeout=1, verify=verify).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_latency(url, token, user, client, X, n, bc, ca=None):
    enc, rtt, dec, tot = [], [], [], []
    with ServiceClient(url, token=token, ca=ca) as svc:
        for i in range(n + 5):
            row = X[i % len(X)][None, :]
            t0 = time.perf_counter()
            q = client.encrypt(row).to_bytes()
            t1 = time.perf_counter()
            r = svc.predict_bytes(user, q)
            t2 = time.perf_counter()
            p = client.decrypt(r)
            t3 = time.perf_counter()
            if i < 5:
                assert abs(p[0] - bc.predict(xgb.DMatrix(row))[0]) < 1e-6
                continue                                   # warm-up
            enc.append(t1 - t0), rtt.append(t2 - t1), dec.append(t3 - t2), tot.append(t3 - t0)
    return {"n": n, "end_to_end_ms": {"p50": _pct(tot, 50), "p99": _pct(tot, 99),
                                      "mean": float(np.mean(tot) * 1e3)},
            "encrypt_ms_p50": _pct(enc, 50), "http_roundtrip_incl_server_ms_p50": _pct(rtt, 50),
            "http_roundtrip_incl_server_ms_p99": _pct(rtt, 99), "decrypt_ms_p50": _pct(dec, 50)}


def bench_throughput(url, token, user, batches, n_clients, seconds, ca=None):
    stop = threading.Event()
    counts = [0] * n_clients
    lat = [[] for _ in range(n_clients)]
    errors = []

    def worker(k):
        try:
            with ServiceClient(url, token=token, ca=ca) as svc:
                i = k
                while not stop.is_set():
                    b, n = batches[i % len(batches)]
                    t0 = time.perf_counter()
                    svc.predict_bytes(user, b)
                    lat[k].append(time.perf_counter() - t0)
                    counts[k] += n
                    i += n_clients
        except Exception as e:  # reported in the JSON
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    el = time.perf_counter() - t0
    all_lat = [x for ls in lat for x in ls]
    return {"clients": n_clients, "rows_per_s": sum(counts) / el, "requests": len(all_lat),
            "request_ms_p50": _pct(all_lat, 50) if all_lat else None,
            "request_ms_p99": _pct(all_lat, 99) if all_lat else None,
            "seconds": el, "errors": errors, "_rows": sum(counts), "_lat": all_lat}


def bench_throughput_interleaved(targets: dict, batches, n_clients, seconds, rounds):
    """Throughput of several servers under the same load, measured in alternation.

    ``targets``: {name: (url, token, ca)}.  Each server gets ``rounds`` slices of
    ``seconds / rounds`` (order reversed every round), so that a change in the
    machine's load (it is shared) reaches every server alike.  Returns {name: result}.
    """
    parts = {k: [] for k in targets}
    names = list(targets)
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            url, token, ca = targets[k]
            parts[k].append(bench_throughput(url, token, "bench", batches, n_clients,
                                             seconds / rounds, ca))
    out = {}
    for k, ps in parts.items():
        lat = [x for p in ps for x in p["_lat"]]
        el = sum(p["seconds"] for p in ps)
        out[k] = {"clients": n_clients, "rows_per_s": sum(p["_rows"] for p in ps) / el,
                  "requests": len(lat), "request_ms_p50": _pct(lat, 50) if lat else None,
                  "request_ms_p99": _pct(lat, 99) if lat else None, "seconds": el,
                  "rounds": rounds, "rows_per_s_by_round": [round(p["rows_per_s"], 1)
                                                            for p in ps],
                  "errors": [e for p in ps for e in p["errors"]]}
    return out


def bench_in_process(model, batches, seconds, n_threads):
    """Server-side evaluation only, no HTTP: ``model.predict`` on the same batches."""
    from ppboost.inference import EncryptedModel, EncryptedQuery
    m = EncryptedModel.from_bytes(model.to_bytes())          # as the server holds it
    qs = [(EncryptedQuery.from_bytes(b), n) for b, n in batches]
    m.predict(qs[0][0])
    stop, counts = threading.Event(), [0] * n_threads

    def work(k):
        i = k
        while not stop.is_set():
            q, n = qs[i % len(qs)]
            m.predict(q)
            counts[k] += n
            i += 1
    ts = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return {"threads": n_threads, "rows_per_s": sum(counts) / (time.perf_counter() - t0)}


def bench_plain(bc, X, batch, n):
    lat = []
    for i in range(n):
        row = X[i % len(X)][None, :]
        t0 = time.perf_counter()
        bc.predict(xgb.DMatrix(row))
        lat.append(time.perf_counter() - t0)
    Xb = X[:batch]
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 2.0:
        bc.predict(xgb.DMatrix(Xb))
        reps += 1
    return {"single_row_ms_p50": _pct(lat, 50), "single_row_ms_p99": _pct(lat, 99),
            f"rows_per_s_batch{batch}": reps * batch / (time.perf_counter() - t0)}


# --------------------------------------------------------------------------- soak

def rss_kib(pid: int) -> int | None:
    """Resident set size of process ``pid`` in KiB (Linux /proc), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class SoakUser:
    """One enrolled user as the soak sees it: token, client, and prepared requests."""

    def __init__(self, user, token, client, booster, rows, max_batch, n_queries=4, seed=0):
        from ppboost.inference.keys import ope_cipher
        from ppboost.inference.server import max_query_body
        rng = np.random.default_rng(seed)
        self.user, self.token, self.client = user, token, client
        self.queries = []                          # (octet bytes, json bytes, expected)
        for _ in range(n_queries):
            X = rows[rng.choice(len(rows), size=min(max_batch, len(rows)), replace=False)]
            X = X[:int(rng.integers(1, len(X) + 1))]
            raw = client.encrypt(X).to_bytes()
            js = json.dumps({"query": base64.b64encode(raw).decode()}).encode()
            self.queries.append((raw, js, booster.predict(xgb.DMatrix(X))))
        q = client.encrypt(rows[:3])
        col = int(rng.integers(0, q.n_features))
        q.ct[1, col] = ope_cipher(client.keys.ope_key).encrypt_float32(
            np.array([client._order[col]]), np.array([np.inf], np.float32))[0]
        self.nonfinite = q.to_bytes()
        self.limit = max_query_body(client.keys.n_features, max_batch)


#: (kind, weight, expected status); "aborted" gets no answer
SOAK_MIX = (("predict", 40, 200), ("predict_json", 10, 200), ("wrong_token", 6, 401),
            ("other_user", 6, 403), ("unknown_user", 4, 403), ("garbage", 6, 400),
            ("oversize", 5, 413), ("nonfinite", 6, 400), ("traversal_id", 5, 422),
            ("aborted", 4, None), ("health", 8, 200))


def _aborted_upload(url: str, verify, path: str, token: str, length: int, send: int) -> None:
    u = httpx.URL(url)
    s = socket.create_connection((u.host, u.port), timeout=30)
    try:
        if u.scheme == "https":
            s = verify.wrap_socket(s, server_hostname=u.host)
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: {u.host}\r\nAuthorization: Bearer {token}"
                   f"\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}"
                   "\r\n\r\n").encode() + b"\0" * send)
        time.sleep(0.02)
    finally:
        s.close()


def soak(url: str, users: list, *, seconds: float, clients: int, server_pid: int,
         warmup: float = 5.0, ca: str | None = None, seed: int = 0) -> dict:
    """``clients`` threads send a seeded mix of :data:`SOAK_MIX` requests for ``seconds``
    (warm-up included) at the server ``url`` (process ``server_pid``); every answer's status
    is compared with the expected one and every valid answer decrypted and compared with the
    booster's prediction.  Returns the counts, the 5xx and decryption errors, and the
    server's RSS after the warm-up and at the end."""
    verify = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    kinds = [k for k, _, _ in SOAK_MIX]
    weights = np.array([w for _, w, _ in SOAK_MIX], float)
    expected = {k: e for k, _, e in SOAK_MIX}
    lock = threading.Lock()
    stats = {k: {"count": 0, "statuses": {}} for k in kinds}
    bad_status, client_errors = [], []
    dec = {"checked": 0, "errors": 0, "max_abs_error": 0.0}
    stop = threading.Event()
    t0 = time.perf_counter()
    rss = {"start": rss_kib(server_pid), "samples": []}

    def one(http, rng, kind):
        me = users[int(rng.integers(len(users)))]
        other = users[(users.index(me) + 1) % len(users)]
        auth = {"Authorization": f"Bearer {me.token}"}
        octet = {**auth, "Content-Type": "application/octet-stream"}
        pred = f"/v1/users/{me.user}/predict"
        raw, js, want = me.queries[int(rng.integers(len(me.queries)))]
        if kind == "predict":
            r = http.post(pred, content=raw, headers=octet)
            got = me.client.decrypt(r.content) if r.status_code == 200 else None
        elif kind == "predict_json":
            r = http.post(pred, content=js, headers={**auth, "Content-Type": "application/json"})
            got = (me.client.decrypt(base64.b64decode(r.json()["result"]))
                   if r.status_code == 200 else None)
        else:
            got = None
            if kind == "wrong_token":
                r = http.post(pred, content=raw, headers={
                    "Authorization": "Bearer ppb_0123456789abcdef_" + "A" * 43,
                    "Content-Type": "application/octet-stream"})
            elif kind == "other_user":
                r = http.post(f"/v1/users/{other.user}/predict", content=raw, headers=octet)
            elif kind == "unknown_user":
                r = http.post(f"/v1/users/nobody-{int(rng.integers(1 << 30))}/predict",
                              content=raw, headers=octet)
            elif kind == "garbage":
                r = http.post(pred, content=bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
                              headers=octet)
            elif kind == "oversize":
                r = http.post(pred, content=b"\0" * (me.limit + 1), headers=octet)
            elif kind == "nonfinite":
                r = http.post(pred, content=me.nonfinite, headers=octet)
            elif kind == "traversal_id":
                r = http.post(f"/v1/users/{me.user}%2F..%2F{other.user}/predict", content=raw,
                              headers=octet)
            elif kind == "aborted":
                _aborted_upload(url, verify, pred, me.token, me.limit - 1, me.limit // 2)
                return None
            else:
                r = http.get("/v1/health")
        if got is not None:
            err = float(np.max(np.abs(np.asarray(got) - want)))
            with lock:
                dec["checked"] += 1
                dec["max_abs_error"] = max(dec["max_abs_error"], err)
                if err > 1e-6:
                    dec["errors"] += 1
        return r.status_code

    def worker(k):
        rng = np.random.default_rng([seed, k])
        try:
            with httpx.Client(base_url=url, verify=verify, timeout=120) as http:
                while not stop.is_set():
                    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
                    status = one(http, rng, kind)
                    with lock:
                        st = stats[kind]
                        st["count"] += 1
                        if status is not None:
                            st["statuses"][str(status)] = st["statuses"].get(str(status), 0) + 1
                            if status != expected[kind] and len(bad_status) < 1000:
                                bad_status.append((kind, status))
        except Exception as e:  # reported in the JSON
            with lock:
                client_errors.append(f"client {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    warm_end = t0 + min(warmup, seconds / 2)
    while time.perf_counter() < warm_end:
        time.sleep(0.05)
    rss["after_warmup"] = rss_kib(server_pid)
    while time.perf_counter() - t0 < seconds:
        time.sleep(min(1.0, max(0.0, seconds - (time.perf_counter() - t0))))
        rss["samples"].append(rss_kib(server_pid))
    stop.set()
    for t in threads:
        t.join(120)
    elapsed = time.perf_counter() - t0
    rss["end"] = rss_kib(server_pid)
    base, end = rss["after_warmup"], rss["end"]
    n5xx = sum(n for st in stats.values() for code, n in st["statuses"].items()
               if code.startswith("5"))
    answered = sum(n for st in stats.values() for n in st["statuses"].values())
    return {"seconds": round(elapsed, 2), "clients": clients, "warmup_seconds": warmup,
            "scheme": httpx.URL(url).scheme, "requests": sum(st["count"] for st in stats.values()),
            "answered": answered, "by_kind": stats, "expected_status": expected,
            "server_errors_5xx": n5xx, "unexpected_status": len(bad_status),
            "unexpected_examples": bad_status[:10], "client_errors": client_errors,
            "decryptions_checked": dec["checked"], "decryption_errors": dec["errors"],
            "max_abs_prediction_error": dec["max_abs_error"],
            "server_rss_kib": {"at_start": rss["start"], "after_warmup": base, "end": end,
                               "max": max([v for v in rss["samples"] if v] or [end or 0])},
            "server_rss_growth_percent": (round(100.0 * (end - base) / base, 2)
                                          if base and end else None)}


def _model_and_admin(a, prefix: str):
    """The benchmark's breast_cancer model (``a.trees`` trees of depth ``a.depth``) saved
    as ``model.json`` in a fresh temporary directory, with an admin token in
    ``admin.tok`` (0600); ``(booster, X, directory, admin token)``."""
    X, y = load_breast_cancer(return_X_y=True)
    bc = xgb.train({"objective": "binary:logistic", "max_depth": a.depth, "nthread": 2},
                   xgb.DMatrix(X, y), a.trees)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    bc.save_model(tmp / "model.json")
    admin = secrets.token_hex(16)
    (tmp / "admin.tok").write_text(admin)
    os.chmod(tmp / "admin.tok", 0o600)
    return bc, X, tmp, admin


def run_soak(a, bench_run) -> None:
    """``--soak``: 2 users, one HTTPS server (1 worker), :func:`soak`; emits the JSON."""
    bc, X, tmp, admin = _model_and_admin(a, "ppboost-soak-")
    tls = make_tls(tmp)
    proxy = Proxy(str(tmp / "model.json"), key_bits=a.key_bits)
    max_batch = max(a.batch, 64)
    log = open(tmp / "server.log", "ab")
    proc, url = start_server(tmp / "db.sqlite", tmp / "admin.tok", 1, max_batch, log, tls)
    try:
        users = []
        with ServiceClient(url, admin_token=admin, timeout=600, ca=tls["ca"]) as svc:
            for i, name in enumerate(("alice", "bob")):
                enr = proxy.enroll(name)
                token = svc.upload_model(name, enr.model.to_bytes())["token"]
                users.append(SoakUser(name, token, Client(enr.keys), bc, X, max_batch, seed=i))
        res = soak(url, users, seconds=a.soak_seconds, clients=a.clients_soak,
                   server_pid=proc.pid, warmup=a.soak_warmup, ca=tls["ca"])
    finally:
        stop_server(proc)
        log.close()
    lines = (tmp / "server.log").read_text(errors="replace").splitlines()
    res["server_log"] = {"lines": len(lines),
                         "disconnect_warnings": sum("disconnected during the body" in ln
                                                    for ln in lines),
                         "tracebacks": sum("Traceback" in ln for ln in lines)}
    out = {"benchmark": "bench_server --soak",
           "model": {"objective": "binary:logistic", "trees": a.trees, "depth": a.depth,
                     "dataset": "breast_cancer"},
           "key_bits": a.key_bits, "batch": a.batch, "max_batch": max_batch, "soak": res}
    common.emit(out, bench_run, a.out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key-bits", type=int, default=3072)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--workers", default="1,2", help="server worker processes to try")
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="per throughput level and server (split into --rounds slices)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="slices per throughput level, HTTP and HTTPS in alternation")
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--schemes", default="http,https", help="http, https or both")
    ap.add_argument("--quick", action="store_true", help="1024-bit keys, 20 trees, short runs")
    ap.add_argument("--soak", action="store_true", help="run only the soak (see the docstring)")
    ap.add_argument("--soak-seconds", type=float, default=30.0, help="soak length, warm-up included")
    ap.add_argument("--soak-warmup", type=float, default=5.0, help="RSS baseline taken after this")
    ap.add_argument("--clients-soak", type=int, default=8)
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args(argv)
    bench_run = common.Run("2-core machine shared with other engineers: timings are noisy; "
                           "the benchmark clients share the cores with the server")
    if a.quick:
        a.key_bits, a.trees, a.seconds, a.latency_n = 1024, 20, 2.0, 30
        a.soak_seconds, a.soak_warmup = min(a.soak_seconds, 8.0), min(a.soak_warmup, 2.0)
    if a.soak:
        return run_soak(a, bench_run)
    schemes = [x.strip() for x in a.schemes.split(",") if x.strip()]
    if not schemes or set(schemes) - {"http", "https"}:
        ap.error(f"--schemes == {a.schemes!r}, must be http, https or both")

    bc, X, tmp, admin = _model_and_admin(a, "ppboost-bench-")

    t0 = time.perf_counter()
    proxy = Proxy(str(tmp / "model.json"), key_bits=a.key_bits)
    enr = proxy.enroll("bench")
    enrol_s = time.perf_counter() - t0
    blob = enr.model.to_bytes()
    client = Client(enr.keys)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(8):
        rows = X[rng.choice(len(X), a.batch, replace=False)]
        batches.append((client.encrypt(rows).to_bytes(), a.batch))

    out = {
        "benchmark": "bench_server",
        "model": {"objective": "binary:logistic", "trees": a.trees, "depth": a.depth,
                  "leaves": enr.model.n_leaves, "dataset": "breast_cancer"},
        "key_bits": a.key_bits, "batch": a.batch,
        "enrol_s": enrol_s, "model_bytes": len(blob),
        "plain_xgboost": bench_plain(bc, X, a.batch, 200),
        "in_process_predict": [bench_in_process(enr.model, batches, a.seconds, k)
                               for k in (1, 2)],
        "servers": [], "servers_https": [],
    }
    tls = make_tls(tmp) if "https" in schemes else None
    if tls:
        out["tls"] = {"certificate": "ECDSA P-256, throwaway CA, verified by the clients",
                      "server_ciphers_tls12": "ECDHE+AESGCM:ECDHE+CHACHA20"}
    out["throughput_method"] = (f"per client count, each server gets {a.rounds} slices of "
                                f"{a.seconds / a.rounds:g} s, HTTP and HTTPS in alternation "
                                "(order reversed every round); rows/s over all slices")
    for workers in [int(w) for w in a.workers.split(",")]:
        procs, logs, targets, runs = [], [], {}, {}
        try:
            for scheme in schemes:          # both servers up; idle while the other is measured
                ca = tls["ca"] if scheme == "https" else None
                log = open(tmp / f"server-{scheme}-{workers}.log", "ab")
                logs.append(log)
                proc, url = start_server(tmp / f"db-{scheme}-{workers}.sqlite",
                                         tmp / "admin.tok", workers, max(a.batch, 64), log,
                                         tls if scheme == "https" else None)
                procs.append(proc)
                with ServiceClient(url, admin_token=admin, timeout=600, ca=ca) as svc:
                    t0 = time.perf_counter()
                    token = svc.upload_model("bench", blob)["token"]
                    upload_s = time.perf_counter() - t0
                runs[scheme] = {"workers": workers, "scheme": scheme, "upload_s": upload_s}
                targets[scheme] = (url, token, ca)
                # warm every worker's cache (model deserialisation) before timing
                for _ in range(4 * workers):
                    with ServiceClient(url, token=token, ca=ca) as svc:
                        svc.predict_bytes("bench", batches[0][0])
            for scheme, (url, token, ca) in targets.items():
                runs[scheme]["latency_single_query"] = bench_latency(
                    url, token, "bench", client, X, a.latency_n, bc, ca)
                runs[scheme]["loadavg_before_throughput"] = list(os.getloadavg())
                runs[scheme]["throughput"] = []
            for c in [int(c) for c in a.clients.split(",")]:
                res = bench_throughput_interleaved(targets, batches, c, a.seconds, a.rounds)
                for scheme, r in res.items():
                    runs[scheme]["throughput"].append(r)
                common.progress({"workers": workers, "clients": c,
                                 **{f"{k}_rows_per_s": round(v["rows_per_s"])
                                    for k, v in res.items()}})
            for scheme, run in runs.items():
                out["servers" if scheme == "http" else "servers_https"].append(run)
        finally:
            for proc in procs:
                stop_server(proc)
            for log in logs:
                log.close()
    out["https_vs_http"] = compare_schemes(out["servers"], out["servers_https"])
    common.emit(out, bench_run, a.out)


def compare_schemes(http_runs: list, https_runs: list) -> list:
    """Per worker count (and in it, per client count): HTTPS rows/s over HTTP rows/s."""
    out = []
    for h in http_runs:
        s = next((r for r in https_runs if r["workers"] == h["workers"]), None)
        if s is None:
            continue
        by = {t["clients"]: t["rows_per_s"] for t in s["throughput"]}
        rows = [{"clients": t["clients"], "http_rows_per_s": t["rows_per_s"],
                 "https_rows_per_s": by[t["clients"]],
                 "https_over_http": round(by[t["clients"]] / t["rows_per_s"], 3)}
                for t in h["throughput"] if t["clients"] in by and t["rows_per_s"]]
        out.append({"workers": h["workers"], "clients": rows})
    return out


if __name__ == "__main__":
    main()
