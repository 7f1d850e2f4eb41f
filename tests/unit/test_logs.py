import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pulseline.logs import JsonFormatter, RequestIds, request_id
from pulseline.settings import ProcessorSettings
from stream_processors.__main__ import worker

LINES: list[dict[str, object]] = []


class Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LINES.append(orjson.loads(JsonFormatter("test").format(record)))


async def hello(_: Request) -> PlainTextResponse:
    logging.getLogger("pulseline.test").warning("handling %s", "it")
    return PlainTextResponse("hi")


@pytest.fixture
def app() -> RequestIds:
    LINES.clear()
    logger = logging.getLogger("pulseline.test")
    logger.handlers[:] = [Capture()]
    return RequestIds(Starlette(routes=[Route("/", hello)]))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_given_request_id_is_echoed_and_logged(app: RequestIds) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        r = await c.get("/", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert [
        {
            "ts": LINES[0]["ts"],
            "level": "WARNING",
            "service": "test",
            "logger": "pulseline.test",
            "msg": "handling it",
            "request_id": "abc-123",
        }
    ] == LINES


@pytest.mark.anyio
async def test_a_request_without_an_id_gets_a_fresh_one(app: RequestIds) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        a = (await c.get("/")).headers["x-request-id"]
        b = (await c.get("/")).headers["x-request-id"]
    assert len(a) == 32 and a != b
    assert [line["request_id"] for line in LINES] == [a, b]
    assert request_id.get() is None


def test_lines_outside_a_request_have_no_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain %d", (1,), None)
    assert orjson.loads(JsonFormatter("svc").format(record))["msg"] == "plain 1"
    assert "request_id" not in orjson.loads(JsonFormatter("svc").format(record))


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_processors_worker_logs_json_lines_at_its_level(
    root_restored: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = ProcessorSettings.from_env(
        {"PULSELINE_DATA_DIR": str(tmp_path), "PULSELINE_LOG_LEVEL": "WARNING"}
    )
    worker(settings)._setup_logging()
    logging.getLogger("aiokafka.producer").debug("per message, never built")
    logging.getLogger("faust.worker").warning("rebalancing %s", "now")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(d["service"], d["level"], d["logger"], d["msg"]) for d in lines] == [
        ("processors", "WARNING", "faust.worker", "rebalancing now")
    ]
    # Faust's spinner would have set the root to DEBUG: a record built per debug call.
    assert not logging.getLogger("aiokafka.producer").isEnabledFor(logging.DEBUG)
