"""A producer flush that waits until Kafka holds every buffered record.

Faust writes table changelogs with ``send_soon``: into a buffer that a background task
hands to aiokafka. Before it commits offsets, and before it gives partitions up in a
rebalance, Faust flushes that buffer, but its flush returns once a 0.1 s wait for the next
record runs out, and never waits for the record the task is handing over. A commit can
then pass events whose table changes are still in this process:

- killed then, the worker loses them: the next owner restores the older state from the
  changelog and starts after the commit;
- in a rebalance, the next owner can restore the state before the records arrive.

Here every record put in the buffer is tracked until Kafka acknowledges it, and the flush
waits for all those put before it began (later ones belong to events past the offsets
being committed). A record that could not be written fails the flush, so nothing is
committed past it and the worker stops: its events are processed again from the last
commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

FLUSH_TIMEOUT_S = 60.0


class ChangelogNotWritten(RuntimeError):
    """A buffered record was not acknowledged by Kafka."""


class Unsent:
    """Records put in the buffer and not yet acknowledged, and the first that failed."""

    def __init__(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.pending: set[asyncio.Future[Any]] = set()
        self.failure: BaseException | None = None

    def track(self, fut: asyncio.Future[Any]) -> None:
        self.pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self.pending.discard(fut)
        if self.failure is None:
            if fut.cancelled():
                self.failure = ChangelogNotWritten("a buffered record was cancelled")
            elif fut.exception() is not None:
                self.failure = fut.exception()

    async def drain(self) -> None:
        """Wait for the records put so far; raise if one of them, or any before, failed."""
        waiting = set(self.pending)
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=self.timeout_s)
            if late:
                raise ChangelogNotWritten(
                    f"{len(late)} buffered records not acknowledged in {self.timeout_s:.0f} s"
                )
        if self.failure is not None:
            raise ChangelogNotWritten(
                f"a buffered record could not be written: {self.failure!r}"
            ) from self.failure


def track_buffer(producer: Any, unsent: Unsent) -> Any:
    """Route ``producer``'s buffered sends through ``unsent`` and drain it in its flush."""
    buffer = producer.buffer
    put = buffer.put
    flush = producer.flush

    def tracked_put(fut: asyncio.Future[Any]) -> None:
        unsent.track(fut)
        put(fut)

    async def durable_flush() -> None:
        await unsent.drain()
        await flush()

    buffer.put = tracked_put
    producer.flush = durable_flush
    return producer


class App(faust.App):
    """``faust.App`` whose producer flush is durable (see the module's docstring)."""

    def _new_producer(self) -> Any:
        return track_buffer(super()._new_producer(), Unsent())
