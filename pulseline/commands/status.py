"""``pulseline status [--once]``: the pipeline's health, scraped from every ``/metrics``.

Each service is scraped twice, ``--interval`` apart, and the difference gives the rates.
A service that does not answer is shown as down and the others still are; with ``--once``
the exit code is 1 when any service is down. Without ``--once`` the table is redrawn
every interval until Ctrl-C. URLs come from the settings (ports of ``pulseline run``) or
``--gateway-url`` and the like.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pulseline.commands.types import SubParsers
from pulseline.settings import GatewaySettings, ProcessorSettings, StorageSettings
from pulseline.table import format_table

Sample = dict[str, float]  # metric sample name → value summed over its labels
Scrape = dict[str, Sample | str]  # service name → samples, or why it could not be read
CLEAR = "\x1b[H\x1b[2J"
HEADER = ("service", "state", "rate/s", "errors", "dead letters", "lag")


@dataclass(frozen=True)
class Service:
    """What to read from one service's metrics; a name absent from a scrape counts as 0."""

    name: str
    url: str
    rate: str
    errors: tuple[str, ...] = ()
    dead: tuple[str, ...] = ()
    lag: str | None = None


def services(
    gateway: GatewaySettings, processors: ProcessorSettings, storage: StorageSettings
) -> list[Service]:
    """Rates: events accepted (gateway), events handled by agents (processors), rows
    inserted (storage)."""
    return [
        Service(
            "gateway",
            _url(gateway.gateway_host, gateway.gateway_port),
            "pulseline_gateway_events_accepted_total",
            errors=("pulseline_gateway_events_rejected_total",),
        ),
        Service(
            "processors",
            _url(processors.processors_web_host, processors.processors_web_port),
            "pulseline_processor_events_total",
            dead=("pulseline_processor_dead_letters_total",),
            lag="pulseline_processor_consumer_lag",
        ),
        Service(
            "storage",
            _url(storage.api_host, storage.api_port),
            "pulseline_sink_rows_total",
            errors=("pulseline_sink_insert_failures_total",),
            dead=("pulseline_sink_dead_letters_total",),
            lag="pulseline_sink_consumer_lag",
        ),
    ]


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/metrics"


def parse(text: str) -> Sample:
    out: Sample = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def scrape(url: str, timeout_s: float = 2.0) -> Sample | str:
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"down ({type(exc).__name__})"
    if response.status_code != 200:
        return f"down (HTTP {response.status_code})"
    return parse(response.text)


def row(service: Service, before: Sample | str, after: Sample | str, seconds: float) -> list[str]:
    if isinstance(after, str):
        return [service.name, after, "-", "-", "-", "-"]

    def total(names: Sequence[str]) -> str:
        return f"{sum(after.get(n, 0.0) for n in names):,.0f}" if names else "-"

    rate = "-"
    if not isinstance(before, str) and seconds > 0:
        delta = after.get(service.rate, 0.0) - before.get(service.rate, 0.0)
        rate = f"{max(delta, 0.0) / seconds:,.1f}"  # a restart resets counters: not negative
    lag = f"{after.get(service.lag, 0.0):,.0f}" if service.lag else "-"
    return [service.name, "up", rate, total(service.errors), total(service.dead), lag]


def scrape_all(targets: Sequence[Service]) -> tuple[float, Scrape]:
    return time.monotonic(), {s.name: scrape(s.url) for s in targets}


def render(
    targets: Sequence[Service], before: tuple[float, Scrape], after: tuple[float, Scrape]
) -> str:
    seconds = after[0] - before[0]
    rows = [row(s, before[1][s.name], after[1][s.name], seconds) for s in targets]
    return format_table(HEADER, rows)


def register(sub: SubParsers) -> None:
    parser = sub.add_parser("status", help="live pipeline health from every service's /metrics")
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between scrapes")
    for name in ("gateway", "processors", "storage"):
        parser.add_argument(f"--{name}-url", help=f"/metrics URL of the {name} (default: settings)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    targets = services(
        GatewaySettings.from_env(), ProcessorSettings.from_env(), StorageSettings.from_env()
    )
    urls = {"gateway": args.gateway_url, "processors": args.processors_url}
    urls["storage"] = args.storage_url
    targets = [replace(t, url=urls[t.name]) if urls[t.name] else t for t in targets]
    interval = max(args.interval, 0.1)
    before = scrape_all(targets)
    time.sleep(interval)
    after = scrape_all(targets)
    if args.once:
        print(render(targets, before, after))
        return 0 if all(not isinstance(v, str) for v in after[1].values()) else 1
    try:
        while True:
            print(CLEAR + time.strftime("%H:%M:%S") + "  (Ctrl-C to stop)\n")
            print(render(targets, before, after), flush=True)
            time.sleep(interval)
            before, after = after, scrape_all(targets)
    except KeyboardInterrupt:
        return 0
