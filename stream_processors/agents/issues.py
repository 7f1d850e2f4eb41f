"""Issues: group errors by fingerprint, fold them into issues, apply people's commands.

errors_by_fingerprint (from the router, keyed project:fingerprint) ─┐
processors.issue_commands (keyed project:fingerprint, same partitioner) ─┴─►
issues ──► table, derived.issues, derived.error_groups, processors.incident_signals

The router groups each error to key it (dead-lettering as ``group_errors`` what cannot be
grouped); this agent groups it again instead of carrying the grouping on the repartition
topic: grouping is pure and deterministic, and the repartition record stays a plain Event.
A redelivered error (its id among the issue's recent ids) changes nothing and emits nothing.
A command for an issue the table does not hold is dead-lettered, not dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust

from pulseline.records.incidents import INCIDENT_SIGNALS
from pulseline.records.issues import (
    ERROR_GROUPS,
    ERRORS_BY_FINGERPRINT,
    ISSUE_COMMANDS,
    ISSUES,
    ISSUES_CHANGELOG,
    ErrorGrouped,
    IssueCommand,
    IssueRow,
    IssueTableEntry,
    issue_key,
)
from pulseline.schemas import Event
from pulseline.settings import ProcessorSettings
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.incident_signals import signal_of
from stream_processors.logic import issues as lifecycle
from stream_processors.logic.fingerprint import group
from stream_processors.tables import changelogged_table

COMMANDS = {
    "resolve": lifecycle.resolve,
    "ignore": lifecycle.ignore,
    "unresolve": lifecycle.unresolve,
}


def issue_row(issue: lifecycle.Issue) -> IssueRow:
    return IssueRow(
        project_id=issue.project_id,
        fingerprint=issue.fingerprint,
        title=issue.title,
        culprit=issue.culprit,
        level=issue.level,
        status=issue.status,
        first_seen=issue.first_seen,
        last_seen=issue.last_seen,
        count=issue.count,
        users=issue.users.count(),
        first_release=issue.first_release,
        last_release=issue.last_release,
        rule=issue.rule,
        version=issue.version,
    )


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix

    def topic(*names: str) -> Any:
        return app.topic(*names, key_serializer="raw", value_serializer="raw")

    commands_name = ISSUE_COMMANDS.physical(prefix)
    inputs = topic(ERRORS_BY_FINGERPRINT.physical(prefix), commands_name)
    rows, links = topic(ISSUES.physical(prefix)), topic(ERROR_GROUPS.physical(prefix))
    signals = topic(INCIDENT_SIGNALS.physical(prefix))
    table = changelogged_table(app, settings, "issues", ISSUES_CHANGELOG, None)

    async def publish(
        issue: lifecycle.Issue, transitions: list[lifecycle.Transition], at: datetime
    ) -> None:
        key = issue_key(issue.project_id, issue.fingerprint)
        table[key.decode()] = IssueTableEntry(state=issue.to_dict()).model_dump(mode="json")
        await rows.send(key=key, value=issue_row(issue).model_dump_json().encode())
        for transition in transitions:
            if transition.request is not None:
                wish = signal_of(transition.request, at, issue.project_id)
                await signals.send(
                    key=wish.dedup_key.encode(), value=wish.model_dump_json().encode()
                )

    def stored(key: str) -> lifecycle.Issue | None:
        entry = table.get(key)
        if entry is None:
            return None
        return lifecycle.Issue.from_dict(IssueTableEntry.model_validate(entry).state)

    async def on_error(value: bytes) -> None:
        doc = Event.model_validate_json(value)
        grouping = group(doc.attributes)
        facts = lifecycle.EventFacts.from_event(doc, grouping)
        now = datetime.now(UTC)
        key = issue_key(doc.project_id, grouping.hash)
        issue, transitions = lifecycle.step(stored(key.decode()), facts, now)
        if not transitions:
            return
        link = ErrorGrouped(
            event_id=str(doc.event_id),
            project_id=doc.project_id,
            fingerprint=grouping.hash,
            timestamp=doc.timestamp,
            rule=grouping.rule,
        )
        await links.send(key=key, value=link.model_dump_json().encode())
        await publish(issue, transitions, now)

    async def on_command(value: bytes) -> None:
        command = IssueCommand.model_validate_json(value)
        state = stored(issue_key(command.project_id, command.fingerprint).decode())
        if state is None:
            raise LookupError(f"no issue {command.fingerprint} in project {command.project_id}")
        issue, transitions = COMMANDS[command.action](state, command.at)
        if transitions:
            await publish(issue, transitions, command.at)

    @app.agent(inputs, name="issues")
    async def fold(stream: Any) -> None:
        in_order = InOrder(app, "issues")
        async for event in in_order.events(stream):
            try:
                if event.message.topic == commands_name:
                    await on_command(event.value)
                else:
                    await on_error(event.value)
            except Exception as exc:
                await dead.send(event, "issues", f"{type(exc).__name__}: {exc}")
