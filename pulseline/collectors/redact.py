"""Keep connection passwords out of every message and every metric.

A DSN is either a URI (``postgresql://user:pw@host/db?password=pw``) or libpq key/value
pairs (``host=h password='p w'``). ``redact_dsn`` masks the password wherever either form
can hold one; ``Redactor`` also replaces the secret strings themselves (raw and decoded),
because an error message from a driver may quote a fragment of the DSN in any form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

MASK = "****"
_URI_PREFIXES = ("postgresql://", "postgres://")
# libpq key/value: a value is single-quoted (with \' and \\ escapes) or runs to whitespace.
_KV_PASSWORD = re.compile(
    r"(\bpassword\s*=\s*)(?!\*\*\*\*)('(?:[^'\\]|\\.)*'?|[^\s']\S*)", re.IGNORECASE
)
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#\s]*)", re.IGNORECASE)
# SQL such as ALTER ROLE ... PASSWORD 'x': pg_stat_statements may keep its literal.
_SQL_PASSWORD = re.compile(
    r"(\bpassword\s+)((?:E|U&)?'(?:[^']|'')*'?|\$\$.*?(?:\$\$|$))", re.IGNORECASE | re.DOTALL
)


def _is_uri(dsn: str) -> bool:
    return dsn.lstrip().lower().startswith(_URI_PREFIXES)


def _userinfo_span(dsn: str) -> tuple[int, int] | None:
    """Where the password of a URI's ``user:password@`` sits.

    The userinfo is taken to end at the last ``@``: libpq stops at the first, but a
    password holding a raw ``@`` must still be masked whole.
    """
    start = dsn.find("://") + 3
    at = dsn.rfind("@")
    if at < start:
        return None
    colon = dsn.find(":", start, at)
    return None if colon < 0 else (colon + 1, at)


def dsn_passwords(dsn: str) -> list[str]:
    """Every password the DSN holds, as written and as the server would read it."""
    found: list[str] = []
    if _is_uri(dsn):
        span = _userinfo_span(dsn)
        if span is not None:
            found.append(dsn[span[0] : span[1]])
        found += [m[2] for m in _QUERY_PASSWORD.finditer(dsn)]
        found += [unquote(value) for value in list(found)]
    else:
        for match in _KV_PASSWORD.finditer(dsn):
            value = match[2]
            found.append(value)
            if value.startswith("'"):
                found.append(re.sub(r"\\(.)", r"\1", value[1:].removesuffix("'")))
    return [value for value in dict.fromkeys(found) if value]


def redact_dsn(dsn: str) -> str:
    """The DSN with each password replaced by ``****``, fit to print."""
    if _is_uri(dsn):
        span = _userinfo_span(dsn)
        if span is not None:
            dsn = dsn[: span[0]] + MASK + dsn[span[1] :]
        return _QUERY_PASSWORD.sub(lambda m: m[1] + MASK, dsn)
    return _KV_PASSWORD.sub(lambda m: m[1] + MASK, dsn)


class Redactor:
    """Masks the given secrets, and any ``password=`` pair, in any text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for s in secrets if s for form in (s, quote(s, safe=""), unquote(s))}
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted((f for f in forms if f), key=len, reverse=True)

    @classmethod
    def for_dsn(cls, dsn: str, *others: str) -> Redactor:
        return cls([*dsn_passwords(dsn), *others])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _QUERY_PASSWORD.sub(lambda m: m[1] + MASK, text)
        return _KV_PASSWORD.sub(lambda m: m[1] + MASK, text)


def scrub_sql(text: str) -> str:
    """SQL text with the literal after any ``PASSWORD`` keyword masked."""
    return _SQL_PASSWORD.sub(lambda m: m[1] + MASK, text)
