"""ppboost.inference: byte formats, bad input, keys files, secrets, unsupported models."""
import os
import stat

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from ppboost.crypto.ope import MISSING_CT
from ppboost.crypto.prf import derive_key
from ppboost.inference import Client, EncryptedModel, EncryptedQuery, EncryptedResult, Proxy, UserKeys

from .helpers import count_ope_encryptions


@pytest.fixture(scope="module")
def setup():
    X, y = load_breast_cancer(return_X_y=True)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(X, label=y), 10)
    proxy = Proxy(booster, key_bits=1024)
    a, b = proxy.enroll("alice"), proxy.enroll("bob")
    return booster, X, proxy, a, b


def test_public_attributes(setup):
    booster, X, proxy, a, b = setup
    m = a.model
    assert (m.user_id, m.n_features, m.n_outputs) == ("alice", 30, 1)
    assert m.key_fingerprint == a.keys.key_fingerprint != b.keys.key_fingerprint
    assert len(m.key_fingerprint) == 64 and int(m.key_fingerprint, 16) >= 0
    q = Client(a.keys).encrypt(X[:4])
    assert (q.n_rows, q.n_features) == (4, 30)
    assert a.keys.user_id == "alice"


def test_model_round_trip_gives_identical_predictions(setup):
    booster, X, proxy, a, b = setup
    raw = a.model.to_bytes()
    m2 = EncryptedModel.from_bytes(raw)
    assert m2.to_bytes() == raw
    c = Client(a.keys)
    q = c.encrypt(X[:50])
    r1, r2 = a.model.predict(q), m2.predict(q)
    assert r1.cts != r2.cts                              # re-randomised
    assert np.array_equal(c.decrypt(r1), c.decrypt(r2))
    assert np.array_equal(a.model.leaf_indices(q), m2.leaf_indices(q))


def test_version_1_model_bytes_still_load_and_other_versions_are_refused(setup):
    # version 1 (before categorical splits) had no kind/cat_* arrays, version 2 no fin_*
    from ppboost.inference import container as fmt
    from ppboost.inference.model import MODEL_MAGIC, MODEL_SCHEMA, MODEL_SCHEMA_V1, MODEL_SCHEMA_V2
    booster, X, proxy, a, b = setup
    raw = a.model.to_bytes()
    assert raw[4:6] == b"\x03\x00"
    meta, arrays = fmt.unpack("model", MODEL_MAGIC, 3, raw, MODEL_SCHEMA)
    q = Client(a.keys).encrypt(X[:30])
    for version, schema in ((1, MODEL_SCHEMA_V1), (2, MODEL_SCHEMA_V2)):
        old = fmt.pack(MODEL_MAGIC, version, meta, {k: arrays[k] for k in schema})
        m = EncryptedModel.from_bytes(old)
        assert m.fin_lo is None and m.to_bytes()[4:6] == b"\x02\x00"   # written back as 2
        assert np.array_equal(m.leaf_indices(q), a.model.leaf_indices(q))
        if version == 1:
            assert m.kind.sum() == 0 and len(m.cat_lo) == 0
    with pytest.raises(ValueError, match="malformed model: format version 4, expected 3"):
        EncryptedModel.from_bytes(raw[:4] + b"\x04\x00" + raw[6:])
    with pytest.raises(ValueError, match="malformed model: unexpected array 'kind'"):
        EncryptedModel.from_bytes(raw[:4] + b"\x01\x00" + raw[6:])
    with pytest.raises(ValueError, match="malformed model: unexpected array 'fin_lo'"):
        EncryptedModel.from_bytes(raw[:4] + b"\x02\x00" + raw[6:])


def test_results_are_rerandomised(setup):
    booster, X, proxy, a, b = setup
    c = Client(a.keys)
    q = c.encrypt(X[:1])
    r1, r2 = a.model.predict(q), a.model.predict(q)
    assert r1.cts[0] != r2.cts[0]
    assert c.decrypt(r1)[0] == c.decrypt(r2)[0]


