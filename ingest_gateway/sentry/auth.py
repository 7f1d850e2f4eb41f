"""Find the Sentry public key of a request and check it against the path's project.

Where an SDK puts it, first found wins: ``X-Sentry-Auth: Sentry sentry_key=<key>, ...``
(also accepted in ``Authorization``, as old SDKs send it), ``?sentry_key=<key>``, or the
envelope header's ``dsn`` (``http://<key>@host/<project>``). The key is a Pulseline
ingest key and must belong to the project in the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ingest_gateway.auth import Grant
from ingest_gateway.errors import BadRequest, Unauthorized
from ingest_gateway.sentry.errors import Forbidden
from pulseline.keys import KeyRing, Scope


def key_from_auth_header(value: str) -> str | None:
    """``sentry_key`` of a ``Sentry k=v, k=v`` header; None when it has none."""
    scheme, _, params = value.strip().partition(" ")
    if scheme.lower() != "sentry":
        return None
    for part in params.split(","):
        name, _, found = part.strip().partition("=")
        if name.strip().lower() == "sentry_key" and found.strip():
            return found.strip()
    return None


def key_from_dsn(dsn: object) -> str | None:
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn.strip()).username or None
    except ValueError:
        return None


def find_key(
    headers: Mapping[str, str], query: Mapping[str, str], dsn: object = None
) -> str | None:
    """``headers`` are looked up by lower-case name (Starlette's ``Headers`` ignore case)."""
    for name in ("x-sentry-auth", "authorization"):
        value = headers.get(name)
        if value:
            found = key_from_auth_header(value)
            if found:
                return found
    return query.get("sentry_key") or key_from_dsn(dsn)


def parse_project(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise BadRequest(
            "bad_project", f"the project id in the URL must be a number, got {raw[:40]!r}"
        )
    return int(raw)


def check_key(raw: str | None, keyring: KeyRing, project_id: int) -> Grant:
    if raw is None:
        raise Unauthorized(
            "missing_key",
            "send the DSN's public key: 'X-Sentry-Auth: Sentry sentry_key=<key>',"
            " '?sentry_key=<key>' or the envelope header's 'dsn'",
        )
    key = keyring.lookup(raw)
    if key is None:
        raise Unauthorized("unknown_key", "the DSN's public key is not known to this deployment")
    if key.scope is not Scope.INGEST or key.project_id is None:
        raise Unauthorized(
            "wrong_scope", f"the DSN's key has scope '{key.scope}'; a DSN needs an ingest key"
        )
    if key.project_id != project_id:
        raise Forbidden(
            "wrong_project",
            f"the DSN's key belongs to project {key.project_id}, not to project {project_id}"
            " named in the URL; check the DSN",
        )
    return Grant(key.project_id, key.scope)
