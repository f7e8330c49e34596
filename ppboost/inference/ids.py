"""The one check of a user id, shared by the CLI, :class:`~.http_client.ServiceClient`,
the server (:mod:`.server`) and the store (:mod:`.store`).

A user id is 1-64 characters: letters, digits, ``.``, ``_`` and ``-``, starting
with a letter or a digit.  So it is always one URL path segment with nothing to
escape, and never ``.``, ``..`` or anything holding a ``/``: ``alice/../bob`` is
refused everywhere, before any request is made or anything stored is touched.
:func:`user_path` still percent-quotes the segment (defence in depth).
"""
from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["USER_ID_PATTERN", "USER_ID_RULE", "validate_user_id", "is_valid_user_id",
           "user_path"]

#: user ids: 1-64 characters, letters, digits, ``.``, ``_`` and ``-``, not starting with a symbol.
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
USER_ID_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_USER_ID_RE = re.compile(USER_ID_PATTERN)


def is_valid_user_id(user_id) -> bool:
    return isinstance(user_id, str) and _USER_ID_RE.fullmatch(user_id) is not None


def validate_user_id(user_id) -> str:
    """Return ``user_id`` if it is well formed, else raise ``ValueError`` naming the rule."""
    if not is_valid_user_id(user_id):
        raise ValueError(f"user_id == {user_id!r}, must match {USER_ID_PATTERN} ({USER_ID_RULE})")
    return user_id


def user_path(user_id: str, suffix: str) -> str:
    """``/v1/users/<user_id>/<suffix>`` for a validated, percent-quoted ``user_id``."""
    return f"/v1/users/{quote(validate_user_id(user_id), safe='')}/{suffix}"
