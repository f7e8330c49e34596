"""A small synchronous HTTP client for the prediction service (:mod:`.server`).

It moves bytes only: the caller encrypts with :class:`ppboost.inference.Client`
and hands over ``EncryptedQuery.to_bytes()``; nothing secret is sent.  The
predict path uses the ``application/octet-stream`` variant of the API (no
base64, no JSON).

Every non-2xx answer becomes a :class:`ServiceError` carrying the status code,
the server's ``detail`` message and the offending ``field``; a server that
cannot be reached, or whose certificate does not verify, becomes
:class:`ServerUnreachable`.

HTTPS: an ``https://`` URL is verified against ``ca`` (a PEM file of the CA
certificate(s) that signed the server's certificate) when given, else against
the system's trust store (:func:`ssl.create_default_context`, not a bundled
list).  The host name in the URL must be in the certificate.

User ids are checked by :func:`ppboost.inference.ids.validate_user_id` before
any request is made (``ValueError`` naming the rule), and the path segment is
percent-quoted: ``alice/../bob`` never becomes a request.
"""
from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import httpx

from .ids import user_path
from .service_errors import ServerUnreachable, ServiceError

__all__ = ["ServiceClient", "ServiceError", "ServerUnreachable", "tls_context"]

OCTET = "application/octet-stream"

def tls_context(ca: str | None = None) -> ssl.SSLContext:
    """The client's TLS context: verify against the PEM file ``ca``, else the system store.

    ``ValueError`` naming the file when it cannot be read or holds no certificate.
    """
    if ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca))
    except FileNotFoundError:
        raise ValueError(f"CA file {str(ca)!r} not found") from None
    except ssl.SSLError as e:                 # (an OSError too)
        raise ValueError(f"CA file {str(ca)!r} holds no usable PEM certificate ({e.reason or e})"
                         ) from None
    except OSError as e:
        raise ValueError(f"cannot read CA file {str(ca)!r}: {e.strerror or e}") from None


def _tls_reason(e: Exception) -> str | None:
    """A plain explanation of a TLS failure inside an httpx error, or None."""
    cause = e
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    text = str(cause if cause is not None else e)
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        why = getattr(cause, "verify_message", None) or text
        return (f"the server's TLS certificate was not accepted ({why}); pass --ca FILE "
                "with the CA certificate that signed it")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "no TLS answer: the server speaks plain HTTP? (use an http:// URL)"
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed ({cause.reason or cause})"
    return None


class ServiceClient:
    """Talks to one server.  ``token`` is a user's access token, ``admin_token`` the admin's.

    ``ca``: PEM file of the CA that signed an ``https://`` server's certificate
    (default: the system trust store); refused for ``http://`` URLs.
    """

    def __init__(self, base_url: str, *, token: str | None = None,
                 admin_token: str | None = None, timeout: float = 120.0,
                 ca: str | None = None, transport: httpx.BaseTransport | None = None):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL == {base_url!r}, must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.token, self.admin_token = token, admin_token
        https = self.base_url.startswith("https://")
        if ca is not None and not https:
            raise ValueError(f"a CA file ({str(ca)!r}) is for https:// servers; the server URL "
                             f"is {self.base_url}")
        verify = tls_context(ca) if https else True
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- plumbing -------------------------------------------------------------
    def _request(self, method: str, path: str, *, auth: str | None = None, **kw) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if auth is not None:
            headers["Authorization"] = f"Bearer {auth}"
        try:
            r = self._http.request(method, path, headers=headers, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            reason = _tls_reason(e) or str(e) or type(e).__name__
            raise ServerUnreachable(self.base_url, reason) from None
        except httpx.TimeoutException as e:
            raise ServerUnreachable(self.base_url, f"timed out ({type(e).__name__})") from None
        except httpx.RemoteProtocolError as e:
            hint = (" (is it an HTTPS server? use an https:// URL)"
                    if self.base_url.startswith("http://") else "")
            raise ServerUnreachable(self.base_url, f"{type(e).__name__}: {e}{hint}") from None
        except httpx.TransportError as e:
            reason = _tls_reason(e) or f"{type(e).__name__}: {e}"
            raise ServerUnreachable(self.base_url, reason) from None
        if r.status_code >= 400:
            detail, field = r.text[:500], None
            try:
                body = r.json()
                detail, field = str(body.get("detail", detail)), body.get("field")
            except ValueError:
                pass
            raise ServiceError(r.status_code, detail, field)
        return r

    def _need(self, which: str) -> str:
        tok = self.admin_token if which == "admin" else self.token
        if not tok:
            raise ValueError(f"{which} token is not set, needed for this request")
        return tok

    # -- endpoints ------------------------------------------------------------
    def health(self) -> dict:
        """``GET /v1/health``: status and the server's limits (max_batch, max_body_bytes)."""
        return self._request("GET", "/v1/health").json()

    def upload_model(self, user_id: str, model_bytes: bytes, *, rotate_token: bool = False,
                     progress: Callable[[int], None] | None = None,
                     chunk_size: int = 1 << 20) -> dict:
        """``PUT /v1/users/{user_id}/model`` (admin): returns the JSON answer (``token`` inside).

        ``progress(n)`` is called with the number of bytes of each chunk sent.
        """
        path = user_path(user_id, "model")
        data = bytes(model_bytes)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), chunk_size):
                piece = data[i:i + chunk_size]
                if progress is not None:
                    progress(len(piece))
                yield piece

        return self._request(
            "PUT", path, auth=self._need("admin"),
            params={"rotate_token": "true"} if rotate_token else None,
            content=chunks() if progress is not None else data,
            headers={"Content-Type": OCTET, "Content-Length": str(len(data))}).json()

    def model_info(self, user_id: str) -> dict:
        """``GET /v1/users/{user_id}/model`` with the user token (or the admin token)."""
        return self._request("GET", user_path(user_id, "model"),
                             auth=self.token or self._need("admin")).json()

    def delete_model(self, user_id: str) -> dict:
        """``DELETE /v1/users/{user_id}/model`` (admin)."""
        return self._request("DELETE", user_path(user_id, "model"),
                             auth=self._need("admin")).json()

    def predict_bytes(self, user_id: str, query_bytes: bytes) -> bytes:
        """``POST /v1/users/{user_id}/predict`` (octet-stream): query bytes -> result bytes."""
        r = self._request("POST", user_path(user_id, "predict"), auth=self._need("user"),
                          content=bytes(query_bytes), headers={"Content-Type": OCTET})
        return r.content

    def predict(self, user_id: str, query):
        """Send an ``EncryptedQuery``, get the ``EncryptedResult`` back."""
        from .messages import EncryptedResult  # the crypto code loads lazily
        return EncryptedResult.from_bytes(self.predict_bytes(user_id, query.to_bytes()))
