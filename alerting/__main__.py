"""``python -m alerting``: run the alert runner with settings from PULSELINE_*."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from alerting.runner import serve
from pulseline.logs import configure
from pulseline.settings import AlertingSettings


async def _until_signalled(settings: AlertingSettings) -> None:
    task = asyncio.create_task(serve(settings), name="alerting")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main() -> None:
    settings = AlertingSettings.from_env()
    configure("alerting", settings.log_level)
    asyncio.run(_until_signalled(settings))


if __name__ == "__main__":
    main()
