"""The client-side errors of the prediction service (no HTTP library needed to catch them).

:mod:`ppboost.inference.http_client` raises them; the CLI catches them without
importing httpx, so a training-only installation (no ``ppboost[server]``)
runs every other command.
"""
from __future__ import annotations

from ..errors import ServiceError as _ServiceBase

__all__ = ["ServiceError", "ServerUnreachable"]

_EXPLAIN = {
    401: "the server rejected the token (absent, wrong, or revoked by a delete or a "
         "re-enrolment)",
    403: "the token is valid but not allowed here (a user's token on another user's model, "
         "or a user token where the admin token is needed)",
    404: "the server has no model for this user",
    413: "the request is too large for the server's limits",
}


class ServiceError(_ServiceBase, RuntimeError):
    """The service answered with an error status."""

    def __init__(self, status: int, detail: str, field: str | None = None):
        self.status, self.detail, self.field = status, detail, field
        why = _EXPLAIN.get(status)
        msg = f"HTTP {status}: {detail}"
        if why:
            msg += f" ({why})"
        super().__init__(msg)


class ServerUnreachable(ServiceError):
    """No connection could be made (wrong URL, server down, timeout)."""

    def __init__(self, url: str, reason: str):
        self.url = url
        RuntimeError.__init__(self, f"cannot reach the ppboost server at {url}: {reason}")
        self.status, self.detail, self.field = 0, reason, None
