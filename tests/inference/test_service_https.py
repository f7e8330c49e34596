"""HTTPS for the prediction service, with real processes and a throwaway certificate:
`ppboost serve --tls-cert/--tls-key`, `enroll/query/delete --ca`, a wrong CA and the
system store refused, plain HTTP refused on a non-loopback address unless
--insecure-http (which logs a warning)."""
from __future__ import annotations

import json
import os
import ssl

import httpx
import numpy as np
import pytest
import xgboost as xgb

from .service_helpers import (
    KEY_BITS,
    ServerProcess,
    admin_file,
    breast_cancer_model,
    free_port,
    make_tls,
    run_cli,
    write_csv,
)


@pytest.fixture(scope="module")
def tls_world(tmp_path_factory):
    d = tmp_path_factory.mktemp("https")
    tls = make_tls(d)
    admin, adm = admin_file(d)
    bc, X = breast_cancer_model(d)
    rows = X[:12].copy()
    rows[3, 4] = np.nan
    write_csv(d / "rows.csv", rows)
    server = ServerProcess(d / "models.db", adm, d / "server.log", tls=tls).start()
    try:
        yield dict(dir=d, tls=tls, admin=admin, adm=adm, bc=bc, rows=rows, server=server)
    finally:
        server.stop()


def test_enroll_query_delete_over_https(tls_world):
    w = tls_world
    d, url, ca = w["dir"], w["server"].url, w["tls"]["ca"]
    assert url.startswith("https://")
    run_cli("enroll", "--model", d / "bc.json", "--user", "alice", "--server", url,
            "--admin-token-file", w["adm"], "--out", d / "alice.keys", "--key-bits", KEY_BITS,
            "--ca", ca, "--quiet")
    assert json.loads((d / "alice.keys").read_text())["server"] == url
    cp = run_cli("query", "--keys", d / "alice.keys", "--input", d / "rows.csv", "--ca", ca,
                 "--format", "json", "--quiet")
    got = json.loads(cp.stdout)["predictions"]
    np.testing.assert_allclose(got, w["bc"].predict(xgb.DMatrix(w["rows"])), atol=1e-6, rtol=0)
    # the same over the Python client
    from ppboost.inference import Client
    from ppboost.inference.http_client import ServiceClient
    from ppboost.inference.keys import load_client_keys
    doc = load_client_keys(d / "alice.keys")
    with ServiceClient(url, token=doc["token"], ca=ca) as svc:
        c = Client(doc["keys"])
        res = svc.predict("alice", c.encrypt(w["rows"][:5]))
        np.testing.assert_allclose(c.decrypt(res), w["bc"].predict(xgb.DMatrix(w["rows"][:5])),
                                   atol=1e-6, rtol=0)
    run_cli("delete", "--user", "alice", "--server", url, "--admin-token-file", w["adm"],
            "--ca", ca)
    assert w["server"].http("GET", "/v1/users/alice/model", w["admin"]).status_code == 404


def test_wrong_ca_and_system_store_are_refused(tls_world):
    w = tls_world
    d, url = w["dir"], w["server"].url
    for extra in (["--ca", w["tls"]["other_ca"]], []):        # another CA; the system store
        cp = run_cli("enroll", "--model", d / "bc.json", "--user", "mallory", "--server", url,
                     "--admin-token-file", w["adm"], "--out", d / "mallory.keys",
                     "--key-bits", KEY_BITS, "--quiet", *extra, check=False)
        assert cp.returncode == 3, cp.stderr
        assert "certificate was not accepted" in cp.stderr and "--ca FILE" in cp.stderr
        assert "Traceback" not in cp.stderr and not (d / "mallory.keys").exists()
        cp = run_cli("delete", "--user", "alice", "--server", url, "--admin-token-file",
                     w["adm"], *extra, check=False)
        assert cp.returncode == 3 and "certificate was not accepted" in cp.stderr
    from ppboost.inference.http_client import ServerUnreachable, ServiceClient
    with ServiceClient(url, admin_token=w["admin"], ca=w["tls"]["other_ca"]) as svc:
        with pytest.raises(ServerUnreachable, match="certificate was not accepted"):
            svc.health()
    # and no request reached the server: nothing was stored for mallory
    assert w["server"].http("GET", "/v1/users/mallory/model", w["admin"]).status_code == 404


def test_plain_http_client_on_the_https_port_gets_a_clear_error(tls_world):
    w = tls_world
    url = w["server"].url.replace("https://", "http://")
    cp = run_cli("delete", "--user", "alice", "--server", url, "--admin-token-file", w["adm"],
                 check=False)
    assert cp.returncode == 3 and "https://" in cp.stderr and "Traceback" not in cp.stderr


