"""A lean HTTP/1.1 load generator: keep-alive connections, closed loop, raw asyncio streams.

An HTTP client library costs more CPU per request than the gateway spends answering it,
and on a 2-core machine the generator shares the cores with what it measures. Requests
are built by a callable (so each carries fresh event ids) and every outcome is recorded:
the status code, or ``failed`` (connection error) or ``indeterminate`` (timeout).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# (method, path, headers, body, events carried); the body is sent as-is.
Request = tuple[str, str, dict[str, str], bytes, int]
MakeRequest = Callable[[], Request]


@dataclass
class LoadResult:
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    accepted_events: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def encode(host: str, request: Request) -> bytes:
    method, path, headers, body, _ = request
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(
    host: str,
    port: int,
    make_request: MakeRequest,
    *,
    concurrency: int,
    duration_s: float,
    ok_status: int = 202,
    timeout_s: float = 10.0,
    on_progress: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """``concurrency`` connections each send a request, await the answer, and repeat."""
    result = LoadResult()
    authority = f"{host}:{port}"
    deadline = time.monotonic() + duration_s

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < deadline:
                request = make_request()
                started = time.perf_counter()
                try:
                    writer.write(encode(authority, request))
                    status = await asyncio.wait_for(_read_response(reader), timeout_s)
                except TimeoutError:
                    result.statuses["indeterminate"] += 1
                    return
                except (OSError, asyncio.IncompleteReadError):
                    result.statuses["failed"] += 1
                    return
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[str(status)] += 1
                if status == ok_status:
                    result.accepted_events += request[4]
        finally:
            writer.close()

    async def progress() -> None:
        while on_progress is not None:
            await asyncio.sleep(1.0)
            on_progress(result)

    started = time.monotonic()
    ticker = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(connection() for _ in range(concurrency)))
    finally:
        ticker.cancel()
    result.elapsed_s = time.monotonic() - started
    return result
