"""A user's secret keys: :class:`UserKeys`, the keys derived from them, the keys file.

:class:`UserKeys` is what :meth:`Proxy.enroll <ppboost.inference.proxy.Proxy.enroll>`
draws for one user: the Paillier primes p and q, the OPE key and the feature
pseudonym key (secret), plus the public model facts the client needs (number of
features and outputs, objective, intercepts).  :func:`feature_order` and
:func:`ope_cipher` derive the query column order and the order-preserving
cipher from it, the same way on the client and the proxy.

The keys file
-------------
``ppboost enroll --out alice.keys`` writes one JSON document, created with
mode 0600 (owner read/write only), holding everything the user's client needs
and nothing the server holds (:func:`save_client_keys`,
:func:`load_client_keys`)::

    {"format": "ppboost-client-keys", "version": 1,
     "user_id": "alice",
     "server": "http://127.0.0.1:8000",      # where the model was uploaded
     "token": "ppb_<id>_<secret>",             # alice's access token (secret)
     "key_fingerprint": "...",                 # public, identifies the keys
     "user_keys": {...}}                       # UserKeys.to_dict(), what UserKeys.save()
                                               # writes: Paillier p and q, the OPE and
                                               # feature-pseudonym keys (secret), the
                                               # objective and intercepts (public)

A keys file that cannot be read or used raises :class:`KeysFileError`, whose
message names the file and the problem.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..crypto import paillier as pl
from ..crypto.ope import OPE
from ..crypto.prf import derive_key, prf_u64
from ..errors import FormatError
from . import container as fmt

__all__ = ["OPE_RANGE_BITS", "USER_KEYS_FORMAT", "USER_KEYS_VERSION", "UserKeys",
           "feature_order", "ope_cipher", "CLIENT_KEYS_FORMAT", "CLIENT_KEYS_VERSION",
           "KeysFileError", "write_private", "save_client_keys", "load_client_keys"]

OPE_RANGE_BITS = 48                    # OPE ciphertexts lie in [0, 2**48)
USER_KEYS_FORMAT = "ppboost-userkeys"  # UserKeys.save / to_dict
USER_KEYS_VERSION = 1
CLIENT_KEYS_FORMAT = "ppboost-client-keys"   # the keys file of `ppboost enroll`
CLIENT_KEYS_VERSION = 1


def feature_order(pseudo_key: bytes, n_features: int) -> np.ndarray:
    """order[j] = the feature sent in query column j (columns sorted by PRF pseudonym)."""
    ids = prf_u64(pseudo_key, b"feature", range(n_features))
    return np.asarray(sorted(range(n_features), key=lambda f: ids[f]), dtype=np.int64)


def ope_cipher(ope_key: bytes) -> OPE:
    """The user's order-preserving cipher: 32-bit plaintexts, ciphertexts < 2**OPE_RANGE_BITS."""
    return OPE(derive_key(ope_key, b"ope"), 32, OPE_RANGE_BITS)


