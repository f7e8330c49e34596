"""train(transport="tls"): no hang when a child dies early, no child outlives its launcher."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DATA = """
import numpy as np
import ppboost
rng = np.random.default_rng(0)
X = rng.integers(0, 4, size=({n}, 20)).astype(np.float32)
y = X[:, 0] + rng.normal(size={n}).astype(np.float32)
data = ppboost.VerticalSplit({{"a": (X[:, :10], y), "b": X[:, 10:]}})
"""


def _script(tmp_path, body):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_script_without_main_guard_fails_cleanly_on_a_large_split(tmp_path):
    """Each child's job (here 100,000 x 20) is read from a file by the child, so a child that
    dies at start (re-running an unguarded script) cannot block the launcher on a pipe."""
    path = _script(tmp_path, DATA.format(n=100_000) + textwrap.dedent("""
        ppboost.train({"max_depth": 2, "max_bin": 8}, data, 1, verbose=False, transport="tls",
                      timeout=30)
        """))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=170,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode != 0
    assert "without reporting a result" in p.stderr and "__main__" in p.stderr, p.stderr[-2000:]
    assert time.monotonic() - t0 < 120


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    st = Path(f"/proc/{pid}/stat")
    return st.exists() and st.read_text().split()[2] != "Z"


def test_killing_the_launcher_ends_every_participant(tmp_path):
    path = _script(tmp_path, DATA.format(n=3000) + textwrap.dedent("""
        if __name__ == "__main__":
            ppboost.train({"max_depth": 4, "max_bin": 64}, data, 200, verbose=False,
                          transport="tls", timeout=60)
        """))
    launcher = subprocess.Popen([sys.executable, str(path)], cwd=tmp_path,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        kids = []
        while len(kids) < 3:                      # 2 parties + the dealer (+ spawn's tracker)
            assert time.monotonic() < deadline and launcher.poll() is None
            kids = _children(launcher.pid)
            time.sleep(0.2)
        time.sleep(3)
        kids = _children(launcher.pid)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        t0 = time.monotonic()
        while any(_alive(k) for k in kids) and time.monotonic() - t0 < 10:
            time.sleep(0.2)
        assert not any(_alive(k) for k in kids), "a participant outlived its launcher by 10 s"
    finally:
        for k in _children(launcher.pid):
            os.kill(k, signal.SIGKILL)
