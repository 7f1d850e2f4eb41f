"""``pulseline crontab wrap|unwrap`` against a fake ``crontab`` program, and wrapped lines
run the way cron runs them."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from pulseline.cli import main
from pulseline.producers.crontab import wrap_crontab, wrap_line
from tests.unit.test_crontab_rewrite import ORIGINAL

BIN = "/usr/local/bin/pulseline"
FAKE_CRONTAB = """#!/bin/sh
# crontab -l prints the stored crontab, crontab - stores stdin; as the real one, by user.
case "$1" in
  -l) [ -n "$FAKE_CRONTAB_BROKEN" ] && { echo "crontab: cannot connect" >&2; exit 1; }
      [ -f "$FAKE_CRONTAB_FILE" ] || { echo "no crontab for tester" >&2; exit 1; }
      cat "$FAKE_CRONTAB_FILE" ;;
  -) cat > "$FAKE_CRONTAB_FILE" ;;
  *) exit 2 ;;
esac
"""


def _executable(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stored crontab's file; ``crontab`` is the fake, named by PULSELINE_CRONTAB_BIN."""
    stored = tmp_path / "stored-crontab"
    monkeypatch.setenv("PULSELINE_CRONTAB_BIN", _executable(tmp_path / "crontab", FAKE_CRONTAB))
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(stored))
    return stored


def _cli(tmp_path: Path, *args: str) -> int:
    extra = ["--pulseline-bin", BIN] if args[0] == "wrap" else []
    return main(["crontab", *args, "--backup-dir", str(tmp_path / "backups"), *extra])


