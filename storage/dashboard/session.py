"""Who is looking: a read key kept in a cookie, checked on every request like a bearer key.

The cookie holds the raw read key itself, HttpOnly (no script can read it), SameSite=Strict
(no other site's form or link sends it, which is the CSRF defence for the dashboard's POSTs)
and Secure over TLS. It is not signed: the server keeps no session, and each request looks
the key up in the key ring again, so a revoked key stops working at once and a forged
cookie is just an unknown key. ``grant`` applies the read API's rules exactly.
"""

from __future__ import annotations

from pulseline.keys import KeyRing, Scope
from storage.read_common import ProjectKey

COOKIE = "pulseline_read_key"
MAX_AGE_S = 7 * 24 * 3600


def grant(keyring: KeyRing, raw: str) -> ProjectKey | str:
    """The project a key reads, or why it may not use the dashboard (shown on the login page)."""
    raw = raw.strip()
    if not raw:
        return "Enter a read key."
    key = keyring.lookup(raw)
    if key is None:
        return "That key is unknown or revoked."
    if key.scope not in (Scope.READ, Scope.ADMIN):
        return f"A {key.scope} key cannot read; use a read key."
    if key.project_id is None:
        return "This admin key spans projects; use a project's read key."
    return ProjectKey(key.project_id, key.scope)


def cookie_settings(secure: bool) -> dict[str, object]:
    """Keyword arguments for ``Response.set_cookie``."""
    return {
        "key": COOKIE,
        "max_age": MAX_AGE_S,
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
    }
