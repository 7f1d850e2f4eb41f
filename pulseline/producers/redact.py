"""Mask secrets in a job's captured output before it leaves the machine. Pure.

Three rules:

1. the values of environment variables whose name looks secret (``API_TOKEN``,
   ``DB_PASSWORD``, ``AWS_SECRET_ACCESS_KEY``, ``PULSELINE_PING_KEY``, ...), wherever
   they appear;
2. ``name=value`` and ``name: value`` assignments whose name looks secret
   (``password=hunter2``, ``"api_key": "abc"``), and the password of a URL
   (``https://user:pw@host``);
3. bearer tokens (``Authorization: Bearer xyz``, ``Bearer xyz``) and basic credentials
   after ``Authorization:``.

Each secret becomes ``[REDACTED]``; the text around it is kept. Rule 1 runs first, then
bearer and basic credentials, then assignments (so ``token: Bearer xyz`` loses ``xyz``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

MASK = "[REDACTED]"
# Shorter values would mask ordinary output: KEYTIMEOUT=1 must not blank every "1".
MIN_VALUE_CHARS = 4
_BORING_VALUES = frozenset({"true", "false", "none", "null", "yes"})
_SECRET_WORDS = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL")

# Each pattern may only start where its first class of characters starts: tried at every
# offset of a long word (a 100 KB line of base64), a lazy prefix rescans the rest of the
# word each time, which is quadratic.
_ASSIGNMENT = re.compile(
    r"""(?<![\w.-])(?P<name>[\w.-]*?(?:token|secret|passw(?:or)?d|passphrase|credentials?|key)s?
          (?:[_.-][\w.-]*)?)(?![A-Za-z0-9])
        (?P<sep>["']?[ \t]*[=:][ \t]*)
        (?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|(?P<value>[^\s"'&;,]+))""",
    re.IGNORECASE | re.VERBOSE,
)
_URL_PASSWORD = re.compile(
    r"(?<![a-z0-9+.-])(?P<head>[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<value>[^\s/@]+)(?=@)"
)
_BEARER = re.compile(r"(?P<head>\bbearer[ \t]+)(?P<value>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE)
_BASIC = re.compile(
    r"(?P<head>\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?basic[ \t]+)(?P<value>[A-Za-z0-9+/=]+)",
    re.IGNORECASE,
)
_VALUE_GROUPS = ("value", "dq", "sq")
# Bearer first: "token: Bearer xyz" would otherwise mask only the word "Bearer".
_RULES = (_BEARER, _BASIC, _URL_PASSWORD, _ASSIGNMENT)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says its value is a secret."""
    upper = name.upper()
    if _SECRET_WORDS.search(upper):
        return True
    # A part ending in KEY: KEY, API_KEY, APIKEY, ACCESSKEY; not KEYMAP or KEYTIMEOUT.
    return any(part.endswith(("KEY", "KEYS")) for part in re.split(r"[^A-Z0-9]+", upper))


def secret_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """The values to mask, longest first so a value containing another is masked whole."""
    values = {
        value
        for name, value in env.items()
        if is_secret_name(name)
        and len(value) >= MIN_VALUE_CHARS
        and value.lower() not in _BORING_VALUES
    }
    return tuple(sorted(values, key=lambda v: (-len(v), v)))


def _mask_value(match: re.Match[str]) -> str:
    group = next(g for g in _VALUE_GROUPS if g in match.re.groupindex and match[g] is not None)
    start, end = (i - match.start() for i in match.span(group))
    whole = match[0]
    return whole[:start] + MASK + whole[end:]


@dataclass(frozen=True, slots=True)
class Redactor:
    values: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Redactor:
        return cls(secret_values(env))

    @property
    def longest_bytes(self) -> int:
        """The UTF-8 length of the longest value masked by rule 1 (0 without any)."""
        return max((len(v.encode("utf-8", "surrogateescape")) for v in self.values), default=0)

    def redact(self, text: str) -> str:
        if self.values:
            pattern = "|".join(re.escape(v) for v in self.values)
            text = re.sub(pattern, MASK, text)
        for rule in _RULES:
            text = rule.sub(_mask_value, text)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """As ``redact``; bytes that are not UTF-8 pass through unchanged."""
        return self.redact(data.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape"
        )
