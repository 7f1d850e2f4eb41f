"""Sub-commands of the ``pulseline`` CLI; each module exposes ``register(subparsers)``."""

from __future__ import annotations

import argparse
from typing import Protocol

from pulseline.commands import admin, kafka, services
from pulseline.commands.types import SubParsers


class Command(Protocol):
    def register(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


COMMANDS: tuple[Command, ...] = (kafka, admin, services)
