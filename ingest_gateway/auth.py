"""Who is sending: an ingest-scoped API key, from ``Authorization: Bearer`` or ``?key=``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ingest_gateway.errors import Unauthorized
from pulseline.keys import KeyRing, Scope


def raw_key(request: Request) -> str | None:
    """The key the client presented; the header wins over the query parameter."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "malformed_authorization", "the Authorization header must be 'Bearer <key>'"
            )
        return token
    return request.query_params.get("key") or None


@dataclass(frozen=True)
class Grant:
    """A key that acts for exactly one project."""

    project_id: int
    scope: Scope


def authenticate(request: Request, keyring: KeyRing, scope: Scope = Scope.INGEST) -> Grant:
    raw = raw_key(request)
    if raw is None:
        raise Unauthorized(
            "missing_key", "send an API key as 'Authorization: Bearer <key>' or '?key=<key>'"
        )
    key = keyring.lookup(raw)
    if key is None:
        raise Unauthorized("unknown_key", "the API key is not known to this deployment")
    if key.scope is not scope or key.project_id is None:
        raise Unauthorized(
            "wrong_scope", f"the API key has scope '{key.scope}'; this endpoint needs '{scope}'"
        )
    return Grant(key.project_id, key.scope)
