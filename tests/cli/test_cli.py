"""ppboost.cli: argument handling, input parsing, keys-file handling and error exits.

The end-to-end runs of `ppboost serve/enroll/query` against a live server
process are in tests/inference/test_server.py.
"""
import json
import math
import os
import socket
import stat

import numpy as np
import pytest

from ppboost import cli
from ppboost.cli import CliError, format_predictions, main, read_rows
from ppboost.inference.keys import KeysFileError, write_private


def _dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                      # nothing listens there now
    return f"http://127.0.0.1:{port}"


def test_read_rows_csv_with_header_and_missing_values():
    X = read_rows("a,b,c\n1,2.5,\n-3e2,NaN,NA\n\n4,5,6\n")
    assert X.shape == (3, 3)
    np.testing.assert_array_equal(X[0, :2], [1.0, 2.5])
    assert math.isnan(X[0, 2]) and math.isnan(X[1, 1]) and math.isnan(X[1, 2])
    np.testing.assert_array_equal(X[2], [4, 5, 6])


def test_read_rows_csv_without_header_and_json():
    np.testing.assert_array_equal(read_rows("1,2\n3,4\n"), [[1, 2], [3, 4]])
    X = read_rows("[[1, null], [2.5, 3]]")
    assert math.isnan(X[0, 1]) and X[1, 0] == 2.5
    np.testing.assert_array_equal(read_rows("[1, 2, 3]"), [[1, 2, 3]])


@pytest.mark.parametrize("text,msg", [
    ("1,2\n3\n", "different numbers of columns"),
    ("1,2\n3,abc\n", "'abc' is not a number"),
    ("", "no rows"),
    ("a,b\n", "no rows"),
    ("[[1,2", "not valid JSON"),
])
def test_read_rows_errors_name_the_problem(text, msg):
    with pytest.raises(CliError, match=msg):
        read_rows(text, "rows.csv")


def test_format_predictions_csv_and_json_round_trip():
    p = np.array([0.1, 0.25, 1 / 3])
    lines = format_predictions(p, "csv", "alice", False).splitlines()
    assert lines[0] == "score" and [float(v) for v in lines[1:]] == p.tolist()
    m = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, 1e-9]])
    lines = format_predictions(m, "csv", "bob", True).splitlines()
    assert lines[0] == "margin_0,margin_1,margin_2"
    assert [[float(v) for v in ln.split(",")] for ln in lines[1:]] == m.tolist()
    doc = json.loads(format_predictions(m, "json", "bob", True))
    assert doc == {"user_id": "bob", "output_margin": True, "n_rows": 2,
                   "predictions": m.tolist()}


def test_private_file_is_0600_and_not_overwritten_without_force(tmp_path):
    p = tmp_path / "alice.keys"
    write_private(p, b"secret", force=False)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600 and p.read_bytes() == b"secret"
    with pytest.raises(KeysFileError, match="exists; pass --force"):
        write_private(p, b"other", force=False)
    write_private(p, b"other", force=True)
    assert p.read_bytes() == b"other" and stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["alice.keys"]      # no temp file left


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_subcommands_are_registered():
    p = cli.build_parser()
    sub = next(a for a in p._actions if a.dest == "command")
    assert {"serve", "enroll", "query", "delete", "demo"} <= set(sub.choices)


def test_query_with_missing_or_foreign_keys_file(tmp_path, capsys):
    assert main(["query", "--keys", str(tmp_path / "none.keys"), "--input", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert "cannot read keys file" in err and "Traceback" not in err
    bad = tmp_path / "bad.keys"
    bad.write_text(json.dumps({"format": "something-else"}))
    assert main(["query", "--keys", str(bad), "--input", "x.csv"]) == 2
    assert "format is not 'ppboost-client-keys'" in capsys.readouterr().err
    bad.write_text("not json")
    assert main(["query", "--keys", str(bad), "--input", "x.csv"]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_serve_refuses_without_admin_token_or_with_bad_options(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(cli.ADMIN_ENV, raising=False)
    db = str(tmp_path / "m.db")
    assert main(["serve", "--db", db, "--port", "1"]) == 2
    assert "no admin token" in capsys.readouterr().err
    monkeypatch.setenv(cli.ADMIN_ENV, "short")
    assert main(["serve", "--db", db]) == 2
    assert "must be >= 16" in capsys.readouterr().err
    monkeypatch.setenv(cli.ADMIN_ENV, "x" * 32)
    assert main(["serve", "--db", db, "--port", "70000"]) == 2
    assert "--port == 70000" in capsys.readouterr().err
    assert main(["serve", "--db", db, "--max-batch", "0"]) == 2
    assert "max_batch == 0, must be an integer >= 1" in capsys.readouterr().err
    assert main(["serve", "--db", str(tmp_path / "no" / "m.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    tokfile = tmp_path / "empty.tok"
    tokfile.write_text("\n")
    monkeypatch.delenv(cli.ADMIN_ENV)
    assert main(["serve", "--db", db, "--admin-token-file", str(tokfile)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_enroll_and_delete_against_unreachable_server_exit_3(tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text("{}")
    url = _dead_url()
    rc = main(["enroll", "--model", str(model), "--user", "alice", "--server", url,
               "--admin-token", "t" * 20, "--out", str(tmp_path / "a.keys"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 3 and "cannot reach the ppboost server" in err and "Traceback" not in err
    assert not (tmp_path / "a.keys").exists()
    rc = main(["delete", "--user", "alice", "--server", url, "--admin-token", "t" * 20])
    assert rc == 3 and "cannot reach" in capsys.readouterr().err


def test_enroll_input_errors_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(cli.ADMIN_ENV, raising=False)
    model = tmp_path / "model.json"
    model.write_text("{}")
    base = ["enroll", "--model", str(model), "--server", "http://127.0.0.1:9",
            "--out", str(tmp_path / "a.keys"), "--quiet"]
    cases = [
        (["--user", "bad user", "--admin-token", "t" * 20], "user_id == 'bad user'"),
        (["--user", "alice", "--admin-token", "t" * 20, "--key-bits", "64"],
         "--key-bits == 64, must be >= 1024"),
        (["--user", "alice"], "no admin token"),
    ]
    for extra, msg in cases:
        assert main(base + extra) == 2
        assert msg in capsys.readouterr().err
    rc = main(["enroll", "--model", str(tmp_path / "none.json"), "--user", "alice",
               "--server", "http://x", "--admin-token", "t" * 20, "--out",
               str(tmp_path / "a.keys")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    rc = main(["enroll", "--model", str(model), "--user", "alice", "--server", "ftp://x",
               "--admin-token", "t" * 20, "--out", str(tmp_path / "a.keys")])
    assert rc == 2 and "must start with http://" in capsys.readouterr().err
    (tmp_path / "a.keys").write_text("keep")
    assert main(base + ["--user", "alice", "--admin-token", "t" * 20]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "a.keys").read_text() == "keep"
