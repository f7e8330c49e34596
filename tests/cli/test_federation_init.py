"""`ppboost federation init`: private keys are mode 0600, public files are readable.

The command runs in a subprocess under a given umask (the umask is per
process): keys must be 0600 whatever it is, even when a key file from an
earlier run was left readable by others.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

NAMES = ["hospital_a", "insurer", "dealer", "analyst"]


def _init(directory, umask: int):
    return subprocess.run(
        [sys.executable, "-m", "ppboost", "federation", "init", str(directory),
         "--party", "hospital_a=127.0.0.1:7001", "--party", "insurer=127.0.0.1:7002",
         "--dealer", "127.0.0.1:7009", "--analyst", "127.0.0.1:7010"],
        capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(umask))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_keys_are_0600_and_the_public_files_readable(tmp_path, umask):
    d = tmp_path / "fed"
    r = _init(d, umask)
    assert r.returncode == 0, r.stderr
    files = sorted(f.name for f in d.iterdir())
    assert files == sorted(["ca.crt", "federation.json"] + [f"{n}.crt" for n in NAMES]
                           + [f"{n}.key" for n in NAMES])          # no CA key kept
    for n in NAMES:
        key = d / f"{n}.key"
        assert _mode(key) == 0o600, (n, oct(_mode(key)))
        load_pem_private_key(key.read_bytes(), password=None)    # a usable, unencrypted key
    public = [d / "ca.crt", d / "federation.json"] + [d / f"{n}.crt" for n in NAMES]
    for f in public:                          # readable by the owner, and by all unless the
        assert _mode(f) & stat.S_IRUSR, f      # umask forbids it (they are meant to be shared)
        assert _mode(f) & 0o044 == 0o044 & ~umask, (f, oct(_mode(f)))
    for n in NAMES:
        x509.load_pem_x509_certificate((d / f"{n}.crt").read_bytes())
    fed = json.loads((d / "federation.json").read_text())
    assert [p["name"] for p in fed["participants"]] == NAMES
    assert all(not p["cert"].endswith(".key") for p in fed["participants"])


def test_a_key_file_left_readable_by_an_earlier_run_is_made_private(tmp_path):
    d = tmp_path / "fed"
    d.mkdir()
    stale = d / "insurer.key"
    stale.write_text("old")
    os.chmod(stale, 0o644)
    r = _init(d, 0o022)
    assert r.returncode == 0, r.stderr
    assert _mode(stale) == 0o600, oct(_mode(stale))
    assert b"PRIVATE KEY" in stale.read_bytes()
