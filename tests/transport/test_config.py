"""Federation config file and certificates (ppboost.transport.config, .certs)."""
from __future__ import annotations

import json
import os
import stat

import pytest

from ppboost.transport import FederationConfig, make_federation
from ppboost.transport.config import Participant


def test_make_federation_writes_a_loadable_config(tmp_path):
    cfg, keys = make_federation(tmp_path, 3, ports=[5000, 5001, 5002, 5003], federation="hosp")
    assert cfg.n_parties == 3 and cfg.dealer_id == 3 and cfg.federation == "hosp"
    assert [p.port for p in cfg.participants] == [5000, 5001, 5002, 5003]
    assert FederationConfig.load(tmp_path / "config.json") == cfg
    assert set(keys) == {0, 1, 2, 3}
    for k in keys.values():
        assert stat.S_IMODE(os.stat(k).st_mode) == 0o600          # private keys: owner only
    assert "key" not in (tmp_path / "config.json").read_text()     # no key path in the shared file
    assert cfg.name(3) == "dealer" and cfg.name(0) == "party 0"


def test_relative_paths_resolve_against_config_dir(tmp_path):
    d = {"federation": "f", "n_parties": 2, "ca": "ca.pem",
         "participants": [{"id": i, "host": "127.0.0.1", "port": 7000 + i, "cert": f"c{i}.pem"}
                          for i in range(3)]}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "fed.json").write_text(json.dumps(d))
    cfg = FederationConfig.load(tmp_path / "sub" / "fed.json")
    assert cfg.ca == str((tmp_path / "sub" / "ca.pem").resolve())
    assert cfg.participant(2).cert == str((tmp_path / "sub" / "c2.pem").resolve())
    assert cfg.timeout == 60.0 and cfg.connect_timeout == 30.0
    assert cfg.with_ports([1, 2, 3]).participant(1).port == 2
    assert cfg.with_timeouts(timeout=5).timeout == 5.0


def _cfg(**kw):
    base = dict(federation="f", n_parties=2, ca="/ca.pem",
                participants=tuple(Participant(i, "127.0.0.1", 7000 + i, f"/c{i}.pem") for i in range(3)))
    base.update(kw)
    return FederationConfig(**base)


def test_config_validation_messages(tmp_path):
    with pytest.raises(ValueError, match="n_parties == 1, must be an int >= 2"):
        _cfg(n_parties=1, participants=(Participant(0, "h", 1, "c"), Participant(1, "h", 2, "c")))
    with pytest.raises(ValueError, match=r"participant ids == \[0, 1\], must be exactly \[0, 1, 2\]"):
        _cfg(participants=(Participant(0, "h", 1, "c"), Participant(1, "h", 2, "c")))
    with pytest.raises(ValueError, match="participant 1: port == 70000, must be an int in 0..65535"):
        _cfg(participants=tuple(Participant(i, "h", 70000 if i == 1 else 1, "c") for i in range(3)))
    with pytest.raises(ValueError, match="timeout == 0, must be > 0 seconds"):
        _cfg(timeout=0)
    with pytest.raises(ValueError, match="federation == 'a:b', must be a non-empty name without ':'"):
        _cfg(federation="a:b")
    with pytest.raises(ValueError, match="participant id == 5, must be in 0..2"):
        _cfg().participant(5)
    with pytest.raises(ValueError, match="lacks the key 'ca'"):
        FederationConfig.from_dict({"federation": "f", "n_parties": 2, "participants": []})
    with pytest.raises(ValueError, match=r"participants\[0\] lacks \['port'\]"):
        FederationConfig.from_dict({"federation": "f", "n_parties": 2, "ca": "x",
                                    "participants": [{"id": 0, "host": "h", "cert": "c"}]})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        FederationConfig.load(bad)
    with pytest.raises(ValueError, match="3 ports given, need 4"):
        make_federation(tmp_path / "x", 3, ports=[1, 2, 3])


def test_certs_command_line(tmp_path, capsys):
    from ppboost.transport.certs import main

    assert main([str(tmp_path / "fed"), "--parties", "2", "--ports", "6000,6001,6002",
                 "--federation", "clinics"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg = FederationConfig.load(out["config"])
    assert cfg.federation == "clinics" and [p.port for p in cfg.participants] == [6000, 6001, 6002]
    assert sorted(out["keys"]) == ["dealer", "party 0", "party 1"]
    assert not (tmp_path / "fed" / "ca-key.pem").exists()
