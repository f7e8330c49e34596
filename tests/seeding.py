"""Fixed randomness streams for the statistical tests (see tests/conftest.py)."""
from __future__ import annotations

import collections
import hashlib
import os
import threading


def seed_randomness(monkeypatch, label: str = "ppboost-tests") -> None:
    """Make ``os.urandom`` (and X25519 key generation) deterministic per thread name."""
    counters: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def urandom(n: int) -> bytes:
        name = threading.current_thread().name
        with lock:
            counters[name] += 1
            k = counters[name]
        return hashlib.shake_256(f"{label}/{name}/{k}".encode()).digest(n)

    monkeypatch.setattr(os, "urandom", urandom)
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    monkeypatch.setattr(X25519PrivateKey, "generate",
                        classmethod(lambda cls: cls.from_private_bytes(os.urandom(32))))
