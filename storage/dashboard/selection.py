"""What the analytics screen is asked to show, as it lives in the URL. Pure.

Everything a viewer chooses (range, interval, zone, funnel steps and filters) is a query
parameter, so a link reproduces the screen exactly. A filter is ``dimension=value``; the
value may be empty (no referrer, no UTM source). Two kinds of filter exist because the
data has two grains:

- ``page`` narrows page views (a session records only its entry and exit page);
- the session filters narrow visits by what a session row carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from storage import analytics_queries as aq

PAGE = "page"
# URL name -> column of the `sessions` table.
SESSION_COLUMNS = {
    "referrer": "referrer",
    "utm_source": "utm_source",
    "browser": "browser",
    "os": "os",
    "device": "device_type",
    "entry_page": "entry_page",
    "exit_page": "exit_page",
}
LABELS = {
    "page": "Page",
    "referrer": "Referrer",
    "utm_source": "UTM source",
    "browser": "Browser",
    "os": "OS",
    "device": "Device",
    "entry_page": "Entry page",
    "exit_page": "Exit page",
}
MAX_VALUE = 500


@dataclass(frozen=True)
class Selection:
    preset: str | None = None
    interval: str | None = None
    tz: str | None = None
    funnel: str | None = None
    filters: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Selection:
        """From request query parameters; unknown names and over-long values are dropped."""

        def text(name: str) -> str | None:
            value = query.get(name)
            return value if value is not None and len(value) <= MAX_VALUE else None

        filters = tuple((k, v) for k in LABELS if (v := text(k)) is not None)
        return cls(text("range"), text("interval"), text("tz"), text("funnel"), filters)

    @property
    def page(self) -> str | None:
        return next((v for k, v in self.filters if k == PAGE), None)

    @property
    def session_filters(self) -> dict[str, str]:
        """``{sessions column: value}`` of the session filters."""
        return {SESSION_COLUMNS[k]: v for k, v in self.filters if k in SESSION_COLUMNS}

    @property
    def funnel_steps(self) -> list[str]:
        """``funnel=/a,/b,signup`` as steps; [] unless it names 2 to 10 non-empty steps."""
        steps = [s.strip() for s in (self.funnel or "").split(",") if s.strip()]
        return steps if 2 <= len(steps) <= aq.MAX_FUNNEL_STEPS else []

    def params(self) -> dict[str, str]:
        shown = {"range": self.preset, "interval": self.interval, "tz": self.tz}
        shown["funnel"] = self.funnel
        out = {k: v for k, v in shown.items() if v}
        out.update(self.filters)
        return out

    def query(self) -> str:
        """``"?range=7d&browser=Firefox"``, or ``""`` when nothing is chosen."""
        params = self.params()
        return "?" + urlencode(params) if params else ""

    def with_filter(self, name: str, value: str) -> Selection:
        kept = tuple((k, v) for k, v in self.filters if k != name)
        return replace(self, filters=(*kept, (name, value)))

    def without(self, name: str) -> Selection:
        return replace(self, filters=tuple((k, v) for k, v in self.filters if k != name))

    def with_(self, **changes: str | None) -> Selection:
        """Another range, interval, zone or funnel; ``None`` drops it."""
        return replace(self, **changes)  # type: ignore[arg-type]