def _backups(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "backups"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_wrap_then_unwrap_restores_the_crontab_byte_for_byte(
    crontab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crontab.write_bytes(ORIGINAL)

    assert _cli(tmp_path, "wrap") == 0
    wrapped = crontab.read_bytes()
    expected = wrap_crontab(ORIGINAL.decode("utf-8", "surrogateescape"), BIN).text
    assert wrapped == expected.encode("utf-8", "surrogateescape")
    (backup,) = _backups(tmp_path)
    assert backup.read_bytes() == ORIGINAL
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    out, err = capsys.readouterr()
    assert f"wrapped 10 job line(s); the previous crontab is in {backup}" in out
    assert "PULSELINE_URL=... and PULSELINE_PING_KEY=..." in err

    assert _cli(tmp_path, "unwrap") == 0
    assert crontab.read_bytes() == ORIGINAL
    assert [b.read_bytes() for b in _backups(tmp_path)] == [ORIGINAL, wrapped]
    out, err = capsys.readouterr()
    assert "unwrapped 10 job line(s)" in out
    assert "line 14: calls pulseline wrap but not as crontab wrap wrote it" in err


def test_dry_run_shows_the_diff_and_changes_nothing(
    crontab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crontab.write_bytes(b"MAILTO=ops\n0 3 * * * /opt/backup.sh\n")
    assert _cli(tmp_path, "wrap", "--dry-run") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[:4] == [
        "--- crontab",
        "+++ crontab (rewritten)",
        "@@ -1,2 +1,2 @@",
        " MAILTO=ops",
    ]
    assert out.splitlines()[4] == "-0 3 * * * /opt/backup.sh"
    assert out.splitlines()[5].startswith(f"+0 3 * * * {BIN} wrap --monitor backup-sh-")
    assert "would have wrapped 1 job line(s) (dry run)" in err
    assert crontab.read_bytes() == b"MAILTO=ops\n0 3 * * * /opt/backup.sh\n"
    assert _backups(tmp_path) == []


def test_wrapping_twice_changes_nothing_the_second_time(
    crontab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crontab.write_bytes(b"0 3 * * * job\n")
    assert _cli(tmp_path, "wrap") == 0
    once = crontab.read_bytes()
    assert _cli(tmp_path, "wrap") == 0
    assert crontab.read_bytes() == once
    assert len(_backups(tmp_path)) == 1
    assert "nothing to wrap" in capsys.readouterr().out


def test_no_crontab_is_nothing_to_do(
    crontab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(tmp_path, "wrap") == 0
    assert "nothing to wrap" in capsys.readouterr().out
    assert not crontab.exists()


def test_a_failing_crontab_program_is_exit_1(
    crontab: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crontab.write_bytes(b"0 3 * * * job\n")
    monkeypatch.setenv("FAKE_CRONTAB_BROKEN", "1")
    assert _cli(tmp_path, "wrap") == 1
    assert "crontab: cannot connect" in capsys.readouterr().err
    assert crontab.read_bytes() == b"0 3 * * * job\n"


def test_the_crontab_program_can_be_given_as_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = tmp_path / "other"
    stored.write_bytes(b"@hourly job\n")
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(stored))
    monkeypatch.delenv("PULSELINE_CRONTAB_BIN", raising=False)
    fake = _executable(tmp_path / "my-crontab", FAKE_CRONTAB)
    assert _cli(tmp_path, "wrap", "--crontab-bin", fake) == 0
    assert stored.read_bytes().startswith(f"@hourly {BIN} wrap --monitor job-".encode())


# What cron does with a command (cronie's do_command.c): the shell gets the text up to the
# first unescaped % (with \% read as %), stdin the rest, each unescaped % a newline.
def _cron_split(command: str) -> tuple[str, bytes]:
    shell: list[str] = []
    escaped = False
    rest: str | None = None
    for i, ch in enumerate(command):
        if escaped:
            if ch == "%":
                shell[-1] = "%"
            else:
                shell.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
            shell.append(ch)
        elif ch == "%":
            rest = command[i + 1 :]
            break
        else:
            shell.append(ch)
    if rest is None:
        return "".join(shell), b""
    stdin: list[str] = []
    escaped = False
    for ch in rest:
        if escaped and ch != "%":
            stdin.append("\\")
        if not escaped and ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            stdin.append(ch)
    text = "".join(stdin) + ("\\" if escaped else "")
    return "".join(shell), (text if text.endswith("\n") else text + "\n").encode()


def _command_of(line: str) -> str:
    match = re.fullmatch(r"\s*(?:@\w+|(?:\S+\s+){4}\S+)\s+(.*)", line, re.DOTALL)
    assert match is not None
    return match[1]


def _cron_runs(line: str, env: dict[str, str]) -> tuple[int, bytes]:
    command, stdin = _cron_split(_command_of(line))
    done = subprocess.run(
        ["/bin/sh", "-c", command], input=stdin, capture_output=True, env=env, timeout=30
    )
    return done.returncode, done.stdout


# Stands in for pulseline wrap: checks the arguments and runs the command after --.
FAKE_PULSELINE = """#!/bin/sh
[ "$1" = wrap ] && [ "$2" = --monitor ] && [ "$4" = -- ] || { echo "bad args: $*"; exit 99; }
echo "monitor $3" >> "$WRAP_LOG"
shift 4
exec "$@"
"""


@pytest.mark.parametrize(
    "command",
    [
        "echo hello",
        'echo "it\'s $(echo nested)" | tr a-z A-Z',
        "echo 'single' \"double\"   && echo second; echo third",
        "cat%line one%line two",
        "cat; echo done %in",
        r"printf '\%s-' a b",
        r"echo a\\%stdin",
        r"echo 'quote\' tail",
        "exit 3",
        "echo x > /dev/null; false",
        "echo trailing   ",
        "printf '%s\\n' a",  # the unescaped % cuts it: a broken command either way
        'echo "$SHELL" $((1 + 2))',
    ],
)
def test_a_wrapped_line_runs_the_same_job(tmp_path: Path, command: str) -> None:
    fake = _executable(tmp_path / "pulseline", FAKE_PULSELINE)
    log = tmp_path / "wrap.log"
    env = {"PATH": os.environ["PATH"], "SHELL": "/bin/sh", "WRAP_LOG": str(log)}
    line = f"0 3 * * * {command}"
    wrapped = wrap_line(line, fake)
    assert wrapped is not None
    assert _cron_runs(wrapped, env) == _cron_runs(line, env)
    assert log.read_text().startswith("monitor ")
