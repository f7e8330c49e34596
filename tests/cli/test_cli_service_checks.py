"""The service commands' local checks, in process and without a server: a bad user id is
refused by each of enroll, query and delete before any connection (exit 2, not the
exit 3 of an unreachable server); infinite input values name their row, line and
feature; a loose admin token file is reported."""
from __future__ import annotations

import math
import os
import socket

import pytest

from ppboost.cli import CliError, main, read_rows

BAD = ["alice/../bob", "../bob", "alice%2F..%2Fbob", "-alice", "a" * 65, "al ice", ""]


def _dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"          # nothing listens there


@pytest.fixture()
def admin_tok(tmp_path):
    p = tmp_path / "admin.tok"
    p.write_text("x" * 32)
    os.chmod(p, 0o600)
    return str(p)


@pytest.mark.parametrize("bad", BAD)
def test_enroll_refuses_a_bad_user_id(bad, tmp_path, admin_tok, capsys):
    (tmp_path / "m.json").write_text("{}")
    rc = main(["enroll", "--model", str(tmp_path / "m.json"), f"--user={bad}", "--server",
               _dead_url(), "--admin-token-file", admin_tok, "--out", str(tmp_path / "k")])
    err = capsys.readouterr().err
    assert rc == 2 and f"user_id == {bad!r}, must match" in err and "cannot reach" not in err


@pytest.mark.parametrize("bad", BAD)
def test_delete_refuses_a_bad_user_id(bad, admin_tok, capsys):
    rc = main(["delete", f"--user={bad}", "--server", _dead_url(), "--admin-token-file", admin_tok])
    err = capsys.readouterr().err
    assert rc == 2 and f"user_id == {bad!r}, must match" in err and "deleted" not in err


@pytest.mark.parametrize("bad", BAD)
def test_query_refuses_a_keys_file_with_a_bad_user_id(bad, tmp_path, capsys):
    """A keys file edited by hand (or forged) cannot point a query at another path."""
    import numpy as np
    import xgboost as xgb

    from ppboost.inference import Proxy
    from ppboost.inference.keys import save_client_keys
    X = np.random.default_rng(0).normal(size=(50, 3))
    b = xgb.train({"max_depth": 2}, xgb.DMatrix(X, X[:, 0]), 2)
    enr = Proxy(b, key_bits=1024).enroll("alice")
    keys = tmp_path / "alice.keys"
    save_client_keys(keys, keys=enr.keys, user_id=bad, server=_dead_url(),
                     token="ppb_0123456789abcdef_" + "A" * 43,
                     key_fingerprint=enr.keys.key_fingerprint)
    (tmp_path / "rows.csv").write_text("1,2,3\n")
    rc = main(["query", "--keys", str(keys), "--input", str(tmp_path / "rows.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and f"user_id == {bad!r}, must match" in err and "cannot reach" not in err


def test_a_good_id_gets_as_far_as_the_network(admin_tok, capsys):
    """The contrast to the tests above: a valid id passes the check and fails on the
    unreachable server (exit 3)."""
    assert main(["delete", "--user", "alice.b-1_x", "--server", _dead_url(),
                 "--admin-token-file", admin_tok]) == 3
    assert "cannot reach the ppboost server" in capsys.readouterr().err


@pytest.mark.parametrize("text,where", [
    ("a,b,c\n1,2,3\n4,inf,6\n", "row 1 (line 3), feature 1: 'inf'"),
    ("1,2,3\n-Infinity,2,3\n", "row 1 (line 2), feature 0: '-Infinity'"),
    ("1,2\n\n3,1e39\n", "row 1 (line 3), feature 1: '1e39'"),
    ("[[1, 2], [3, Infinity]]", "row 1, feature 1: 'inf'"),
    ("[[1, -1e400]]", "row 0, feature 1: '-inf'"),
])
def test_read_rows_refuses_infinite_values_naming_row_and_feature(text, where):
    with pytest.raises(CliError, match="is not a finite number") as e:
        read_rows(text, "rows")
    assert f"rows {where}" in str(e.value)


def test_read_rows_keeps_nan_and_the_largest_float32():
    X = read_rows("1,nan,3.4028234663852886e38\n,-3.4e38,0\n")
    assert math.isnan(X[0, 1]) and math.isnan(X[1, 0]) and X[0, 2] == 3.4028234663852886e38


def test_loose_admin_token_file_is_warned_about(tmp_path, capsys):
    p = tmp_path / "admin.tok"
    p.write_text("x" * 32)
    os.chmod(p, 0o640)
    assert main(["delete", "--user", "alice", "--server", _dead_url(),
                 "--admin-token-file", str(p)]) == 3
    err = capsys.readouterr().err
    assert "warning: admin token file" in err and "(mode 0640)" in err and "chmod 600" in err
    os.chmod(p, 0o600)
    assert main(["delete", "--user", "alice", "--server", _dead_url(),
                 "--admin-token-file", str(p)]) == 3
    assert "warning" not in capsys.readouterr().err


def test_serve_options_for_bodies_are_checked(tmp_path, admin_tok, capsys):
    base = ["serve", "--db", str(tmp_path / "m.db"), "--admin-token-file", admin_tok]
    assert main([*base, "--max-body-bytes", "100"]) == 2
    assert "max_body_bytes == 100, must be an integer >= 1024" in capsys.readouterr().err
    assert main([*base, "--max-model-bytes", "10"]) == 2
    assert "max_model_bytes == 10" in capsys.readouterr().err
