"""The ping endpoints: resolve the monitor, read the body, stamp one ``check_in`` event,
hand it to Kafka and answer only once Kafka acked it (503 + Retry-After otherwise).

Answers follow Healthchecks' ``hc/api/views.py`` (``ping`` and ``ping_by_slug``) byte
for byte: 200 ``OK``; 201 ``Created`` when ``?create=1`` made the monitor; 404
``not found`` (unknown check, project or URL); 400 ``invalid url format`` (exit status
over 255); 400 ``invalid uuid format`` (``rid``); 409 ``ambiguous slug``. Only a
ping that was taken carries ``Ping-Body-Limit`` and ``Access-Control-Allow-Origin: *``.
A ping over its project's rate or monthly quota is a 429 with ``Retry-After`` (as
Healthchecks answers a rate limit) and the gateway's JSON body naming the limit.

Beyond Healthchecks: ``?duration_ms=`` and ``?output_size=`` carry what the pinger
measured itself (``pulseline wrap`` sends both); a malformed one is a 400 naming it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from ingest_gateway.client import ClientInfo, TrustedProxies, request_client
from ingest_gateway.errors import KafkaUnavailable, PayloadTooLarge, RateLimited
from ingest_gateway.handoff import admit, hand_off
from ingest_gateway.limits import Gate
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.pings.event import PingBody, Reported, check_in, status_of
from ingest_gateway.pings.paths import BySlug, ByUuid, Target, parse
from ingest_gateway.producer import Producer
from ingest_gateway.stamp import Stamper
from pulseline.control.entities import EntityType, Monitor
from pulseline.control.errors import Conflict, ControlError, Invalid
from pulseline.control.service import ControlService, Store
from pulseline.control.store import ControlStoreError
from pulseline.control.view import ControlView
from pulseline.settings import GatewaySettings

# What ``?create=1`` gives a new monitor: a daily period with an hour's grace.
CREATED_SCHEDULE = {"period_s": 86_400}
CREATED_GRACE_S = 3_600
# Django's HttpResponse default, which Healthchecks' plain-text answers carry.
CONTENT_TYPE = "text/html; charset=utf-8"
# Django's never_cache, which wraps Healthchecks' ping view.
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


class _Answer(Exception):
    """A refusal in Healthchecks' words: a status and a short text body."""

    def __init__(self, status: int, text: str, result: str) -> None:
        super().__init__(text)
        self.status, self.text, self.result = status, text, result


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text.encode(),
        status,
        headers={"Cache-Control": NEVER_CACHE, **(headers or {})},
        media_type=CONTENT_TYPE,
    )


async def read_ping_body(request: Request, limit: int) -> PingBody:
    """Keep the first ``limit`` bytes, count them all; memory stays bounded by ``limit``."""
    head = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if len(head) < limit:
            head += chunk[: limit - len(head)]
    return PingBody(bytes(head), size)