@dataclass
class UserKeys:
    """A user's secret keys (client side) and the public model facts the client needs.

    Secret: Paillier p, q; the OPE key; the pseudonym key.  Saved as
    versioned JSON with file mode 0600.
    """
    user_id: str
    n: int
    p: int
    q: int
    ope_key: bytes
    pseudo_key: bytes
    n_features: int
    n_outputs: int
    objective: str
    base_margin: list

    @property
    def key_fingerprint(self) -> str:
        return pl.key_fingerprint(self.n)

    def to_dict(self) -> dict:
        return {"format": USER_KEYS_FORMAT, "version": USER_KEYS_VERSION, "user_id": self.user_id,
                "n": hex(self.n), "p": hex(self.p), "q": hex(self.q),
                "ope_key": self.ope_key.hex(), "pseudo_key": self.pseudo_key.hex(),
                "n_features": self.n_features, "n_outputs": self.n_outputs,
                "objective": self.objective, "base_margin": [float(v) for v in self.base_margin],
                "key_fingerprint": self.key_fingerprint}

    def save(self, path) -> None:
        """Write the keys as JSON to ``path`` with permissions 0600 (replaces the file)."""
        _replace_private(Path(os.fspath(path)), json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def load(cls, path) -> UserKeys:
        with open(os.fspath(path), "rb") as fh:
            raw = fh.read()
        try:
            d = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"keys file {path!s} is not valid JSON") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d) -> UserKeys:
        what = "keys file"
        if not isinstance(d, dict) or d.get("format") != USER_KEYS_FORMAT:
            raise ValueError(f"malformed {what}: format must be {USER_KEYS_FORMAT!r}")
        fmt.get(d, what, "version", int, USER_KEYS_VERSION, USER_KEYS_VERSION)
        try:
            k = cls(user_id=fmt.get(d, what, "user_id", str),
                    n=int(fmt.get(d, what, "n", str), 16), p=int(fmt.get(d, what, "p", str), 16),
                    q=int(fmt.get(d, what, "q", str), 16),
                    ope_key=bytes.fromhex(fmt.get(d, what, "ope_key", str)),
                    pseudo_key=bytes.fromhex(fmt.get(d, what, "pseudo_key", str)),
                    n_features=fmt.get(d, what, "n_features", int, 1),
                    n_outputs=fmt.get(d, what, "n_outputs", int, 1),
                    objective=fmt.get(d, what, "objective", str),
                    base_margin=list(fmt.get(d, what, "base_margin", list)))
        except ValueError as e:
            if str(e).startswith("malformed"):
                raise
            raise ValueError(f"malformed {what}: {e}") from None
        if k.p * k.q != k.n:
            raise ValueError(f"malformed {what}: p * q != n")
        if len(k.ope_key) != 32 or len(k.pseudo_key) != 32:
            raise ValueError(f"malformed {what}: ope_key and pseudo_key must be 32 bytes")
        if len(k.base_margin) != k.n_outputs:
            raise ValueError(f"malformed {what}: base_margin has {len(k.base_margin)} values, "
                             f"expected n_outputs == {k.n_outputs}")
        if d.get("key_fingerprint", k.key_fingerprint) != k.key_fingerprint:
            raise ValueError(f"malformed {what}: key_fingerprint does not match n")
        return k


# --------------------------------------------------------------------------- the keys file
class KeysFileError(FormatError):
    """A keys file that cannot be read, written or used (the message names the file).

    A :class:`ppboost.errors.FormatError`, hence also a ``ValueError``.
    """


def _replace_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (temp file + rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.chmod(path, 0o600)


def write_private(path: Path, data: bytes, force: bool) -> None:
    """Write ``data`` to a new file ``path`` with mode 0600, atomically (temp file + rename).

    KeysFileError if ``path`` exists and not ``force``, or if its directory is missing.
    """
    if path.exists() and not force:
        raise KeysFileError(f"{str(path)!r} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise KeysFileError(f"directory {str(path.parent)!r} does not exist")
    _replace_private(path, data)


def save_client_keys(path, *, keys: UserKeys, user_id: str, server: str, token: str | None,
                     key_fingerprint: str, force: bool = False) -> None:
    """Write the keys file described in the module docstring (mode 0600)."""
    doc = {"format": CLIENT_KEYS_FORMAT, "version": CLIENT_KEYS_VERSION, "user_id": user_id,
           "server": server, "token": token, "key_fingerprint": key_fingerprint,
           "user_keys": keys.to_dict()}
    write_private(Path(path), (json.dumps(doc, indent=1) + "\n").encode(), force)


def load_client_keys(path) -> dict:
    """Read a keys file; ``doc["keys"]`` is the :class:`UserKeys` object.

    Warns on stderr if the file is readable by others.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise KeysFileError(f"cannot read keys file {str(path)!r}: {e.strerror}") from None
    except ValueError:
        raise KeysFileError(f"keys file {str(path)!r} is not JSON; expected a file written by "
                            "`ppboost enroll`") from None
    if not isinstance(doc, dict) or doc.get("format") != CLIENT_KEYS_FORMAT:
        raise KeysFileError(f"keys file {str(path)!r}: format is not {CLIENT_KEYS_FORMAT!r}; "
                            "expected a file written by `ppboost enroll`")
    if doc.get("version") != CLIENT_KEYS_VERSION:
        raise KeysFileError(f"keys file {str(path)!r}: version == {doc.get('version')!r}, "
                            f"this ppboost reads {CLIENT_KEYS_VERSION}")
    if not isinstance(doc.get("user_id"), str) or "user_keys" not in doc:
        raise KeysFileError(f"keys file {str(path)!r}: field 'user_id' or 'user_keys' missing")
    if (Path(path).stat().st_mode & 0o077) != 0:
        print(f"ppboost: warning: keys file {str(path)!r} is readable by others; "
              f"run chmod 600 {path}", file=sys.stderr)
    try:
        doc["keys"] = UserKeys.from_dict(doc["user_keys"])
    except Exception as e:  # a corrupt file is an expected user error
        raise KeysFileError(f"keys file {str(path)!r}: user_keys cannot be read "
                            f"({type(e).__name__}: {e})") from None
    return doc
