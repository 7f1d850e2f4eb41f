"""The client: capture calls build an event and enqueue it; one background thread sends.

Capturing never blocks on the network and never raises: the event is encoded on the
caller's thread (so later changes to the caller's dicts do not leak in) and put on a
bounded queue that drops its oldest entry when full. The sender thread, started on the
first capture, posts batches and retries what may work later (``retry.py``); a batch
keeps its bytes, and so its event ids, across retries.

Processes: after ``os.fork()`` the child starts from an empty queue, with new locks (a
parent thread may have held the old ones at the fork), and on its first capture makes its
own thread and HTTP client. The parent's HTTP client is kept, unused and unclosed, so the
child never writes to (or shuts) the parent's connection. At interpreter exit every live
client flushes for at most its ``shutdown_timeout``.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import random
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ParamSpec

from pulseline.sdk import payloads
from pulseline.sdk.buffer import DropOldest, Entry
from pulseline.sdk.monitor import Monitor
from pulseline.sdk.options import Options, Target, parse_target
from pulseline.sdk.retry import Backoff, Outcome, classify
from pulseline.sdk.transport import HttpTransport, Reply, Transport

log = logging.getLogger("pulseline.sdk")

P = ParamSpec("P")


@dataclass(frozen=True)
class Stats:
    """Counts of events since the client started (in a forked child: since the fork).

    Every captured event ends as exactly one of sent, rejected (the gateway refused it),
    dropped (pushed out of the full queue) or failed (retries or time ran out); until
    then it is queued or in flight."""

    captured: int = 0
    queued: int = 0
    sent: int = 0
    rejected: int = 0
    dropped: int = 0
    failed: int = 0
    retries: int = 0


_FAILED_CAPTURES: set[tuple[str, type[BaseException]]] = set()


def _never_raises(method: Callable[P, str | None]) -> Callable[P, str | None]:
    """A capture call that goes wrong loses its event, logged once per call and error type."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> str | None:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            seen = (method.__name__, type(exc))
            if seen not in _FAILED_CAPTURES:
                _FAILED_CAPTURES.add(seen)
                log.warning("pulseline: %s failed; the event is lost", seen[0], exc_info=True)
            return None

    return guarded


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode(event: dict[str, Any]) -> bytes:
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return text.encode("utf-8", errors="replace")