def test_no_secret_in_model_query_or_result_bytes(setup):
    booster, X, proxy, a, b = setup
    k = a.keys
    c = Client(k)
    blobs = {"model": a.model.to_bytes(), "query": c.encrypt(X[:3]).to_bytes(),
             "result": a.model.predict(c.encrypt(X[:3])).to_bytes()}
    width = (k.p.bit_length() + 7) // 8
    secrets_ = {"p": k.p.to_bytes(width, "big"), "q": k.q.to_bytes(width, "big"),
                "p_le": k.p.to_bytes(width, "little"), "q_le": k.q.to_bytes(width, "little"),
                "p_hex": hex(k.p)[2:].encode(), "q_hex": hex(k.q)[2:].encode(),
                "ope_key": k.ope_key, "pseudo_key": k.pseudo_key,
                "ope_key_hex": k.ope_key.hex().encode(), "pseudo_hex": k.pseudo_key.hex().encode(),
                "ope_subkey": derive_key(k.ope_key, b"ope")}
    for bname, blob in blobs.items():
        for sname, s in secrets_.items():
            assert s not in blob, f"{sname} found in {bname} bytes"
    # the model object carries no private attribute either
    assert not any(isinstance(v, int) and v in (k.p, k.q) for v in vars(a.model).values())


def test_query_wrong_number_of_features(setup):
    booster, X, proxy, a, b = setup
    q = Client(a.keys).encrypt(X[:2])
    bad = EncryptedQuery(np.ascontiguousarray(q.ct[:, :29]), q.key_fingerprint)
    with pytest.raises(ValueError, match="query has 29 features, model expects 30"):
        a.model.predict(bad)
    with pytest.raises(ValueError, match="query has 29 features, model expects 30"):
        a.model.predict(bad.to_bytes())
    with pytest.raises(ValueError, match="X has 29 features, model expects 30"):
        Client(a.keys).encrypt(X[:2, :29])


def test_query_out_of_range_ciphertext(setup):
    booster, X, proxy, a, b = setup
    q = Client(a.keys).encrypt(X[:5])
    ct = q.ct.copy()
    ct[3, 7] = np.uint64(2**48)
    with pytest.raises(ValueError, match="ciphertext out of range in row 3, feature 7"):
        a.model.predict(EncryptedQuery(ct, q.key_fingerprint).to_bytes())
    ct[3, 7] = MISSING_CT            # the missing marker is fine
    a.model.predict(EncryptedQuery(ct, q.key_fingerprint))


def test_query_wrong_key_fingerprint(setup):
    booster, X, proxy, a, b = setup
    qb = Client(b.keys).encrypt(X[:2])
    with pytest.raises(ValueError, match="key_fingerprint"):
        a.model.predict(qb)
    ra = a.model.predict(Client(a.keys).encrypt(X[:2]))
    with pytest.raises(ValueError, match="key_fingerprint"):
        Client(b.keys).decrypt(ra)


@pytest.mark.parametrize("blob", [b"", b"PPEQ", b"garbage" * 10, b"PPEQ\x01\x00\xff\xff\xff\xff",
                                  b"PPEQ\x01\x00\x05\x00\x00\x00{oops", b"PPEM\x01\x00\x02\x00\x00\x00{}"])
def test_malformed_bytes_raise_value_error(setup, blob):
    with pytest.raises(ValueError, match="malformed query"):
        EncryptedQuery.from_bytes(blob)
    with pytest.raises(ValueError, match="malformed model"):
        EncryptedModel.from_bytes(blob)
    with pytest.raises(ValueError, match="malformed result"):
        EncryptedResult.from_bytes(blob)
    booster, X, proxy, a, b = setup
    with pytest.raises(ValueError, match="malformed query"):
        a.model.predict(blob)


