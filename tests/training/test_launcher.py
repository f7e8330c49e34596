"""train(transport="tls"): no hang when a child dies early or stalls in start-up, no child
outlives its launcher, and every error names the split's parties."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import ppboost
from ppboost.transport import PeerFailed

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


def _kill_when_running(name, after, done):
    """SIGKILL this process's child ``ppboost-<name>`` once it has run ``after`` seconds."""
    seen = None
    while not done.is_set():
        kids = [k for k in mp.active_children() if k.name == f"ppboost-{name}"]
        if kids and seen is None:
            seen = time.monotonic()
        if kids and time.monotonic() - seen >= after:
            os.kill(kids[0].pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def test_killing_a_named_party_over_tls_names_it_in_every_error():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(3000, 20)).astype(np.float32)
    y = X[:, 0] + rng.normal(size=3000).astype(np.float32)
    data = ppboost.VerticalSplit({"hospital": (X[:, :10], y), "insurer": X[:, 10:]})
    done = threading.Event()
    killer = threading.Thread(target=_kill_when_running, args=("insurer", 4.0, done), daemon=True)
    killer.start()
    try:
        with pytest.raises(PeerFailed, match=r"^insurer died \(exit code -9\)") as info:
            ppboost.train({"max_depth": 4, "max_bin": 64}, data, 200, verbose=False,
                          transport="tls", timeout=60)
    finally:
        done.set()
        killer.join()
    outcomes = info.value.outcomes
    assert [o.name for o in outcomes] == ["hospital", "insurer", "dealer"]
    assert outcomes[1].status == "died"
    for o in (outcomes[0], outcomes[2]):
        assert o.status == "error" and "insurer" in str(o.error), (o.status, o.error, o.traceback)
    everything = str(info.value) + "".join(f"{o.error} {o.traceback}" for o in outcomes)
    assert "party 1" not in everything and "party 0" not in everything


STALLING = """
import multiprocessing as mp
import os
import time
if mp.current_process().name.removeprefix("ppboost-") in os.environ["STALL"].split(","):
    time.sleep(120)             # a start-up that never ends (as a spawned child imports this)
""" + DATA.format(n=500).replace('"a"', '"hospital"').replace('"b"', '"insurer"') + """
if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        ppboost.train({"max_depth": 2, "max_bin": 8}, data, 1, verbose=False, transport="tls",
                      timeout=5)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
        print("statuses", [(o.name, o.status) for o in exc.outcomes])
    print(f"elapsed {time.monotonic() - t0:.1f}")
"""


@pytest.mark.slow
@pytest.mark.parametrize("stall", ["insurer", "hospital,insurer,dealer"])
def test_a_child_stalled_in_start_up_fails_train_within_the_timeout(tmp_path, stall):
    """A child stuck importing the main module (before it reaches the launcher's code) is
    reported by name with the timeout, and every participant is stopped, long before the
    120 s stall ends (the start-up bound is the training timeout plus a few seconds)."""
    path = _script(tmp_path, STALLING)
    p = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=110,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT), STALL=stall))
    out = p.stdout
    assert p.returncode == 0, p.stderr[-2000:]
    first = stall.split(",")[0]
    assert f"HandshakeError: {first} did not start within connect_timeout=5.0s" in out, out
    assert "never reached the launcher's code" in out and "terminated every participant" in out
    if "," in stall:
        assert "also stalled in start-up: insurer, dealer" in out, out
        assert "statuses [('hospital', 'stalled'), ('insurer', 'stalled'), ('dealer', 'stalled')]" \
            in out, out
    assert "party 1" not in out and "party 0" not in out
    elapsed = float(out.rsplit("elapsed ", 1)[1])
    assert elapsed < 20, out          # 4x the timeout; about 10 s here
