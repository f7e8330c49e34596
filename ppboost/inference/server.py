"""The encrypted prediction HTTP service (PPXGBoost server side).

``ppboost serve --db PATH --host 127.0.0.1 --port N`` runs :func:`create_app`
under uvicorn.  The server stores per-user :class:`EncryptedModel` blobs in a
:class:`~ppboost.inference.store.ModelStore` (SQLite) and evaluates encrypted
queries.  It never holds a user's secret key: it only compares OPE
ciphertexts and multiplies Paillier ciphertexts (see docs/design.md, section 9;
Meng & Feigenbaum, "Privacy-preserving XGBoost inference", 2020).

Endpoints (the OpenAPI description is served at ``/openapi.json``, docs at ``/docs``):

==========  ===============================  ==================  ======================
method      path                             auth (Bearer)       body
==========  ===============================  ==================  ======================
GET         /v1/health                       none                -
PUT         /v1/users/{user_id}/model        admin token         model bytes
GET         /v1/users/{user_id}/model        admin or the user   -
DELETE      /v1/users/{user_id}/model        admin token         -
POST        /v1/users/{user_id}/predict      the user's token    a batch of queries
==========  ===============================  ==================  ======================

Bodies are either JSON with base64 blobs (``{"model": "<b64>"}``,
``{"query": "<b64>"}`` -> ``{"result": "<b64>", ...}``) or, faster, the raw
bytes with ``Content-Type: application/octet-stream`` (the response to an
octet-stream predict is the raw ``EncryptedResult`` bytes).  One
``EncryptedQuery`` carries a batch of rows; ``--max-batch`` bounds its rows.

Status codes: 401 token absent or wrong; 403 a valid token that may not do
this (a user token on any user id but its own, whether that id exists or
not, or on an admin endpoint); 404 no model for that user (admin token);
400 malformed body or bytes, or a query value that is not finite (the
row and the query column are named); 413 body over the limit (checked on
Content-Length first, then while streaming) or batch over ``--max-batch``;
415 unsupported content type; 422 well-formed but wrong (a user id that
breaks the rule of :mod:`.ids`, number of features, out-of-range
ciphertexts, a model for another user id).  Every error body is
``{"detail": "...", "field": "..."}`` where ``field`` names the offending
input.  A rejected request changes nothing stored.

Body limits: a predict body may be as large as the largest valid request
for that user's model (``max_batch`` rows of its ``n_features`` ciphertexts,
in the JSON variant, plus 1 KiB), unless ``max_body_bytes`` is set, which
then bounds every body.  Model uploads (admin token only) are bounded by
``max_model_bytes`` (64 MiB by default).  A client that disconnects while
sending its body is logged as one warning line, without a traceback.

The CPU-heavy work (deserialising a model, evaluating a batch) runs in the
threadpool, off the event loop.  Deserialised models are cached in memory per
user and keyed by the model's version string in the store, so a replace or a
delete, even by another worker process, is seen at the next request.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .ids import USER_ID_PATTERN, USER_ID_RULE, is_valid_user_id
from .messages import NonFiniteQuery
from .store import ModelStore

__all__ = ["ServerConfig", "create_app", "app_from_env", "serve", "ModelCache", "ServedModel",
           "DEFAULT_MAX_BATCH", "DEFAULT_MAX_MODEL_BYTES", "CONFIG_ENV", "max_query_body",
           "is_loopback", "check_listen", "check_tls_files", "configure_logging"]

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
    from . import container as fmt  # noqa: PLC0415
    from .messages import QUERY_MAGIC, VERSION  # noqa: PLC0415
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


# ---------------------------------------------------------------------------
# the cryptographic objects (imported lazily so that this module, the store and
# the CLI plumbing load without numba and gmpy2)
def _inference_types():
    from .messages import EncryptedQuery  # noqa: PLC0415
    from .model import EncryptedModel  # noqa: PLC0415
    return EncryptedModel, EncryptedQuery


# ---------------------------------------------------------------------------
class ApiError(Exception):
    """An expected error: becomes ``{"detail": ..., "field": ...}`` with ``status``."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.field, self.headers = status, detail, field, headers


