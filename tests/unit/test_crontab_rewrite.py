"""Crontab wrap and unwrap, line by line and byte for byte (pure)."""

from __future__ import annotations

import pytest

from pulseline.producers.crontab import (
    SHELL_WORD,
    BadBinary,
    diff,
    is_wrapped,
    missing_settings,
    shell_word,
    split_stdin,
    unwrap_crontab,
    unwrap_line,
    wrap_crontab,
    wrap_line,
)
from pulseline.producers.wrap_slug import derive_slug

BIN = "/usr/local/bin/pulseline"
W = f"{BIN} wrap --monitor"

# Everything a crontab may hold: comments, env lines, specials, blank lines, % (stdin and
# escaped), quotes, tabs, trailing blanks, CRLF, bytes that are not UTF-8, no last newline.
ORIGINAL = (
    b"# m h  dom mon dow   command\n"
    b'MAILTO="ops@example.com"\n'
    b"SHELL=/bin/bash\n"
    b"   CRON_TZ = Europe/Paris\n"
    b"\n"
    b"0 3 * * * /opt/backup.sh --full > /var/log/backup.log 2>&1\n"
    b"*/5 * * * *\tcurl -fsS https://example.com/health   \n"
    b"@reboot /usr/bin/start-things\n"
    b'@daily  echo "it\'s $(date +\\%Y-\\%m-\\%d)" | mail -s report ops%line one%line two\n'
    b"  \t\n"
    b"# pulseline: monitor=nightly-report\n"
    b"30 4 * * 1-5 /opt/report.sh\n"
    b"15 * * * * /opt/x.sh  # pulseline: monitor=marked-inline\n"
    b"0 0 * * * /usr/local/bin/pulseline wrap --monitor mine -- /opt/y\n"
    b"1 2 3 4 5 cmd with crlf\r\n"
    b"0 0 1 1 * caf\xc3\xa9 \xff\xfe\n"
    b"@weekly cat %\n"
    b"0 1 * * * \n"
    b"#0 5 * * * commented out\n"
    b"0 0 * * sun   printf 'x\\n' 'y'   %stdin  "
)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("command", "head", "stdin"),
    [
        ("echo hi", "echo hi", ""),
        ("cat %a%b", "cat ", "%a%b"),
        ("date +\\%Y", "date +\\%Y", ""),
        ("echo \\\\%in", "echo \\\\", "%in"),  # \\ is one escaped backslash: % is cron's
        ("%only stdin", "", "%only stdin"),
        ("echo \\", "echo \\", ""),
        ("", "", ""),
    ],
)
def test_split_stdin_as_cron_does(command: str, head: str, stdin: str) -> None:
    assert split_stdin(command) == (head, stdin)


def _wrapped(schedule: str, slug: str, quoted: str, after: str = "") -> str:
    return f"{schedule}{W} {slug} -- {SHELL_WORD} -c {quoted}{after}"


QUOTES = r"""echo 'it'\''s'"""  # the shell's own way of writing it's in single quotes
QUOTES_QUOTED = r"""'echo '\''it'\''\'\'''\''s'\'''"""


@pytest.mark.parametrize(
    ("line", "wrapped"),
    [
        (
            "0 3 * * * /opt/backup.sh --full",
            _wrapped("0 3 * * * ", derive_slug("/opt/backup.sh --full"), "'/opt/backup.sh --full'"),
        ),
        (
            "@reboot a && b | c > /tmp/x 2>&1",
            _wrapped(
                "@reboot ", derive_slug("a && b | c > /tmp/x 2>&1"), "'a && b | c > /tmp/x 2>&1'"
            ),
        ),
        (
            f"  */5\t1-5 * jan,feb mon-fri\t {QUOTES}  ",
            _wrapped("  */5\t1-5 * jan,feb mon-fri\t ", derive_slug(QUOTES), QUOTES_QUOTED, "  "),
        ),
        (
            "@daily cat %line one%line two",
            _wrapped("@daily ", derive_slug("cat"), "'cat'", " %line one%line two"),
        ),
        (
            r"0 0 * * * date +\%s",
            _wrapped("0 0 * * * ", derive_slug(r"date +\%s"), r"'date +\%s'"),
        ),
        ("1 2 3 4 5 crlf\r", _wrapped("1 2 3 4 5 ", derive_slug("crlf"), "'crlf'", "\r")),
        (
            "0 4 * * * /opt/x # pulseline: monitor=given",
            _wrapped("0 4 * * * ", "given", "'/opt/x # pulseline: monitor=given'"),
        ),
    ],
)
def test_wrap_line(line: str, wrapped: str) -> None:
    assert wrap_line(line, BIN) == wrapped
    assert unwrap_line(wrapped) == line
    assert is_wrapped(wrapped) and not is_wrapped(line)
    assert wrap_line(wrapped, BIN) is None  # idempotent


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "# 0 3 * * * commented",
        'MAILTO=""',
        "SHELL=/bin/bash",
        "PULSELINE_URL=http://gw:8000",
        "0 3 * * *",  # no command
        "0 3 * * * ",
        "0 3 * * * %stdin only",
        "@every 5m job",  # no cron special
        "0 3 * * job",  # four fields
        "0 3 * * * pulseline wrap --monitor x -- job",
        "0 3 * * * FOO='a b' /opt/bin/pulseline wrap x -- job",
        "0 3 * * * '/my dir/pulseline' wrap -m x -- job",
    ],
)
def test_lines_left_alone(line: str) -> None:
    assert wrap_line(line, BIN) is None


