"""The README's own-CA recipe ("Using the consortium's own CA"), run as written.

The openssl commands are read from the README itself and run with bash:
the CA's once, each site's (its key and signing request, in its own
directory), and the CA's signing of each request.  ``federation.json`` is
written by hand after the README's template.  Then a two-hospital job runs
as real ``ppboost party`` / ``dealer`` processes with those files only, and
the model is checked against xgboost.  A second test runs the same recipe
with the two mistakes the README warns about (the name instead of the
numeric id in the URI; serverAuth without clientAuth) and checks that the
TLS mesh refuses them, naming the participant.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from ppboost.consortium import Consortium, Network
from ppboost.transport.config import FederationConfig

from .test_deploy import HCOLS, _check_model, _job, _ok, write_hospitals

README = Path(__file__).resolve().parents[2] / "README.md"
FED = "msfed"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="no openssl command line: the README's own-CA recipe uses it")


def recipe() -> dict:
    """The README section's code blocks: ``ca``, ``site`` and ``sign`` (bash), ``template``."""
    text = README.read_text()
    start = text.index("### Using the consortium's own CA")
    section = text[start:text.index("\n## ", start)]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    bash = [b for lang, b in blocks if lang == "bash"]
    js = [b for lang, b in blocks if lang == "json"]
    assert len(bash) == 3 and len(js) == 1, [lang for lang, _ in blocks]
    return {"ca": bash[0], "site": bash[1], "sign": bash[2], "template": json.loads(js[0])}


def _bash(script: str, cwd: Path, **env) -> str:
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True,
                       text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env})
    assert r.returncode == 0, f"{script}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    return r.stdout + r.stderr


def issue(root: Path, people: list, addr: dict, rsa=(), sign_edit=None) -> dict:
    """Run the recipe: a CA in ``root/ca``, each site's key + CSR in ``root/sites/<name>``,
    the CA signs each CSR with the site's id (its index in ``people``) and address.

    ``rsa``: sites whose key is RSA 3072 instead of P-256 (the README says the key type is
    not checked).  ``sign_edit(name, script)``: a changed signing script (for the mistakes).
    Returns ``{name: site directory}``; each holds its own key, its certificate and ca.crt."""
    r = recipe()
    ca = root / "ca"
    ca.mkdir(parents=True)
    _bash(r["ca"], ca)
    sites = {}
    for i, name in enumerate(people):
        d = root / "sites" / name
        d.mkdir(parents=True)
        script = r["site"]
        if name in rsa:
            gen = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
            assert gen in script
            script = script.replace(gen, "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072")
        _bash(script, d, NAME=name)
        assert (d / f"{name}.key").stat().st_mode & 0o777 == 0o600
        shutil.copy(d / f"{name}.csr", ca / f"{name}.csr")       # the request goes to the CA
        sign = r["sign"] if sign_edit is None else sign_edit(name, r["sign"])
        out = _bash(sign, ca, FED=FED, NAME=name, ID=str(i), IP=addr[name])
        if sign_edit is None:
            assert out.count(": OK") == 2 and f"URI:urn:ppboost:{FED}:{i}" in out, out
        for f in (f"{name}.crt", "ca.crt"):                       # ...and comes back signed
            shutil.copy(ca / f, d / f)
        sites[name] = d
    return sites


def federation_json(people: list, addr: dict, port: dict) -> dict:
    """federation.json written by hand, key for key as the README's template."""
    return {"federation": FED, "n_parties": len(people) - 1, "ca": "ca.crt",
            "connect_timeout": 30,
            "participants": [{"id": i, "name": n, "host": addr[n], "port": port[n],
                              "cert": f"{n}.crt"} for i, n in enumerate(people)]}


