"""``/metrics``, ``/healthz`` and ``/readyz`` for the services without a web framework (the
Faust worker, the alert runner): a stdlib HTTP server on a daemon thread, so a blocked
event loop still answers, and says so. The loop proves it is alive with ``Health.beat``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger("pulseline.probes")

STALE_AFTER_S = 30.0


@dataclass
class Health:
    """Heartbeats from the event loop; read by the HTTP thread."""

    last_beat: float | None = None

    def beat(self, now: float) -> None:
        self.last_beat = now

    def live(self, now: float) -> bool:
        return self.last_beat is None or now - self.last_beat < STALE_AFTER_S

    def ready(self, now: float) -> bool:
        return self.last_beat is not None and now - self.last_beat < STALE_AFTER_S


def _handler(health: Health, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            now = time.monotonic()
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = health.live(now)
                self._send(200 if ok else 503, b'{"status":"%s"}' % (b"ok" if ok else b"stuck"))
            elif self.path == "/readyz":
                ok = health.ready(now)
                self._send(200 if ok else 503, b'{"status":"%s"}' % (b"ready" if ok else b"no"))
            else:
                self._send(404, b'{"error":"not_found"}')

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape is noise

    return Handler


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread."""

    def __init__(
        self, host: str, port: int, health: Health, registry: CollectorRegistry = REGISTRY
    ) -> None:
        self.host, self.port, self.health, self.registry = host, port, health, registry
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> bool:
        """False (and a warning) when the port is taken: metrics are not worth a crash."""
        try:
            self._server = ThreadingHTTPServer(
                (self.host, self.port), _handler(self.health, self.registry)
            )
        except OSError as exc:
            log.warning("metrics endpoint disabled: %s:%s: %s", self.host, self.port, exc)
            return False
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()
        log.info("metrics on http://%s:%s/metrics", self.host, self.port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
