"""``pulseline gateway|processors|storage|alerting``: run one service in the foreground."""

from __future__ import annotations

import argparse

from pulseline.commands.types import SubParsers


def register(sub: SubParsers) -> None:
    for name, help_text, handler in (
        ("gateway", "run the ingest gateway (HTTP → Kafka)", _gateway),
        ("processors", "run a Faust stream-processor worker", _processors),
        ("storage", "run the ClickHouse sink and the read API", _storage),
        ("alerting", "run the alert runner (incidents → notifications)", _alerting),
    ):
        parser = sub.add_parser(name, help=help_text)
        parser.set_defaults(handler=handler)
    register_run(sub)
    register_bench(sub)


def _gateway(_: argparse.Namespace) -> int:
    from ingest_gateway.server import serve
    from pulseline.settings import GatewaySettings

    serve(GatewaySettings.from_env())
    return 0


def _processors(_: argparse.Namespace) -> int:
    from stream_processors.__main__ import main

    main()
    return 0


def _storage(_: argparse.Namespace) -> int:
    from storage.service import main

    main()
    return 0


def _alerting(_: argparse.Namespace) -> int:
    from alerting.__main__ import main

    main()
    return 0


def register_run(sub: SubParsers) -> None:
    parser = sub.add_parser("run", help="start the whole pipeline (local Kafka, all services)")
    parser.set_defaults(handler=_run)


def _run(_: argparse.Namespace) -> int:
    from pulseline.supervisor import run

    return run()


def register_bench(sub: SubParsers) -> None:
    parser = sub.add_parser("bench", help="load a private pipeline and write JSON results")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--results", default="bench/results")
    parser.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pulseline.bench import Profile, run_bench

    run_bench(Profile(args.duration, args.batch_size, args.concurrency), Path(args.results))
    return 0