def test_query_with_a_wrong_ca_sends_nothing(tls_world, tmp_path):
    """The token never leaves the client when the certificate does not verify."""
    w = tls_world
    d = w["dir"]
    run_cli("enroll", "--model", d / "bc.json", "--user", "bob", "--server", w["server"].url,
            "--admin-token-file", w["adm"], "--out", tmp_path / "bob.keys", "--key-bits",
            KEY_BITS, "--ca", w["tls"]["ca"], "--quiet")
    cp = run_cli("query", "--keys", tmp_path / "bob.keys", "--input", d / "rows.csv", "--ca",
                 w["tls"]["other_ca"], "--quiet", check=False)
    assert cp.returncode == 3 and "certificate was not accepted" in cp.stderr
    assert cp.stdout == ""


def test_ca_option_errors(tls_world, tmp_path, capsys):
    from ppboost.cli import main
    w = tls_world
    args = ["delete", "--user", "alice", "--admin-token-file", str(w["adm"])]
    assert main([*args, "--server", "http://127.0.0.1:9", "--ca", w["tls"]["ca"]]) == 2
    assert "is for https:// servers" in capsys.readouterr().err
    assert main([*args, "--server", w["server"].url, "--ca", str(tmp_path / "none.crt")]) == 2
    assert "CA file" in capsys.readouterr().err
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    assert main([*args, "--server", w["server"].url, "--ca", str(tmp_path / "junk.crt")]) == 2
    assert "holds no usable PEM certificate" in capsys.readouterr().err


def test_serve_refuses_bad_tls_options(tmp_path, capsys):
    from ppboost.cli import main
    tls = make_tls(tmp_path)
    _, adm = admin_file(tmp_path)
    base = ["serve", "--db", str(tmp_path / "m.db"), "--admin-token-file", str(adm),
            "--port", str(free_port())]
    assert main([*base, "--tls-cert", tls["cert"]]) == 2
    assert "needs both a certificate and its key" in capsys.readouterr().err
    assert main([*base, "--tls-cert", tls["cert"], "--tls-key", str(tmp_path / "nope.key")]) == 2
    assert "not found" in capsys.readouterr().err
    from ppboost.transport.certs import generate_ca, write_key
    _, other_key = generate_ca("x")
    write_key(other_key, tmp_path / "other.key")
    assert main([*base, "--tls-cert", tls["cert"], "--tls-key", str(tmp_path / "other.key")]) == 2
    assert "the key must match the certificate" in capsys.readouterr().err


def test_plain_http_on_a_public_address_needs_insecure_http(tmp_path, capsys):
    from ppboost.cli import main
    _, adm = admin_file(tmp_path)
    for host in ("0.0.0.0", "::"):
        rc = main(["serve", "--db", str(tmp_path / "m.db"), "--admin-token-file", str(adm),
                   "--host", host, "--port", str(free_port())])
        err = capsys.readouterr().err
        assert rc == 2 and "refusing to serve plain HTTP" in err and "--tls-cert" in err
    # loopback without TLS is fine; --insecure-http on 0.0.0.0 starts and logs a warning
    server = ServerProcess(tmp_path / "m.db", adm, tmp_path / "server.log", host="0.0.0.0",
                           extra=["--insecure-http"]).start()
    try:
        assert server.http("GET", "/v1/health").json()["status"] == "ok"
        warn = [ln for ln in server.log_lines() if "serving plain HTTP on 0.0.0.0" in ln]
        assert len(warn) == 1 and "WARNING" in warn[0] and "in clear" in warn[0]
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_server_offers_only_modern_protocols(tls_world):
    """TLS 1.0/1.1 are refused; TLS 1.2 gets an ECDHE AEAD suite, TLS 1.3 works."""
    import socket
    host, port = "127.0.0.1", int(tls_world["server"].url.rsplit(":", 1)[1])

    def handshake(version):
        ctx = ssl.create_default_context(cafile=tls_world["tls"]["ca"])
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection((host, port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                return s.version(), s.cipher()[0]
    v, cipher = handshake(ssl.TLSVersion.TLSv1_2)
    assert v == "TLSv1.2" and cipher.startswith("ECDHE-") and ("GCM" in cipher
                                                              or "CHACHA20" in cipher)
    assert handshake(ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(ssl.TLSVersion.TLSv1_1)
    assert httpx.get(tls_world["server"].url + "/v1/health",
                     verify=tls_world["server"].verify).status_code == 200
    assert os.stat(tls_world["tls"]["key"]).st_mode & 0o077 == 0
