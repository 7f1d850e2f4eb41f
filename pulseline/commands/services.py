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


SUITES = ("gateway", "processors", "sink", "queries", "pipeline")


def register_bench(sub: SubParsers) -> None:
    parser = sub.add_parser("bench", help="measure the gateway and the pipeline; write JSON")
    parser.add_argument(
        "suites", nargs="*", metavar="SUITE", help=f"any of {', '.join(SUITES)} (default: all)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events/s over all clients (0: as fast as they can)"
    )
    parser.add_argument("--tenants", type=int, default=3, help="projects, each with its keys")
    parser.add_argument(
        "--query-events", type=int, default=10_000_000, help="synthetic events (queries suite)"
    )
    parser.add_argument(
        "--sink-rows", type=int, default=500_000, help="events the sink drains (sink suite)"
    )
    parser.add_argument("--results", default="bench/results")
    parser.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    import json
    import subprocess
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    results = Path(args.results)
    suites = args.suites or SUITES
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        print(f"unknown bench suite(s): {', '.join(unknown)}; choose from {', '.join(SUITES)}")
        return 2
    if "gateway" in suites:
        from pulseline.bench_gateway import GatewayProfile, run_gateway_bench

        figures = run_gateway_bench(GatewayProfile(duration_s=min(args.duration, 15.0)))
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"gateway-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))
        print(f"results written to {path}")
    if "processors" in suites:
        from pulseline.bench_gateway import private_kafka
        from pulseline.settings import CommonSettings
        from stream_processors import bench_stats

        with private_kafka("pulseline-procbench-") as env:
            stats = bench_stats.run(50_000, CommonSettings.from_env(env).bootstrap)
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"processors-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(stats, indent=2))
        print(json.dumps(stats, indent=2))
        print(f"results written to {path}")
    # The sink and queries suites run in their own process: embedded ClickHouse opens one
    # data directory per process, and each suite (and the pipeline suite) opens another.
    own_process = {
        "sink": ("storage.bench_sink", args.sink_rows),
        "queries": ("storage.bench_queries", args.query_events),
    }
    for suite, (module, size) in own_process.items():
        if suite not in suites:
            continue
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"{suite}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        command = [sys.executable, "-m", module, str(size), str(path)]
        if subprocess.run(command, check=False).returncode != 0:
            print(f"the {suite} suite failed")
            return 1
        print(f"results written to {path}")
    if "pipeline" in suites:
        from pulseline.bench import Profile, run_bench

        profile = Profile(
            args.duration,
            args.batch_size,
            args.concurrency,
            tenants=args.tenants,
            rate=args.rate,
        )
        run_bench(profile, results)
    return 0
