"""The service's hardening, against a real server process: one user-id check (CLI,
ServiceClient, server; `alice/../bob` in every form), 403 without enumeration, body
limits derived from the served models, client disconnects logged on one line each,
non-finite query values refused (server 400, client and CLI errors), database files
0600, a loose admin token file reported."""
from __future__ import annotations

import json
import os
import socket
import stat
import time

import httpx
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_wine

from .service_helpers import KEY_BITS, ServerProcess, admin_file, breast_cancer_model, run_cli, write_csv

MAX_BATCH = 16
MAX_MODEL = 1_000_000
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("hardening")
    old_umask = os.umask(0o022)                  # the usual umask: files would be 0644
    try:
        admin, adm = admin_file(d, mode=0o644)   # a loose admin token file: warned about
        bc, X = breast_cancer_model(d)
        Xw, yw = load_wine(return_X_y=True)
        wine = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
                         xgb.DMatrix(Xw, yw), 4)
        wine.save_model(d / "wine.json")
        server = ServerProcess(d / "models.db", adm, d / "server.log",
                               extra=["--max-batch", str(MAX_BATCH), "--max-model-bytes",
                                      str(MAX_MODEL)]).start()
        w = dict(dir=d, admin=admin, adm=adm, bc=bc, X=X, server=server)
        try:
            for user, model in (("alice", "bc.json"), ("bob", "wine.json")):
                cp = run_cli("enroll", "--model", d / model, "--user", user, "--server",
                             server.url, "--admin-token-file", adm, "--out", d / f"{user}.keys",
                             "--key-bits", KEY_BITS, "--quiet")
                w[f"{user}_enroll_stderr"] = cp.stderr
                w[user] = json.loads((d / f"{user}.keys").read_text())
            yield w
        finally:
            server.stop()
    finally:
        os.umask(old_umask)


def _client(w, user):
    from ppboost.inference import Client, UserKeys
    return Client(UserKeys.from_dict(w[user]["user_keys"]))


def _info(w, user):
    r = w["server"].http("GET", f"/v1/users/{user}/model", w["admin"])
    return r.json() if r.status_code == 200 else r.status_code


