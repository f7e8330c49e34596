"""Smoke test: every script in examples/ runs to the end (issue 5).

Example 05 runs against a real `ppboost serve` OS process on 127.0.0.1.
"""
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    return env


def _run(script, *args, timeout=240):
    p = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{script} failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_every_example_is_covered():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["01_horizontal_hospitals.py", "02_vertical_insurer.py",
                       "03_reveal_export.py", "04_encrypted_prediction_inprocess.py",
                       "05_prediction_client.py"]


def test_horizontal_hospitals():
    out = _run("01_horizontal_hospitals.py", "--n-patients", "300", "--rounds", "2", "--max-depth", "2")
    assert "secure model AUC" in out and "plain xgboost AUC" in out


def test_vertical_insurer():
    out = _run("02_vertical_insurer.py", "--n-patients", "300", "--rounds", "2", "--max-depth", "2")
    assert "with the insurer's column (secure)" in out


def test_reveal_export(tmp_path):
    out = _run("03_reveal_export.py", "--n-patients", "300", "--rounds", "2", "--max-depth", "2",
               "--out", str(tmp_path / "m.json"))
    assert "predicts the same" in out and (tmp_path / "m.json").exists()


def test_encrypted_prediction_inprocess():
    out = _run("04_encrypted_prediction_inprocess.py", "--key-bits", "1024",
               "--n-queries", "3")
    assert out.count("decrypted risk") == 3 and "largest difference" in out


@pytest.fixture
def server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tok = tmp_path / "admin.tok"
    tok.write_text(secrets.token_urlsafe(24))
    tok.chmod(0o600)
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "ppboost.cli", "serve", "--db",
                             str(tmp_path / "m.db"), "--port", str(port), "--admin-token-file",
                             str(tok)], cwd=ROOT, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield url, tok
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_prediction_client_against_running_server(server):
    url, tok = server
    out = _run("05_prediction_client.py", "--server", url, "--admin-token-file", str(tok),
               "--key-bits", "1024", "--n-queries", "3")
    assert out.count("decrypted risk") == 3 and f"answered by {url}" in out