class ClientGone(Exception):
    """The client closed the connection before its body was complete."""

    def __init__(self, received: int, expected: int | None):
        super().__init__("client disconnected")
        self.received, self.expected = received, expected


class ErrorBody(BaseModel):
    detail: str = Field(description="what was wrong and what was expected")
    field: str | None = Field(None, description="the offending input (header, path "
                                 "parameter or body field)")


class HealthBody(BaseModel):
    status: str
    service: str
    api_version: str
    max_batch: int
    max_body_bytes: int | None = Field(
        description="the largest predict body accepted now: the configured limit, else the "
                    "largest valid request for the served models (null when there is none)")
    max_model_bytes: int


class ModelUpload(BaseModel):
    model: str = Field(description="base64 of EncryptedModel.to_bytes()")


class ModelInfo(BaseModel):
    user_id: str
    version: str
    n_features: int
    n_outputs: int
    key_fingerprint: str
    size_bytes: int
    created_at: float
    updated_at: float


class UploadBody(ModelInfo):
    created: bool = Field(description="true if the user had no model before")
    token: str | None = Field(None, description="the user's new access token, shown only "
                                 "once; null when the previous token is kept")
    token_rotated: bool


class DeleteBody(BaseModel):
    user_id: str
    deleted: bool


class PredictRequest(BaseModel):
    query: str = Field(description="base64 of EncryptedQuery.to_bytes() (a batch of rows)")


class PredictBody(BaseModel):
    result: str = Field(description="base64 of EncryptedResult.to_bytes()")
    n_rows: int


def _err(*codes: int) -> dict:
    text = {400: "malformed body or bytes", 401: "bearer token absent or wrong",
            403: "this token may not do this", 404: "no model for this user",
            413: "body over the body limit or batch over max_batch",
            415: "unsupported Content-Type", 422: "well-formed but invalid input"}
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}


def _body_spec(schema_model: type[BaseModel], description: str) -> dict:
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": schema_model.model_json_schema()},
        OCTET: {"schema": {"type": "string", "format": "binary"}}}}}


# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
async def _read_body(request: Request, limit: int, name: str | None = None) -> bytes:
    """Read the body, refusing (413) as soon as it is known to exceed ``limit`` bytes.

    Content-Length is checked before anything is read; the streamed bytes are
    counted too (chunked bodies, or a Content-Length that lies).  ``name``
    says what the limit is (default ``max_body_bytes <limit>``).  A client
    that disconnects meanwhile raises :class:`ClientGone`.
    """
    name = name or f"max_body_bytes {limit}"
    cl = request.headers.get("content-length")
    n = None
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise ApiError(400, f"Content-Length == {cl!r}, must be an integer", "content-length") from None
        if n > limit:
            raise ApiError(413, f"body size == {n} bytes (Content-Length), must be <= "
                           f"{name}", "body")
    buf = bytearray()
    try:
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > limit:
                raise ApiError(413, f"body size > {limit} bytes, must be <= {name}",
                               "body")
    except ClientDisconnect:
        raise ClientGone(len(buf), n) from None
    return bytes(buf)


def _media_type(request: Request) -> str:
    ct = request.headers.get("content-type", "application/json")
    mt = ct.split(";", 1)[0].strip().lower()
    if mt in ("application/json", OCTET):
        return mt
    raise ApiError(415, f"Content-Type == {ct!r}, must be application/json or {OCTET}",
                   "content-type")


