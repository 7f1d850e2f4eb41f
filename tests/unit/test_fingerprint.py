from typing import Any

import pytest

from stream_processors.logic.fingerprint import (
    GROUPED_MESSAGE_CHARS,
    NotGroupable,
    group,
    normalize_filename,
    normalize_function,
    normalize_message,
)


def error(
    value: str = "boom",
    kind: str = "TypeError",
    frames: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    exc: dict[str, Any] = {"type": kind, "value": value}
    if frames is not None:
        exc["stacktrace"] = {"frames": frames}
    return {"exception": [exc], **extra}


def frame(filename: str, function: str, in_app: bool = True, **extra: Any) -> dict[str, Any]:
    return {"filename": filename, "function": function, "in_app": in_app, "lineno": 1, **extra}


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("order 123 not found", "order <int> not found"),
        ("took 1.25s", "took <float>s"),
        ("user 0b3a4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d gone", "user <uuid> gone"),
        ("bad address ada@example.com", "bad address <email>"),
        ("cannot reach 10.0.0.12:5432", "cannot reach <ip>:<int>"),
        ("cannot reach 2001:db8::1 now", "cannot reach <ip> now"),
        ("cannot reach ::1", "cannot reach <ip>"),
        ("fetch https://api.example.com/v1/orders?id=9 failed", "fetch <url> failed"),
        ("no such file /var/lib/app/data-7.json", "no such file <path>"),
        ("no such file C:\\Users\\ada\\x.txt", "no such file <path>"),
        ("segfault at 0x7ffd3a2b", "segfault at <hex>"),
        ("commit 3f2a1b9c8d7e is missing", "commit <hex> is missing"),
        ("TypeError: x is undefined", "TypeError: x is undefined"),
        ("at 12:30:45 and/or later", "at <int>:<int>:<int> and/or later"),
    ],
)
def test_messages_lose_their_variable_parts(text: str, normal: str) -> None:
    assert normalize_message(text) == normal


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("app.js", "app.js"),
        ("https://cdn.example.com/static/js/app.3f2a1b.js?v=2#x", "app.js"),
        ("app:///static/js/main-5FG7HJ2K.js", "main.js"),
        ("/home/deploy/releases/42/src/views.py", "views.py"),
        ("webpack:///src/App.js:12:5", "App.js"),
        ("jquery-3.6.0.min.js", "jquery.min.js"),
        ("react-dom.production.min.js", "react-dom.production.min.js"),
        ("chunk.123.js", "chunk.123.js"),
    ],
)
def test_file_names_lose_hosts_directories_and_bundler_hashes(name: str, normal: str) -> None:
    assert normalize_filename(name) == normal


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("handleClick", "handleClick"),
        ("Object.<anonymous>", "Object"),
        ("<anonymous>", ""),
        ("async handleClick", "handleClick"),
        ("Foo.bar [as baz]", "Foo.bar"),
        ("handleClick/<", "handleClick"),
        ("worker at 0x7f3a2b1c", "worker"),
    ],
)
def test_function_names_lose_anonymous_markers_and_addresses(name: str, normal: str) -> None:
    assert normalize_function(name) == normal


def test_changing_ids_in_a_message_form_one_fingerprint() -> None:
    values = [
        "order 123 for ada@example.com failed (0b3a4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d)",
        "order 456 for bob@example.org failed (9f8e7d6c-5b4a-4321-8fed-cba987654321)",
    ]
    first, second = (group(error(v)) for v in values)
    assert first.hash == second.hash
    assert first.rule == "exception_message"
    assert first.components == ("TypeError", "order <int> for <email> failed (<uuid>)")


def test_different_exception_types_differ() -> None:
    assert group(error(kind="TypeError")).hash != group(error(kind="ValueError")).hash


def test_in_app_frames_win_over_the_message() -> None:
    frames = [
        frame("node_modules/react-dom.js", "callCallback", in_app=False),
        frame("https://cdn.example.com/app.3f2a1b.js", "handleClick"),
    ]
    got = group(error("order 1", frames=frames))
    assert got.rule == "stacktrace"
    assert got.components == ("TypeError", "app.js:handleClick")
    assert got.culprit == "app.js in handleClick"


def test_bundler_hashed_file_names_group_together() -> None:
    old = group(error("a", frames=[frame("/static/app.3f2a1b.js", "handleClick")]))
    new = group(error("b", frames=[frame("/static/app.9c8d7e.js", "handleClick")]))
    assert old.hash == new.hash


def test_without_in_app_frames_the_message_decides() -> None:
    got = group(error("order 7", frames=[frame("vendor.js", "x", in_app=False)]))
    assert got.rule == "exception_message"
    assert got.culprit is None


def test_the_outermost_exception_is_the_last_in_the_chain() -> None:
    attributes = {
        "exception": [
            {"type": "KeyError", "value": "'id'"},
            {"type": "LookupFailed", "value": "no order 5"},
        ]
    }
    got = group(attributes)
    assert got.components == ("LookupFailed", "no order <int>")
    assert got.title == "LookupFailed: no order 5"


def test_python_frames_group_by_module_rather_than_path() -> None:
    a = frame("/srv/a/app/views.py", "checkout", module="app.views")
    b = frame("/opt/b/app/views.py", "checkout", module="app.views")
    assert group(error(frames=[a])).hash == group(error(frames=[b])).hash


def test_a_bare_message_groups_by_its_normalised_text() -> None:
    got = group({"message": "Disk 93% full on 10.1.2.3"})
    assert got.rule == "message"
    assert got.components == ("Disk <int>% full on <ip>",)
    assert got.title == "Disk 93% full on 10.1.2.3"


def test_a_client_fingerprint_wins() -> None:
    got = group(error(fingerprint=["payments", "stripe-timeout"]))
    assert got.rule == "client"
    assert got.components == ("payments", "stripe-timeout")


def test_default_in_a_client_fingerprint_expands_to_the_default_components() -> None:
    frames = [frame("app.js", "pay")]
    got = group(error(frames=frames, fingerprint=["{{ default }}", "tenant-a"]))
    assert got.components == ("TypeError", "app.js:pay", "tenant-a")
    other = group(error(frames=frames, fingerprint=["{{default}}", "tenant-b"]))
    assert other.hash != got.hash


def test_a_client_fingerprint_of_only_default_equals_default_grouping() -> None:
    plain = group(error("order 3"))
    assert group(error("order 4", fingerprint=["{{ default }}"])).hash == plain.hash


@pytest.mark.parametrize("bad", [[], "payments", ["ok", 3]])
def test_malformed_client_fingerprints_are_ignored(bad: object) -> None:
    assert group(error(fingerprint=bad)).rule == "exception_message"


def test_long_titles_are_cut() -> None:
    title = group(error("x" * 500)).title
    assert len(title) == 120
    assert title.startswith("TypeError: xxx")
    assert title.endswith("…")


def test_an_event_without_exception_or_message_cannot_be_grouped() -> None:
    with pytest.raises(NotGroupable):
        group({"level": "error"})


def test_the_hash_is_stable_hex() -> None:
    got = group({"message": "hello"})
    assert got.hash == group({"message": "hello"}).hash
    assert len(got.hash) == 32
    int(got.hash, 16)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("unit", ["a.", "a-", "x"])
def test_a_megabyte_message_groups_on_its_start_in_bounded_time(unit: str) -> None:
    head = unit * (GROUPED_MESSAGE_CHARS // len(unit))
    one, other = head + "tail one" * 100_000, head + "tail two" * 100_000
    assert group(error(one)).hash == group(error(other)).hash
    assert group(error(one)).hash != group(error("b" + one)).hash
