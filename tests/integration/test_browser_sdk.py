"""The browser SDK, in headless chromium, reports into the real gateway and broker.

The gateway runs under uvicorn with the Kafka producer; the test pages come from a
second server on another port, so the SDK posts cross-origin as it does in real life.
``tests/browser/drive.js`` (playwright-core) clicks through the page and leaves it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from ingest_gateway.app import create_app
from ingest_gateway.producer import KafkaProducer
from pulseline.keys import ApiKey, Scope, StaticKeyRing, new_key
from pulseline.ports import free_port
from pulseline.schemas import Event, EventKind
from pulseline.settings import GatewaySettings
from pulseline.topics import ingest_topic

BROWSER_DIR = Path(__file__).resolve().parents[1] / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
PROJECT = 9
KEY = new_key(Scope.INGEST)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(NODE is None, reason="node is not installed (run `make browser`)"),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing (run `make browser`)"
    ),
    pytest.mark.skipif(
        not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(),
        reason="tests/browser/node_modules is missing (run `make browser`)",
    ),
]

PAGE = """<!doctype html>
<html><head><title>{title}</title>
<script src="{gateway}/sdk.js" data-key="{key}" {extra}></script>
</head><body>
<h1>Shop</h1>
<button id="buy" class="btn primary">Buy now</button>
<a id="nav" href="/app/settings?utm_source=news">Settings</a>
<button id="boom">Break</button>
<button id="reject">Reject</button>
<script>
function explode() {{ throw new TypeError("the cart is empty"); }}
function checkout() {{ explode(); }}
document.getElementById("boom").addEventListener("click", function onBoom() {{ checkout(); }});
document.getElementById("reject").addEventListener("click", function () {{
  Promise.reject(new Error("payment declined"));
}});
document.getElementById("nav").addEventListener("click", function (e) {{
  e.preventDefault();
  history.pushState({{}}, "", this.getAttribute("href"));
  document.title = "Settings";
}});
</script>
</body></html>
"""


class Recorder:
    """ASGI wrapper noting (method, path, Origin, Content-Type, status) of each answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers: list[tuple[str, str, str, str, int]] = []

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}

        async def note(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answers.append(
                    (
                        scope["method"],
                        scope["path"],
                        headers.get("origin", ""),
                        headers.get("content-type", ""),
                        message["status"],
                    )
                )
            await send(message)

        await self.app(scope, receive, note)

    def posts(self) -> list[tuple[str, str, str, str, int]]:
        return [a for a in self.answers if a[:2] == ("POST", "/v1/events")]


def _serve_in_thread(server: uvicorn.Server) -> threading.Thread:
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    return thread


@pytest.fixture
def gateway(env: dict[str, str]) -> Iterator[tuple[str, GatewaySettings, Recorder]]:
    settings = GatewaySettings.from_env(env)
    keyring = StaticKeyRing()
    keyring.add(KEY, ApiKey(PROJECT, Scope.INGEST))
    app = Recorder(create_app(settings, keyring, KafkaProducer(settings)))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = _serve_in_thread(server)
    try:
        yield f"http://127.0.0.1:{port}", settings, app
    finally:
        server.should_exit = True
        thread.join(15)


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pages(gateway: tuple[str, GatewaySettings, Recorder], tmp_path: Path) -> Iterator[str]:
    """Origin of a static server (another port, so another origin) with the test pages."""
    root = tmp_path / "site"
    root.mkdir()
    base = gateway[0]
    (root / "index.html").write_text(PAGE.format(title="Shop", gateway=base, key=KEY, extra=""))
    (root / "dnt.html").write_text(
        PAGE.format(title="Private", gateway=base, key=KEY, extra='data-dnt="respect"')
    )
    handler = functools.partial(Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)


def drive(page_url: str, *flags: str) -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(BROWSER_DIR / "drive.js"), page_url, *flags],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "CHROMIUM": CHROMIUM},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


Seen = list[Event]


