"""Send a ping within a fixed time, retrying a little, and say once if it could not.

A ping gets ``timeout_s`` in all (every attempt and pause included) and at most
``retries`` retries, only after a transport error, a 5xx or a 429. Anything else (404
unknown monitor, 400 bad slug) is not retried, and once a ping failed the next ones are
tried once: a server that was down a moment ago costs the job no more waiting. Failures
never raise: the job's result must not depend on the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from pulseline.producers.wrap_ping import Ping

USER_AGENT = "pulseline-wrap/1"
RETRIES = 2
BACKOFF_S = (0.2, 0.5)


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


class Pinger:
    def __init__(
        self,
        timeout_s: float,
        warn: Callable[[str], None],
        *,
        shown: Callable[[str], str] = lambda url: url,
        retries: int = RETRIES,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self._warn = warn
        self._shown = shown
        self._warned = False
        self._clock, self._sleep = clock, sleep
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        # Made by the first ping, which runs beside the job: loading CA certificates takes
        # a moment that the job's start should not wait for.
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    headers={"User-Agent": USER_AGENT}, transport=self._transport
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()

    def warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            self._warn(message)

    def send(self, ping: Ping) -> httpx.Response | None:
        """The answer (2xx), or None after warning (once per Pinger)."""
        client = self._http()
        deadline = self._clock() + self.timeout_s
        retries = 0 if self._warned else self.retries
        problem = ""
        for attempt in range(retries + 1):
            left = deadline - self._clock()
            if left <= 0:
                break
            try:
                response = client.post(
                    ping.url, params=ping.params, content=ping.body, timeout=left
                )
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                problem = type(exc).__name__
            else:
                if response.is_success:
                    return response
                problem = f"HTTP {response.status_code} {response.text[:100].strip()!r}"
                if not _retryable(response.status_code):
                    break
            pause = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            if attempt == retries or deadline - self._clock() <= pause:
                break
            self._sleep(pause)
        self.warn_once(
            f"could not ping {self._shown(ping.url)} ({problem or 'timed out'}); "
            "the job's result is unchanged"
        )
        return None
