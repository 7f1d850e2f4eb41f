"""Standard Webhooks signatures (https://www.standardwebhooks.com).

``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed by
the base64 part of a ``whsec_<base64>`` secret. During a rotation the channel holds several
secrets (space-separated in ``Channel.secret``) and one signature per secret is sent,
space-separated, so the receiver accepts whichever it already knows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

PREFIX = "whsec_"


def key_of(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; raises ``ValueError`` if it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret must start with 'whsec_'")
    try:
        return base64.b64decode(secret[len(PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("a webhook secret must be whsec_ followed by base64") from None


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; no ``webhook-signature`` when there is no secret."""
    out = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secrets:
        out["webhook-signature"] = " ".join(signature(s, msg_id, timestamp, body) for s in secrets)
    return out


def secrets_of(channel_secret: str | None) -> list[str]:
    return (channel_secret or "").split()
