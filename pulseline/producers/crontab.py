"""Wrap each job of a crontab in ``pulseline wrap``, and take it out again. Pure.

A job line is kept as it is up to its command (leading blanks, the five time fields or
an ``@`` special, and the blanks after them); its command becomes::

    <pulseline> wrap --monitor <slug> -- "$SHELL" -c '<command>'

The command goes to the shell cron would have used (cron always sets ``SHELL``: ``/bin/sh``
unless the crontab says otherwise), in single quotes, so pipes, redirections and ``&&``
stay inside the wrapped job. Cron hands the text after the first unescaped ``%`` to the
job as stdin (and reads ``\\%`` as ``%``) before any shell sees the line, so only the text
before that ``%`` is quoted; the blanks that end it and the ``%`` part stay as they were,
after the closing quote. Everything else (comments, blank lines, ``NAME=value`` lines,
lines this module does not recognise, line endings, a missing last newline) is left byte
for byte, and ``unwrap`` is the exact inverse of ``wrap`` on every line ``wrap`` wrote.
Lines already calling ``pulseline wrap`` are left alone.

The slug is ``derive_slug`` of the command (before ``%``) unless the job names its own,
either on the comment line right above it or at the end of its command::

    # pulseline: monitor=nightly-backup
    0 3 * * * /opt/backup.sh
    0 4 * * * /opt/report.sh  # pulseline: monitor=daily-report
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

from pulseline.producers.wrap_slug import derive_slug

SHELL_WORD = '"$SHELL"'
_SPECIALS = "reboot|yearly|annually|monthly|weekly|daily|midnight|hourly"
_JOB = re.compile(
    rf"(?P<schedule>[ \t]*(?:@(?:{_SPECIALS})|[0-9*][^ \t]*(?:[ \t]+[^ \t]+){{4}})[ \t]+)"
    r"(?P<command>[^ \t].*)",
    re.DOTALL,
)
_MONITOR = r"(?P<slug>[a-z0-9][a-z0-9-]{0,62})"
_MARK_LINE = re.compile(rf"[ \t]*#[ \t]*pulseline:[ \t]*monitor={_MONITOR}[ \t]*\r?")
_MARK_END = re.compile(rf"(?:^|[ \t])#[ \t]*pulseline:[ \t]*monitor={_MONITOR}[ \t]*\r?$")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_./+:@,-]+")
_WRAPPED = re.compile(
    r"(?P<bin>[^ \t'\"%]+|'[^'%]*') wrap --monitor (?P<slug>[a-z0-9][a-z0-9-]{0,62}) -- "
    + re.escape(SHELL_WORD)
    + r" -c '(?P<quoted>(?:[^']|'\\'')*)'(?P<trail>[ \t\r]*)(?P<stdin>%.*)?",
    re.DOTALL,
)


class BadBinary(ValueError):
    """The path given for ``pulseline`` cannot be written into a crontab."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    text: str
    changed: int = 0
    notes: list[str] = field(default_factory=list)


def split_stdin(command: str) -> tuple[str, str]:
    """The command before cron's first unescaped ``%``, and the rest (``%`` included)."""
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return command[:i], command[i:]
    return command, ""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def shell_word(path: str) -> str:
    """``path`` as one word of a crontab command."""
    if any(c in path for c in "'%\n\r"):
        raise BadBinary(f"{path!r}: a path with ', % or a line break cannot go in a crontab")
    return path if _SAFE_WORD.fullmatch(path) else f"'{path}'"


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell would refuse it, a guess will do
        return command.split()


def _calls_wrap(command: str) -> bool:
    words = _words(command)
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    if len(words) < 2 or words[1] != "wrap":
        return False
    return words[0].rsplit("/", 1)[-1] == "pulseline"


def wrap_line(line: str, pulseline: str, slug: str | None = None) -> str | None:
    """``line`` with its job wrapped; None when it is no job or needs no wrapping."""
    job = _JOB.fullmatch(line)
    if job is None or _WRAPPED.fullmatch(job["command"]):
        return None
    head, stdin = split_stdin(job["command"])
    core = head.rstrip(" \t\r")
    if not core or _calls_wrap(core):
        return None
    if slug is None:
        mark = _MARK_END.search(core)
        slug = mark["slug"] if mark else derive_slug(core)
    return (
        f"{job['schedule']}{shell_word(pulseline)} wrap --monitor {slug} -- "
        f"{SHELL_WORD} -c {_quote(core)}{head[len(core) :]}{stdin}"
    )


def unwrap_line(line: str) -> str | None:
    """The line ``wrap_line`` made ``line`` from; None when it did not make it."""
    job = _JOB.fullmatch(line)
    if job is None:
        return None
    wrapped = _WRAPPED.fullmatch(job["command"])
    if wrapped is None:
        return None
    core = wrapped["quoted"].replace("'\\''", "'")
    return f"{job['schedule']}{core}{wrapped['trail']}{wrapped['stdin'] or ''}"


def is_wrapped(line: str) -> bool:
    job = _JOB.fullmatch(line)
    if job is None:
        return False
    return _WRAPPED.fullmatch(job["command"]) is not None or _calls_wrap(
        split_stdin(job["command"])[0]
    )


def wrap_crontab(text: str, pulseline: str) -> Rewrite:
    lines = text.split("\n")
    out: list[str] = []
    changed = 0
    for i, line in enumerate(lines):
        mark = _MARK_LINE.fullmatch(lines[i - 1]) if i else None
        wrapped = wrap_line(line, pulseline, mark["slug"] if mark else None)
        out.append(line if wrapped is None else wrapped)
        changed += wrapped is not None
    return Rewrite("\n".join(out), changed)


def unwrap_crontab(text: str) -> Rewrite:
    out: list[str] = []
    changed = 0
    notes: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        original = unwrap_line(line)
        if original is None and is_wrapped(line):
            notes.append(f"line {number}: calls pulseline wrap but not as crontab wrap wrote it")
        out.append(line if original is None else original)
        changed += original is not None
    return Rewrite("\n".join(out), changed, notes)


def missing_settings(text: str) -> list[str]:
    """The wrapper's settings a crontab does not set (cron's environment has none of them)."""
    return [
        name
        for name, *others in (("PULSELINE_URL", "PULSELINE_GATEWAY"), ("PULSELINE_PING_KEY",))
        if not any(re.search(rf"^[ \t]*{n}[ \t]*=", text, re.MULTILINE) for n in (name, *others))
    ]


def _lines(text: str) -> list[str]:
    """Lines split at ``\\n`` only (``splitlines`` would also split at ``\\r`` and more)."""
    parts = [line + "\n" for line in text.split("\n")]
    parts[-1] = parts[-1][:-1]
    return parts if parts[-1] else parts[:-1]


def diff(before: str, after: str, old: str = "crontab", new: str = "crontab (rewritten)") -> str:
    """A unified diff, marking a last line without a newline as ``diff -u`` does."""
    lines = difflib.unified_diff(_lines(before), _lines(after), old, new)
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