def _run_id(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        raise _Answer(400, "invalid uuid format", "bad_rid") from None


_WHOLE = re.compile(r"[0-9]{1,15}")
_DECIMAL = re.compile(r"[0-9]{1,15}(\.[0-9]{1,6})?")


def _reported(query: Mapping[str, str]) -> Reported:
    """The pinger's own ``duration_ms`` (decimals rounded) and ``output_size`` (bytes)."""
    duration, size = query.get("duration_ms"), query.get("output_size")
    if duration is not None and not _DECIMAL.fullmatch(duration):
        raise _Answer(400, "invalid duration_ms", "bad_duration")
    if size is not None and not _WHOLE.fullmatch(size):
        raise _Answer(400, "invalid output_size", "bad_output_size")
    return Reported(
        duration_ms=None if duration is None else round(float(duration)),
        output_size=None if size is None else int(size),
    )


def _slug_matches(view: ControlView, project_id: int, slug: str) -> list[Monitor]:
    return [
        m
        for m in view.entities[EntityType.MONITOR].values()
        if isinstance(m, Monitor) and m.project_id == project_id and m.slug == slug
    ]


def ping_router(
    settings: GatewaySettings,
    control: Store | None,
    producer: Producer,
    metrics: GatewayMetrics,
    gate: Gate | None = None,
) -> APIRouter:
    """The ping routes; none when there is no control plane to resolve monitors with.

    ``gate`` is shared by every door of an app; without one, the router makes its own.
    """
    router = APIRouter()
    if control is None:
        return router
    store: Store = control
    body_limit = settings.ping_body_limit_bytes
    limits = gate or Gate.from_settings(settings, control)
    proxies = TrustedProxies.parse(settings.trusted_proxies)
    service = ControlService(store)
    stamper = Stamper.from_settings(settings)
    creating = asyncio.Lock()
    pings = Counter(
        "pulseline_gateway_pings",
        "Pings answered, by URL form, status and result",
        ["form", "status", "result"],
        registry=metrics.registry,
    )

    async def provision(project_id: int, slug: str) -> tuple[Monitor, bool]:
        """The monitor ``slug`` of the project, made now if it is missing (one at a time)."""
        async with creating:
            found = _slug_matches(store.view, project_id, slug)
            if found:
                return _one(found), False
            data = {
                "project_id": project_id,
                "name": slug,
                "slug": slug,
                "schedule": CREATED_SCHEDULE,
                "grace_s": CREATED_GRACE_S,
            }
            try:
                made = await service.create(EntityType.MONITOR, data)
            except Invalid:
                # Healthchecks takes any [-a-zA-Z0-9_] slug; a monitor's is narrower.
                raise _Answer(400, "invalid slug", "bad_slug") from None
            except Conflict:  # another writer made it since this view last read
                found = _slug_matches(store.view, project_id, slug)
                if found:
                    return _one(found), False
                raise
            except (ControlStoreError, ControlError) as exc:
                raise KafkaUnavailable(f"could not create monitor {slug!r}: {exc}") from exc
            assert isinstance(made, Monitor)
            return made, True

    def lookup(target: Target, create: bool) -> Monitor | int:
        """The monitor, or the project id to make it in (``create`` only); else 404/409."""
        view = store.view
        if isinstance(target, ByUuid):
            monitor = view.get(EntityType.MONITOR, target.code)
            if not isinstance(monitor, Monitor):
                raise _Answer(404, "not found", "not_found")
            return monitor
        project = view.project_by_ping_key(target.ping_key)
        if project is None:
            raise _Answer(404, "not found", "not_found")
        found = _slug_matches(view, project.id, target.slug)
        if found:
            return _one(found)
        if not create:
            raise _Answer(404, "not found", "not_found")
        return project.id

    async def produce(event: dict[str, object], project_id: int, client: ClientInfo) -> None:
        now = datetime.now(UTC)
        stamped = stamper.stamp([event], project_id, now, client=client)
        if stamped.rejected:  # only when max_event_bytes is below the body limit
            metrics.count_rejected((r.kind, r.code) for r in stamped.rejected)
            raise PayloadTooLarge("ping_too_large", stamped.rejected[0].reason)
        admit(limits, metrics, project_id, stamped, now)
        await hand_off(producer, metrics, stamped)

    async def ping(request: Request, rest: str) -> Response:
        target = parse(rest)
        form = "slug" if isinstance(target, BySlug) else "uuid"
        status = "unknown" if target is None else status_of(target.action, target.exit_status)
        try:
            if target is None:
                raise _Answer(404, "not found", "not_found")
            # Healthchecks' order: the check (404, 409), the exit status, then rid.
            found = lookup(target, request.query_params.get("create") == "1")
            if target.exit_status is not None and target.exit_status > 255:
                raise _Answer(400, "invalid url format", "bad_exit_status")
            run_id = _run_id(request.query_params.get("rid"))
            reported = _reported(request.query_params)
            if isinstance(found, Monitor):
                monitor, created = found, False
            else:  # only now, so a refused ping makes no monitor (Healthchecks would)
                assert isinstance(target, BySlug)
                monitor, created = await provision(found, target.slug)
        except _Answer as answer:
            pings.labels(form, status, answer.result).inc()
            return _text(answer.status, answer.text)
        except KafkaUnavailable:
            pings.labels(form, status, "kafka_unavailable").inc()
            raise
        body = await read_ping_body(request, body_limit)
        metrics.bytes_in.inc(body.size)
        event = check_in(
            monitor_slug=monitor.slug,
            monitor_id=monitor.id,
            status=status_of(target.action, target.exit_status),
            exit_code=target.exit_status,
            run_id=run_id,
            body=body,
            method=request.method,
            user_agent=request.headers.get("user-agent", ""),
            reported=reported,
        )
        try:
            await produce(event, monitor.project_id, request_client(request, proxies))
        except (KafkaUnavailable, RateLimited) as exc:
            pings.labels(form, status, exc.code).inc()
            raise
        pings.labels(form, status, "created" if created else "ok").inc()
        headers = {"Ping-Body-Limit": str(body_limit), "Access-Control-Allow-Origin": "*"}
        return _text(201, "Created", headers) if created else _text(200, "OK", headers)

    for method in ("GET", "HEAD", "POST"):  # one route each: OpenAPI operation ids are unique
        router.add_api_route(
            "/ping/{rest:path}",
            ping,
            methods=[method],
            name=f"ping_{method.lower()}",
            summary="Healthchecks-compatible ping",
            response_model=None,
        )
    return router


def _one(found: Sequence[Monitor]) -> Monitor:
    if len(found) > 1:
        raise _Answer(409, "ambiguous slug", "ambiguous")
    return found[0]
