"""What can go wrong in the gateway, and the one place that turns it into HTTP.

Every error carries the caller's decision: a ``ClientError`` is permanent (the same
request fails again, so do not retry it), ``KafkaUnavailable`` is retryable (retry
after ``Retry-After`` seconds)::

    GatewayError                  code, detail
    ├── ClientError               permanent, 4xx
    │   ├── BadRequest            400  malformed JSON, wrong shape, no events
    │   ├── Unauthorized          401  missing, unknown or wrong-scope key
    │   ├── PayloadTooLarge       413  body or batch over the limits
    │   └── UnsupportedMediaType  415  a Content-Type or Content-Encoding it cannot read
    ├── RateLimited               retryable, 429 + Retry-After: over events per second
    │   └── QuotaExceeded         retryable, 429 + Retry-After: over the monthly quota
    └── KafkaUnavailable          retryable, 503 + Retry-After: Kafka did not ack in time

Bodies are always ``{"error": "<code>", "detail": "<human text naming the problem>"}``,
a bug included (500 ``internal_error``; the server logs the traceback). A 429 adds
``"limit"`` (``events_per_second`` or ``monthly_quota``) and ``"retry_after_s"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ingest_gateway.responses import json_response


class GatewayError(Exception):
    status: ClassVar[int] = 500

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ClientError(GatewayError):
    """Permanent: the request itself is wrong; retrying it unchanged fails again."""

    status = 400


class BadRequest(ClientError):
    status = 400


class Unauthorized(ClientError):
    status = 401


class PayloadTooLarge(ClientError):
    status = 413


class UnsupportedMediaType(ClientError):
    status = 415


class KafkaUnavailable(GatewayError):
    """Retryable: Kafka did not acknowledge every record within the produce timeout."""

    status = 503

    def __init__(self, detail: str) -> None:
        super().__init__("kafka_unavailable", detail)


class RateLimited(GatewayError):
    """Retryable after ``retry_after_s`` (at least 1): the project sends more than it may.

    ``categories`` are the Sentry data categories limited (none: all of them).
    """

    status = 429
    code_name: ClassVar[str] = "rate_limited"
    limit: ClassVar[str] = "events_per_second"

    def __init__(
        self, retry_after_s: float, categories: Sequence[str] = (), detail: str | None = None
    ) -> None:
        self.retry_after_s = max(1, int(retry_after_s))
        super().__init__(
            self.code_name,
            detail or f"the project is over its rate limit; retry in {self.retry_after_s}s",
        )
        self.categories = tuple(categories)

    def sentry_header(self) -> str:
        """``X-Sentry-Rate-Limits``: ``<seconds>:<categories>:<scope>[:<reason code>]``."""
        header = f"{self.retry_after_s}:{';'.join(self.categories)}:project"
        return header if self.code_name == "rate_limited" else f"{header}:{self.code_name}"

    def body(self) -> dict[str, Any]:
        return {
            **error_body(self.code, self.detail),
            "limit": self.limit,
            "retry_after_s": self.retry_after_s,
        }


class QuotaExceeded(RateLimited):
    """The project used its monthly quota; retry when the next month starts (UTC)."""

    code_name = "quota_exceeded"
    limit = "monthly_quota"


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """Map every ``GatewayError`` (and Starlette's 404/405) to its status and JSON body."""

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, GatewayError):  # pragma: no cover - registration guarantees it
            raise exc
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after_s)
            return json_response(exc.body(), exc.status, headers)
        if isinstance(exc, KafkaUnavailable):
            headers["Retry-After"] = str(retry_after_s)
        elif isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="pulseline"'
        return json_response(error_body(exc.code, exc.detail), exc.status, headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return json_response(error_body(code, str(exc.detail)), exc.status_code, exc.headers)

    async def on_bug(request: Request, exc: Exception) -> Response:
        # Starlette re-raises after answering, so uvicorn logs the traceback.
        return json_response(error_body("internal_error", "the gateway failed; see its log"), 500)

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_bug)
