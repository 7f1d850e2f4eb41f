"""Web vitals as the performance screen shows them: rated, pivoted per page. Pure.

Ratings use the web-vitals library's thresholds at p75: a value up to the first threshold
is good, above the second is poor, in between needs improvement. The builder gives p75
per page only, so the headline per vital is the sample-weighted mean of those p75s: exact
with one page, an approximation with several (the screen marks it "≈").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORDER = ("LCP", "INP", "CLS", "FCP", "TTFB")
THRESHOLDS = {
    "LCP": (2500.0, 4000.0),
    "INP": (200.0, 500.0),
    "CLS": (0.1, 0.25),
    "FCP": (1800.0, 3000.0),
    "TTFB": (800.0, 1800.0),
}
NAMES = {
    "LCP": "Largest Contentful Paint",
    "INP": "Interaction to Next Paint",
    "CLS": "Cumulative Layout Shift",
    "FCP": "First Contentful Paint",
    "TTFB": "Time to First Byte",
}


@dataclass(frozen=True)
class Rating:
    key: str  # CSS class suffix: good, needs-improvement, poor
    words: str
    icon: str


GOOD = Rating("good", "Good", "✔")
NEEDS_IMPROVEMENT = Rating("needs-improvement", "Needs improvement", "!")
POOR = Rating("poor", "Poor", "✖")


def rate(vital: str, value: float | None) -> Rating | None:
    """How a p75 value of ``vital`` rates; None for an unknown vital or no value."""
    limits = THRESHOLDS.get(vital.upper())
    if limits is None or value is None:
        return None
    good, poor = limits
    if value > poor:
        return POOR
    return NEEDS_IMPROVEMENT if value > good else GOOD


def shown(vital: str, value: float | None) -> str:
    """``"2,300 ms"``; CLS has no unit: ``"0.12"``."""
    if value is None:
        return "—"
    if vital.upper() == "CLS":
        return f"{value:.2f}"
    return f"{value:,.0f} ms"


@dataclass
class PageVitals:
    page: str
    samples: int = 0
    p75: dict[str, float] = field(default_factory=dict)


def pages(rows: list[dict[str, Any]]) -> list[PageVitals]:
    """``web_vitals`` rows (page, vital, p75, samples) as one row per page, busiest first."""
    found: dict[str, PageVitals] = {}
    for r in rows:
        vital = str(r["vital"]).upper()
        if vital not in THRESHOLDS:
            continue
        entry = found.setdefault(r["page"], PageVitals(r["page"]))
        entry.samples += int(r["samples"])
        entry.p75[vital] = float(r["p75"])
    return sorted(found.values(), key=lambda p: (-p.samples, p.page))


@dataclass(frozen=True)
class Headline:
    vital: str
    value: float | None
    samples: int
    exact: bool


def headlines(rows: list[dict[str, Any]]) -> list[Headline]:
    """Per vital in ``ORDER``: the sample-weighted mean of the pages' p75."""
    out = []
    for vital in ORDER:
        mine = [r for r in rows if str(r["vital"]).upper() == vital]
        samples = sum(int(r["samples"]) for r in mine)
        value = (
            sum(float(r["p75"]) * int(r["samples"]) for r in mine) / samples if samples else None
        )
        out.append(Headline(vital, value, samples, len(mine) <= 1))
    return out