def _blob_from_body(body: bytes, media_type: str, field: str) -> bytes:
    """The binary payload: the raw body, or base64 ``body[field]`` of a JSON object."""
    if media_type == OCTET:
        if not body:
            raise ApiError(400, f"{field}: empty body, must be the bytes of the encrypted "
                           f"{field}", field)
        return body
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"body is not valid JSON ({e}); expected "
                       f"{{\"{field}\": \"<base64>\"}}", "body") from None
    except RecursionError:
        raise ApiError(400, f"body is JSON nested too deeply; expected "
                       f"{{\"{field}\": \"<base64>\"}}", "body") from None
    if not isinstance(obj, dict):
        raise ApiError(422, f"body is a JSON {type(obj).__name__}, must be an object "
                       f"{{\"{field}\": \"<base64>\"}}", "body")
    if field not in obj:
        raise ApiError(422, f"{field}: missing, the body must be {{\"{field}\": \"<base64>\"}}",
                       field)
    val = obj[field]
    if not isinstance(val, str):
        raise ApiError(422, f"{field}: is a JSON {type(val).__name__}, must be a base64 string",
                       field)
    try:
        raw = base64.b64decode(val, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ApiError(400, f"{field}: not valid base64 ({e})", field) from None
    if not raw:
        raise ApiError(400, f"{field}: empty, must be the bytes of the encrypted {field}", field)
    return raw


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization")
    if not auth:
        raise ApiError(401, "Authorization header missing, expected 'Bearer <token>'",
                       "authorization", {"WWW-Authenticate": "Bearer"})
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Authorization header malformed, expected 'Bearer <token>'",
                       "authorization", {"WWW-Authenticate": "Bearer"})
    return token.strip()


