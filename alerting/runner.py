"""``pulseline alerting``: incidents from Kafka to notifications, with durable retries.

The path of one incident transition (a record on ``derived.incidents``):

1. route it with the control plane's rules and channels (``alerting.routing``);
2. skip each channel already told of this (incident, state): one notification per transition,
   and a monitor failure below the flapping threshold (``alerting.noise``);
3. hold what was polled for the digest window, then send a channel's burst as one digest
   (``alerting.lanes``, ``alerting.digest``) and the rest one by one;
4. make the first attempt (``alerting.dispatch``) and write its ``Delivery`` records to
   ``alerting.deliveries``, waiting for Kafka's ack;
5. only then commit the incidents' offsets, so a crash (even ``kill -9``) re-reads them and
   sends again with the same ``webhook-id`` rather than losing the alert;
6. a ``retrying`` delivery is attempted again at its ``next_attempt_at``; a 410 disables
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
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from alerting.delivery import delivery_id
from alerting.digest import DigestJob, digest_of, record_digest, regroup
from alerting.dispatch import Dispatcher, Timed
from alerting.incident import Incident
from alerting.jobs import Job, record
from alerting.lanes import Unit, lanes
from alerting.ledger import Ledger, Transition
from alerting.metrics import AlertingMetrics
from alerting.noise import held_back
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
Polled = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


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
        for unit in regroup(self.ledger.pending()):
            self._claimed.update(r.delivery_id for r in unit)
            self._spawn(self._retry_later(unit))
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
            batch = await self._poll(consumer)
            if not batch:
                continue
            await self.handle(rec for records in batch.values() for rec in records)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    async def _poll(self, consumer: AIOKafkaConsumer) -> Polled:
        """One poll, then more until the digest window has passed since it returned, so the
        whole of a burst is planned (and committed) together."""
        batch: Polled = await consumer.getmany(timeout_ms=200)
        window = self.settings.alerting_digest_window_s
        if not batch or window <= 0:
            return batch
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            more = await consumer.getmany(timeout_ms=max(1, int(left * 1000)))
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
        return batch

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
        jobs: list[Job] = []
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
            jobs.extend(self._plan(incident))
        window = timedelta(seconds=self.settings.alerting_digest_window_s)
        planned = lanes(jobs, window, self.settings.alerting_digest_min)
        await asyncio.gather(*(self._in_order(lane) for lane in planned))

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
            if self._held_back(incident, channel_id):
                self.metrics.held_back.labels("flapping").inc()
                continue
            self._claimed.add(transition)
            jobs.append(Job(incident, channels[channel_id], delivery_id(incident, channel_id)))
        return jobs

    def _held_back(self, incident: Incident, channel_id: str) -> bool:
        opened = (incident.id, "open", channel_id) in self._claimed
        told = opened or self.ledger.open_handled(incident, channel_id)
        return held_back(incident, self.settings.alerting_failure_threshold, told)

    async def _in_order(self, lane: list[Unit]) -> None:
        for unit in lane:
            members = unit.digest.incidents if isinstance(unit, DigestJob) else (unit.incident,)
            for incident in members:
                lag = (self.clock() - incident.updated_at).total_seconds()
                self.metrics.first_attempt.observe(max(lag, 0.0))
            if isinstance(unit, DigestJob):
                self.metrics.digested.labels(unit.channel.type).inc(len(members))
            await self._attempt(unit)

    # -- attempts --------------------------------------------------------------------------

    async def _attempt(self, unit: Unit) -> None:
        timed: Timed
        done: list[Delivery]
        if isinstance(unit, DigestJob):
            timed = await self.dispatcher.attempt_digest(
                unit.digest, unit.channel, unit.delivery_id, self.clock()
            )
            latency = round(timed.latency_ms, 1)
            done = record_digest(unit, timed.attempt, latency, self.clock(), self.rng)
        else:
            timed = await self.dispatcher.attempt(
                unit.incident, unit.channel, unit.delivery_id, self.clock()
            )
            latency = round(timed.latency_ms, 1)
            done = [record(unit, timed.attempt, latency, self.clock(), self.rng)]
        await self._write(done)
        status = done[0].status
        self.metrics.deliveries.labels(unit.channel.type, status.value).inc()
        self.metrics.latency.labels(unit.channel.type).observe(timed.latency_ms / 1000)
        if status is DeliveryStatus.RETRYING:
            self._spawn(self._retry_later(done))
        elif status is DeliveryStatus.DISABLED:
            await self._disable(unit.channel, unit.delivery_id)

    async def _write(self, done: Sequence[Delivery]) -> None:
        """Every record of one attempt, then wait for all their acks."""
        if self._producer is None:
            raise RuntimeError("start the runner first")
        acks = [
            await self._producer.send(
                self.deliveries_topic,
                key=d.delivery_id.encode(),
                value=orjson.dumps(d.to_json()),
            )
            for d in done
        ]
        await asyncio.gather(*acks)
        for d in done:
            self.ledger.apply(d)

    async def _retry_later(self, pending: Sequence[Delivery]) -> None:
        """Attempt again the single delivery, or the digest whose members are ``pending``."""
        first = pending[0]
        wait = ((first.next_attempt_at or first.at) - self.clock()).total_seconds()
        await asyncio.sleep(max(wait, 0.0))
        channel = self.control.view.get(EntityType.CHANNEL, first.channel_id)
        try:
            if not isinstance(channel, Channel) or channel.disabled:
                await self._give_up(pending, "the channel was deleted or disabled")
            elif digest_of(first.delivery_id) is not None:
                await self._attempt(DigestJob.resume(pending, channel))
            else:
                await self._attempt(Job.resume(first, channel))
        except Exception:
            log.exception("retry of %s failed; it resumes at the next start", first.delivery_id)

    async def _give_up(self, pending: Sequence[Delivery], why: str) -> None:
        changes = {
            "status": DeliveryStatus.FAILED,
            "http_status": None,
            "latency_ms": None,
            "error": why,
            "at": self.clock(),
            "next_attempt_at": None,
        }
        await self._write(
            [p.model_copy(update={**changes, "attempt": p.attempt + 1}) for p in pending]
        )

    async def _disable(self, channel: Channel, webhook_id: str) -> None:
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
                f"The {channel.type} receiver answered 410 Gone to delivery {webhook_id}; "
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
