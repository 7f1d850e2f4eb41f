"""``python -m stream_processors``: run one Faust worker with settings from PULSELINE_*."""

from __future__ import annotations

import faust

from pulseline.logs import json_logging_config
from pulseline.settings import ProcessorSettings
from stream_processors.app import build_app

FAUST_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error"}


def worker(settings: ProcessorSettings) -> faust.Worker:
    """One worker that logs JSON lines at the configured level, like every service."""
    built = build_app(settings).Worker(
        loglevel=FAUST_LEVELS[settings.log_level],
        quiet=True,
        logging_config=json_logging_config("processors", settings.log_level),
    )
    # Faust's start-up spinner lowers the root logger to DEBUG so that it can spin on every
    # record: each aiokafka and Faust debug call would then build a record per message.
    built.spinner = None
    return built


def main() -> None:
    worker(ProcessorSettings.from_env()).execute_from_commandline()


if __name__ == "__main__":
    main()
