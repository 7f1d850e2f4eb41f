"""Derived sessions records and their topics."""

from __future__ import annotations

from pulseline.topic_spec import TopicSpec

TOPICS: tuple[TopicSpec, ...] = ()
