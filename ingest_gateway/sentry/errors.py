"""What only the Sentry endpoints answer: 403 for a key of another project, 429 to slow down.

``RateLimited`` is raised on the produce path by whatever limits a project (none yet);
the router answers it the way Relay does, so SDKs back off: 429 with ``Retry-After`` and
``X-Sentry-Rate-Limits: <seconds>:<categories>:<scope>`` (no categories: all of them).
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest_gateway.errors import ClientError, GatewayError


class Forbidden(ClientError):
    status = 403


class RateLimited(GatewayError):
    """Retryable after ``retry_after_s``: the project sends more than it may."""

    status = 429

    def __init__(self, retry_after_s: int, categories: Sequence[str] = ()) -> None:
        super().__init__(
            "rate_limited", f"the project is over its rate limit; retry in {retry_after_s}s"
        )
        self.retry_after_s = max(1, int(retry_after_s))
        self.categories = tuple(categories)

    def sentry_header(self) -> str:
        return f"{self.retry_after_s}:{';'.join(self.categories)}:project"