def test_readme_template_is_a_valid_federation_file(tmp_path):
    t = recipe()["template"]
    cfg = FederationConfig.from_dict(t, base_dir=tmp_path)
    assert cfg.names() == ["hospital_a", "hospital_b", "hospital_c", "insurer", "dealer"]
    assert cfg.dealer_id == 4 and cfg.federation == "msfed"
    mine = federation_json(["a", "b", "dealer"], dict.fromkeys("ab", "10.0.0.1") |
                           {"dealer": "10.0.0.9"}, {"a": 1, "b": 2, "dealer": 3})
    assert sorted(mine) == sorted(t)                  # the test's file has the template's keys
    assert all(sorted(p) == sorted(t["participants"][0]) for p in mine["participants"])


def test_own_ca_recipe_trains_a_two_hospital_job(tmp_path):
    people = ["h1", "h2", "dealer"]
    with Network(people) as net:
        c = Consortium(tmp_path / "run", net, people[:2], connect_timeout=30)
        sites = issue(tmp_path / "run", people, net.addr, rsa=("h2",))
        fed = federation_json(people, net.addr, c.port)
        for n, d in sites.items():
            (d / "federation.json").write_text(json.dumps(fed, indent=2))
            assert sorted(f.name for f in d.iterdir() if f.suffix == ".key") == [f"{n}.key"]
        assert all(c.site(n) == sites[n] for n in people)     # the harness starts them there
        pop = write_hospitals(c, people[:2], 160, 11)
        c.write_job(_job("horizontal", rounds=1, timeout=30))
        c.start_all("h1")
        res = c.wait(120)
    _ok(res)
    _check_model(sites["h1"] / "model.json", pop[HCOLS].drop(columns=["patient_id"]), "ms", 1)


def _connect_all(sites: dict, people: list, addr: dict, ports: dict) -> dict:
    """connect_tls for every participant, in threads; ``{name: error text or None}``."""
    from ppboost.transport.tls import connect_tls
    fed = federation_json(people, addr, ports)
    fed["connect_timeout"] = 4
    out = {}

    def one(i, n):
        d = sites[n]
        (d / "federation.json").write_text(json.dumps(fed))
        try:
            connect_tls(str(d / "federation.json"), i, str(d / f"{n}.key"), timeout=5).close()
            out[n] = None
        except Exception as exc:  # the message is what is checked
            out[n] = f"{type(exc).__name__}: {exc}"
    threads = [threading.Thread(target=one, args=(i, n)) for i, n in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return out


@pytest.mark.parametrize("mistake", ["name_in_uri", "server_auth_only"])
def test_the_mistakes_the_readme_warns_about_are_refused(tmp_path, mistake):
    import socket
    people = ["h1", "h2", "dealer"]
    addr = dict.fromkeys(people, "127.0.0.1")
    ports = {}
    for n in people:                     # free ports (the lowest id listens on its own)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports[n] = s.getsockname()[1]

    def edit(name, script):
        if name != "h2":
            return script
        if mistake == "name_in_uri":
            return script.replace("URI:urn:ppboost:$FED:$ID", "URI:urn:ppboost:$FED:$NAME")
        check = 'openssl verify -CAfile ca.crt -purpose sslclient "$NAME.crt"\n'
        assert check in script
        return script.replace("extendedKeyUsage = serverAuth, clientAuth",
                              "extendedKeyUsage = serverAuth").replace(check, "")
    sites = issue(tmp_path, people, addr, sign_edit=edit)
    if mistake == "server_auth_only":     # the recipe's own check would have caught it
        r = subprocess.run(["openssl", "verify", "-CAfile", "ca.crt", "-purpose", "sslclient",
                            "h2.crt"], cwd=sites["h2"], capture_output=True, text=True)
        assert r.returncode != 0 and "unsuitable certificate purpose" in r.stderr
    errs = _connect_all(sites, people, addr, ports)
    assert errs["h1"] is not None and "h2" in errs["h1"], errs
    if mistake == "name_in_uri":
        assert "its certificate names no ppboost participant" in errs["h1"], errs
    else:
        assert "unsuitable certificate purpose" in errs["h1"], errs
        assert "h1 rejected the certificate of h2" in errs["h2"], errs
