"""A bounded soak of the service over HTTPS (20 s, warm-up included): 8 clients send a
seeded mix of valid queries and invalid requests (benchmarks/bench_server.py's
:func:`soak`, which `bench_server.py --soak` runs for the committed figures).  Checked:
every answer has the expected status, no 5xx, every valid answer decrypts to
booster.predict, the server's RSS grows by less than 20% after the warm-up, and each
aborted upload is one log line without a traceback."""
from __future__ import annotations

import sys

import pytest

from .service_helpers import REPO, ServerProcess, admin_file, breast_cancer_model, make_tls

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_server

MAX_BATCH = 32


@pytest.mark.timeout(240)
def test_soak_mixed_valid_and_invalid_requests(tmp_path):
    from ppboost.inference import Client, Proxy
    from ppboost.inference.http_client import ServiceClient
    tls = make_tls(tmp_path)
    admin, adm = admin_file(tmp_path)
    bc, X = breast_cancer_model(tmp_path, rounds=10)
    server = ServerProcess(tmp_path / "models.db", adm, tmp_path / "server.log", tls=tls,
                           extra=["--max-batch", str(MAX_BATCH)]).start()
    try:
        proxy = Proxy(str(tmp_path / "bc.json"), key_bits=1024)
        users = []
        with ServiceClient(server.url, admin_token=admin, ca=tls["ca"]) as svc:
            for i, name in enumerate(("alice", "bob", "carol")):
                enr = proxy.enroll(name)
                token = svc.upload_model(name, enr.model.to_bytes())["token"]
                users.append(bench_server.SoakUser(name, token, Client(enr.keys), bc, X,
                                                   MAX_BATCH, seed=i))
        res = bench_server.soak(server.url, users, seconds=20, clients=8, warmup=4,
                                server_pid=server.proc.pid, ca=tls["ca"], seed=1)
        assert server.http("GET", "/v1/health").status_code == 200       # still serving
    finally:
        server.stop()
    assert res["client_errors"] == []
    assert res["server_errors_5xx"] == 0
    assert res["unexpected_status"] == 0, res["unexpected_examples"]
    for kind, st in res["by_kind"].items():                 # every kind was exercised
        assert st["count"] > 0, kind
    assert res["decryptions_checked"] >= 50 and res["decryption_errors"] == 0
    assert res["max_abs_prediction_error"] <= 1e-6
    assert res["server_rss_growth_percent"] is not None
    assert res["server_rss_growth_percent"] < 20, res["server_rss_kib"]
    log = server.log_lines()
    aborted = res["by_kind"]["aborted"]["count"]
    gone = [ln for ln in log if "disconnected during the body" in ln]
    assert len(gone) == aborted and not any("Traceback" in ln for ln in log)
    assert len(log) <= aborted + 5                          # the start lines, nothing else
