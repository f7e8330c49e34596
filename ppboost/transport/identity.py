"""Participant identities in certificates (no dependency beyond the stdlib).

Participant ``i`` of federation ``F`` is named by the subjectAltName URI
``urn:ppboost:F:i`` of its certificate.  :mod:`ppboost.transport.certs` writes
it; :mod:`ppboost.transport.tls` reads it from the verified peer certificate.
"""
from __future__ import annotations

__all__ = ["identity_uri", "identity_from_uris", "identity_from_peercert"]

URI_PREFIX = "urn:ppboost:"


def identity_uri(federation: str, pid: int) -> str:
    """The subjectAltName URI naming participant ``pid`` of ``federation``."""
    return f"{URI_PREFIX}{federation}:{int(pid)}"


def identity_from_uris(uris) -> tuple[str, int] | None:
    """``(federation, id)`` if exactly one of ``uris`` names a participant, else ``None``."""
    found = []
    for uri in uris:
        if uri.startswith(URI_PREFIX):
            fed, _, pid = uri[len(URI_PREFIX):].rpartition(":")
            if fed and pid.isdigit():
                found.append((fed, int(pid)))
    return found[0] if len(found) == 1 else None   # several identities: ambiguous, names nobody


def identity_from_peercert(peercert: dict | None) -> tuple[str, int] | None:
    """Identity from ``SSLObject.getpeercert()`` (the dict of a *verified* certificate)."""
    if not peercert:
        return None
    return identity_from_uris(v for k, v in peercert.get("subjectAltName", ()) if k == "URI")
