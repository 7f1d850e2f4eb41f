"""Sessions per (project, visitor) as a pure fold. No Faust.

``step(state, hit, now)`` folds one event into the visitor's current session and returns
the rows to write; ``sweep(state, now)`` closes a session whose time is up. A session
ends when the next event comes 30 minutes or more after its last one (exactly 30
minutes starts a new session) or 24 hours or more after its start. A client session id
is honoured: a different id starts a new session at once, and a session split by the
limits above keeps the client id with a ``~<n>`` suffix. Without one, the id is derived
from (project, visitor, start), so a replay after a crash yields the same id.

Each change emits a ``SessionRow`` whose ``version`` grows by one, so a ClickHouse
``ReplacingMergeTree(version)`` keeps the newest; open sessions are written too,
with ``closed`` false. Bounce follows Plausible: exactly one pageview and no
interaction, where an interaction is a custom ``event`` (clicks included); errors,
web vitals and transactions are not interactions.

Out-of-order events count in the open session and may move its start (and entry page)
back, but ``last_seen`` never goes backwards; once closed, a late event opens a new
session. Redelivery: the state remembers the last ``RECENT_IDS`` (64) event ids of the
visitor; a repeat among them changes nothing, an older repeat is counted again.
Browser, OS and device type come from ``ua-parser``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ua_parser

IDLE = timedelta(minutes=30)
MAX_LENGTH = timedelta(hours=24)
RECENT_IDS = 64
_DESKTOP_OS = {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD"}


@dataclass(frozen=True)
class Agent:
    browser: str
    os: str
    device_type: str


def _is_tablet(family: str, brand: str, os: str, user_agent: str) -> bool:
    # Android phones say "Mobile" in the agent; Android tablets do not (Google's convention).
    android_tablet = os == "Android" and "Mobile" not in user_agent
    return family in {"iPad", "Kindle"} or "Tablet" in brand or android_tablet


@lru_cache(maxsize=4096)
def parse_agent(user_agent: str) -> Agent:
    """Browser and OS family and a device type: desktop, mobile, tablet, bot or other."""
    got = ua_parser.parse(user_agent).with_defaults()
    device, os = got.device, got.os.family
    if device.family == "Spider":
        kind = "bot"
    elif _is_tablet(device.family, device.brand or "", os, user_agent):
        kind = "tablet"
    elif os in {"iOS", "Android"} or device.family == "iPhone":
        kind = "mobile"
    elif os in _DESKTOP_OS:
        kind = "desktop"
    else:
        kind = "other"
    return Agent(got.user_agent.family, os, kind)


@dataclass(frozen=True)
class Hit:
    """What sessionizing needs from one event."""

    event_id: str
    project_id: int
    visitor: str
    kind: str
    timestamp: datetime
    client_session_id: str | None = None
    url: str | None = None
    path: str | None = None
    referrer: str | None = None
    utm_source: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> Hit:
        """Facts from an ``Event`` v1. The visitor is ``distinct_id``, else ``session_id``."""
        attrs: dict[str, Any] = event.attributes
        visitor = event.distinct_id or event.session_id
        if not visitor:
            raise ValueError("sessions need a distinct_id or a session_id")
        url = attrs.get("url")
        return cls(
            event_id=str(event.event_id),
            project_id=int(event.project_id),
            visitor=str(visitor),
            kind=str(event.kind),
            timestamp=event.timestamp,
            client_session_id=event.session_id,
            url=None if url is None else str(url),
            path=attrs.get("path"),
            referrer=attrs.get("referrer"),
            utm_source=attrs.get("utm_source"),
            user_agent=event.user_agent,
        )

    @property
    def page(self) -> str | None:
        if self.path:
            return self.path
        return (urlsplit(self.url).path or "/") if self.url else None

    @property
    def source(self) -> str | None:
        if self.utm_source or not self.url:
            return self.utm_source
        return parse_qs(urlsplit(self.url).query).get("utm_source", [None])[0]


@dataclass(frozen=True)
class SessionRow:
    """One version of a session for the ``sessions`` table."""

    session_id: str
    project_id: int
    distinct_id: str
    started_at: datetime
    last_seen: datetime
    entry_page: str | None
    exit_page: str | None
    pageviews: int
    events: int
    duration_s: float
    bounce: bool
    referrer: str | None
    utm_source: str | None
    browser: str | None
    os: str | None
    device_type: str | None
    version: int
    closed: bool

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["started_at"] = self.started_at.isoformat()
        row["last_seen"] = self.last_seen.isoformat()
        return row


@dataclass
class Session:
    session_id: str
    project_id: int
    distinct_id: str
    started_at: datetime
    last_seen: datetime
    client_session_id: str | None = None
    part: int = 0
    entry_page: str | None = None
    exit_page: str | None = None
    last_pageview_at: datetime | None = None
    pageviews: int = 0
    events: int = 0
    interactions: int = 0
    referrer: str | None = None
    utm_source: str | None = None
    browser: str | None = None
    os: str | None = None
    device_type: str | None = None
    version: int = 0
    closed: bool = False
    recent_ids: list[str] = field(default_factory=list)

    def row(self) -> SessionRow:
        return SessionRow(
            session_id=self.session_id,
            project_id=self.project_id,
            distinct_id=self.distinct_id,
            started_at=self.started_at,
            last_seen=self.last_seen,
            entry_page=self.entry_page,
            exit_page=self.exit_page,
            pageviews=self.pageviews,
            events=self.events,
            duration_s=(self.last_seen - self.started_at).total_seconds(),
            bounce=self.pageviews == 1 and self.interactions == 0,
            referrer=self.referrer,
            utm_source=self.utm_source,
            browser=self.browser,
            os=self.os,
            device_type=self.device_type,
            version=self.version,
            closed=self.closed,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form ``from_dict`` reads back (the changelog value)."""
        data = asdict(self)
        for key in ("started_at", "last_seen", "last_pageview_at"):
            data[key] = None if data[key] is None else data[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        values = dict(data)
        for key in ("started_at", "last_seen", "last_pageview_at"):
            if values.get(key) is not None:
                values[key] = datetime.fromisoformat(values[key])
        return cls(**values)


def _expired(state: Session, at: datetime) -> bool:
    return at - state.last_seen >= IDLE or at - state.started_at >= MAX_LENGTH


def _session_id(hit: Hit, part: int) -> str:
    if hit.client_session_id:
        return hit.client_session_id if part == 0 else f"{hit.client_session_id}~{part}"
    seed = f"{hit.project_id}|{hit.visitor}|{hit.timestamp.isoformat()}"
    return hashlib.blake2b(seed.encode(), digest_size=16).hexdigest()


def _open(hit: Hit, previous: Session | None) -> Session:
    same_client = previous is not None and previous.client_session_id == hit.client_session_id
    part = previous.part + 1 if previous is not None and same_client else 0
    agent = parse_agent(hit.user_agent) if hit.user_agent else None
    return Session(
        session_id=_session_id(hit, part),
        project_id=hit.project_id,
        distinct_id=hit.visitor,
        started_at=hit.timestamp,
        last_seen=hit.timestamp,
        client_session_id=hit.client_session_id,
        part=part,
        referrer=hit.referrer,
        utm_source=hit.source,
        browser=agent.browser if agent else None,
        os=agent.os if agent else None,
        device_type=agent.device_type if agent else None,
        recent_ids=list(previous.recent_ids) if previous else [],
    )


def _add(session: Session, hit: Hit) -> None:
    session.events += 1
    session.interactions += hit.kind == "event"
    if hit.kind == "pageview" and hit.page is not None:
        session.pageviews += 1
        if session.entry_page is None or hit.timestamp < session.started_at:
            session.entry_page = hit.page
            session.referrer, session.utm_source = hit.referrer, hit.source
        if session.last_pageview_at is None or hit.timestamp >= session.last_pageview_at:
            session.exit_page, session.last_pageview_at = hit.page, hit.timestamp
    session.started_at = min(session.started_at, hit.timestamp)
    session.last_seen = max(session.last_seen, hit.timestamp)
    session.recent_ids = [*session.recent_ids, hit.event_id][-RECENT_IDS:]
    session.version += 1


def _close(state: Session) -> Session:
    return replace(state, closed=True, version=state.version + 1)


def step(state: Session | None, hit: Hit, now: datetime) -> tuple[Session, list[SessionRow]]:
    """Fold one event in; returns the new state and the rows to write (none on a repeat).

    ``now`` is unused today: boundaries follow event time so replays are deterministic.
    """
    if state is not None and hit.event_id in state.recent_ids:
        return state, []
    rows: list[SessionRow] = []
    previous = state
    if state is not None and not state.closed:
        new_client = hit.client_session_id not in (None, state.client_session_id)
        if new_client or (hit.timestamp > state.last_seen and _expired(state, hit.timestamp)):
            previous = _close(state)
            rows.append(previous.row())
    if previous is None or previous.closed:
        session = _open(hit, previous)
    else:
        session = replace(previous, recent_ids=list(previous.recent_ids))
    _add(session, hit)
    rows.append(session.row())
    return session, rows


def closes_at(state: Session) -> datetime:
    """When ``sweep`` will close the open ``state`` if no event comes first."""
    return min(state.last_seen + IDLE, state.started_at + MAX_LENGTH)


def sweep(state: Session, now: datetime) -> tuple[Session, list[SessionRow]]:
    """Close the session when it has idled 30 minutes or lived 24 hours by ``now``."""
    if state.closed or not _expired(state, now):
        return state, []
    closed = _close(state)
    return closed, [closed.row()]