class Client:
    """Sends to one gateway with one ingest key; ``dsn_or_url`` ``None`` makes it a no-op.

    Options are the fields of ``pulseline.sdk.options.Options``, as keywords.
    """

    def __init__(self, dsn_or_url: str | None, key: str | None = None, **options: Any) -> None:
        self.options = Options(**options)
        self._target: Target | None = parse_target(dsn_or_url, key) if dsn_or_url else None
        self._in_app = payloads.InApp(
            include=self.options.in_app_include,
            exclude=(*payloads.InApp().exclude, *self.options.in_app_exclude),
        )
        self._backoff = Backoff(
            self.options.backoff_base, self.options.backoff_cap, self.options.max_retry_after
        )
        self._rand = random.Random()
        self._closed = self._target is None
        self._inherited: list[Transport] = []
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """The per-process state: everything a forked child must not share with its parent."""
        # Reentrant: a signal handler that captures may interrupt a capture on its thread.
        self._cond = threading.Condition(threading.RLock())
        self._buffer = DropOldest(self.options.max_queue_events, self.options.max_queue_bytes)
        self._inflight_first: int | None = None
        self._inflight_n = 0
        self._flushers = 0
        self._stopping = self._closed
        self._deadline: float | None = None
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._transport: Transport | None = None
        self._counts = {"captured": 0, "sent": 0, "rejected": 0, "failed": 0, "retries": 0}
        self._logged: set[str] = set()

    def _after_fork_in_child(self) -> None:
        if self._transport is not None:
            self._inherited.append(self._transport)
        self._reset()
        self._rand.seed()

    @property
    def enabled(self) -> bool:
        return not self._closed

    @property
    def stats(self) -> Stats:
        with self._cond:
            return Stats(
                queued=len(self._buffer) + self._inflight_n,
                dropped=self._buffer.dropped,
                **self._counts,
            )

    # ---- capture: build, encode, enqueue ----

    def _enqueue(
        self, kind: str, attributes: dict[str, Any], distinct_id: str | None
    ) -> str | None:
        event = payloads.envelope(
            kind,
            attributes,
            distinct_id=distinct_id if distinct_id is not None else self.options.distinct_id,
            release=self.options.release,
            environment=self.options.environment,
        )
        data = encode(event)
        with self._cond:
            if self._closed:
                return None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pulseline-sdk", daemon=True)
                self._thread.start()
            self._buffer.put(data, time.monotonic())
            self._counts["captured"] += 1
            waiting = len(self._buffer)
            if waiting == 1 or waiting >= self.options.batch_size:
                self._cond.notify_all()
        return str(event["event_id"])

    @_never_raises
    def capture_exception(
        self,
        exc: BaseException | None = None,
        *,
        level: str = "error",
        handled: bool = True,
        tags: Mapping[str, Any] | None = None,
        fingerprint: Sequence[str] | None = None,
        user: Mapping[str, Any] | None = None,
        contexts: Mapping[str, Any] | None = None,
        distinct_id: str | None = None,
    ) -> str | None:
        """``exc``, or the exception being handled; returns the event id (``None``: nothing
        to capture, or the client is disabled)."""
        if self._closed:
            return None
        exc = exc if exc is not None else sys.exc_info()[1]
        if exc is None:
            return None
        attributes = payloads.error_attributes(
            exception=payloads.exception_chain(exc, self._in_app, handled=handled),
            level=level,
            tags=tags,
            fingerprint=fingerprint,
            user=user,
            contexts=contexts,
        )
        return self._enqueue("error", attributes, distinct_id)

    @_never_raises
    def capture_message(
        self,
        message: str,
        level: str = "info",
        *,
        tags: Mapping[str, Any] | None = None,
        fingerprint: Sequence[str] | None = None,
        user: Mapping[str, Any] | None = None,
        contexts: Mapping[str, Any] | None = None,
        logger: str | None = None,
        distinct_id: str | None = None,
    ) -> str | None:
        if self._closed:
            return None
        attributes = payloads.error_attributes(
            message=message,
            level=level,
            tags=tags,
            fingerprint=fingerprint,
            user=user,
            contexts=contexts,
            logger=logger,
        )
        return self._enqueue("error", attributes, distinct_id)

    @_never_raises
    def track(
        self,
        event: str,
        properties: Mapping[str, Any] | None = None,
        *,
        distinct_id: str | None = None,
    ) -> str | None:
        if self._closed:
            return None
        return self._enqueue("event", payloads.event_attributes(event, properties), distinct_id)

    @_never_raises
    def pageview(
        self,
        url: str,
        *,
        path: str | None = None,
        referrer: str | None = None,
        title: str | None = None,
        distinct_id: str | None = None,
    ) -> str | None:
        if self._closed:
            return None
        attributes = payloads.pageview_attributes(url, path=path, referrer=referrer, title=title)
        return self._enqueue("pageview", attributes, distinct_id)

    @_never_raises
    def metric(
        self,
        name: str,
        value: float,
        *,
        type: str = "gauge",
        unit: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str | None:
        if self._closed:
            return None
        attributes = payloads.metric_attributes(name, value, type=type, unit=unit, tags=tags)
        return self._enqueue("metric", attributes, None)

    @_never_raises
    def check_in(
        self,
        monitor: str,
        status: str = "ok",
        *,
        run_id: str | None = None,
        duration_ms: float | None = None,
        exit_code: int | None = None,
        output: str | None = None,
        error_type: str | None = None,
    ) -> str | None:
        if self._closed:
            return None
        attributes = payloads.check_in_attributes(
            monitor,
            status,
            run_id=run_id,
            duration_ms=duration_ms,
            exit_code=exit_code,
            output=output,
            error_type=error_type,
        )
        return self._enqueue("check_in", attributes, None)

    def monitor(self, slug: str) -> Monitor:
        return Monitor(slug, lambda: self)

    # ---- flush and close ----

    def _done_through(self, seq: int) -> bool:
        """Whether every entry numbered ``seq`` or less is settled (caller holds the lock).
        Entries leave the queue in order, and the one batch in flight is older than all of
        the queue, so the oldest unsettled entry is the lowest number of the two."""
        if self._inflight_first is not None:
            return self._inflight_first > seq
        first = self._buffer.first_seq()
        return first is None or first > seq

    def flush(self, timeout: float | None = None) -> bool:
        """Send what was captured before this call; ``True`` when it is all settled (sent,
        rejected, dropped or failed) within ``timeout`` (default ``shutdown_timeout``)."""
        wait = self.options.shutdown_timeout if timeout is None else timeout
        try:
            with self._cond:
                target = self._buffer.last_seq
                self._flushers += 1
                self._cond.notify_all()
                try:
                    return self._cond.wait_for(lambda: self._done_through(target), wait)
                finally:
                    self._flushers -= 1
        except Exception:
            log.warning("pulseline: flush failed", exc_info=True)
            return False

    def close(self, timeout: float | None = None) -> bool:
        """Flush for at most ``timeout``, stop the thread; later captures are ignored.
        Events still unsent when the time is up are counted as failed."""
        wait = self.options.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + max(0.0, wait)
        try:
            with self._cond:
                if self._stopping and self._deadline is not None:
                    deadline = min(deadline, self._deadline)
                self._closed = True
                self._stopping = True
                self._deadline = deadline
                thread = self._thread
                self._cond.notify_all()
                done = self._cond.wait_for(
                    lambda: self._done_through(self._buffer.last_seq),
                    max(0.0, deadline - time.monotonic()),
                )
            self._abort.set()
            with self._cond:
                self._cond.notify_all()
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
            return done
        except Exception:
            log.warning("pulseline: close failed", exc_info=True)
            return False

    # ---- the sender thread ----

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    batch = self._next_batch()
                    if batch is None:
                        return
                    self._inflight_first = batch[0].seq
                    self._inflight_n = len(batch)
                try:
                    self._deliver(batch)
                except Exception:
                    log.exception("pulseline: sending a batch failed; %d events lost", len(batch))
                    self._count("failed", len(batch))
                finally:
                    with self._cond:
                        self._inflight_first = None
                        self._inflight_n = 0
                        self._cond.notify_all()
        finally:
            transport, self._transport = self._transport, None
            if transport is not None:
                transport.close()

    def _next_batch(self) -> list[Entry] | None:
        """Wait (lock held) until a batch is due: full, old enough, or asked for."""
        options = self.options
        while True:
            if self._abort.is_set():
                lost = self._buffer.clear()
                self._counts["failed"] += lost
                return None
            waiting = len(self._buffer)
            if waiting == 0:
                if self._stopping:
                    return None
                self._cond.wait()
                continue
            due = (
                self._flushers > 0
                or self._stopping
                or waiting >= options.batch_size
                or self._buffer.size_bytes >= options.max_request_bytes
            )
            if not due:
                oldest = self._buffer.oldest_at() or 0.0
                remaining = oldest + options.flush_interval - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
            return self._buffer.take(options.batch_size, options.max_request_bytes)

    def _count(self, name: str, n: int = 1) -> None:
        with self._cond:
            self._counts[name] += n

    def _log_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args)

    def _deliver(self, batch: list[Entry]) -> None:
        body = b"[" + b",".join(entry.data for entry in batch) + b"]"
        if self._transport is None:
            assert self._target is not None
            self._transport = HttpTransport(
                self._target, self.options.timeout, self.options.compress_over_bytes
            )
        attempt = 0
        while True:
            reply = self._transport.post(body)
            outcome = classify(reply.status)
            if outcome is Outcome.SENT:
                self._on_sent(len(batch), reply)
                return
            if outcome is Outcome.REJECTED:
                self._on_rejected(len(batch), reply)
                return
            if attempt >= self.options.max_retries:
                self._give_up(len(batch), reply, f"after {attempt + 1} attempts")
                return
            delay = self._backoff.delay(
                reply.status, reply.retry_after, attempt, self._rand.random, time.time()
            )
            deadline = self._deadline
            if deadline is not None and time.monotonic() + delay > deadline:
                self._give_up(len(batch), reply, "at shutdown")
                return
            if self._abort.wait(delay):
                self._give_up(len(batch), reply, "at shutdown")
                return
            attempt += 1
            self._count("retries")

    def _on_sent(self, n: int, reply: Reply) -> None:
        answer = _json_object(reply.body)
        accepted = answer.get("accepted")
        rejected = answer.get("rejected")
        if isinstance(accepted, int) and isinstance(rejected, list):
            if rejected:
                first = rejected[0] if isinstance(rejected[0], dict) else {}
                self._log_once(
                    "partial",
                    "pulseline: the gateway refused %d of %d events (first: %s)",
                    len(rejected),
                    n,
                    first.get("reason"),
                )
            with self._cond:
                self._counts["sent"] += accepted
                self._counts["rejected"] += n - accepted
        else:
            self._count("sent", n)

    def _on_rejected(self, n: int, reply: Reply) -> None:
        answer = _json_object(reply.body)
        reason = answer.get("detail") or answer.get("error") or answer.get("rejected")
        self._log_once(
            f"rejected:{reply.status}",
            "pulseline: the gateway refused a batch of %d events with %s (%s); not retried",
            n,
            reply.status,
            reason,
        )
        self._count("rejected", n)

    def _give_up(self, n: int, reply: Reply, when: str) -> None:
        why = reply.error or f"HTTP {reply.status}"
        self._log_once(f"failed:{when}", "pulseline: %d events lost %s (%s)", n, when, why)
        self._count("failed", n)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


_LIVE: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_LIVE):
        client._after_fork_in_child()


def _close_all_at_exit() -> None:
    for client in list(_LIVE):
        client.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
