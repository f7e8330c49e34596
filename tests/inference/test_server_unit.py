"""ppboost.inference.server in-process: the model cache, first-call serialisation, the
multi-worker listening socket."""
import socket
import time

from ppboost.inference.server import ModelCache, ServedModel, TcpConfig
from ppboost.inference.store import ModelStore

from .helpers import run_in_threads


def _put(store, blob, fp="k"):
    store.put_model("alice", blob, n_features=1, n_outputs=1, key_fingerprint=fp)


def test_cache_hits_and_sees_replacements_by_another_process(tmp_path):
    writer, reader = ModelStore(tmp_path / "m.db"), ModelStore(tmp_path / "m.db")
    cache = ModelCache(reader, loader=lambda b: b.decode(), max_entries=2)
    assert cache.get("alice") is None
    _put(writer, b"v1")
    assert cache.get("alice").model == "v1" and cache.get("alice").model == "v1"
    assert cache.loads == 1                                # second call was a hit
    _put(writer, b"v2")                                    # replaced through another store
    assert cache.get("alice").model == "v2" and cache.loads == 2
    writer.delete_model("alice")
    assert cache.get("alice") is None
    _put(writer, b"v2")                                    # same bytes, new version: reloaded
    assert cache.get("alice").model == "v2" and cache.loads == 3


def test_cache_is_bounded_lru(tmp_path):
    store = ModelStore(tmp_path / "m.db")
    for u in ("a", "b", "c"):
        store.put_model(u, u.encode(), n_features=1, n_outputs=1, key_fingerprint=u)
    cache = ModelCache(store, loader=lambda b: b.decode(), max_entries=2)
    for u in ("a", "b", "a", "c"):                         # c evicts b (least recent)
        cache.get(u)
    assert cache.loads == 3
    cache.get("a")
    assert cache.loads == 3
    cache.get("b")
    assert cache.loads == 4


class _LazyModel:
    """Builds state lazily in two steps, like EncryptedModel.predict does."""

    def __init__(self):
        self.a = self.b = None
        self.calls = 0

    def predict(self, q):
        if self.a is None:
            self.a = 1
            time.sleep(0.05)                               # widen the race window
            self.b = 2
        self.calls += 1
        return self.a + self.b + q


def test_first_predict_is_serialised():
    served = ServedModel(_LazyModel())
    out, errs = run_in_threads(lambda: served.predict(1), 8)   # the race this guards against
    assert errs == [] and out == [4] * 8 and served.model.calls == 8


def test_multiworker_socket_is_tcp_so_connections_get_nodelay():
    cfg = TcpConfig("ppboost.inference.server:app_from_env", factory=True, host="127.0.0.1",
                     port=0, workers=2)
    sock = cfg.bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        sock.listen()
        with socket.create_connection(sock.getsockname()):
            conn, _ = sock.accept()
            with conn:   # what asyncio checks before setting TCP_NODELAY on a connection
                assert conn.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
