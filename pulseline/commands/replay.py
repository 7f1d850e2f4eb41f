"""``pulseline replay anomalies``: run the anomaly rules over a CSV series, for tuning.

Reads ``timestamp,value`` rows (a header row is optional; timestamps are ISO-8601 or Unix
seconds, naive ones taken as UTC) and writes ``timestamp,value,score,is_anomaly,explanation``
rows to ``--output`` or stdout, one per input row. The rules are the stream processors'
own step functions with the default thresholds, changed by ``--param name=value``. With
several ``--rule`` options a row's score is the highest and the explanations are joined.
A slow window is judged when a later row closes it, so the last window is not judged.

Exit codes: 0 done, 1 unreadable input, 2 bad usage (including a bad ``--param``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from pulseline.commands.types import SubParsers
from stream_processors.logic.thresholds import Thresholds

if TYPE_CHECKING:
    from stream_processors.logic.anomaly import Anomaly

Step: TypeAlias = "Callable[[Any, float, datetime, Thresholds], tuple[Any, list[Anomaly]]]"


@dataclass(frozen=True)
class Rule:
    initial: Callable[[], Any]
    step: Step


RULE_NAMES = ("duration", "error_rate", "output_size", "robust", "slow")


def rules() -> dict[str, Rule]:
    """The rules by name; imported here so other commands do not pay numpy's import."""
    from stream_processors.logic import anomaly

    return {
        "duration": Rule(anomaly.DurationState, anomaly.duration_step),
        "robust": Rule(anomaly.RecentState, anomaly.robust_step),
        "output_size": Rule(anomaly.RecentState, anomaly.output_size_step),
        "error_rate": Rule(anomaly.WindowState, anomaly.error_rate_step),
        "slow": Rule(anomaly.WindowState, anomaly.slow_step),
    }


HEADER = ("timestamp", "value", "score", "is_anomaly", "explanation")


class BadInput(ValueError):
    """A row of the series cannot be read; the message names its line."""


def register(sub: SubParsers) -> None:
    parser = sub.add_parser("replay", help="replay a recorded series through stream logic")
    what = parser.add_subparsers(dest="replay_what", required=True, metavar="WHAT")
    replay = what.add_parser("anomalies", help="run the anomaly rules over a CSV series")
    replay.add_argument("--input", required=True, help="CSV of timestamp,value rows")
    replay.add_argument("--output", help="CSV to write (default: stdout)")
    replay.add_argument(
        "--rule",
        action="append",
        choices=RULE_NAMES,
        help="rule to run; repeat for several (default: duration)",
    )
    replay.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a threshold, e.g. z_score=2.5 (see docs/PROCESSORS.md)",
    )
    replay.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        thresholds = Thresholds().with_overrides(parse_params(args.param))
    except ValueError as exc:
        print(f"pulseline replay: bad --param: {exc}", file=sys.stderr)
        return 2
    by_name = rules()
    chosen = [by_name[name] for name in args.rule or ["duration"]]
    try:
        with open(args.input, newline="", encoding="utf-8") as source:
            rows = list(read_series(source))
    except (OSError, BadInput) as exc:
        print(f"pulseline replay: {args.input}: {exc}", file=sys.stderr)
        return 1
    if args.output is None:
        write_rows(sys.stdout, replay(rows, chosen, thresholds))
        return 0
    with open(args.output, "w", newline="", encoding="utf-8") as target:
        write_rows(target, replay(rows, chosen, thresholds))
    return 0


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=2"]`` as a mapping; ``ValueError`` naming a pair without ``=``."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{pair!r} is not NAME=VALUE")
        params[name.strip()] = value.strip()
    return params


def read_series(source: TextIO) -> Iterator[tuple[str, datetime, float]]:
    """``(timestamp as written, parsed timestamp, value)`` per data row."""
    for line, row in enumerate(csv.reader(source), start=1):
        if not row or (line == 1 and row[0].strip().lower() == "timestamp"):
            continue
        if len(row) < 2:
            raise BadInput(f"line {line}: expected timestamp,value")
        text, raw = row[0].strip(), row[1].strip()
        try:
            value = float(raw)
        except ValueError:
            raise BadInput(f"line {line}: value {raw!r} is not a number") from None
        yield text, parse_timestamp(text, line), value


def parse_timestamp(text: str, line: int) -> datetime:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"line {line}: timestamp {text!r} is neither ISO-8601 nor Unix") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def replay(
    rows: Iterable[tuple[str, datetime, float]], chosen: Sequence[Rule], thresholds: Thresholds
) -> Iterator[tuple[str, ...]]:
    """One output row per input row, folding every rule's step function in order."""
    states = [rule.initial() for rule in chosen]
    for text, moment, value in rows:
        found: list[Anomaly] = []
        for i, rule in enumerate(chosen):
            states[i], more = rule.step(states[i], value, moment, thresholds)
            found += more
        score = f"{max(a.score for a in found):.3f}" if found else ""
        flag = "true" if found else "false"
        yield text, _number(value), score, flag, "; ".join(a.explanation for a in found)


def write_rows(target: TextIO, rows: Iterable[tuple[str, ...]]) -> None:
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