def test_malformed_structured_query(setup):
    booster, X, proxy, a, b = setup
    raw = Client(a.keys).encrypt(X[:2]).to_bytes()
    with pytest.raises(ValueError, match="trailing bytes"):
        EncryptedQuery.from_bytes(raw + b"\0")
    with pytest.raises(ValueError, match="needs"):
        EncryptedQuery.from_bytes(raw[:-1])
    hdr = raw.replace(b'"<u8"', b'"<f8"')
    with pytest.raises(ValueError, match="dtype"):
        EncryptedQuery.from_bytes(hdr)
    with pytest.raises(ValueError, match="version"):
        EncryptedQuery.from_bytes(raw[:4] + b"\x09\x00" + raw[6:])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_bytes_only_raise_value_error(setup, data):
    booster, X, proxy, a, b = setup
    raws = {"query": Client(a.keys).encrypt(X[:2]).to_bytes()}
    raws["result"] = a.model.predict(Client(a.keys).encrypt(X[:2])).to_bytes()
    kind = data.draw(st.sampled_from(["query", "result", "model"]))
    raw = bytearray(raws[kind] if kind != "model" else _MODEL_RAW.setdefault(0, a.model.to_bytes()))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    cls = {"query": EncryptedQuery, "result": EncryptedResult, "model": EncryptedModel}[kind]
    try:
        obj = cls.from_bytes(bytes(raw))
    except ValueError:
        return
    if kind == "query":
        try:
            a.model.predict(obj)
        except ValueError:
            pass
    elif kind == "model":
        try:
            obj.predict(Client(a.keys).encrypt(X[:1]))
        except ValueError:
            pass


_MODEL_RAW = {}


def test_keys_save_load_round_trip(setup, tmp_path):
    booster, X, proxy, a, b = setup
    path = tmp_path / "alice.keys"
    a.keys.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    k2 = UserKeys.load(path)
    assert k2 == a.keys and k2.key_fingerprint == a.keys.key_fingerprint
    c = Client(k2)
    r = a.model.predict(c.encrypt(X[:20]))
    assert np.abs(c.decrypt(r) - booster.predict(xgb.DMatrix(X[:20]))).max() <= 1e-6
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        UserKeys.load(path)
    path.write_text('{"format": "ppboost-userkeys", "version": 1}')
    with pytest.raises(ValueError, match="missing field"):
        UserKeys.load(path)


def test_unsupported_models_are_refused_with_a_reason():
    rng = np.random.default_rng(0)
    X = rng.random((200, 4))
    y = (X[:, 0] > 0.5).astype(float)
    dm = xgb.DMatrix(X, label=y)
    cases = [
        ({"objective": "binary:logistic", "booster": "dart"}, dm, "dart"),
        ({"objective": "binary:logistic", "booster": "gblinear"}, dm, "gblinear"),
        ({"objective": "reg:absoluteerror"}, dm, "unsupported objective 'reg:absoluteerror'"),
        ({"objective": "multi:softmax", "num_class": 2}, dm, "unsupported objective"),
    ]
    Y2 = np.stack([y, 1 - y], axis=1)
    cases.append(({"objective": "reg:squarederror", "multi_strategy": "multi_output_tree",
                   "tree_method": "hist"}, xgb.DMatrix(X, label=Y2), "multi-target"))
    cases.append(({"objective": "binary:logistic"}, dm, None))   # 0 boosting rounds
    for params, d, msg in cases:
        if msg is None:
            with pytest.raises(ValueError, match="model has 0 trees, must have >= 1"):
                Proxy(xgb.train(params, d, 0), key_bits=1024)
            continue
        booster = xgb.train(params, d, 3)
        with pytest.raises(ValueError, match=msg):
            Proxy(booster, key_bits=1024)


def test_malformed_categorical_splits_are_refused_with_a_reason():
    import json
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"c": pd.Categorical(rng.integers(0, 5, 200)), "x": rng.random(200)})
    b = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": 2},
                  xgb.DMatrix(df, label=(df["c"].cat.codes > 2).astype(float),
                              enable_categorical=True), 2)
    good = json.loads(b.save_raw("json"))
    Proxy(good, key_bits=1024)                       # categorical splits load
    t0 = good["learner"]["gradient_booster"]["model"]["trees"][0]
    assert t0["split_type"][0] == 1 and t0["categories_nodes"][0] == 0

    def mutated(**fields):
        j = json.loads(json.dumps(good))
        j["learner"]["gradient_booster"]["model"]["trees"][0].update(fields)
        return j
    cases = [
        (mutated(categories=[-1] + t0["categories"][1:]), "category -1, must be an integer in"),
        (mutated(categories=[2.5] + t0["categories"][1:]), "category 2.5"),
        (mutated(categories=[1 << 24] + t0["categories"][1:]), "must be an integer in \\[0, 16777215\\)"),
        (mutated(split_type=[2] + t0["split_type"][1:]), "split_type == 2 at node 0, must be 0"),
        (mutated(categories_nodes=[], categories_segments=[], categories_sizes=[]),
         "categorical node 0 has no categories entry"),
        (mutated(categories_sizes=[len(t0["categories"]) + 1] + t0["categories_sizes"][1:]),
         "out of range"),
        (mutated(categories_segments=t0["categories_segments"][:-1]), "same length"),
    ]
    for j, msg in cases:
        with pytest.raises(ValueError, match=msg):
            Proxy(j, key_bits=1024)


