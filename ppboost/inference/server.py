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
import json
import logging
import os
import socket
from dataclasses import asdict

import uvicorn
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..errors import ServiceError
from .api_models import (
    DeleteBody,
    HealthBody,
    ModelInfo,
    ModelUpload,
    PredictBody,
    PredictRequest,
    UploadBody,
    body_spec,
    error_responses,
)
from .ids import USER_ID_PATTERN, USER_ID_RULE, is_valid_user_id
from .messages import NonFiniteQuery
from .model_cache import ModelCache, ServedModel
from .service_config import (
    API_VERSION,
    CONFIG_ENV,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_MODEL_BYTES,
    OCTET,
    TLS_CIPHERS,
    ServerConfig,
    check_listen,
    check_tls_files,
    configure_logging,
    is_loopback,
    max_query_body,
)
from .store import ModelStore

__all__ = ["ServerConfig", "create_app", "app_from_env", "serve", "ModelCache", "ServedModel",
           "DEFAULT_MAX_BATCH", "DEFAULT_MAX_MODEL_BYTES", "CONFIG_ENV", "max_query_body",
           "is_loopback", "check_listen", "check_tls_files", "configure_logging"]

log = logging.getLogger("ppboost.server")

# ---------------------------------------------------------------------------
# the cryptographic objects (imported lazily so that this module, the store and
# the CLI plumbing load without numba and gmpy2)
def _inference_types():
    from .messages import EncryptedQuery
    from .model import EncryptedModel
    return EncryptedModel, EncryptedQuery


# ---------------------------------------------------------------------------
class ApiError(ServiceError):
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




# ---------------------------------------------------------------------------
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
                                         **error_responses(400, 401, 403, 413, 415, 422)},
             openapi_extra=body_spec(ModelUpload, "the user's EncryptedModel"))
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
        except Exception as e:  # any failure to parse is the input's fault
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
             responses=error_responses(401, 403, 404))
    def model_info(request: Request, user_id: str = UserId) -> ModelInfo:
        """Public facts of a user's stored model (admin token or the user's own token)."""
        require_user(request, user_id, allow_admin=True)
        rec = store.get_record(user_id)
        if rec is None:
            raise ApiError(404, f"user_id == {user_id!r}: no model for this user", "user_id")
        return ModelInfo(**asdict(rec))

    @app.delete("/v1/users/{user_id}/model", response_model=DeleteBody, tags=["admin"],
                responses=error_responses(401, 403, 404))
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
                         **error_responses(400, 401, 403, 404, 413, 415, 422)},
              openapi_extra=body_spec(PredictRequest, "an EncryptedQuery (a batch of rows)"))
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
        except Exception as e:  # any failure to parse is the input's fault
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
        from uvicorn.supervisors import Multiprocess
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
