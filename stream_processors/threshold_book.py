"""Which thresholds judge a series: the defaults, then its project's overrides, then, for a
cron monitor's duration and output-size series, the monitor's own.

Overrides come from the worker's control-plane view and are checked when they are written
(``pulseline.control.entities``); the book resolves each series once and forgets
everything when the view moves on, so a change applies from the next batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pulseline.control.entities import EntityType, Monitor
from pulseline.control.view import ControlView
from stream_processors.logic.series import DURATION, OUTPUT_SIZE, SeriesKey
from stream_processors.logic.thresholds import Thresholds

log = logging.getLogger("pulseline.processors")
MONITOR_FAMILIES = frozenset({DURATION, OUTPUT_SIZE})


class ThresholdBook:
    def __init__(self, view: Callable[[], ControlView], base: Thresholds | None = None) -> None:
        self.view = view
        self.base = base or Thresholds()
        self.cache: dict[SeriesKey, Thresholds] = {}
        self.offset = -2

    def for_series(self, key: SeriesKey) -> Thresholds:
        view = self.view()
        if view.offset != self.offset:
            self.cache.clear()
            self.offset = view.offset
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = self._resolve(view, key)
        return found

    def _resolve(self, view: ControlView, key: SeriesKey) -> Thresholds:
        layers = []
        project = view.project(key.project_id)
        if project is not None:
            layers.append(project.thresholds)
        if key.family in MONITOR_FAMILIES:
            monitor = view.by_slug(EntityType.MONITOR, key.name, key.project_id)
            if isinstance(monitor, Monitor):
                layers.append(monitor.thresholds)
        thresholds = self.base
        for overrides in layers:
            try:
                thresholds = thresholds.with_overrides(overrides)
            except ValueError as exc:  # written before validation existed: keep the rest
                log.warning("ignoring thresholds of %s: %s", key.encode(), exc)
        return thresholds
