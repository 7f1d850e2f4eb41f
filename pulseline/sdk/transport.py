"""One POST of a batch to the gateway over httpx; every failure becomes a ``Reply``."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Protocol

import httpx

import pulseline
from pulseline.sdk.options import Target

USER_AGENT = f"pulseline-python/{pulseline.__version__}"


@dataclass(frozen=True)
class Reply:
    """``status`` is ``None`` when no answer came back (``error`` says why)."""

    status: int | None
    retry_after: str | None = None
    body: bytes = b""
    error: str | None = None


class Transport(Protocol):
    def post(self, body: bytes) -> Reply: ...

    def close(self) -> None: ...


class HttpTransport:
    def __init__(self, target: Target, timeout: float, compress_over_bytes: int | None) -> None:
        self._endpoint = target.endpoint
        self._compress_over = compress_over_bytes
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={
                "Authorization": f"Bearer {target.key}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            # Loading the CA bundle takes a fifth of a second; plain HTTP never needs it
            # (redirects are not followed, so a request cannot end up on TLS).
            verify=target.endpoint.startswith("https:"),
        )

    def post(self, body: bytes) -> Reply:
        headers = {}
        if self._compress_over is not None and len(body) > self._compress_over:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.post(self._endpoint, content=body, headers=headers)
        except Exception as exc:  # httpx.HTTPError, or a client closed under it at shutdown
            return Reply(None, error=f"{type(exc).__name__}: {exc}")
        return Reply(response.status_code, response.headers.get("retry-after"), response.content)

    def close(self) -> None:
        self._client.close()
