import logging

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pulseline.logs import JsonFormatter, RequestIds, request_id

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
