"""Passwords of a DSN never reach a message: masked in both DSN forms and as found."""

from __future__ import annotations

import pytest

from pulseline.collectors.redact import MASK, Redactor, dsn_passwords, redact_dsn, scrub_sql

CASES = [
    # (dsn, shown, passwords)
    (
        "postgresql://app:hunter2@db.local:5432/shop",
        "postgresql://app:****@db.local:5432/shop",
        ["hunter2"],
    ),
    ("postgres://app:hunter2@db/shop", "postgres://app:****@db/shop", ["hunter2"]),
    (
        "postgresql://app:p%40ss%2Fw0rd@db/shop",
        "postgresql://app:****@db/shop",
        ["p%40ss%2Fw0rd", "p@ss/w0rd"],
    ),
    ("postgresql://app:raw@pass@db/shop", "postgresql://app:****@db/shop", ["raw@pass"]),
    (
        "postgresql://app@db/shop?sslmode=require&password=hunter2",
        "postgresql://app@db/shop?sslmode=require&password=****",
        ["hunter2"],
    ),
    (
        "postgresql://app:a@h1:5432,h2:5433/shop?password=b",
        "postgresql://app:****@h1:5432,h2:5433/shop?password=****",
        ["a", "b"],
    ),
    ("postgresql://app@db/shop", "postgresql://app@db/shop", []),
    ("postgresql://db/shop", "postgresql://db/shop", []),
    (
        "host=db user=app password=hunter2 dbname=shop",
        "host=db user=app password=**** dbname=shop",
        ["hunter2"],
    ),
    ("host=db password = hunter2", "host=db password = ****", ["hunter2"]),
    (
        r"host=db password='two words\'s' dbname=shop",
        "host=db password=**** dbname=shop",
        [r"'two words\'s'", "two words's"],
    ),
    ("host=db password='unterminated", "host=db password=****", ["'unterminated", "unterminated"]),
    ("host=db user=app", "host=db user=app", []),
    ("", "", []),
]


@pytest.mark.parametrize(("dsn", "shown", "passwords"), CASES)
def test_a_dsn_is_shown_without_its_password(dsn: str, shown: str, passwords: list[str]) -> None:
    assert redact_dsn(dsn) == shown
    assert dsn_passwords(dsn) == passwords


@pytest.mark.parametrize(("dsn", "shown", "passwords"), CASES)
def test_the_redactor_masks_every_form_of_the_password(
    dsn: str, shown: str, passwords: list[str]
) -> None:
    redact = Redactor.for_dsn(dsn)
    for password in passwords:
        text = f'FATAL: something about "{password}" near {dsn}'
        assert password not in redact(text)
    assert redact(dsn) == shown or MASK in redact(dsn)


def test_the_redactor_masks_other_secrets_and_any_password_pair() -> None:
    redact = Redactor(["ingest-key-123", ""])
    assert redact("key ingest-key-123 refused") == "key **** refused"
    assert redact("bad: user=x password=elsewhere") == "bad: user=x password=****"
    assert redact("https://h/?password=p&x=1") == "https://h/?password=****&x=1"
    assert redact("nothing to hide") == "nothing to hide"


def test_a_secret_containing_another_is_masked_whole() -> None:
    assert Redactor(["abc", "abcdef"])("xx abcdef yy") == "xx **** yy"


@pytest.mark.parametrize(
    ("sql", "scrubbed"),
    [
        ("ALTER ROLE app PASSWORD 'hunter2'", "ALTER ROLE app PASSWORD ****"),
        (
            "CREATE USER a WITH ENCRYPTED PASSWORD 'it''s'",
            "CREATE USER a WITH ENCRYPTED PASSWORD ****",
        ),
        (
            "alter user a password E'x\\'y' valid until 'z'",
            "alter user a password ****y' valid until 'z'",
        ),
        ("ALTER ROLE a PASSWORD $1", "ALTER ROLE a PASSWORD $1"),
        ("ALTER ROLE a PASSWORD $$secret$$", "ALTER ROLE a PASSWORD ****"),
        ("SELECT password FROM users WHERE id = $1", "SELECT password FROM users WHERE id = $1"),
    ],
)
def test_sql_password_literals_are_masked(sql: str, scrubbed: str) -> None:
    assert scrub_sql(sql) == scrubbed
