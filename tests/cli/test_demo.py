"""Tests for ppboost.demo (`ppboost demo`)."""
import io
import sys

import pytest

from ppboost import demo
from ppboost.demo import DemoConfig, DemoUnavailable, format_table

SMALL = DemoConfig(n_patients=300, n_test=120, num_boost_round=2, max_depth=2, n_queries=2,
                   key_bits=1024)


def test_format_table():
    t = format_table(["name", "x", "n"], [["a", 0.5, 1200], ["bb", float("nan"), 3]])
    lines = t.splitlines()
    assert lines[0].split() == ["name", "x", "n"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["a", "0.5000", "1,200"]
    assert lines[3].split() == ["bb", "n/a", "3"]
    # numbers are right-aligned in columns of equal width
    assert len({len(l) for l in lines[:2]}) == 1


def test_require_names_the_missing_piece():
    with pytest.raises(DemoUnavailable, match=r"step 9 needs ppboost.nope.thing, which cannot be "
                                              r"imported here .*pip install 'ppboost\[server\]'"):
        demo._require("ppboost.nope", "thing", "step 9")


def test_demo_stops_clearly_without_the_server_extra(monkeypatch, tmp_path):
    # an installation without ppboost[server] (httpx, fastapi): training and the revealed
    # model run, then the demo says what encrypted prediction lacks instead of faking it
    for mod in ("httpx", "fastapi"):
        monkeypatch.setitem(sys.modules, mod, None)
    for mod in ("ppboost.inference.http_client", "ppboost.inference.server"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    out = io.StringIO()
    rc = demo.main(SMALL, outdir=tmp_path, out=out)
    text = out.getvalue()
    assert rc == 1
    assert "[1/5] Data" in text and "hospital_3" in text
    assert "plain xgboost on the pooled data" in text and "test AUC" in text
    assert "[3/5]" in text and (tmp_path / "ms_model.json").exists()
    assert "DEMO STOPPED: encrypted prediction (step 4) needs ppboost.inference.http_client" in text
    assert "[5/5]" not in text


def test_demo_end_to_end_small(tmp_path):
    out = io.StringIO()
    rc = demo.main(SMALL, outdir=tmp_path, out=out)
    text = out.getvalue()
    assert rc == 0, text
    for i in range(1, 6):
        assert f"[{i}/5]" in text
    assert (tmp_path / "ms_model.json").exists()
    assert "predictions identical" in text
    assert "decrypted risk" in text and "What stayed secret" in text


def test_first_structural_difference():
    import numpy as np
    import xgboost

    rng = np.random.default_rng(0)
    X = rng.integers(0, 10, (200, 3)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 9).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 2}
    a = xgboost.train(params, xgboost.DMatrix(X, label=y), 3)
    b = xgboost.train(params | {"eta": 0.1}, xgboost.DMatrix(X, label=y), 3)
    assert demo._first_structural_difference(a, a) is None
    # eta changes leaf values only in tree 1, and the splits of later trees may follow
    first = demo._first_structural_difference(a, b)
    assert first is None or first >= 1
    c = xgboost.train(params, xgboost.DMatrix(X[:, ::-1].copy(), label=y), 3)
    assert demo._first_structural_difference(a, c) == 0       # other split features
