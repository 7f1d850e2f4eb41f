"""``pulseline wrap [--monitor SLUG] -- command args…``: run a job and report it.

Pings the monitor's ``start``, runs the command with stdin, stdout and stderr passed
through, then pings its exit code with the redacted tail of its output, and exits with the
command's exit status. The server being unreachable is one warning on stderr, never a
different exit status. See docs/CRON_WRAPPER.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pulseline.commands.types import SubParsers
from pulseline.producers.redact import Redactor
from pulseline.producers.wrap import run as run_job
from pulseline.producers.wrap_client import Pinger
from pulseline.producers.wrap_ping import (
    CAPTURE_VAR,
    CREATE_VAR,
    PING_KEY_VAR,
    TIMEOUT_VAR,
    URL_VARS,
    Flags,
    resolve,
    shown,
    target,
)

USAGE = "pulseline wrap [options] [--monitor SLUG] -- command [args...]"


class UsageError(ValueError):
    pass


def split_command(tokens: Sequence[str]) -> tuple[str | None, list[str]]:
    """The positional monitor (``wrap SLUG -- cmd``, as the dashboard shows) and the command."""
    if tokens and tokens[0] == "--":
        slug, command = None, list(tokens[1:])
    elif len(tokens) >= 2 and tokens[1] == "--":
        slug, command = tokens[0], list(tokens[2:])
    else:
        slug, command = None, list(tokens)
    if not command:
        raise UsageError("no command to run")
    return slug, command


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "wrap",
        help="run a command and report it to its monitor (start, then success or fail)",
        usage=USAGE,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--monitor",
        "-m",
        metavar="SLUG",
        help="monitor slug, or monitor id (default: derived from the command)",
    )
    parser.add_argument("--url", help=f"gateway base URL (default: ${URL_VARS[0]})")
    parser.add_argument("--ping-key", help=f"the project's ping key (default: ${PING_KEY_VAR})")
    parser.add_argument(
        "--capture-bytes",
        type=int,
        metavar="N",
        help=f"output tail kept for the report (default: ${CAPTURE_VAR} or 32768)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        dest="timeout_s",
        metavar="SECONDS",
        help=f"time for each ping, retries included (default: ${TIMEOUT_VAR} or 5)",
    )
    parser.add_argument(
        "--create",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"create a missing monitor (default: ${CREATE_VAR} or yes)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def _warn(message: str) -> None:
    print(f"pulseline wrap: warning: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        positional, command = split_command(args.command)
    except UsageError as exc:
        print(f"usage: {USAGE}\npulseline wrap: error: {exc}", file=sys.stderr)
        return 2
    if args.capture_bytes is not None and args.capture_bytes < 0:
        print("pulseline wrap: error: --capture-bytes must be >= 0", file=sys.stderr)
        return 2
    if args.timeout_s is not None and not args.timeout_s > 0:
        print("pulseline wrap: error: --timeout must be > 0", file=sys.stderr)
        return 2
    flags = Flags(
        url=args.url,
        ping_key=args.ping_key,
        monitor=args.monitor or positional,
        capture_bytes=args.capture_bytes,
        timeout_s=args.timeout_s,
        create=args.create,
    )
    env = dict(os.environ)
    config, problems = resolve(flags, command, env)
    for problem in problems:
        _warn(problem)
    url, why_not = target(config)
    if why_not is not None:
        _warn(f"{why_not}; running without reporting")
    pinger = Pinger(config.timeout_s, _warn, shown=lambda u: shown(u, config))
    try:
        sys.stdout.flush()
        return run_job(command, config, url, Redactor.from_env(env), pinger)
    finally:
        pinger.close()