def test_bad_arguments(setup, tmp_path):
    booster, X, proxy, a, b = setup
    with pytest.raises(ValueError, match="key_bits == 512"):
        Proxy(booster, key_bits=512)
    with pytest.raises(ValueError, match="user_id"):
        proxy.enroll("")
    with pytest.raises(ValueError, match="does not exist"):
        Proxy(str(tmp_path / "nope.json"))
    with pytest.raises(ValueError, match="X must be 2-D"):
        Client(a.keys).encrypt(np.zeros((2, 3, 30)))


def test_slot_width_follows_the_margin_bound():
    rng = np.random.default_rng(3)
    X = rng.random((300, 3))
    for scale, want in ((1.0, 64), (1e11, 128), (1e30, None)):
        y = (X[:, 0] + X[:, 1] ** 2) * scale
        b = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "base_score": 0.0},
                      xgb.DMatrix(X, label=y), 5)
        if want is None:
            with pytest.raises(ValueError, match="model margins too large"):
                Proxy(b, key_bits=1024)
            continue
        enr = Proxy(b, key_bits=1024).enroll("u")
        assert enr.model.slot_bits == want
        assert EncryptedModel.from_bytes(enr.model.to_bytes()).slot_bits == want
        c = Client(enr.keys)
        got = c.decrypt(enr.model.predict(c.encrypt(X[:40])))
        ref = b.predict(xgb.DMatrix(X[:40]))
        assert np.all(np.abs(got - ref) <= 1e-5 * np.maximum(1, np.abs(ref)))


def test_thresholds_encrypted_once_per_distinct_value(setup, monkeypatch):
    booster, X, proxy, a, b = setup
    calls = count_ope_encryptions(monkeypatch)
    enr = proxy.enroll("carol")
    inner = enr.model.left >= 0
    pairs = set(zip(proxy._feat[inner].tolist(), proxy._thr[inner].tolist()))
    fmax = float(np.finfo(np.float32).max)       # and each feature's finite bounds
    pairs |= {(f, v) for f in range(X.shape[1]) for v in (-fmax, fmax)}
    assert calls == [len(pairs)]                 # one batch, each distinct pair once
    # equal (feature, threshold) pairs share one ciphertext; order within a feature holds
    thr = enr.model.thr[inner]
    for f in set(proxy._feat[inner].tolist()):
        sel = proxy._feat[inner] == f
        t32, c = proxy._thr[inner][sel], thr[sel]
        o = np.argsort(t32, kind="stable")
        assert np.all(np.diff(c[o].astype(np.int64)) >= 0)
        assert np.array_equal(t32[o][1:] == t32[o][:-1], c[o][1:] == c[o][:-1])


def test_users_get_independent_keys_pseudonyms_and_ciphertexts(setup):
    booster, X, proxy, a, b = setup
    ka, kb = a.keys, b.keys
    assert ka.ope_key != kb.ope_key and ka.pseudo_key != kb.pseudo_key and ka.n != kb.n
    ca, cb = Client(ka), Client(kb)
    assert not np.array_equal(ca._order, cb._order)       # 30! orders: equal w.p. ~4e-33
    assert sorted(ca._order.tolist()) == list(range(30))
    assert not np.array_equal(a.model.thr, b.model.thr)
    assert not set(a.model.leaf_ct) & set(b.model.leaf_ct)
    # the model's split slots are the pseudonym positions of xgboost's split features
    inner = a.model.left >= 0
    assert np.array_equal(ca._order[a.model.slot[inner]], proxy._feat[inner])
