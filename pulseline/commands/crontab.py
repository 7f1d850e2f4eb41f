"""``pulseline crontab wrap|unwrap [--dry-run]``: wrap each job of your crontab in
``pulseline wrap``, or take the wrapping out again.

Before a change the current crontab is saved to a timestamped file under
``~/.pulseline/crontab-backups/`` (``--backup-dir``); ``--dry-run`` prints the diff and
changes nothing. ``unwrap`` restores every line ``wrap`` wrote byte for byte. A backup
goes back with ``crontab <file>``. See docs/CRON_WRAPPER.md.

Exit codes: 0 done (or nothing to do), 1 ``crontab`` failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from pulseline.commands.types import SubParsers
from pulseline.producers import crontab_io
from pulseline.producers.crontab import (
    BadBinary,
    Rewrite,
    diff,
    missing_settings,
    shell_word,
    unwrap_crontab,
    wrap_crontab,
)


def default_pulseline() -> str:
    """This very ``pulseline``, by absolute path: cron's PATH is short."""
    invoked = Path(sys.argv[0])
    if invoked.name == "pulseline" and invoked.is_file():
        return str(invoked.absolute())
    return shutil.which("pulseline") or "pulseline"


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "crontab",
        help="wrap the jobs of your crontab in pulseline wrap, or unwrap them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, helptext in (
        ("wrap", "wrap every job line in pulseline wrap --monitor <slug>"),
        ("unwrap", "restore the lines crontab wrap rewrote"),
    ):
        action = actions.add_parser(name, help=helptext, description=helptext)
        action.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
        action.add_argument(
            "--crontab-bin",
            default=os.environ.get(crontab_io.CRONTAB_BIN_VAR) or "crontab",
            help=f"the crontab program (default: ${crontab_io.CRONTAB_BIN_VAR} or crontab)",
        )
        action.add_argument(
            "--backup-dir",
            type=Path,
            default=None,
            help="where backups go (default: ~/.pulseline/crontab-backups)",
        )
        if name == "wrap":
            action.add_argument(
                "--pulseline-bin",
                default=None,
                help="the pulseline written into the crontab (default: this one, by full path)",
            )
    parser.set_defaults(handler=run)


def _rewrite(args: argparse.Namespace, text: str) -> Rewrite:
    if args.action == "wrap":
        return wrap_crontab(text, args.pulseline_bin or default_pulseline())
    return unwrap_crontab(text)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "wrap":
            shell_word(args.pulseline_bin or default_pulseline())
        text = crontab_io.read(args.crontab_bin)
        rewrite = _rewrite(args, text)
        for note in rewrite.notes:
            print(f"pulseline crontab: {note} (left as it is)", file=sys.stderr)
        verb = "wrapped" if args.action == "wrap" else "unwrapped"
        if args.dry_run:
            sys.stdout.write(diff(text, rewrite.text))
            print(f"would have {verb} {rewrite.changed} job line(s) (dry run)", file=sys.stderr)
            return 0
        if rewrite.text == text:
            print(f"nothing to {args.action}: the crontab is unchanged")
            return 0
        saved = crontab_io.backup(text, args.backup_dir or crontab_io.default_backup_dir())
        crontab_io.write(args.crontab_bin, rewrite.text)
    except BadBinary as exc:
        print(f"pulseline crontab: {exc}", file=sys.stderr)
        return 2
    except (crontab_io.CrontabError, OSError) as exc:
        print(f"pulseline crontab: {exc}", file=sys.stderr)
        return 1
    print(f"{verb} {rewrite.changed} job line(s); the previous crontab is in {saved}")
    if args.action == "wrap" and (missing := missing_settings(rewrite.text)):
        print(
            "note: cron gives jobs a bare environment; add "
            + " and ".join(f"{name}=..." for name in missing)
            + " lines at the top of the crontab (crontab -e) so the jobs can report",
            file=sys.stderr,
        )
    return 0
