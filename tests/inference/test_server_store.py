"""ppboost.inference.store: SQLite persistence of encrypted models and hashed tokens."""
import sqlite3
import threading

import pytest

from ppboost.inference.store import ModelStore, new_token, parse_token, validate_user_id


@pytest.fixture
def store(tmp_path):
    s = ModelStore(tmp_path / "models.db")
    yield s
    s.close()


def put(store, user="alice", blob=b"model-bytes", fp="fp1", **kw):
    return store.put_model(user, blob, n_features=30, n_outputs=1, key_fingerprint=fp, **kw)


def test_first_upload_issues_token_that_authenticates(store):
    res = put(store)
    assert res.created and res.token is not None
    assert parse_token(res.token) is not None
    assert store.authenticate(res.token) == "alice"
    rec = store.get_record("alice")
    assert (rec.n_features, rec.n_outputs, rec.key_fingerprint, rec.size_bytes) == (30, 1, "fp1", 11)
    assert store.get_blob("alice") == (rec.version, b"model-bytes")


def test_wrong_and_malformed_tokens_do_not_authenticate(store):
    tok = put(store).token
    tid, secret = parse_token(tok)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert store.authenticate(f"ppb_{tid}_{flipped}") is None
    assert store.authenticate(new_token()[0]) is None          # unknown token id
    for bad in ["", "Bearer x", tok + "x", tok.upper(), "ppb__", None]:
        assert store.authenticate(bad) is None


def test_token_stored_only_as_salted_hash(store, tmp_path):
    tok = put(store).token
    _, secret = parse_token(tok)
    raw = (tmp_path / "models.db").read_bytes()
    wal = tmp_path / "models.db-wal"
    if wal.exists():
        raw += wal.read_bytes()
    assert secret.encode() not in raw and tok.encode() not in raw
    con = sqlite3.connect(tmp_path / "models.db")
    cols = [r[1] for r in con.execute("PRAGMA table_info(tokens)")]
    assert cols == ["token_id", "user_id", "salt", "digest", "created_at"]
    con.close()


def test_rotation_policy(store):
    t1 = put(store, fp="k1").token
    same = put(store, blob=b"v2", fp="k1")                       # same keys: token kept
    assert not same.created and same.token is None
    assert store.authenticate(t1) == "alice"
    forced = put(store, blob=b"v3", fp="k1", rotate_token=True)  # asked for: new token
    assert forced.token is not None and store.authenticate(t1) is None
    t2 = forced.token
    other_keys = put(store, blob=b"v4", fp="k2")                 # new keys: new token
    assert other_keys.token is not None
    assert store.authenticate(t2) is None and store.authenticate(other_keys.token) == "alice"
    assert store.get_blob("alice")[1] == b"v4"


def test_versions_change_on_every_upload_and_delete_removes_token(store):
    r1 = put(store)
    r2 = put(store, blob=b"other")
    assert r1.record.version != r2.record.version
    assert store.get_version("alice") == r2.record.version
    assert store.delete_model("alice") is True
    assert store.get_version("alice") is None and store.get_blob("alice") is None
    assert store.authenticate(r1.token) is None
    assert store.delete_model("alice") is False
    again = put(store)
    assert again.created and again.token is not None and again.record.version != r2.record.version


def test_users_are_isolated(store):
    ta, tb = put(store, "alice").token, put(store, "bob", fp="b").token
    assert store.authenticate(ta) == "alice" and store.authenticate(tb) == "bob"
    store.delete_model("alice")
    assert store.authenticate(tb) == "bob"
    assert [r.user_id for r in store.list_records()] == ["bob"]


def test_persists_across_reopen(tmp_path):
    s = ModelStore(tmp_path / "m.db")
    tok = put(s).token
    v = s.get_version("alice")
    s.close()
    s2 = ModelStore(tmp_path / "m.db")
    assert s2.get_version("alice") == v and s2.authenticate(tok) == "alice"
    assert s2.count_users() == 1
    s2.close()


def test_wal_mode_and_concurrent_writers(store, tmp_path):
    mode = sqlite3.connect(tmp_path / "models.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    errors = []

    def work(i):
        try:
            for j in range(10):
                put(store, f"u{i}", blob=bytes([j + 1]) * 10, fp=f"f{j}")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_users() == 4
    assert all(store.get_blob(f"u{i}")[1] == bytes([10]) * 10 for i in range(4))


@pytest.mark.parametrize("bad", ["", "-alice", "a" * 65, "al ice", "al/ice", "ü", "a\n"])
def test_bad_user_ids_rejected(store, bad):
    with pytest.raises(ValueError, match="user_id"):
        validate_user_id(bad)
    with pytest.raises(ValueError, match="user_id"):
        put(store, bad)
    assert store.count_users() == 0


def test_empty_blob_and_bad_paths_rejected(store, tmp_path):
    with pytest.raises(ValueError, match="model blob is empty"):
        put(store, blob=b"")
    with pytest.raises(ValueError, match="is a directory"):
        ModelStore(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ModelStore(tmp_path / "nope" / "m.db")
