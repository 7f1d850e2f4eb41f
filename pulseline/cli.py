"""The ``pulseline`` command: one sub-command per module under ``pulseline.commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pulseline.commands import COMMANDS, replay
from pulseline.settings import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulseline", description="Pulseline: ingestion pipeline for monitoring and analytics"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (*COMMANDS, replay):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"pulseline: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
