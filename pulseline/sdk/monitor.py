"""``monitor(slug)``: a context manager and decorator that checks a job in at start and end.

Each run gets a fresh ``run_id`` so the processors pair its start with its end. The end is
``ok``, or ``fail`` with the exception's type (``error_type``) and ``Type: message`` as
the output; the exception itself always propagates. ``SystemExit(0)`` counts as ``ok``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")


class CheckIns(Protocol):
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
    ) -> str | None: ...


@dataclass(frozen=True)
class Run:
    run_id: str
    started: float


@dataclass(frozen=True)
class Ending:
    status: str
    error_type: str | None = None
    output: str | None = None
    exit_code: int | None = None


def ending(exc: BaseException | None) -> Ending:
    if exc is None:
        return Ending("ok")
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return Ending("ok", exit_code=0)
    kind = type(exc).__qualname__
    try:
        text = str(exc)
    except Exception:
        text = ""
    code = exc.code if isinstance(exc, SystemExit) else None
    exit_code = code if isinstance(code, int) and 0 < code < 256 else None
    return Ending("fail", kind, f"{kind}: {text}" if text else kind, exit_code)


class Monitor:
    """Reports to whatever client ``resolve`` returns when a run starts (none: not at all),
    so a module-level ``@monitor`` works even when applied before ``init``."""

    def __init__(self, slug: str, resolve: Callable[[], CheckIns | None]) -> None:
        self.slug = slug
        self._resolve = resolve
        self._local = threading.local()

    def start(self) -> Run:
        run = Run(str(uuid.uuid4()), time.monotonic())
        client = self._resolve()
        if client is not None:
            client.check_in(self.slug, "start", run_id=run.run_id)
        return run

    def finish(self, run: Run, exc: BaseException | None) -> None:
        end = ending(exc)
        client = self._resolve()
        if client is not None:
            client.check_in(
                self.slug,
                end.status,
                run_id=run.run_id,
                duration_ms=(time.monotonic() - run.started) * 1000,
                exit_code=end.exit_code,
                output=end.output,
                error_type=end.error_type,
            )

    def _stack(self) -> list[Run]:
        stack: list[Run] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def __enter__(self) -> Run:
        run = self.start()
        self._stack().append(run)
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = self._stack()
        if stack:
            self.finish(stack.pop(), exc)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                run = self.start()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    self.finish(run, exc)
                    raise
                self.finish(run, None)
                return result

            return cast(Callable[P, R], run_async)

        @functools.wraps(func)
        def run_sync(*args: P.args, **kwargs: P.kwargs) -> R:
            run = self.start()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self.finish(run, exc)
                raise
            self.finish(run, None)
            return result

        return run_sync