def create_app(config: ServerConfig) -> FastAPI:
    """Build the FastAPI application over the store at ``config.db_path``."""
    store = ModelStore(config.db_path)
    admin_digest = bytes.fromhex(config.admin_token_sha256)

    def load_model(blob: bytes):
        EncryptedModel, _ = _inference_types()
        return EncryptedModel.from_bytes(blob)

    cache = ModelCache(store, load_model, config.cache_size)

    app = FastAPI(
        title="ppboost encrypted prediction service",
        version=API_VERSION,
        description=(__doc__ or "").split("\n\n", 1)[0]
        + " Inputs stay encrypted (OPE + Paillier); the server holds no user secret key.",
    )
    app.state.store, app.state.cache, app.state.config = store, cache, config

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse({"detail": exc.detail, "field": exc.field}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("path", "query", "body")]
        field = ".".join(loc) or None
        msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())[1:])}: {e.get('msg')}"
                        for e in errs)
        return JSONResponse({"detail": msg or "invalid request", "field": field},
                            status_code=422)

    @app.exception_handler(ClientGone)
    async def _client_gone(request: Request, exc: ClientGone):
        of = f" of {exc.expected}" if exc.expected is not None else ""
        peer = f"{request.client.host}:{request.client.port}" if request.client else "?"
        log.warning("client %s disconnected during the body of %s %s (%d%s bytes received)",
                    peer, request.method, request.url.path, exc.received, of)
        return Response(status_code=400)         # nobody reads it

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # pragma: no cover - a bug
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})", "field": None},
                            status_code=500)

    def require_admin(request: Request) -> None:
        token = _bearer(request)
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), admin_digest):
            return
        if store.authenticate(token) is not None:
            raise ApiError(403, "this endpoint needs the admin token; a user token was given",
                           "authorization")
        raise ApiError(401, "invalid token", "authorization", {"WWW-Authenticate": "Bearer"})

    def require_user(request: Request, user_id: str, allow_admin: bool = False) -> None:
        token = _bearer(request)
        if allow_admin and hmac.compare_digest(hashlib.sha256(token.encode()).digest(),
                                               admin_digest):
            return
        owner = store.authenticate(token)
        if owner is None:
            if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), admin_digest):
                raise ApiError(403, "the admin token cannot query a user's model; use the "
                               "user's access token", "authorization")
            raise ApiError(401, "invalid token", "authorization", {"WWW-Authenticate": "Bearer"})
        if owner != user_id:
            # the same answer whether user_id exists or not: ids cannot be enumerated
            raise ApiError(403, f"this token belongs to another user, not to {user_id!r} (a "
                           "user token reaches only its own user id)", "authorization")

    def predict_limit(user_id: str) -> tuple[int, str] | None:
        """(bytes, description) bounding ``user_id``'s predict bodies; None if it has no model."""
        if config.max_body_bytes is not None:
            return config.max_body_bytes, f"max_body_bytes {config.max_body_bytes}"
        rec = store.get_record(user_id)
        if rec is None:
            return None
        n = max_query_body(rec.n_features, config.max_batch)
        return n, (f"{n} bytes, the largest valid predict body for this model (max_batch "
                   f"{config.max_batch} rows x {rec.n_features} features, as JSON)")

    UserId = Path(..., pattern=USER_ID_PATTERN, min_length=1, max_length=64,
                  description=f"the user's id ({USER_ID_RULE})")

    @app.get("/v1/health", response_model=HealthBody, tags=["service"])
    def health() -> HealthBody:
        """Liveness and the limits a client must respect."""
        limit = config.max_body_bytes
        if limit is None:
            nf = store.max_n_features()
            limit = None if nf is None else max_query_body(nf, config.max_batch)
        return HealthBody(status="ok", service="ppboost", api_version=API_VERSION,
                          max_batch=config.max_batch, max_body_bytes=limit,
                          max_model_bytes=config.upload_limit()[0])

    @app.put("/v1/users/{user_id}/model", response_model=UploadBody, tags=["admin"],
             status_code=200, responses={201: {"model": UploadBody, "description": "created"},
                                         **_err(400, 401, 403, 413, 415, 422)},
             openapi_extra=_body_spec(ModelUpload, "the user's EncryptedModel"))
    async def put_model(request: Request, user_id: str = UserId,
                        rotate_token: bool = Query(False, description="issue a new access "
                                                   "token even if the keys are unchanged")):
        """Upload or replace a user's encrypted model (admin token).

        Token policy: a new token is returned on first upload, when the new
        model is under other keys (another ``key_fingerprint``) or when
        ``rotate_token=true``; otherwise ``token`` is null and the old token stays valid.
        """
        require_admin(request)
        media = _media_type(request)
        up, up_name = config.upload_limit()
        body = await _read_body(request, up, f"{up_name} {up}")
        blob = _blob_from_body(body, media, "model")
        try:
            model = await run_in_threadpool(load_model, blob)
        except ImportError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure to parse is the input's fault
            raise ApiError(400, f"model: not a valid EncryptedModel ({type(e).__name__}: {e})",
                           "model") from None
        mid = getattr(model, "user_id", None)
        if mid is not None and mid != user_id:
            raise ApiError(422, f"model.user_id == {mid!r}, does not match the path user_id "
                           f"{user_id!r}", "model.user_id")
        res = await run_in_threadpool(
            store.put_model, user_id, blob, n_features=int(model.n_features),
            n_outputs=int(model.n_outputs), key_fingerprint=str(model.key_fingerprint),
            rotate_token=rotate_token)
        cache.invalidate(user_id)
        out = UploadBody(**asdict(res.record), created=res.created, token=res.token,
                         token_rotated=res.token is not None)
        return JSONResponse(out.model_dump(), status_code=201 if res.created else 200)

    @app.get("/v1/users/{user_id}/model", response_model=ModelInfo, tags=["admin"],
             responses=_err(401, 403, 404))
    def model_info(request: Request, user_id: str = UserId) -> ModelInfo:
        """Public facts of a user's stored model (admin token or the user's own token)."""
        require_user(request, user_id, allow_admin=True)
        rec = store.get_record(user_id)
        if rec is None:
            raise ApiError(404, f"user_id == {user_id!r}: no model for this user", "user_id")
        return ModelInfo(**asdict(rec))

    @app.delete("/v1/users/{user_id}/model", response_model=DeleteBody, tags=["admin"],
                responses=_err(401, 403, 404))
    def delete_model(request: Request, user_id: str = UserId) -> DeleteBody:
        """Delete a user's model and access token (admin token)."""
        require_admin(request)
        if not store.delete_model(user_id):
            raise ApiError(404, f"user_id == {user_id!r}: no model for this user", "user_id")
        cache.invalidate(user_id)
        return DeleteBody(user_id=user_id, deleted=True)

    @app.post("/v1/users/{user_id}/predict", response_model=PredictBody, tags=["predict"],
              responses={200: {"content": {OCTET: {"schema": {"type": "string",
                                                               "format": "binary"}}},
                               "description": "JSON, or the raw EncryptedResult bytes when "
                                              "the request was application/octet-stream"},
                         **_err(400, 401, 403, 404, 413, 415, 422)},
              openapi_extra=_body_spec(PredictRequest, "an EncryptedQuery (a batch of rows)"))
    async def predict(request: Request, user_id: str = UserId):
        """Evaluate a batch of encrypted queries with the user's encrypted model.

        Only the user's own token is accepted.  The result is one Paillier
        ciphertext per output group (re-randomised by the model), readable
        only by the user.
        """
        require_user(request, user_id)
        media = _media_type(request)
        limit = await run_in_threadpool(predict_limit, user_id)
        if limit is None:
            raise ApiError(404, f"user_id == {user_id!r}: no model for this user", "user_id")
        body = await _read_body(request, *limit)
        raw = _blob_from_body(body, media, "query")
        _, EncryptedQuery = _inference_types()
        try:
            query = EncryptedQuery.from_bytes(raw)
        except Exception as e:  # noqa: BLE001 - any failure to parse is the input's fault
            raise ApiError(400, f"query: not a valid EncryptedQuery ({type(e).__name__}: {e})",
                           "query") from None
        n_rows = int(query.n_rows)
        if n_rows < 1:
            raise ApiError(422, f"query.n_rows == {n_rows}, must be >= 1", "query.n_rows")
        if n_rows > config.max_batch:
            raise ApiError(413, f"query.n_rows == {n_rows}, must be <= max_batch "
                           f"{config.max_batch}", "query.n_rows")
        served = await run_in_threadpool(cache.get, user_id)
        if served is None:
            raise ApiError(404, f"user_id == {user_id!r}: no model for this user", "user_id")
        model = served.model
        if int(query.n_features) != int(model.n_features):
            raise ApiError(422, f"query.n_features == {query.n_features}, the model expects "
                           f"{model.n_features}", "query.n_features")
        try:
            result = await run_in_threadpool(served.predict, query)
            out = result.to_bytes()
        except NonFiniteQuery as e:
            raise ApiError(400, f"query: {e}", "query") from None
        except (ValueError, TypeError, IndexError, KeyError, OverflowError) as e:
            raise ApiError(422, f"query: rejected by the model ({e})", "query") from None
        if media == OCTET:
            return Response(out, media_type=OCTET, headers={"X-Ppboost-Rows": str(n_rows)})
        return PredictBody(result=base64.b64encode(out).decode(), n_rows=n_rows)

    @app.api_route("/v1/users/{rest:path}", include_in_schema=False,
                   methods=["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    def other_user_paths(request: Request, rest: str):
        """Everything under /v1/users/ that no route above took: an id that is not one
        path segment (``alice/../bob`` or ``alice%2F..%2Fbob``) gets the same 422 as any
        other bad id; an unknown endpoint 404; a known one with another method 405."""
        for suffix, methods in (("/model", "GET, PUT, DELETE"), ("/predict", "POST")):
            if rest.endswith(suffix):
                uid = rest[:-len(suffix)]
                if not is_valid_user_id(uid):
                    raise ApiError(422, f"user_id == {uid!r}, must be one path segment matching "
                                   f"{USER_ID_PATTERN} ({USER_ID_RULE})", "user_id")
                raise ApiError(405, f"{request.method} is not allowed here (allowed: {methods})",
                               "method", {"Allow": methods})
        raise ApiError(404, f"no such endpoint: {request.url.path}", "path")

    def openapi_with_auth() -> dict:
        """The generated description plus the bearer-token security scheme."""
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer",
            "description": "the admin token, or a user's access token (ppb_<id>_<secret>)"}
        for path, ops in schema["paths"].items():
            if path != "/v1/health":
                for op in ops.values():
                    op["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi_with_auth
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for multi-worker runs: the config comes from ``$PPBOOST_SERVER_CONFIG``."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"${CONFIG_ENV} is not set; start the server with `ppboost serve`")
    config = ServerConfig.from_json(text)
    configure_logging(config.log_level)
    return create_app(config)


class _TlsMixin:
    """Restrict uvicorn's TLS 1.2 cipher list to AEAD suites with forward secrecy."""

    def __init__(self, *a, **kw):
        if kw.get("ssl_certfile"):
            kw.setdefault("ssl_ciphers", TLS_CIPHERS)
        super().__init__(*a, **kw)


class ServeConfig(_TlsMixin, uvicorn.Config):
    """uvicorn config of one process (TLS ciphers as :class:`_TlsMixin`)."""


class TcpConfig(_TlsMixin, uvicorn.Config):
    """uvicorn config whose shared listening socket says it is TCP.

    uvicorn's multi-worker mode binds ``socket.socket(family)``, whose
    ``proto`` is 0; asyncio sets TCP_NODELAY only on accepted sockets whose
    proto is IPPROTO_TCP.  Without it every response waits ~40 ms (Nagle +
    delayed ACK): measured 44 ms vs 2 ms per /v1/health with 2 workers.
    (Module level: the config is pickled to the worker processes.)
    """

    def bind_socket(self):
        sock = super().bind_socket()
        tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        tcp.set_inheritable(True)
        return tcp


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


def serve(config: ServerConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          log_level: str = "info", access_log: bool = False, tls_cert: str | None = None,
          tls_key: str | None = None, insecure_http: bool = False) -> None:
    """Run the service under uvicorn (blocking).  ``workers > 1`` forks worker processes
    sharing one listening socket (each with its own model cache; the store is shared).

    HTTPS with ``tls_cert`` and ``tls_key`` (PEM files; uvicorn's TLS).  Without them,
    a ``host`` that is not a loopback address is refused (``ValueError``) unless
    ``insecure_http``, which logs a warning: tokens and queries would travel in clear.
    """
    configure_logging(config.log_level)
    warning = check_listen(host, tls_cert, tls_key, insecure_http)
    if warning:
        log.warning("%s", warning)
    tls = {"ssl_certfile": tls_cert, "ssl_keyfile": tls_key} if tls_cert else {}
    # validate and create the database once, in this process, before any worker starts
    ModelStore(config.db_path).close()
    if workers > 1:
        from uvicorn.supervisors import Multiprocess  # noqa: PLC0415
        os.environ[CONFIG_ENV] = config.to_json()
        ucfg = TcpConfig("ppboost.inference.server:app_from_env", factory=True, host=host,
                         port=port, workers=workers, log_level=log_level, access_log=access_log,
                         **tls)
        sock = ucfg.bind_socket()
        try:
            Multiprocess(ucfg, sockets=[sock]).run()
        except KeyboardInterrupt:  # pragma: no cover - interactive stop
            pass
        finally:
            sock.close()
    else:
        ucfg = ServeConfig(create_app(config), host=host, port=port, log_level=log_level,
                           access_log=access_log, **tls)
        uvicorn.Server(ucfg).run()
