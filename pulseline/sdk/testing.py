"""A stand-in gateway for tests of code that uses the SDK: stdlib only, on 127.0.0.1.

It records every ``POST /v1/events`` and answers 202 as the gateway does, unless told
otherwise: ``gateway.answer(503, retry_after="1")``, ``gateway.answer(400)`` or
``gateway.answer(hang=5)`` queue answers for the next requests, in order::

    with FakeGateway() as gateway:
        client = Client(gateway.url, key="pl_ingest_test")
        client.capture_message("hi")
        client.flush(5)
        assert gateway.events()[0]["attributes"]["message"] == "hi"
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 202
    retry_after: str | None = None
    hang: float = 0.0


@dataclass(frozen=True)
class Received:
    at: float
    path: str
    headers: dict[str, str]
    events: list[dict[str, Any]]
    peer: tuple[str, int]
    status: int = 202
    raw: bytes = field(default=b"", repr=False)


class FakeGateway:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._script: deque[Answer] = deque()
        self._received: list[Received] = []
        self._release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                gateway._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-gateway", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(
        self,
        status: int = 202,
        *,
        retry_after: str | None = None,
        hang: float = 0.0,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests get this answer (a ``hang`` first waits that long)."""
        with self._lock:
            self._script.extend([Answer(status, retry_after, hang)] * times)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def events(self) -> list[dict[str, Any]]:
        """Every event of every request answered 2xx, in arrival order."""
        return [e for r in self.requests() if 200 <= r.status < 300 for e in r.events]

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                events = [e for r in self._received if 200 <= r.status < 300 for e in r.events]
                left = deadline - time.monotonic()
                if len(events) >= count or left <= 0:
                    return events
                self._lock.wait(left)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        body = raw
        if handler.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(raw)
        parsed = json.loads(body) if body else []
        events = parsed if isinstance(parsed, list) else [parsed]
        with self._lock:
            answer = self._script.popleft() if self._script else Answer()
        if answer.hang:
            self._release.wait(answer.hang)
        host, port = handler.client_address[:2]
        received = Received(
            at=time.monotonic(),
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            events=events,
            peer=(str(host), int(port)),
            status=answer.status,
            raw=raw,
        )
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()
        if 200 <= answer.status < 300:
            ids = [str(e.get("event_id") or uuid.uuid4()) for e in events]
            reply: dict[str, Any] = {"accepted": len(events), "event_ids": ids, "rejected": []}
        else:
            reply = {"error": f"http_{answer.status}", "detail": "scripted by the test"}
        payload = json.dumps(reply).encode()
        try:
            handler.send_response(answer.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            if answer.retry_after is not None:
                handler.send_header("Retry-After", answer.retry_after)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up waiting (a hang longer than its timeout)