def test_a_comment_above_names_the_monitor() -> None:
    text = "# pulseline: monitor=nightly\n0 3 * * * job\n0 4 * * * job"
    lines = wrap_crontab(text, BIN).text.split("\n")
    assert lines[1] == f"0 3 * * * {W} nightly -- {SHELL_WORD} -c 'job'"
    assert lines[2] == f"0 4 * * * {W} {derive_slug('job')} -- {SHELL_WORD} -c 'job'"


def test_the_whole_crontab_round_trips_byte_for_byte() -> None:
    original = _text(ORIGINAL)
    wrapped = wrap_crontab(original, BIN)
    assert wrapped.changed == 10
    assert wrapped.text != original
    restored = unwrap_crontab(wrapped.text)
    assert restored.changed == 10
    assert restored.text.encode("utf-8", "surrogateescape") == ORIGINAL
    # the line wrapped by hand is not unwrapped (its original is unknown), only reported
    assert restored.notes == ["line 14: calls pulseline wrap but not as crontab wrap wrote it"]


def test_only_job_lines_change() -> None:
    original = _text(ORIGINAL).split("\n")
    wrapped = wrap_crontab(_text(ORIGINAL), BIN).text.split("\n")
    assert len(wrapped) == len(original)
    changed = [i for i, (a, b) in enumerate(zip(original, wrapped, strict=True)) if a != b]
    assert changed == [5, 6, 7, 8, 11, 12, 14, 15, 16, 19]
    assert wrapped[11] == f"30 4 * * 1-5 {W} nightly-report -- {SHELL_WORD} -c '/opt/report.sh'"
    assert wrapped[12].startswith(f"15 * * * * {W} marked-inline -- ")
    assert wrapped[16] == f"@weekly {W} {derive_slug('cat')} -- {SHELL_WORD} -c 'cat' %"
    assert wrapped[19].endswith("-c 'printf '\\''x\\n'\\'' '\\''y'\\'''   %stdin  ")


def test_wrap_is_idempotent() -> None:
    once = wrap_crontab(_text(ORIGINAL), BIN)
    twice = wrap_crontab(once.text, BIN)
    assert twice.text == once.text and twice.changed == 0


def test_unwrap_keeps_lines_added_since() -> None:
    wrapped = wrap_crontab("0 3 * * * job\n", BIN).text + "0 4 * * * added later\n"
    assert unwrap_crontab(wrapped).text == "0 3 * * * job\n0 4 * * * added later\n"


@pytest.mark.parametrize(
    "text", ["", "\n", "no newline", "\n\n\n", "0 3 * * * job", "0 3 * * * job\n\n"]
)
def test_edges_round_trip(text: str) -> None:
    assert unwrap_crontab(wrap_crontab(text, BIN).text).text == text


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("/usr/local/bin/pulseline", "/usr/local/bin/pulseline"),
        ("/home/me/.venv/bin/pulseline", "/home/me/.venv/bin/pulseline"),
        ("/opt/my tools/pulseline", "'/opt/my tools/pulseline'"),
    ],
)
def test_shell_word(path: str, word: str) -> None:
    assert shell_word(path) == word
    line = wrap_line("0 3 * * * job", path)
    assert line is not None and unwrap_line(line) == "0 3 * * * job"
    assert wrap_line(line, path) is None


@pytest.mark.parametrize("path", ["/opt/it's/pulseline", "/opt/100%/pulseline", "a\nb"])
def test_paths_that_cannot_go_in_a_crontab(path: str) -> None:
    with pytest.raises(BadBinary):
        shell_word(path)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("0 3 * * * job\n", ["PULSELINE_URL", "PULSELINE_PING_KEY"]),
        ("PULSELINE_URL=http://gw\n0 3 * * * job\n", ["PULSELINE_PING_KEY"]),
        (" PULSELINE_GATEWAY = http://gw\nPULSELINE_PING_KEY=k\n", []),
        ("# PULSELINE_URL=http://gw\n", ["PULSELINE_URL", "PULSELINE_PING_KEY"]),
    ],
)
def test_missing_settings(text: str, missing: list[str]) -> None:
    assert missing_settings(text) == missing


def test_diff_shows_changed_lines_and_a_missing_last_newline() -> None:
    shown = diff("a\nb\r\nc", "a\nB\r\nc")
    assert shown.split("\n") == [
        "--- crontab",
        "+++ crontab (rewritten)",
        "@@ -1,3 +1,3 @@",
        " a",
        "-b\r",
        "+B\r",
        " c",
        "\\ No newline at end of file",
        "",
    ]
    assert diff("same\n", "same\n") == ""
