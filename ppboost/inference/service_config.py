"""The prediction service's settings and listening checks (no web framework needed).

:class:`ServerConfig` is what every uvicorn worker receives;
:func:`check_listen` decides whether the service may listen where it is
asked to (HTTPS with both files, or plain HTTP on loopback only unless
``--insecure-http``); :func:`max_query_body` derives the body limit from a
served model.  :mod:`ppboost.inference.server` builds the app on them.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import socket
import ssl
from dataclasses import asdict, dataclass

__all__ = ["ServerConfig", "admin_token_digest", "max_query_body", "is_loopback",
           "configure_logging", "check_tls_files", "check_listen", "DEFAULT_MAX_BATCH",
           "DEFAULT_MAX_MODEL_BYTES", "CONFIG_ENV", "API_VERSION", "OCTET", "TLS_CIPHERS"]

log = logging.getLogger("ppboost.server")

DEFAULT_MAX_BATCH = 1024
DEFAULT_MAX_MODEL_BYTES = 64 * 1024 * 1024
#: room for whitespace in the JSON variant of the largest valid predict body
BODY_SLACK = 1024
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"   # TLS 1.2 suites; TLS 1.3 ones are always on
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
CONFIG_ENV = "PPBOOST_SERVER_CONFIG"
API_VERSION = "1"
OCTET = "application/octet-stream"


def admin_token_digest(token: str) -> str:
    """SHA-256 hex digest of the admin token (what the server keeps in memory)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class ServerConfig:
    """Everything a worker process needs; serialisable so uvicorn workers can share it.

    ``admin_token_sha256`` is the SHA-256 hex digest of the admin token
    (the token itself is not kept).  ``max_body_bytes``: ``None`` (default)
    bounds each predict body by the largest valid request for the user's
    model (:func:`max_query_body`); a number bounds every body, uploads
    included.  ``max_model_bytes`` bounds model uploads.
    """
    db_path: str
    admin_token_sha256: str
    max_batch: int = DEFAULT_MAX_BATCH
    max_body_bytes: int | None = None
    cache_size: int = 32
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    log_level: str = "warning"

    def __post_init__(self):
        if not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise ValueError(f"max_batch == {self.max_batch!r}, must be an integer >= 1")
        if self.max_body_bytes is not None and (not isinstance(self.max_body_bytes, int)
                                                or self.max_body_bytes < 1024):
            raise ValueError(f"max_body_bytes == {self.max_body_bytes!r}, "
                             "must be an integer >= 1024 (or unset: derived from the models)")
        if not isinstance(self.max_model_bytes, int) or self.max_model_bytes < 1024:
            raise ValueError(f"max_model_bytes == {self.max_model_bytes!r}, "
                             "must be an integer >= 1024")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(f"log_level == {self.log_level!r}, must be one of {LOG_LEVELS}")
        if not isinstance(self.cache_size, int) or self.cache_size < 1:
            raise ValueError(f"cache_size == {self.cache_size!r}, must be an integer >= 1")
        if len(self.admin_token_sha256) != 64:
            raise ValueError("admin_token_sha256 must be a SHA-256 hex digest (64 characters)")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        return cls(**json.loads(text))

    def upload_limit(self) -> tuple[int, str]:
        """(bytes, the option's name) bounding a model upload."""
        if self.max_body_bytes is not None and self.max_body_bytes <= self.max_model_bytes:
            return self.max_body_bytes, "max_body_bytes"
        return self.max_model_bytes, "max_model_bytes"


def max_query_body(n_features: int, max_batch: int) -> int:
    """Bytes of the largest valid predict body for a model of ``n_features`` features:
    ``max_batch`` rows, in the JSON variant (base64, the larger one), plus
    :data:`BODY_SLACK`."""
    from . import container as fmt
    from .messages import QUERY_MAGIC, VERSION
    raw = fmt.packed_size(QUERY_MAGIC, VERSION, {"key_fingerprint": "0" * 64,
                                                 "n_rows": max_batch, "n_features": n_features},
                          {"ct": ("<u8", (max_batch, n_features))})
    return 4 * -(-raw // 3) + len('{"query": ""}') + BODY_SLACK


def is_loopback(host: str) -> bool:
    """True if ``host`` (an address or a name) is only ever a loopback address."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    if h.lower() == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(h, None)
    except OSError:
        return False
    addrs = {i[4][0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def configure_logging(level: str = "warning") -> None:
    """One handler on the ``ppboost.server`` logger: ``time LEVEL ppboost.server: message``."""
    if not any(getattr(h, "_ppboost", False) for h in log.handlers):
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s ppboost.server: %(message)s"))
        h._ppboost = True
        log.addHandler(h)
        log.propagate = False
    log.setLevel(level.upper())


def check_tls_files(cert: str, key: str) -> None:
    """Load the certificate chain and key once (``ValueError`` naming the problem)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for what, path in (("certificate", cert), ("key", key)):
        if not os.path.isfile(path):
            raise ValueError(f"TLS {what} file {path!r} not found")
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise ValueError(f"cannot use TLS certificate {cert!r} with key {key!r}: "
                         f"{e.reason or e} (PEM files; the key must match the certificate)"
                         ) from None
    except OSError as e:
        raise ValueError(f"cannot read TLS certificate {cert!r} or key {key!r}: "
                         f"{e.strerror or e}") from None


def check_listen(host: str, tls_cert: str | None, tls_key: str | None,
                 insecure_http: bool) -> str | None:
    """Check how the service may listen: ``ValueError`` if it may not, else the warning
    to log at start (``None`` if none).

    HTTPS needs both PEM files, loadable together.  Plain HTTP on a host that is
    not a loopback address is refused unless ``insecure_http``.
    """
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("HTTPS needs both a certificate and its key (--tls-cert and --tls-key)")
    if tls_cert is not None:
        check_tls_files(tls_cert, tls_key)
        return None
    if is_loopback(host):
        return None
    if not insecure_http:
        raise ValueError(
            f"refusing to serve plain HTTP on {host}, which is not a loopback address: "
            "tokens and queries would travel in clear; give --tls-cert and --tls-key "
            "(HTTPS), or --insecure-http if a TLS proxy in front terminates HTTPS")
    return (f"serving plain HTTP on {host} (--insecure-http): bearer tokens and queries "
            "travel in clear to anyone on the network path; use --tls-cert/--tls-key")