async def consume_until(
    settings: GatewaySettings, done: Callable[[Seen], bool], timeout_s: float = 30
) -> Seen:
    """Every event on the browser families' topics, read until ``done`` or the timeout."""
    kinds = [
        EventKind.PAGEVIEW,
        EventKind.EVENT,
        EventKind.ERROR,
        EventKind.TRANSACTION,
        EventKind.WEB_VITAL,
    ]
    consumer = AIOKafkaConsumer(
        *(ingest_topic(kind).physical(settings.topic_prefix) for kind in kinds),
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: Seen = []
    try:
        deadline = time.monotonic() + timeout_s
        while not done(seen) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                seen += [Event.model_validate_json(r.value) for r in records]
        return seen
    finally:
        await consumer.stop()


def of(seen: Seen, kind: str) -> list[dict[str, Any]]:
    return [e.attributes for e in seen if e.kind.value == kind]


def _everything_arrived(seen: Seen) -> bool:
    clicks = [a for a in of(seen, "event") if a["name"] == "click"]
    vitals = {a["name"] for a in of(seen, "web_vital")}
    return (
        len(of(seen, "pageview")) >= 2
        and len(clicks) >= 4
        and len(of(seen, "error")) >= 2
        and len(of(seen, "transaction")) >= 1
        and {"FCP", "TTFB", "CLS"} <= vitals
    )


def test_the_sdk_reports_a_visit_from_another_origin(
    gateway: tuple[str, GatewaySettings, Recorder], pages: str
) -> None:
    _, settings, recorder = gateway
    result = drive(f"{pages}/index.html")
    seen = asyncio.run(consume_until(settings, _everything_arrived))

    assert _everything_arrived(seen), [(e.kind.value, e.attributes.get("name")) for e in seen]
    assert result["path"] == "/app/settings"
    assert recorder.posts()
    assert {(origin, kind, status) for _, _, origin, kind, status in recorder.posts()} == {
        (pages, "text/plain", 202)
    }
    assert all(e.project_id == PROJECT for e in seen)

    views = of(seen, "pageview")
    assert [v["path"] for v in views] == ["/index.html", "/app/settings"]
    spa = views[1]
    assert spa["utm_source"] == "news"
    assert spa["referrer"] == f"{pages}/index.html"
    assert spa["url"] == f"{pages}/app/settings?utm_source=news"
    assert views[0]["title"] == "Shop"
    assert "x" in views[0]["screen"]

    clicks = {
        a["properties"]["text"]: a["properties"] for a in of(seen, "event") if a["name"] == "click"
    }
    assert clicks["Buy now"] == {"selector": "#buy", "text": "Buy now", "tag": "button"}
    assert clicks["Settings"]["href"] == f"{pages}/app/settings?utm_source=news"
    assert {"name": "signup", "properties": {"plan": "pro"}} in of(seen, "event")

    errors = {a["exception"][0]["mechanism"]["type"]: a["exception"][0] for a in of(seen, "error")}
    thrown = errors["onerror"]
    assert (thrown["type"], thrown["value"]) == ("TypeError", "the cart is empty")
    functions = [f["function"] for f in thrown["stacktrace"]["frames"]]
    assert functions[-3:] == ["HTMLButtonElement.onBoom", "checkout", "explode"]
    crashed = thrown["stacktrace"]["frames"][-1]
    assert crashed["filename"] == f"{pages}/index.html"
    assert crashed["in_app"] is True
    assert crashed["lineno"] > 0 and crashed["colno"] > 0
    rejected = errors["onunhandledrejection"]
    assert (rejected["type"], rejected["value"]) == ("Error", "payment declined")
    assert rejected["stacktrace"]["frames"]

    (load,) = of(seen, "transaction")
    assert (load["op"], load["name"]) == ("pageload", "/index.html")
    assert load["duration_ms"] > 0

    vitals = {a["name"]: a for a in of(seen, "web_vital")}
    for name in ("FCP", "TTFB"):
        assert vitals[name]["value"] > 0
        assert vitals[name]["rating"] in ("good", "needs-improvement", "poor")
    assert vitals["CLS"]["rating"] == "good"

    assert len({e.session_id for e in seen}) == 1
    assert len({e.distinct_id for e in seen}) == 1
    assert None not in {e.session_id for e in seen} | {e.distinct_id for e in seen}


def test_under_do_not_track_the_sdk_loads_but_sends_nothing(
    gateway: tuple[str, GatewaySettings, Recorder], pages: str
) -> None:
    _, _, recorder = gateway
    drive(f"{pages}/dnt.html", "--dnt")

    assert ("GET", "/sdk.js") in {a[:2] for a in recorder.answers}
    assert recorder.posts() == []
