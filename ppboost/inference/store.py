"""Persistent store of the prediction service: encrypted models and access tokens.

The store is an SQLite file (stdlib :mod:`sqlite3`, WAL journal, so several
worker processes can read while one writes).  It holds, per user:

- the user's :class:`~ppboost.inference.EncryptedModel` as the opaque bytes of
  ``EncryptedModel.to_bytes()`` together with a random *version* string that
  changes on every upload (caches key on it: a model replaced or deleted in
  another worker process is noticed by the version read at each request);
- the user's access token, stored only as a salted SHA-256 digest.

Access tokens
-------------
A token has the form ``ppb_<token_id>_<secret>``: ``token_id`` is 64 random
bits in hex, used only to find the row, and ``secret`` is 256 random bits in
URL-safe base64.  The store keeps ``token_id``, a 128-bit salt and
``SHA-256(salt || secret)``.  Since the secret is uniformly random (not a
password), a fast hash is enough: recovering it from the digest costs 2^256
work.  Digests are compared with :func:`hmac.compare_digest` (constant time).
A token is shown exactly once, in the response that created it.

Rotation policy (applied by :meth:`ModelStore.put_model`):

- first upload for a user (or upload after a delete): a new token is issued;
- replacing a model encrypted under *different* keys (another
  ``key_fingerprint``): a new token is issued and the old one stops working,
  because the old keys file can no longer produce queries for this model;
- replacing a model under the *same* keys: the token is kept (the response
  carries no token) unless ``rotate_token=True`` is asked for;
- deleting a user's model deletes the user's token too.

File modes: the database file is created with mode 0600 (owner read/write
only), before SQLite opens it; SQLite gives its ``-wal`` and ``-shm`` files the
database file's mode, and the store also sets 0600 on them.  An existing file
readable by group or others is reported by :meth:`ModelStore.loose_files`.
User ids are checked by :func:`ppboost.inference.ids.validate_user_id`.

The store knows nothing about trees or cryptography: it stores bytes and the
three public facts the server needs to answer quickly (number of features,
number of outputs, key fingerprint).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .ids import USER_ID_PATTERN, validate_user_id

__all__ = [
    "ModelStore", "ModelRecord", "PutResult", "USER_ID_PATTERN",
    "validate_user_id", "new_token", "parse_token",
]

_TOKEN_RE = re.compile(r"^ppb_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")

_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    user_id         TEXT PRIMARY KEY,
    version         TEXT NOT NULL,
    blob            BLOB NOT NULL,
    n_features      INTEGER NOT NULL,
    n_outputs       INTEGER NOT NULL,
    key_fingerprint TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id   TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL UNIQUE,
    salt       BLOB NOT NULL,
    digest     BLOB NOT NULL,
    created_at REAL NOT NULL
);
"""


def new_token() -> tuple[str, str, str]:
    """A fresh random access token: ``(token, token_id, secret)``."""
    token_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"ppb_{token_id}_{secret}", token_id, secret


def parse_token(token: str) -> tuple[str, str] | None:
    """Split a token into ``(token_id, secret)``; ``None`` if it is not of our form."""
    m = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    return (m.group(1), m.group(2)) if m else None


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (an existing file is kept)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


@dataclass(frozen=True)
class ModelRecord:
    """Public facts about one stored model (the blob itself is read separately)."""
    user_id: str
    version: str
    n_features: int
    n_outputs: int
    key_fingerprint: str
    size_bytes: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class PutResult:
    """Outcome of :meth:`ModelStore.put_model`.  ``token`` is ``None`` when the old one is kept."""
    record: ModelRecord
    created: bool
    token: str | None


