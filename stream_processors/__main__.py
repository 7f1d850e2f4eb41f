"""``python -m stream_processors``: run one Faust worker with settings from PULSELINE_*."""

from __future__ import annotations

from pulseline.settings import ProcessorSettings
from stream_processors.app import build_app

FAUST_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error"}


def main() -> None:
    settings = ProcessorSettings.from_env()
    worker = build_app(settings).Worker(loglevel=FAUST_LEVELS[settings.log_level], quiet=True)
    # Faust's start-up spinner lowers the root logger to DEBUG so that it can spin on every
    # record: each aiokafka and Faust debug call would then build a record per message.
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
