"""Secrets masked in a wrapped job's output (pure)."""

from __future__ import annotations

import pytest

from pulseline.producers.redact import MASK, Redactor, is_secret_name, secret_values

ENV = {
    "API_TOKEN": "abc123",
    "DB_PASSWORD": "p@ss w0rd",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
    "PULSELINE_PING_KEY": "pk_aaaaaaaaaaaaaaaaaaaa",
    "KEYTIMEOUT": "1",
    "HOME": "/home/ops",
    "DEBUG_TOKEN": "true",
}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("API_TOKEN", True),
        ("github_token", True),
        ("DB_PASSWORD", True),
        ("MYSQL_PWD_PASSWD", True),
        ("CLIENT_SECRET", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("KEY", True),
        ("APIKEY", True),
        ("STRIPE_KEYS", True),
        ("PULSELINE_PING_KEY", True),
        ("KEYTIMEOUT", False),
        ("KEYMAP", False),
        ("HOME", False),
        ("PATH", False),
        ("MAILTO", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_secret_values_skip_short_and_boring_values_and_sort_longest_first() -> None:
    assert secret_values(ENV) == (
        "pk_aaaaaaaaaaaaaaaaaaaa",
        "wJalrXUtnFEMI/K7MDENG",
        "p@ss w0rd",
        "abc123",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # rule 1: values of secret-named variables, anywhere
        ("connecting with abc123...", f"connecting with {MASK}..."),
        ("abc123abc123", f"{MASK}{MASK}"),
        ("user p@ss w0rd end", f"user {MASK} end"),
        ("key pk_aaaaaaaaaaaaaaaaaaaa in url", f"key {MASK} in url"),
        ("timeout 1 of 10", "timeout 1 of 10"),  # KEYTIMEOUT=1 is too short to mask
        ("it is true", "it is true"),
        ("/home/ops/backup", "/home/ops/backup"),  # HOME is no secret
        # rule 2: assignments with secret-looking names
        ("password=hunter2 next", f"password={MASK} next"),
        ("MY_API_KEY=zzz9 rest", f"MY_API_KEY={MASK} rest"),
        ("secret_key_base = s3cr3t", f"secret_key_base = {MASK}"),
        ('{"token": "t0k en", "id": 4}', f'{{"token": "{MASK}", "id": 4}}'),
        ("db_password: 'x y'", f"db_password: '{MASK}'"),
        ("https://x/?api_key=q1w2&page=2", f"https://x/?api_key={MASK}&page=2"),
        ("keyboard=us layout=fr tokenizer=bpe", "keyboard=us layout=fr tokenizer=bpe"),
        ("https://admin:hunter2@db.local/x", f"https://admin:{MASK}@db.local/x"),
        # rule 3: bearer and basic credentials
        ("Authorization: Bearer xyz.123-_~+/=", f"Authorization: Bearer {MASK}"),
        ("curl -H 'authorization: bearer xyz'", f"curl -H 'authorization: bearer {MASK}'"),
        ("Bearer xyz", f"Bearer {MASK}"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {MASK}"),
        ("token: Bearer xyz", f"token: {MASK} {MASK}"),
        # nothing to mask
        ("all good\n", "all good\n"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert Redactor.from_env(ENV).redact(text) == expected


def test_redact_is_idempotent() -> None:
    redactor = Redactor.from_env(ENV)
    once = redactor.redact("API_TOKEN=abc123 Bearer xyz password=p")
    assert redactor.redact(once) == once
    assert "abc123" not in once and "xyz" not in once


def test_redact_bytes_keeps_bytes_that_are_not_utf8() -> None:
    redactor = Redactor.from_env(ENV)
    assert redactor.redact_bytes(b"\xff\xfe abc123 \xc3\xa9\n") == (
        b"\xff\xfe " + MASK.encode() + b" \xc3\xa9\n"
    )


def test_longest_bytes_counts_utf8_bytes() -> None:
    assert Redactor.from_env({"TOKEN": "ééééé"}).longest_bytes == 10
    assert Redactor.from_env({}).longest_bytes == 0


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "line",
    [b"x" * 200_000, b"key" * 70_000, b"ab/c+d=" * 30_000, b"http" * 50_000],
    ids=["letters", "keys", "base64", "schemes"],
)
def test_one_long_line_is_redacted_in_linear_time(line: bytes) -> None:
    # Quadratic patterns took 24 s on 16 KB of "x", and hours on these 200 KB lines.
    data = line + b" password=hunter2\n"
    assert Redactor().redact_bytes(data) == line + f" password={MASK}\n".encode()