class ModelStore:
    """SQLite store of encrypted models and hashed access tokens.

    Safe to share between threads (one connection per thread) and between
    processes (SQLite WAL mode, ``BEGIN IMMEDIATE`` for every write).
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 10.0):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"db path {str(self.path)!r} is a directory, must be a file path")
        if not self.path.parent.exists():
            raise ValueError(f"db directory {str(self.path.parent)!r} does not exist")
        self._timeout = float(timeout)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        _create_private(self.path)
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")
        self._init_schema(con)
        self._private_sidecars()

    def files(self) -> list[Path]:
        """The database file and those of its ``-wal`` and ``-shm`` files that exist."""
        return [p for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
                if p.exists()]

    def loose_files(self) -> list[tuple[Path, int]]:
        """``(file, mode)`` of the database files that group or others may read or write."""
        out = []
        for p in self.files():
            mode = stat.S_IMODE(p.stat().st_mode)
            if mode & 0o077:
                out.append((p, mode))
        return out

    def _private_sidecars(self) -> None:
        """Set 0600 on the -wal/-shm files this process created (SQLite copies the db's mode)."""
        for p in self.files()[1:]:
            try:
                st = p.stat()
                if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077 \
                        and not stat.S_IMODE(self.path.stat().st_mode) & 0o077:
                    os.chmod(p, 0o600)
            except OSError:  # pragma: no cover - removed by a checkpoint meanwhile
                pass

    # -- connections ---------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None,
                                  check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    class _write:
        """``with self._write(con):`` runs the block in one ``BEGIN IMMEDIATE`` transaction."""

        def __init__(self, con):
            self.con = con

        def __enter__(self):
            self.con.execute("BEGIN IMMEDIATE")
            return self.con

        def __exit__(self, exc_type, exc, tb):
            self.con.execute("COMMIT" if exc_type is None else "ROLLBACK")
            return False

    def _init_schema(self, con) -> None:
        with self._write(con):
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta(key, value) VALUES('schema_version', ?)",
                            (_SCHEMA_VERSION,))
            elif row[0] != _SCHEMA_VERSION:
                raise ValueError(f"db schema_version == {row[0]!r}, this ppboost reads "
                                 f"{_SCHEMA_VERSION!r}")

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                try:
                    con.close()
                except sqlite3.Error:  # pragma: no cover - closing from another thread
                    pass
            self._all.clear()
        self._local = threading.local()

    # -- models --------------------------------------------------------------
    _RECORD_COLS = ("user_id, version, n_features, n_outputs, key_fingerprint, "
                    "size_bytes, created_at, updated_at")

    def get_record(self, user_id: str) -> ModelRecord | None:
        """The public facts of ``user_id``'s model, or ``None`` if there is none."""
        row = self._con().execute(
            f"SELECT {self._RECORD_COLS} FROM models WHERE user_id=?", (user_id,)).fetchone()
        return ModelRecord(*row) if row else None

    def get_version(self, user_id: str) -> str | None:
        """The current model version of ``user_id`` (one indexed read), or ``None``."""
        row = self._con().execute("SELECT version FROM models WHERE user_id=?",
                                  (user_id,)).fetchone()
        return row[0] if row else None

    def max_n_features(self) -> int | None:
        """The largest ``n_features`` of the stored models (``None`` when there is none)."""
        return self._con().execute("SELECT max(n_features) FROM models").fetchone()[0]

    def count_users(self) -> int:
        return self._con().execute("SELECT count(*) FROM models").fetchone()[0]

    def get_blob(self, user_id: str, version: str | None = None) -> tuple[str, bytes] | None:
        """``(version, blob)`` of the stored model (of that version if given), or ``None``."""
        if version is None:
            row = self._con().execute("SELECT version, blob FROM models WHERE user_id=?",
                                      (user_id,)).fetchone()
        else:
            row = self._con().execute(
                "SELECT version, blob FROM models WHERE user_id=? AND version=?",
                (user_id, version)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def list_records(self) -> list[ModelRecord]:
        rows = self._con().execute(
            f"SELECT {self._RECORD_COLS} FROM models ORDER BY user_id").fetchall()
        return [ModelRecord(*r) for r in rows]

    def put_model(self, user_id: str, blob: bytes, *, n_features: int, n_outputs: int,
                  key_fingerprint: str, rotate_token: bool = False) -> PutResult:
        """Insert or replace ``user_id``'s model; issue a token per the rotation policy."""
        validate_user_id(user_id)
        if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) == 0:
            raise ValueError("model blob is empty, must be the bytes of EncryptedModel.to_bytes()")
        now = time.time()
        version = secrets.token_hex(16)
        con = self._con()
        token = None
        with self._write(con):
            old = con.execute("SELECT key_fingerprint, created_at FROM models WHERE user_id=?",
                              (user_id,)).fetchone()
            has_token = con.execute("SELECT 1 FROM tokens WHERE user_id=?",
                                    (user_id,)).fetchone() is not None
            created = old is None
            if created:
                con.execute("INSERT INTO models(user_id, version, blob, n_features, n_outputs, "
                            "key_fingerprint, size_bytes, created_at, updated_at) "
                            "VALUES(?,?,?,?,?,?,?,?,?)",
                            (user_id, version, bytes(blob), int(n_features), int(n_outputs),
                             str(key_fingerprint), len(blob), now, now))
            else:
                con.execute("UPDATE models SET version=?, blob=?, n_features=?, n_outputs=?, "
                            "key_fingerprint=?, size_bytes=?, updated_at=? WHERE user_id=?",
                            (version, bytes(blob), int(n_features), int(n_outputs),
                             str(key_fingerprint), len(blob), now, user_id))
            if created or not has_token or rotate_token or old[0] != str(key_fingerprint):
                token, token_id, secret = new_token()
                salt = secrets.token_bytes(16)
                con.execute("DELETE FROM tokens WHERE user_id=?", (user_id,))
                con.execute("INSERT INTO tokens(token_id, user_id, salt, digest, created_at) "
                            "VALUES(?,?,?,?,?)", (token_id, user_id, salt, _digest(salt, secret),
                                                  now))
            created_at = now if created else old[1]
        record = ModelRecord(user_id, version, int(n_features), int(n_outputs),
                             str(key_fingerprint), len(blob), created_at, now)
        return PutResult(record=record, created=created, token=token)

    def delete_model(self, user_id: str) -> bool:
        """Delete ``user_id``'s model and token; ``False`` if there was no model."""
        con = self._con()
        with self._write(con):
            n = con.execute("DELETE FROM models WHERE user_id=?", (user_id,)).rowcount
            con.execute("DELETE FROM tokens WHERE user_id=?", (user_id,))
        return n > 0

    # -- tokens --------------------------------------------------------------
    def authenticate(self, token: str) -> str | None:
        """The user id owning ``token``, or ``None`` if the token is unknown or wrong.

        One indexed lookup by ``token_id``, then a constant-time digest comparison.
        """
        parts = parse_token(token)
        if parts is None:
            return None
        token_id, secret = parts
        row = self._con().execute("SELECT user_id, salt, digest FROM tokens WHERE token_id=?",
                                  (token_id,)).fetchone()
        if row is None:
            return None
        user_id, salt, digest = row
        return user_id if hmac.compare_digest(_digest(bytes(salt), secret), bytes(digest)) else None
