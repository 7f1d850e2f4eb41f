"""``pulseline alerting``: incidents from Kafka to notifications, with durable retries.

The path of one incident transition (a record on ``derived.incidents``):

1. route it with the control plane's rules and channels (``alerting.routing``);
2. skip each channel already told of this (incident, state): one notification per transition;
3. make the first attempt (``alerting.dispatch``) and write its ``Delivery`` to
   ``alerting.deliveries``, waiting for Kafka's ack;
4. only then commit the incident's offset, so a crash (even ``kill -9``) re-reads it and
   sends again with the same ``webhook-id`` rather than losing the alert;
5. a ``retrying`` delivery is attempted again at its ``next_attempt_at``; a 410 disables
   the channel and opens a ``channel_disabled`` incident.

At start the runner reads ``alerting.deliveries`` from the beginning into a ``Ledger``, so it
never repeats a finished delivery and resumes the pending ones. Transitions of one dedup key
in one batch are sent in order; different keys go concurrently, capped per channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from alerting.delivery import delivery_id
from alerting.dispatch import Dispatcher
from alerting.incident import Incident
from alerting.jobs import Job, record
from alerting.ledger import Ledger, Transition
from alerting.metrics import AlertingMetrics
from alerting.routing import route
from alerting.send import HttpSender, SmtpSettings
from pulseline.control.entities import AlertRule, Channel, EntityType, Monitor
from pulseline.control.service import ControlService
from pulseline.control.store import ControlStore
from pulseline.probe_server import Health
from pulseline.records.alerts import DELIVERIES, Delivery, DeliveryStatus
from pulseline.records.incidents import (
    INCIDENT_SIGNALS,
    INCIDENTS,
    IncidentKind,
    IncidentSignal,
    Severity,
)
from pulseline.settings import AlertingSettings

log = logging.getLogger("pulseline.alerting")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def smtp_of(settings: AlertingSettings) -> SmtpSettings | None:
    if not settings.alerting_smtp_host:
        return None
    return SmtpSettings(
        host=settings.alerting_smtp_host,
        port=settings.alerting_smtp_port,
        username=settings.alerting_smtp_user or None,
        password=settings.alerting_smtp_password.get_secret_value() or None,
        starttls=settings.alerting_smtp_starttls,
        timeout_s=settings.alerting_timeout_s,
    )


class Runner:
    def __init__(
        self,
        settings: AlertingSettings,
        metrics: AlertingMetrics | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or AlertingMetrics()
        self.clock = clock
        self.rng = rng or random.Random()
        self.ledger = Ledger()
        self.control = ControlStore(settings)
        self.http = HttpSender(
            timeout_s=settings.alerting_timeout_s,
            per_channel=settings.alerting_per_channel,
            allow_private=settings.alerting_allow_private_networks,
        )
        self.dispatcher = Dispatcher(self.http, smtp_of(settings), settings.alerting_smtp_from)
        prefix = settings.topic_prefix
        self.deliveries_topic = DELIVERIES.physical(prefix)
        self.incidents_topic = INCIDENTS.physical(prefix)
        self.signals_topic = INCIDENT_SIGNALS.physical(prefix)
        self._claimed: set[Transition | str] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.control.start()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
        )
        await self._producer.start()
        await self._rebuild()
        for pending in self.ledger.pending():
            self._claimed.add(pending.delivery_id)
            self._spawn(self._retry_later(pending))
        log.info(
            "ledger: %d deliveries, %d pending", len(self.ledger.latest), len(self.ledger.pending())
        )
        self._consumer = AIOKafkaConsumer(
            self.incidents_topic,
            bootstrap_servers=self.settings.bootstrap,
            group_id=self.settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        await self._consumer.start()
        self._spawn(self._remind_forever())

    async def _rebuild(self) -> None:
        """Fold every record of ``alerting.deliveries`` written so far into the ledger."""
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap, group_id=None, enable_auto_commit=False
        )
        await reader.start()
        try:
            if self._producer is None:
                raise RuntimeError("start the producer first")
            partitions = await self._producer.partitions_for(self.deliveries_topic)
            tps = [TopicPartition(self.deliveries_topic, p) for p in sorted(partitions)]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            while [tp for tp in tps if await reader.position(tp) < ends[tp]]:
                for records in (await reader.getmany(*tps, timeout_ms=500)).values():
                    for rec in records:
                        self._fold(rec)
        finally:
            await reader.stop()

    def _fold(self, rec: ConsumerRecord[bytes, bytes]) -> None:
        try:
            self.ledger.apply(Delivery.model_validate_json(rec.value or b""))
        except (ValidationError, ValueError) as exc:
            log.error("unreadable delivery at %s/%s: %s", rec.partition, rec.offset, exc)

    async def run(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("start the runner first")
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            await self.handle(rec for records in batch.values() for rec in records)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.http.aclose()
        await self.control.stop()

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- incidents -------------------------------------------------------------------------

    async def handle(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        """Make the first attempt of every transition in ``records``; returns once each
        attempt's ``Delivery`` is acked by Kafka."""
        by_key: dict[str, list[Job]] = {}
        for rec in records:
            try:
                incident = Incident.from_json(orjson.loads(rec.value or b""))
            except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                self.metrics.rejected.labels("unreadable").inc()
                log.error(
                    "skipping unreadable incident at %s/%s: %s", rec.partition, rec.offset, exc
                )
                continue
            self.ledger.observe(incident)
            by_key.setdefault(incident.dedup_key, []).extend(self._plan(incident))
        await asyncio.gather(*(self._in_order(jobs) for jobs in by_key.values()))

    def _plan(self, incident: Incident) -> list[Job]:
        view = self.control.view
        now = self.clock()
        rules = [
            r for r in view.all(EntityType.RULE, incident.project_id) if isinstance(r, AlertRule)
        ]
        channels = {
            c.id: c
            for c in view.all(EntityType.CHANNEL, incident.project_id)
            if isinstance(c, Channel)
        }
        monitor = view.get(EntityType.MONITOR, incident.monitor_id) if incident.monitor_id else None
        windows = monitor.maintenance if isinstance(monitor, Monitor) else []
        jobs: list[Job] = []
        for channel_id in route(incident, rules, channels, now, windows):
            transition = (incident.id, incident.state, channel_id)
            if self.ledger.was_handled(incident, channel_id) or transition in self._claimed:
                continue
            self._claimed.add(transition)
            jobs.append(Job(incident, channels[channel_id], delivery_id(incident, channel_id)))
        return jobs

    async def _in_order(self, jobs: list[Job]) -> None:
        for job in jobs:
            lag = (self.clock() - job.incident.updated_at).total_seconds()
            self.metrics.first_attempt.observe(max(lag, 0.0))
            await self._attempt(job)

    # -- attempts --------------------------------------------------------------------------

    async def _attempt(self, job: Job) -> Delivery:
        timed = await self.dispatcher.attempt(
            job.incident, job.channel, job.delivery_id, self.clock()
        )
        done = record(job, timed.attempt, round(timed.latency_ms, 1), self.clock(), self.rng)
        await self._write(done)
        self.metrics.deliveries.labels(done.channel_type, done.status.value).inc()
        self.metrics.latency.labels(done.channel_type).observe(timed.latency_ms / 1000)
        if done.status is DeliveryStatus.RETRYING:
            self._spawn(self._retry_later(done))
        elif done.status is DeliveryStatus.DISABLED:
            await self._disable(job.channel, done)
        return done

    async def _write(self, done: Delivery) -> None:
        if self._producer is None:
            raise RuntimeError("start the runner first")
        await self._producer.send_and_wait(
            self.deliveries_topic,
            key=done.delivery_id.encode(),
            value=orjson.dumps(done.to_json()),
        )
        self.ledger.apply(done)

    async def _retry_later(self, pending: Delivery) -> None:
        wait = ((pending.next_attempt_at or pending.at) - self.clock()).total_seconds()
        await asyncio.sleep(max(wait, 0.0))
        channel = self.control.view.get(EntityType.CHANNEL, pending.channel_id)
        try:
            if isinstance(channel, Channel) and not channel.disabled:
                await self._attempt(Job.resume(pending, channel))
            else:
                await self._give_up(pending, "the channel was deleted or disabled")
        except Exception:
            log.exception("retry of %s failed; it resumes at the next start", pending.delivery_id)

    async def _give_up(self, pending: Delivery, why: str) -> None:
        await self._write(
            pending.model_copy(
                update={
                    "attempt": pending.attempt + 1,
                    "status": DeliveryStatus.FAILED,
                    "http_status": None,
                    "latency_ms": None,
                    "error": why,
                    "at": self.clock(),
                    "next_attempt_at": None,
                }
            )
        )

    async def _disable(self, channel: Channel, done: Delivery) -> None:
        """410 Gone: the receiver asks us to stop. Disable the channel and say so."""
        await ControlService(self.control).update(
            EntityType.CHANNEL, channel.id, {"disabled": True}
        )
        signal = IncidentSignal(
            action="open",
            dedup_key=f"channel_disabled:{channel.id}",
            at=self.clock(),
            project_id=channel.project_id,
            kind=IncidentKind.CHANNEL_DISABLED,
            severity=Severity.ERROR,
            title=f"Alert channel {channel.name!r} was disabled",
            explanation=(
                f"The {channel.type} receiver answered 410 Gone to delivery {done.delivery_id}; "
                "no more alerts go to it until it is enabled again."
            ),
            reason="410 Gone",
        )
        if self._producer is None:
            raise RuntimeError("start the runner first")
        await self._producer.send_and_wait(
            self.signals_topic,
            key=signal.dedup_key.encode(),
            value=orjson.dumps(signal.model_dump(mode="json")),
        )
        log.warning("disabled channel %s after 410 Gone", channel.id)

    # -- reminders -------------------------------------------------------------------------

    async def _remind_forever(self) -> None:
        every = timedelta(seconds=self.settings.alerting_reminder_interval_s)
        while True:
            await asyncio.sleep(self.settings.alerting_reminder_check_s)
            try:
                await self.remind(every)
            except Exception:
                log.exception("reminder check failed; trying again later")

    async def remind(self, every: timedelta) -> None:
        """Re-send each open incident whose channels were last told at least ``every`` ago."""
        for due in self.ledger.due_reminders(every, self.clock()):
            channel = self.control.view.get(EntityType.CHANNEL, due.channel_id)
            if due.delivery_id in self._claimed or not isinstance(channel, Channel):
                continue
            if channel.disabled:
                continue
            self._claimed.add(due.delivery_id)
            job = Job(due.incident, channel, due.delivery_id, kind="reminder")
            self._spawn(self._attempt(job))


async def serve(settings: AlertingSettings) -> None:
    """Run until cancelled (SIGINT/SIGTERM cancel it in ``__main__``)."""
    runner = Runner(settings)
    health = Health()
    server = runner.metrics.serve(
        settings.alerting_metrics_host, settings.alerting_metrics_port, health
    )

    async def heartbeat() -> None:  # ready once started; live while the loop ticks
        while True:
            health.beat(time.monotonic())
            await asyncio.sleep(1.0)

    await runner.start()
    beating = asyncio.create_task(heartbeat())
    log.info("alerting: consuming %s as %s", runner.incidents_topic, settings.group_id)
    try:
        await runner.run()
    finally:
        beating.cancel()
        await runner.stop()
        if server is not None:
            server.stop()
