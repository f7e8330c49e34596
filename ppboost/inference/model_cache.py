"""The service's cache of deserialised encrypted models (LRU, checked against the store).

A deserialised model costs far more than a store read, so the server keeps
the most recently used ones; every lookup reads the model's current version
from the store, so a model replaced or deleted by another worker process is
never served stale.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .store import ModelStore

__all__ = ["ServedModel", "ModelCache"]


class ServedModel:
    """A deserialised model plus a lock that serialises its *first* evaluation (defensive).

    ``EncryptedModel.predict`` builds its per-model acceleration state lazily
    on first use; two threads doing that first call at once could see it
    half-built.  The first call (and any call until one has succeeded) runs
    under the lock; later calls run concurrently.
    """

    def __init__(self, model):
        self.model = model
        self._lock = threading.Lock()
        self._warm = False

    def predict(self, query):
        if not self._warm:
            with self._lock:
                if not self._warm:
                    result = self.model.predict(query)
                    self._warm = True
                    return result
        return self.model.predict(query)


class ModelCache:
    """Deserialised models per user, keyed by the store's version string (LRU).

    Each lookup reads the current version from the store (one indexed read),
    so a model replaced or deleted by another process is never served stale.
    """

    def __init__(self, store: ModelStore, loader: Callable[[bytes], Any], max_entries: int):
        self._store, self._loader, self._max = store, loader, max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self.loads = 0

    def invalidate(self, user_id: str) -> None:
        with self._lock:
            self._entries.pop(user_id, None)

    def get(self, user_id: str) -> ServedModel | None:
        """The user's deserialised model, or ``None``.  Blocking: call from a thread."""
        version = self._store.get_version(user_id)
        if version is None:
            self.invalidate(user_id)
            return None
        with self._lock:
            hit = self._entries.get(user_id)
            if hit is not None and hit[0] == version:
                self._entries.move_to_end(user_id)
                return hit[1]
        got = self._store.get_blob(user_id)
        if got is None:
            self.invalidate(user_id)
            return None
        version, blob = got
        model = ServedModel(self._loader(blob))
        self.loads += 1
        with self._lock:
            self._entries[user_id] = (version, model)
            self._entries.move_to_end(user_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return model
