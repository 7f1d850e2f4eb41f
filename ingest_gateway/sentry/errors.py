"""What only the Sentry endpoints answer: 403 for a key of another project, 429 to slow down.

``RateLimited`` (and ``QuotaExceeded``) live in ``ingest_gateway.errors``, shared by every
door; the router answers them the way Relay does, so SDKs back off: 429 with
``Retry-After`` and ``X-Sentry-Rate-Limits: <seconds>:<categories>:<scope>[:<reason>]``
(no categories: all of them).
"""

from __future__ import annotations

from ingest_gateway.errors import ClientError, QuotaExceeded, RateLimited

__all__ = ["Forbidden", "QuotaExceeded", "RateLimited"]


class Forbidden(ClientError):
    status = 403
