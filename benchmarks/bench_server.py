"""HTTP benchmark of the encrypted prediction service (not a test).

Model: xgboost ``binary:logistic``, 100 trees of depth 6 on breast_cancer;
3072-bit Paillier by default.  The server runs as its own process
(``python -m ppboost.cli serve``), once per ``--workers`` value.

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

Prints one JSON document (and writes it to ``--out`` if given).  The machine
is shared and has 2 cores: the clients run on the same cores as the server,
so throughput figures are a lower bound and noisy.

    python benchmarks/bench_server.py                # full run (a few minutes)
    python benchmarks/bench_server.py --quick        # 1024-bit keys, 20 trees, short
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

import common

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


def start_server(db, admin_file, workers, max_batch, log):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ppboost.cli", "serve", "--db", str(db), "--port", str(port),
         "--admin-token-file", str(admin_file), "--workers", str(workers),
         "--max-batch", str(max_batch)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
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


def bench_latency(url, token, user, client, X, n, bc):
    enc, rtt, dec, tot = [], [], [], []
    with ServiceClient(url, token=token) as svc:
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


def bench_throughput(url, token, user, batches, n_clients, seconds):
    stop = threading.Event()
    counts = [0] * n_clients
    lat = [[] for _ in range(n_clients)]
    errors = []

    def worker(k):
        try:
            with ServiceClient(url, token=token) as svc:
                i = k
                while not stop.is_set():
                    b, n = batches[i % len(batches)]
                    t0 = time.perf_counter()
                    svc.predict_bytes(user, b)
                    lat[k].append(time.perf_counter() - t0)
                    counts[k] += n
                    i += n_clients
        except Exception as e:  # noqa: BLE001 - reported in the JSON
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
            "seconds": el, "errors": errors}


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key-bits", type=int, default=3072)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--workers", default="1,2", help="server worker processes to try")
    ap.add_argument("--seconds", type=float, default=8.0, help="per throughput level")
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="1024-bit keys, 20 trees, short runs")
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args(argv)
    bench_run = common.Run("2-core machine shared with other engineers: timings are noisy; "
                           "the benchmark clients share the cores with the server")
    if a.quick:
        a.key_bits, a.trees, a.seconds, a.latency_n = 1024, 20, 2.0, 30

    X, y = load_breast_cancer(return_X_y=True)
    bc = xgb.train({"objective": "binary:logistic", "max_depth": a.depth, "nthread": 2},
                   xgb.DMatrix(X, y), a.trees)
    tmp = Path(tempfile.mkdtemp(prefix="ppboost-bench-"))
    bc.save_model(tmp / "model.json")
    admin = secrets.token_hex(16)
    (tmp / "admin.tok").write_text(admin)

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
        "servers": [],
    }
    for workers in [int(w) for w in a.workers.split(",")]:
        log = open(tmp / f"server-{workers}.log", "ab")
        proc, url = start_server(tmp / f"db-{workers}.sqlite", tmp / "admin.tok", workers,
                                 max(a.batch, 64), log)
        try:
            with ServiceClient(url, admin_token=admin, timeout=600) as svc:
                t0 = time.perf_counter()
                token = svc.upload_model("bench", blob)["token"]
                upload_s = time.perf_counter() - t0
            run = {"workers": workers, "upload_s": upload_s}
            # warm every worker's cache (model deserialisation) before timing
            for _ in range(4 * workers):
                with ServiceClient(url, token=token) as svc:
                    svc.predict_bytes("bench", batches[0][0])
            run["latency_single_query"] = bench_latency(url, token, "bench", client, X,
                                                        a.latency_n, bc)
            run["loadavg_before_throughput"] = list(os.getloadavg())
            run["throughput"] = [bench_throughput(url, token, "bench", batches, c, a.seconds)
                                 for c in [int(c) for c in a.clients.split(",")]]
            out["servers"].append(run)
        finally:
            stop_server(proc)
            log.close()
    common.emit(out, bench_run, a.out)


if __name__ == "__main__":
    main()
