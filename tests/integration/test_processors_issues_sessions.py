"""Issues and sessions through a real Faust worker (subprocess) and the real broker."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pulseline.deadletter import DeadLetterInfo
from pulseline.records.incidents import INCIDENT_SIGNALS
from pulseline.records.issues import ISSUE_COMMANDS, ISSUES
from pulseline.records.sessions import SESSIONS
from pulseline.schemas import EventKind
from pulseline.settings import ProcessorSettings
from pulseline.topics import DEAD_LETTERS, INGEST
from tests.helpers import stamped

pytestmark = pytest.mark.integration
PROJECT = 5
Records = list[dict[str, Any]]


async def send(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce keyed records with Kafka's default partitioner, as a client would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, v, key=k) for k, v in records])
    finally:
        await producer.stop()


class Tail:
    """Every record of a topic from its start, kept as it arrives."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.records: list[Any] = []

    async def until(
        self, done: Callable[[list[Any]], bool], worker: subprocess.Popen[bytes], what: str
    ) -> list[Any]:
        deadline = time.monotonic() + 90
        while not done(self.records):
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.docs()}"
            assert worker.poll() is None, "the worker died"
            batch = await self.consumer.getmany(timeout_ms=300)
            for items in batch.values():
                self.records.extend(items)
        return self.records

    async def drain(self, seconds: float) -> list[Any]:
        """Keep reading for ``seconds``, so a wrong extra record would show up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for items in (await self.consumer.getmany(timeout_ms=300)).values():
                self.records.extend(items)
        return self.records

    def staged(self, stage: str) -> list[Any]:
        return [r for r in self.records if DeadLetterInfo.from_headers(r.headers).stage == stage]

    def docs(self) -> Records:
        return [orjson.loads(r.value) for r in self.records]


def error(message: str, at: datetime, **over: Any) -> dict[str, Any]:
    attributes = {"exception": [{"type": "OrderError", "value": message}], "level": "error"}
    return stamped(
        "error", PROJECT, timestamp=at.isoformat(), received_at=at.isoformat(),
        attributes=attributes, **over,
    )  # fmt: skip


def pageview(visitor: str, path: str, at: datetime) -> dict[str, Any]:
    url = f"https://shop.example{path}"
    return stamped(
        "pageview", PROJECT, distinct_id=visitor, timestamp=at.isoformat(),
        attributes={"url": url, "path": path},
    )  # fmt: skip


def keyed(doc: dict[str, Any], field: str) -> tuple[bytes, bytes]:
    return f"{doc['project_id']}:{doc[field]}".encode(), orjson.dumps(doc)


def newest(docs: Records, key: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for doc in docs:
        if doc[key] not in out or doc["version"] > out[doc[key]]["version"]:
            out[doc[key]] = doc
    return out


def test_errors_group_into_one_issue_that_regresses_after_resolve(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = ProcessorSettings.from_env(env)
    prefix, bootstrap = settings.topic_prefix, settings.bootstrap
    errors_topic = INGEST[EventKind.ERROR].physical(prefix)
    now = datetime.now(UTC)
    messages = [f"order {n} not found for user {n * 7}" for n in (1001, 1002, 1003, 1004)]
    errors = [
        error(m, now - timedelta(minutes=5), distinct_id=f"u{i}") for i, m in enumerate(messages)
    ]
    poison = orjson.dumps({"project_id": PROJECT, "kind": "error"})

    async def scenario() -> None:
        issues = Tail(bootstrap, ISSUES.physical(prefix))
        signals = Tail(bootstrap, INCIDENT_SIGNALS.physical(prefix))
        dead = Tail(bootstrap, DEAD_LETTERS.physical(prefix))
        for tail in (issues, signals, dead):
            await tail.consumer.start()
        try:
            records = [keyed(e, "event_id") for e in errors]
            # The second error is redelivered; the poison sits among the good ones.
            await send(bootstrap, errors_topic, [*records[:2], records[1], (b"5:x", poison)])
            await send(bootstrap, errors_topic, records[2:])
            await issues.until(
                lambda rs: any(orjson.loads(r.value)["count"] >= 4 for r in rs), worker, "4"
            )
            await issues.drain(2)
            rows = issues.docs()
            assert {r["fingerprint"] for r in rows} == {rows[0]["fingerprint"]}
            fingerprint = rows[0]["fingerprint"]
            latest = newest(rows, "fingerprint")[fingerprint]
            assert (latest["count"], latest["users"], latest["status"]) == (4, 4, "unresolved")
            # The first error to arrive names the issue; ingest.error spreads them by id.
            assert latest["title"] in {f"OrderError: {m}" for m in messages}
            assert latest["rule"] == "exception_message"
            dedup = f"issue:{PROJECT}:{fingerprint}"

            def ours() -> list[tuple[str, str | None]]:
                return [(s["action"], s["kind"]) for s in signals.docs() if s["dedup_key"] == dedup]

            await signals.until(lambda rs: len(ours()) >= 1, worker, "a new_issue signal")
            assert ours() == [("open", "new_issue")]
            await dead.until(lambda rs: bool(dead.staged("group_errors")), worker, "the poison")
            assert [r.value for r in dead.staged("group_errors")] == [poison]

            command = {
                "action": "resolve",
                "project_id": PROJECT,
                "fingerprint": fingerprint,
                "at": datetime.now(UTC).isoformat(),
            }
            key = f"{PROJECT}:{fingerprint}".encode()
            await send(bootstrap, ISSUE_COMMANDS.physical(prefix), [(key, orjson.dumps(command))])
            await issues.until(
                lambda rs: orjson.loads(rs[-1].value)["status"] == "resolved", worker, "resolve"
            )
            await asyncio.sleep(0.1)
            again = error("order 2002 not found for user 3", datetime.now(UTC), distinct_id="u0")
            await send(bootstrap, errors_topic, [keyed(again, "event_id")])
            await signals.until(lambda rs: len(ours()) >= 3, worker, "a regression signal")
            assert ours() == [
                ("open", "new_issue"),
                ("resolve", None),
                ("open", "regression"),
            ]
            await issues.until(
                lambda rs: orjson.loads(rs[-1].value)["count"] == 5, worker, "the 5th error"
            )
            latest = newest(issues.docs(), "fingerprint")[fingerprint]
            assert (latest["status"], latest["count"], latest["users"]) == ("unresolved", 5, 4)
        finally:
            for tail in (issues, signals, dead):
                await tail.consumer.stop()

    asyncio.run(scenario())


def test_pageviews_of_a_visitor_form_one_session_and_a_lone_pageview_bounces(
    env: dict[str, str], worker: subprocess.Popen[bytes]
) -> None:
    settings = ProcessorSettings.from_env(env)
    prefix, bootstrap = settings.topic_prefix, settings.bootstrap
    start = datetime.now(UTC) - timedelta(minutes=10)
    ada = [
        pageview("ada", path, start + timedelta(minutes=n))
        for n, path in enumerate(["/", "/pricing", "/signup"])
    ]
    bob = pageview("bob", "/blog", start)
    carl = pageview("carl", "/old", start - timedelta(hours=2))  # idle long since: swept
    client = f"s-{uuid.uuid4().hex[:8]}"
    anonymous = []
    for n, path in enumerate(["/a", "/b"]):
        doc = pageview("-", path, start + timedelta(minutes=n))
        doc.update(distinct_id=None, session_id=client)
        anonymous.append(keyed(doc, "event_id"))  # the gateway keys these by event id
    poison = orjson.dumps(stamped("pageview", PROJECT, distinct_id=None, attributes={"url": "/"}))

    async def scenario() -> None:
        sessions = Tail(bootstrap, SESSIONS.physical(prefix))
        dead = Tail(bootstrap, DEAD_LETTERS.physical(prefix))
        for tail in (sessions, dead):
            await tail.consumer.start()
        try:
            records = [keyed(p, "distinct_id") for p in ada]
            await send(
                bootstrap,
                INGEST[EventKind.PAGEVIEW].physical(prefix),
                [records[0], records[1], records[1], (b"5:z", poison), records[2]],
            )
            await send(
                bootstrap,
                INGEST[EventKind.PAGEVIEW].physical(prefix),
                [keyed(bob, "distinct_id"), keyed(carl, "distinct_id"), *anonymous],
            )

            def both(rs: list[Any]) -> bool:
                got = newest([orjson.loads(r.value) for r in rs], "distinct_id")
                counts = {who: s["pageviews"] for who, s in got.items()}
                closed = got.get("carl", {}).get("closed")
                return counts == {"ada": 3, "bob": 1, "carl": 1, client: 2} and bool(closed)

            await sessions.until(both, worker, "both sessions")
            await dead.until(lambda rs: bool(dead.staged("sessions")), worker, "the poison")
            await sessions.drain(2)
            got = newest(sessions.docs(), "distinct_id")
            summary = {
                who: (s["pageviews"], s["entry_page"], s["exit_page"], s["bounce"], s["closed"])
                for who, s in got.items()
            }
            assert summary == {
                "ada": (3, "/", "/signup", False, False),
                "bob": (1, "/blog", "/blog", True, False),
                "carl": (1, "/old", "/old", True, True),
                client: (2, "/a", "/b", False, False),
            }
            assert got[client]["session_id"] == client
            assert len({s["session_id"] for s in sessions.docs() if s["distinct_id"] == "ada"}) == 1
            assert got["ada"]["duration_s"] == 120.0
            assert [r.value for r in dead.staged("sessions")] == [poison]
            info = DeadLetterInfo.from_headers(dead.staged("sessions")[0].headers)
            assert "session_id" in info.reason
        finally:
            for tail in (sessions, dead):
                await tail.consumer.stop()

    asyncio.run(scenario())
