"""The wrapper's configuration, ping requests, and bounded retries (pure, or a mock transport)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from pulseline.producers.wrap_client import Pinger
from pulseline.producers.wrap_ping import (
    Flags,
    WrapConfig,
    finish_ping,
    resolve,
    shown,
    start_ping,
    target,
)
from pulseline.producers.wrap_slug import derive_slug

KEY = "pk_" + "a" * 20
UUID = "5f9e2c1a-0b6d-4c1e-9a8b-0123456789ab"
CMD = ["sh", "-c", "echo hi"]


def test_defaults() -> None:
    config, problems = resolve(Flags(), CMD, {})
    assert problems == []
    assert config == WrapConfig(
        url=None,
        ping_key=None,
        monitor=derive_slug("sh -c 'echo hi'"),
        capture_bytes=32 * 1024,
        timeout_s=5.0,
        create=True,
    )


def test_environment() -> None:
    env = {
        "PULSELINE_URL": "http://gw:8000/",
        "PULSELINE_PING_KEY": KEY,
        "PULSELINE_WRAP_CAPTURE_BYTES": "100",
        "PULSELINE_WRAP_TIMEOUT_S": "1.5",
        "PULSELINE_WRAP_CREATE": "no",
    }
    config, problems = resolve(Flags(monitor="nightly"), CMD, env)
    assert problems == []
    assert config == WrapConfig("http://gw:8000", KEY, "nightly", 100, 1.5, False)


def test_flags_win_over_environment() -> None:
    env = {"PULSELINE_URL": "http://env", "PULSELINE_PING_KEY": "env_key_0123456789"}
    flags = Flags("http://flag", KEY, "m", 7, 0.5, False)
    config, _ = resolve(flags, CMD, env | {"PULSELINE_WRAP_CREATE": "1"})
    assert config == WrapConfig("http://flag", KEY, "m", 7, 0.5, False)


def test_the_dashboards_variable_names_the_gateway_too() -> None:
    config, _ = resolve(Flags(), CMD, {"PULSELINE_GATEWAY": "http://gw"})
    assert config.url == "http://gw"
    config, _ = resolve(
        Flags(), CMD, {"PULSELINE_GATEWAY": "http://gw", "PULSELINE_URL": "http://u"}
    )
    assert config.url == "http://u"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PULSELINE_WRAP_CAPTURE_BYTES", "lots"),
        ("PULSELINE_WRAP_CAPTURE_BYTES", "-1"),
        ("PULSELINE_WRAP_TIMEOUT_S", "0"),
        ("PULSELINE_WRAP_TIMEOUT_S", "nan"),
        ("PULSELINE_WRAP_CREATE", "maybe"),
    ],
)
def test_a_bad_setting_is_a_warning_and_its_default(name: str, value: str) -> None:
    config, problems = resolve(Flags(), CMD, {name: value})
    assert len(problems) == 1 and name in problems[0]
    assert (config.capture_bytes, config.timeout_s, config.create) == (32 * 1024, 5.0, True)


@pytest.mark.parametrize(
    ("config", "url", "why"),
    [
        (WrapConfig("http://gw", KEY, "nightly"), f"http://gw/ping/{KEY}/nightly", None),
        (WrapConfig("http://gw", None, UUID), f"http://gw/ping/{UUID}", None),
        (WrapConfig(None, KEY, "nightly"), None, "no server URL"),
        (WrapConfig("http://gw", None, "nightly"), None, "no ping key"),
        (WrapConfig("http://gw", KEY, "a/b"), None, "is not a slug"),
        (WrapConfig("http://gw", "k/../x", "nightly"), None, "ping key has"),
    ],
)
def test_target(config: WrapConfig, url: str | None, why: str | None) -> None:
    found, reason = target(config)
    assert found == url
    assert (reason is None) if why is None else (reason is not None and why in reason)


def test_pings() -> None:
    config = WrapConfig("http://gw", KEY, "nightly")
    base = f"http://gw/ping/{KEY}/nightly"
    start = start_ping(base, config, "rid-1")
    assert (start.url, start.params, start.body) == (
        f"{base}/start",
        {"rid": "rid-1", "create": "1"},
        b"",
    )
    end = finish_ping(
        base, config, "rid-1", exit_code=3, duration_s=1.2345, output_size=99, body=b"out"
    )
    assert (end.url, end.body) == (f"{base}/3", b"out")
    assert end.params == {"rid": "rid-1", "create": "1", "duration_ms": "1234", "output_size": "99"}


def test_pings_by_id_or_without_create_carry_no_create() -> None:
    by_id = WrapConfig("http://gw", None, UUID)
    assert start_ping(f"http://gw/ping/{UUID}", by_id, "r").params == {"rid": "r"}
    no_create = WrapConfig("http://gw", KEY, "nightly", create=False)
    assert start_ping("u", no_create, "r").params == {"rid": "r"}


def test_messages_never_show_the_ping_key() -> None:
    config = WrapConfig("http://gw", KEY, "nightly")
    assert shown(f"http://gw/ping/{KEY}/nightly/start", config) == (
        "http://gw/ping/<ping-key>/nightly/start"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _pinger(
    handler: Callable[[httpx.Request], httpx.Response],
    warnings: list[str],
    clock: Clock,
    timeout_s: float = 5.0,
) -> Pinger:
    return Pinger(
        timeout_s,
        warnings.append,
        transport=httpx.MockTransport(handler),
        clock=clock,
        sleep=clock.sleep,
    )


PING = start_ping(f"http://gw/ping/{KEY}/nightly", WrapConfig("http://gw", KEY, "nightly"), "r")


def test_a_good_answer_is_returned_without_warning() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="OK", headers={"Ping-Body-Limit": "10000"})

    warnings: list[str] = []
    answer = _pinger(handler, warnings, Clock()).send(PING)
    assert answer is not None and answer.headers["Ping-Body-Limit"] == "10000"
    assert warnings == []
    assert [(r.method, r.url.path, r.url.params["rid"]) for r in seen] == [
        ("POST", f"/ping/{KEY}/nightly/start", "r")
    ]
    assert seen[0].headers["user-agent"].startswith("pulseline-wrap/")


@pytest.mark.parametrize(
    ("answer", "attempts", "in_warning"),
    [
        (503, 3, "HTTP 503"),
        (429, 3, "HTTP 429"),
        (500, 3, "HTTP 500"),
        (404, 1, "HTTP 404"),
        (400, 1, "HTTP 400"),
        ("connect", 3, "ConnectError"),
    ],
)
def test_retries_only_what_may_pass_later_and_warns_once(
    answer: int | str, attempts: int, in_warning: str
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if answer == "connect":
            raise httpx.ConnectError("refused", request=request)
        assert isinstance(answer, int)
        return httpx.Response(answer, text="nope")

    warnings: list[str] = []
    clock = Clock()
    pinger = _pinger(handler, warnings, clock)
    assert pinger.send(PING) is None
    assert pinger.send(PING) is None
    assert len(calls) == attempts + 1  # after a failure, the next ping is tried once
    assert len(warnings) == 1
    assert in_warning in warnings[0]
    assert clock.now < 2 * 5.0


def test_the_time_budget_covers_every_attempt() -> None:
    clock = Clock()
    timeouts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        timeouts.append(timeout)
        clock.now += min(4.5, timeout)  # a server that answers nothing for 4.5 s
        raise httpx.ReadTimeout("slow", request=request)

    warnings: list[str] = []
    assert _pinger(handler, warnings, clock).send(PING) is None
    assert timeouts == pytest.approx([5.0, 0.3])  # the second attempt gets what is left
    assert clock.now == pytest.approx(5.0)
    assert len(warnings) == 1 and "ReadTimeout" in warnings[0]


def test_the_warning_masks_the_ping_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="not found")

    config = WrapConfig("http://gw", KEY, "nightly")
    warnings: list[str] = []
    pinger = Pinger(
        5.0,
        warnings.append,
        shown=lambda url: shown(url, config),
        transport=httpx.MockTransport(handler),
    )
    pinger.send(PING)
    assert len(warnings) == 1
    assert KEY not in warnings[0] and "<ping-key>" in warnings[0]
