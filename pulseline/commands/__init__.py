"""Sub-commands of the ``pulseline`` CLI; each module exposes ``register(subparsers)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pulseline.commands import admin, collect, control, crontab, kafka, services, status, wrap

if TYPE_CHECKING:
    from pulseline.commands.types import SubParsers


class Command(Protocol):
    def register(self, sub: SubParsers) -> None: ...


COMMANDS: tuple[Command, ...] = (kafka, admin, services, status, control, collect, wrap, crontab)