def _raw(w, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as it is (no client-side path normalisation); (status, body)."""
    host, port = "127.0.0.1", int(w["server"].url.rsplit(":", 1)[1])
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _predict_ok(w, user="alice"):
    c = _client(w, user)
    X = w["X"][:3] if user == "alice" else load_wine(return_X_y=True)[0][:3]
    r = w["server"].http("POST", f"/v1/users/{user}/predict", w[user]["token"],
                         content=c.encrypt(X).to_bytes(), headers=OCTET)
    assert r.status_code == 200, r.text
    return c.decrypt(r.content)


# --------------------------------------------------------------------------- user ids
BAD_IDS = ["alice/../bob", "../bob", "alice/..", "alice%2F..%2Fbob", "", "-x", "a" * 65,
           "al ice", "alice\\..\\bob", "bob?x=1", "bob#", ".."]


def test_delete_with_a_traversal_id_deletes_nothing(world):
    """The reported defect: `ppboost delete --user 'alice/../bob'` deleted bob's model."""
    w = world
    before = {u: _info(w, u) for u in ("alice", "bob")}
    cp = run_cli("delete", "--user", "alice/../bob", "--server", w["server"].url,
                 "--admin-token-file", w["adm"], check=False)
    assert cp.returncode == 2 and "user_id == 'alice/../bob', must match" in cp.stderr
    assert "deleted" not in cp.stderr
    assert {u: _info(w, u) for u in ("alice", "bob")} == before


def test_service_client_refuses_bad_ids_before_any_request(world):
    from ppboost.inference.http_client import ServiceClient
    sent = []
    transport = httpx.MockTransport(lambda req: sent.append(req) or httpx.Response(500))
    q = _client(world, "alice").encrypt(world["X"][:1])
    with ServiceClient("http://127.0.0.1:9", token="t", admin_token="a",
                       transport=transport) as svc:
        for bad in BAD_IDS:
            for call in (lambda: svc.upload_model(bad, b"model"),
                         lambda: svc.upload_model(bad, b"model", progress=lambda n: None),
                         lambda: svc.model_info(bad), lambda: svc.delete_model(bad),
                         lambda: svc.predict_bytes(bad, b"q"), lambda: svc.predict(bad, q)):
                with pytest.raises(ValueError, match="user_id == .* must match"):
                    call()
    assert sent == []


def test_server_refuses_traversal_in_every_form(world):
    w = world
    before = {u: _info(w, u) for u in ("alice", "bob")}
    admin, ta = w["admin"], w["alice"]["token"]
    for path in ("alice%2F..%2Fbob", "alice/../bob", "alice%2f..%2fbob", "..%2Fbob",
                 "alice/%2E%2E/bob", "alice%2Fx"):
        for method, suffix, tok in (("DELETE", "model", admin), ("GET", "model", admin),
                                    ("PUT", "model", admin), ("POST", "predict", ta),
                                    ("GET", "model", ta)):
            req = (f"{method} /v1/users/{path}/{suffix} HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {tok}\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: 1\r\nConnection: close\r\n\r\nx").encode()
            status, body = _raw(w, req)
            assert status == 422, (method, path, status, body)
            doc = json.loads(body)
            assert doc["field"] == "user_id" and "user_id ==" in doc["detail"], doc
    # ids that are one bad segment are refused by the same rule (FastAPI's path check)
    for bad in ("-x", "a" * 65, "al%20ice", "%2E%2E"):
        r = w["server"].http("DELETE", f"/v1/users/{bad}/model", admin)
        assert r.status_code == 422 and r.json()["field"] == "user_id", (bad, r.text)
    assert {u: _info(w, u) for u in ("alice", "bob")} == before
    # other paths under /v1/users/: 404 and 405, not a 5xx
    assert w["server"].http("GET", "/v1/users/alice/other", admin).status_code == 404
    r = w["server"].http("POST", "/v1/users/alice/model", admin, content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, PUT, DELETE"
    _predict_ok(w)


# --------------------------------------------------------------------------- 403, no enumeration
def test_another_users_id_is_403_whether_it_exists_or_not(world):
    w = world
    ta = w["alice"]["token"]
    q = _client(w, "alice").encrypt(w["X"][:2]).to_bytes()
    answers = {}
    for user in ("bob", "nobody", "carol-never-enrolled"):
        p = w["server"].http("POST", f"/v1/users/{user}/predict", ta, content=q, headers=OCTET)
        g = w["server"].http("GET", f"/v1/users/{user}/model", ta)
        answers[user] = [(r.status_code, r.json()["detail"].replace(repr(user), "ID"),
                          r.json()["field"]) for r in (p, g)]
    assert answers["bob"] == answers["nobody"] == answers["carol-never-enrolled"]
    assert answers["bob"][0][0] == 403 and answers["bob"][0][2] == "authorization"
    # the admin token may still see that an id has no model
    assert _info(w, "nobody") == 404


# --------------------------------------------------------------------------- bodies
def test_predict_body_limit_is_derived_from_the_model(world):
    from ppboost.inference.server import max_query_body
    w = world
    limit_a, limit_b = max_query_body(30, MAX_BATCH), max_query_body(13, MAX_BATCH)
    h = w["server"].http("GET", "/v1/health").json()
    assert h["max_body_bytes"] == limit_a and h["max_model_bytes"] == MAX_MODEL
    assert limit_a < 16 * 1024                  # 16 rows x 30 features: ~6 KB, not 64 MiB
    # the largest valid request (max_batch rows, the JSON variant) fits and is answered
    import base64
    c = _client(w, "alice")
    rows = w["X"][:MAX_BATCH]
    body = json.dumps({"query": base64.b64encode(c.encrypt(rows).to_bytes()).decode()}).encode()
    assert len(body) <= limit_a
    r = w["server"].http("POST", "/v1/users/alice/predict", w["alice"]["token"], content=body,
                         headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(c.decrypt(base64.b64decode(r.json()["result"])),
                               w["bc"].predict(xgb.DMatrix(rows)), atol=1e-6, rtol=0)
    # one byte more is refused before it is read, for each user at its own model's size
    for user, limit in (("alice", limit_a), ("bob", limit_b)):
        r = w["server"].http("POST", f"/v1/users/{user}/predict", w[user]["token"],
                             content=b"\0" * (limit + 1), headers=OCTET)
        assert r.status_code == 413 and r.json()["field"] == "body", r.text
        assert f"must be <= {limit} bytes, the largest valid predict body" in r.json()["detail"]

    def chunks():                               # no Content-Length: counted while streaming
        for _ in range(limit_a // 1000 + 2):
            yield b"\0" * 1000
    r = w["server"].http("POST", "/v1/users/alice/predict", w["alice"]["token"],
                         content=chunks(), headers=OCTET)
    assert r.status_code == 413 and r.json()["field"] == "body"
    # model uploads: their own limit (admin token only)
    r = w["server"].http("PUT", "/v1/users/alice/model", w["admin"],
                         content=b"\0" * (MAX_MODEL + 1), headers=OCTET)
    assert r.status_code == 413 and f"max_model_bytes {MAX_MODEL}" in r.json()["detail"]
    _predict_ok(w)


def _abort_upload(w, method, path, token, length, send):
    host, port = "127.0.0.1", int(w["server"].url.rsplit(":", 1)[1])
    s = socket.create_connection((host, port), timeout=30)
    s.sendall((f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
               ).encode() + b"\0" * send)
    time.sleep(0.05)                            # the server is now waiting for the rest
    s.close()


def test_aborted_uploads_are_one_log_line_each(world):
    from ppboost.inference.server import max_query_body
    w = world
    before = len(w["server"].log_lines())
    limit = max_query_body(30, MAX_BATCH)
    for _i in range(10):
        _abort_upload(w, "POST", "/v1/users/alice/predict", w["alice"]["token"], limit - 1,
                      limit // 2)
        _abort_upload(w, "PUT", "/v1/users/carol/model", w["admin"], MAX_MODEL // 2, 100_000)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new = w["server"].log_lines()[before:]
        if sum("disconnected during the body" in ln for ln in new) >= 20:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    new = w["server"].log_lines()[before:]
    assert len(new) <= 20, "\n".join(new)
    gone = [ln for ln in new if "disconnected during the body" in ln]
    assert len(gone) == 20 and not any("Traceback" in ln for ln in new)
    assert sum("POST /v1/users/alice/predict" in ln for ln in gone) == 10
    assert sum("PUT /v1/users/carol/model" in ln for ln in gone) == 10
    assert _info(w, "carol") == 404                 # nothing stored
    _predict_ok(w)


# --------------------------------------------------------------------------- non-finite values
def test_server_refuses_an_infinite_query_value_naming_row_and_column(world):
    from ppboost.inference.keys import ope_cipher
    w = world
    c = _client(w, "alice")
    ope = ope_cipher(c.keys.ope_key)
    for value in (np.inf, -np.inf):
        q = c.encrypt(w["X"][:4])
        col = 7
        q.ct[2, col] = ope.encrypt_float32(np.array([c._order[col]]),
                                           np.array([value], np.float32))[0]
        r = w["server"].http("POST", "/v1/users/alice/predict", w["alice"]["token"],
                             content=q.to_bytes(), headers=OCTET)
        assert r.status_code == 400 and r.json()["field"] == "query", r.text
        assert f"row 2, column {col}" in r.json()["detail"]
        assert "not a finite number" in r.json()["detail"]
    # the largest finite float32 and a missing value are fine
    q = c.encrypt(np.where(np.arange(30) == 3, np.float32(3.4e38), w["X"][0]))
    q.ct[0, 1] = np.uint64(2**64 - 1)
    r = w["server"].http("POST", "/v1/users/alice/predict", w["alice"]["token"],
                         content=q.to_bytes(), headers=OCTET)
    assert r.status_code == 200, r.text


def test_client_and_cli_refuse_infinite_values(world, tmp_path):
    from ppboost.inference.messages import NonFiniteQuery
    w = world
    c = _client(w, "alice")
    X = w["X"][:5].copy()
    X[3, 11] = -np.inf
    with pytest.raises(NonFiniteQuery, match=r"row 3, feature 11: -inf is not a finite"):
        c.encrypt(X)
    X[3, 11] = 1e39                            # float32 would make it inf, as xgboost does
    with pytest.raises(NonFiniteQuery, match=r"row 3, feature 11: 1e\+39 \(beyond float32"):
        c.encrypt(X)
    X[3, 11] = np.inf
    write_csv(tmp_path / "rows.csv", X)
    cp = run_cli("query", "--keys", w["dir"] / "alice.keys", "--input", tmp_path / "rows.csv",
                 "--quiet", check=False)
    assert cp.returncode == 2 and cp.stdout == "" and "Traceback" not in cp.stderr
    assert "row 3 (line 5), feature 11: 'inf' is not a finite number" in cp.stderr
    (tmp_path / "rows.json").write_text("[[1, 2], [3, Infinity]]")
    cp = run_cli("query", "--keys", w["dir"] / "alice.keys", "--input", tmp_path / "rows.json",
                 "--quiet", check=False)
    assert cp.returncode == 2 and "row 1, feature 1: 'inf' is not a finite number" in cp.stderr


# --------------------------------------------------------------------------- files
def test_database_files_are_0600(world):
    files = sorted(world["dir"].glob("models.db*"))
    assert {p.name for p in files} >= {"models.db", "models.db-wal", "models.db-shm"}
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p, oct(p.stat().st_mode))
    # keys files too, and the server still answers
    assert stat.S_IMODE((world["dir"] / "alice.keys").stat().st_mode) == 0o600


def test_loose_admin_token_file_is_reported(world):
    w = world
    warn = "admin token file"
    assert any(warn in ln and "(mode 0644)" in ln and "chmod 600" in ln
               for ln in w["server"].log_lines())
    assert warn in w["alice_enroll_stderr"] and "(mode 0644)" in w["alice_enroll_stderr"]


def test_store_reports_loose_files(tmp_path):
    from ppboost.inference.store import ModelStore
    p = tmp_path / "old.db"
    ModelStore(p).close()
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    os.chmod(p, 0o644)
    st = ModelStore(p)
    try:
        # SQLite gives -wal and -shm the database file's mode: all three are reported
        assert sorted((f.name, m) for f, m in st.loose_files()) == [
            ("old.db", 0o644), ("old.db-shm", 0o644), ("old.db-wal", 0o644)]
    finally:
        st.close()
