"""Shared by the service tests in this directory: a throwaway CA and server certificate,
the server as a real ``python -m ppboost.cli serve`` process (HTTP or HTTPS), the CLI
as a subprocess, small models."""
from __future__ import annotations

import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

REPO = Path(__file__).resolve().parents[2]
KEY_BITS = "1024"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("PPBOOST_ADMIN_TOKEN", None)
    return e


def make_tls(d: Path) -> dict:
    """A throwaway CA with a server certificate for 127.0.0.1/localhost, and a second,
    unrelated CA: paths ``ca``, ``cert``, ``key``, ``other_ca``."""
    from ppboost.transport.certs import generate_ca, issue_participant_cert, write_cert, write_key
    ca, ca_key = generate_ca("https-test", days=2)
    cert, key = issue_participant_cert(ca, ca_key, "https-test", 0, 1,
                                       hosts=("127.0.0.1", "localhost"), days=2)
    other, _ = generate_ca("someone-else", days=2)
    return {"ca": write_cert(ca, d / "ca.crt"), "cert": write_cert(cert, d / "server.crt"),
            "key": write_key(key, d / "server.key"),
            "other_ca": write_cert(other, d / "other-ca.crt")}


def admin_file(d: Path, mode: int = 0o600) -> tuple[str, Path]:
    admin = "admin-" + secrets.token_hex(16)
    p = d / "admin.tok"
    p.write_text(admin + "\n")
    os.chmod(p, mode)
    return admin, p


class ServerProcess:
    """``python -m ppboost.cli serve`` in its own process; ``stop`` always ends it.

    ``tls``: the dict of :func:`make_tls` (HTTPS) or None (HTTP on 127.0.0.1).
    """

    def __init__(self, db: Path, admin_file: Path, log: Path, *, tls: dict | None = None,
                 host: str = "127.0.0.1", extra=(), workers: int = 1):
        self.db, self.admin_file, self.log, self.tls = db, admin_file, log, tls
        self.host, self.extra, self.workers = host, list(extra), workers
        self.proc = None
        self.url = None

    @property
    def verify(self):
        return ssl.create_default_context(cafile=self.tls["ca"]) if self.tls else True

    def start(self, timeout: float = 60.0) -> ServerProcess:
        port = free_port()
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "ppboost.cli", "serve", "--db", str(self.db),
               "--host", self.host, "--port", str(port),
               "--admin-token-file", str(self.admin_file), "--workers", str(self.workers),
               *self.extra]
        if self.tls:
            cmd += ["--tls-cert", self.tls["cert"], "--tls-key", self.tls["key"]]
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=self._logf,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        verify = self.verify
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._logf.close()
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n"
                                   + self.log.read_text()[-3000:])
            try:
                if httpx.get(self.url + "/v1/health", timeout=1.0,
                             verify=verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not answer /v1/health in time:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._logf.close()
        self.proc = None

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def http(self, method, path, token=None, **kw) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, self.url + path, headers=headers, timeout=60,
                             verify=self.verify, **kw)


def run_cli(*args, check: bool = True, timeout: float = 180.0) -> subprocess.CompletedProcess:
    cp = subprocess.run([sys.executable, "-m", "ppboost.cli", *map(str, args)], cwd=REPO,
                        env=env(), capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"ppboost {args[0]} exited {cp.returncode}:\n{cp.stderr}")
    return cp


def breast_cancer_model(d: Path, rounds: int = 8):
    """A small binary:logistic model (30 features) saved as ``d/bc.json``; (booster, X)."""
    X, y = load_breast_cancer(return_X_y=True)
    bc = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.5},
                   xgb.DMatrix(X, y), rounds)
    bc.save_model(d / "bc.json")
    return bc, X


def write_csv(path: Path, X: np.ndarray) -> None:
    with open(path, "w") as f:
        f.write(",".join(f"f{j}" for j in range(X.shape[1])) + "\n")
        for row in X:
            f.write(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n")
