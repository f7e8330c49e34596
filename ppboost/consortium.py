"""Run a whole consortium on one machine: one process, network identity and directory per site.

For pilots, the examples (``examples/federation/``), the deployment tests and
``benchmarks/bench_deploy.py``: it starts exactly the commands a site runs
(``python -m ppboost party`` / ``dealer``), nothing else.

:class:`Network` gives every participant its own address.  As root, where
Linux network namespaces can be made, each participant gets a namespace of
its own, joined to the others by a veth pair on a private bridge
(``10.<a>.<b>.<i>/24``); otherwise each gets a distinct loopback address
``127.0.<b>.<i>`` (``Network.kind`` says which).  :class:`Consortium` writes
the federation with ``ppboost federation init``, gives each site a directory
holding only its own data file, its own key and the public files, and starts
``python -m ppboost party`` / ``dealer`` there.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def namespaces_available() -> str | None:
    """None if namespaces + veth + bridge can be made here, else the reason."""
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_NET_ADMIN"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    tag = f"ppbprobe{random.randrange(1 << 16):04x}"
    r = _ip("netns", "add", tag, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    _ip("netns", "del", tag, check=False)
    r = _ip("link", "add", tag[:15], "type", "bridge", check=False)
    if r.returncode != 0:
        return f"cannot create a bridge: {r.stderr.strip()}"
    _ip("link", "del", tag[:15], check=False)
    return None


#: Runs the participant with Ctrl-C (SIGINT) at its default: a shell without job
#: control starts background commands with SIGINT ignored and children inherit that,
#: but a participant stopped with Ctrl-C must get it (and tell the others).
_SIGINT_DEFAULT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


class Network:
    """Addresses (and namespaces) for ``names``; a context manager that cleans up."""

    def __init__(self, names: list, prefer_netns: bool = True):
        self.names = list(names)
        self.tag = f"{random.randrange(1 << 16):04x}"
        b = random.randrange(1, 250)
        self.reason = namespaces_available() if prefer_netns else "namespaces not asked for"
        self.kind = "netns" if self.reason is None else "loopback"
        if self.kind == "netns":
            a = random.randrange(100, 200)
            self.addr = {n: f"10.{a}.{b}.{10 + i}" for i, n in enumerate(self.names)}
            self._bridge_ip = f"10.{a}.{b}.1"
        else:
            self.addr = {n: f"127.0.{b}.{10 + i}" for i, n in enumerate(self.names)}
        self.ns = {n: f"ppb{self.tag}{i}" for i, n in enumerate(self.names)}

    def __enter__(self):
        if self.kind == "netns":
            br = f"ppbbr{self.tag}"
            _ip("link", "add", br, "type", "bridge")
            _ip("link", "set", br, "up")
            for i, n in enumerate(self.names):
                ns, host, peer = self.ns[n], f"pbh{self.tag}{i}", f"pbp{self.tag}{i}"
                _ip("netns", "add", ns)
                _ip("link", "add", host, "type", "veth", "peer", "name", peer)
                _ip("link", "set", peer, "netns", ns)
                _ip("link", "set", host, "master", br)
                _ip("link", "set", host, "up")
                _ip("-n", ns, "addr", "add", f"{self.addr[n]}/24", "dev", peer)
                _ip("-n", ns, "link", "set", peer, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc):
        if self.kind == "netns":
            for n in self.names:
                _ip("netns", "del", self.ns[n], check=False)
            _ip("link", "del", f"ppbbr{self.tag}", check=False)
        return False

    def prefix(self, name: str) -> list:
        """The command prefix that runs a program as participant ``name``."""
        return ["ip", "netns", "exec", self.ns[name]] if self.kind == "netns" else []


class Consortium:
    """The sites of one federation, each in its own directory, started as real processes."""

    def __init__(self, root: Path, net: Network, parties: list, ports=None,
                 connect_timeout: float = 40.0, analyst: bool = False):
        self.root = Path(root)
        self.net = net
        self.parties = list(parties)
        self.everyone = self.parties + ["dealer"] + (["analyst"] if analyst else [])
        base = random.randrange(20000, 50000)
        self.port = {n: (ports or {}).get(n, base + i) for i, n in enumerate(self.everyone)}
        fed = self.root / "federation"
        args = [PY, "-m", "ppboost", "federation", "init", str(fed),
                "--connect-timeout", str(connect_timeout)]
        for n in self.parties:
            args += ["--party", f"{n}={net.addr[n]}:{self.port[n]}"]
        args += ["--dealer", f"{net.addr['dealer']}:{self.port['dealer']}"]
        if analyst:
            args += ["--analyst", f"{net.addr['analyst']}:{self.port['analyst']}"]
        subprocess.run(args, check=True, capture_output=True, text=True)
        self.fed = fed
        self.procs: dict = {}

    def site(self, name: str) -> Path:
        """The site's own directory: public files + its own key only."""
        d = self.root / "sites" / name
        if not d.exists():
            d.mkdir(parents=True)
            for f in self.fed.iterdir():
                if f.suffix in (".crt", ".json"):
                    shutil.copy(f, d / f.name)
            shutil.copy(self.fed / f"{name}.key", d / f"{name}.key")
            os.chmod(d / f"{name}.key", 0o600)
        return d

    def write_job(self, job: dict) -> None:
        for n in self.everyone:
            (self.site(n) / "job.json").write_text(json.dumps(job))

    def start(self, name: str, *extra, data: str | None = None, out: bool = False):
        d = self.site(name)
        cmd = self.net.prefix(name) + [PY, "-c", _SIGINT_DEFAULT, PY, "-m", "ppboost"]
        if name == "dealer":
            cmd += ["dealer", "--key", "dealer.key"]
        elif name == "analyst":
            cmd += ["analyst", "--key", "analyst.key", "--out", "model.json"]
        else:
            cmd += ["party", "--me", name, "--key", f"{name}.key", "--data", data or f"{name}.csv"]
            if out:
                cmd += ["--out", "model.json"]
        cmd += ["--federation", "federation.json", "--job", "job.json", "--quiet",
                "--stats-json", "stats.json", *(extra if name != "analyst" else ())]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.procs[name] = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, env=env,
                                            start_new_session=True)
        return self.procs[name]

    def start_all(self, analyst: str, *extra, skip=()):
        for n in self.everyone:
            if n not in skip:
                self.start(n, *extra, out=(n == analyst))

    def wait(self, timeout: float) -> dict:
        """``{name: (returncode, stdout, stderr, seconds)}``; kills whatever outlives ``timeout``."""
        t0 = time.monotonic()
        res = {}
        for n, p in self.procs.items():
            left = max(0.1, timeout - (time.monotonic() - t0))
            try:
                out, err = p.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                try:                                  # its threads' stacks, then kill it
                    os.kill(p.pid, signal.SIGUSR1)
                    time.sleep(1.0)
                except OSError:
                    pass
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
                err += f"\n[test harness: killed after {timeout:.0f} s]"
            res[n] = (p.returncode, out, err, time.monotonic() - t0)
        self.procs = {}
        return res

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        os.killpg(self.procs[name].pid, sig)
