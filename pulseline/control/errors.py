"""Errors of control-plane operations; the admin API and the CLI map them (404/409/422).

ControlError
├── NotFound     an id or slug that does not exist (in this project)
├── Conflict     a slug already taken in its scope
└── Invalid      a value that fails validation; ``problems`` names each field
"""

from __future__ import annotations

from pydantic import ValidationError


class ControlError(Exception):
    pass


class NotFound(ControlError):
    pass


class Conflict(ControlError):
    pass


class Invalid(ControlError):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['problem']}" for p in problems))

    @classmethod
    def from_validation(cls, exc: ValidationError) -> Invalid:
        return cls(
            [
                {
                    "field": ".".join(str(part) for part in err["loc"]) or "(body)",
                    "problem": err["msg"],
                }
                for err in exc.errors()
            ]
        )
