import json
from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace

import pytest

from stream_processors.logic.sessions import (
    RECENT_IDS,
    Agent,
    Hit,
    Session,
    SessionRow,
    parse_agent,
    step,
    sweep,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_ids = count()


def hit(
    minutes: float,
    kind: str = "pageview",
    url: str | None = "https://shop.example/",
    event_id: str | None = None,
    **extra: object,
) -> Hit:
    return Hit(
        event_id=event_id or f"e{next(_ids)}",
        project_id=7,
        visitor="anon-1",
        kind=kind,
        timestamp=T0 + timedelta(minutes=minutes),
        url=url if kind == "pageview" else None,
        **extra,  # type: ignore[arg-type]
    )


def run(*hits: Hit) -> tuple[Session, list[SessionRow]]:
    state: Session | None = None
    rows: list[SessionRow] = []
    for h in hits:
        state, new = step(state, h, h.timestamp)
        rows.extend(new)
    assert state is not None
    return state, rows


def latest(rows: list[SessionRow]) -> dict[str, SessionRow]:
    newest: dict[str, SessionRow] = {}
    for row in rows:
        if row.session_id not in newest or row.version > newest[row.session_id].version:
            newest[row.session_id] = row
    return newest


@pytest.mark.parametrize(
    ("gap_minutes", "sessions"),
    [(29.99, 1), (30, 2), (45, 2)],
)
def test_a_session_ends_after_thirty_idle_minutes(gap_minutes: float, sessions: int) -> None:
    _, rows = run(hit(0), hit(gap_minutes))
    assert len(latest(rows)) == sessions


def test_a_session_lasts_at_most_twenty_four_hours() -> None:
    hits = [hit(m) for m in range(0, 24 * 60 + 20, 20)]
    _, rows = run(*hits)
    first, second = sorted(latest(rows).values(), key=lambda r: r.started_at)
    assert first.closed and not second.closed
    assert first.last_seen == T0 + timedelta(hours=23, minutes=40)
    assert second.started_at == T0 + timedelta(hours=24)


def test_a_client_session_id_is_honoured() -> None:
    _, rows = run(
        hit(0, client_session_id="s-1"),
        hit(1, client_session_id="s-1"),
        hit(2, client_session_id="s-2"),
    )
    sessions = latest(rows)
    assert sorted(sessions) == ["s-1", "s-2"]
    assert sessions["s-1"].closed and sessions["s-1"].pageviews == 2


def test_a_client_session_split_by_idle_time_gets_a_suffix() -> None:
    _, rows = run(hit(0, client_session_id="s-1"), hit(40, client_session_id="s-1"))
    assert sorted(latest(rows)) == ["s-1", "s-1~1"]


@pytest.mark.parametrize(
    ("kinds", "bounce"),
    [
        (["pageview"], True),
        (["pageview", "pageview"], False),
        (["pageview", "event"], False),
        (["pageview", "error", "web_vital"], True),
        (["event"], False),
    ],
)
def test_bounce_means_one_pageview_and_no_interaction(kinds: list[str], bounce: bool) -> None:
    state, _ = run(*(hit(i, kind=k) for i, k in enumerate(kinds)))
    assert state.row().bounce is bounce


def test_entry_and_exit_pages_and_counts_are_kept() -> None:
    state, rows = run(
        hit(
            0,
            url="https://shop.example/?utm_source=news&utm_medium=mail",
            referrer="https://t.co/x",
        ),
        hit(1, kind="event"),
        hit(3, url="https://shop.example/cart"),
        hit(5, url="https://shop.example/checkout"),
    )
    row = state.row()
    assert (row.entry_page, row.exit_page) == ("/", "/checkout")
    assert (row.pageviews, row.events, row.duration_s) == (3, 4, 300.0)
    assert (row.referrer, row.utm_source) == ("https://t.co/x", "news")
    assert [r.version for r in rows] == [1, 2, 3, 4]
    assert not any(r.closed for r in rows)


def test_an_explicit_utm_source_attribute_wins_over_the_url() -> None:
    state, _ = run(hit(0, url="https://shop.example/?utm_source=a", utm_source="b"))
    assert state.utm_source == "b"


def test_a_late_event_never_moves_last_seen_back() -> None:
    state, _ = run(hit(10, url="https://shop.example/b"), hit(5, url="https://shop.example/a"))
    assert state.last_seen == T0 + timedelta(minutes=10)
    assert state.started_at == T0 + timedelta(minutes=5)
    assert (state.entry_page, state.exit_page) == ("/a", "/b")


def test_a_redelivered_event_is_ignored() -> None:
    state, _ = run(hit(0, event_id="dup"), hit(1))
    again, rows = step(state, hit(1, event_id="dup"), T0)
    assert rows == []
    assert again.events == 2


def test_the_redelivery_window_is_bounded_and_spans_sessions() -> None:
    state, _ = run(*(hit(i * 0.1) for i in range(RECENT_IDS + 5)), hit(120))
    assert len(state.recent_ids) == RECENT_IDS


@pytest.mark.parametrize(
    ("minutes", "closes"),
    [(29, False), (30, True)],
)
def test_a_sweep_closes_an_idle_session(minutes: int, closes: bool) -> None:
    state, _ = run(hit(0))
    swept, closing = sweep(state, T0 + timedelta(minutes=minutes))
    assert swept.closed is closes
    assert [r.version for r in closing] == ([2] if closes else [])


def test_an_event_after_a_sweep_opens_a_new_session() -> None:
    state, first = run(hit(0))
    state, _ = sweep(state, T0 + timedelta(hours=1))
    state, rows = step(state, hit(61), T0)
    assert rows[-1].session_id != first[0].session_id
    assert rows[-1].version == 1


def test_derived_session_ids_are_stable_across_replays() -> None:
    hits = [hit(0, event_id="a"), hit(1, event_id="b")]
    assert run(*hits)[1] == run(*hits)[1]


@pytest.mark.parametrize(
    ("user_agent", "agent"),
    [
        (CHROME, Agent("Chrome", "Windows", "desktop")),
        (IPHONE, Agent("Mobile Safari", "iOS", "mobile")),
        (IPAD, Agent("Mobile Safari", "iOS", "tablet")),
        (ANDROID_TABLET, Agent("Chrome", "Android", "tablet")),
        (GOOGLEBOT, Agent("Googlebot", "Other", "bot")),
        ("curl/8.0", Agent("curl", "Other", "other")),
    ],
)
def test_user_agents_map_to_browser_os_and_device_type(user_agent: str, agent: Agent) -> None:
    assert parse_agent(user_agent) == agent


def test_the_session_takes_its_device_from_the_first_event() -> None:
    state, _ = run(hit(0, user_agent=IPHONE), hit(1, user_agent=CHROME))
    assert (state.browser, state.os, state.device_type) == ("Mobile Safari", "iOS", "mobile")


def test_a_session_round_trips_through_json() -> None:
    state, _ = run(hit(0, user_agent=CHROME), hit(2, url="https://shop.example/x"))
    assert Session.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_rows_are_json_ready() -> None:
    _, rows = run(hit(0))
    row = json.loads(json.dumps(rows[0].to_dict()))
    assert row["started_at"] == T0.isoformat()
    assert row["bounce"] is True


def test_hits_come_from_an_event_envelope() -> None:
    event = SimpleNamespace(
        event_id="x1",
        project_id=3,
        kind="pageview",
        timestamp=T0,
        distinct_id=None,
        session_id="s-9",
        user_agent=CHROME,
        attributes={"url": "https://a.example/p?utm_source=ads", "referrer": "https://b.example"},
    )
    got = Hit.from_event(event)
    assert (got.visitor, got.client_session_id, got.page, got.source) == ("s-9", "s-9", "/p", "ads")
    with pytest.raises(ValueError, match="distinct_id"):
        Hit.from_event(SimpleNamespace(**{**vars(event), "session_id": None}))
