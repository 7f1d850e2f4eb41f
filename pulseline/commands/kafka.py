"""``pulseline kafka assemble|start|stop|status|logs``: the bundled single-node broker."""

from __future__ import annotations

import argparse
import subprocess
import sys

from deploy.local.broker import BrokerError, LocalBroker, metadata_ok
from pulseline.commands.types import SubParsers
from pulseline.settings import LocalKafkaSettings


def register(sub: SubParsers) -> None:
    parser = sub.add_parser("kafka", help="manage the bundled local Kafka broker")
    parser.add_argument("action", choices=["assemble", "start", "stop", "status", "logs"])
    parser.add_argument("-f", "--follow", action="store_true", help="with logs: keep following")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = LocalKafkaSettings.from_env()
    broker = LocalBroker(settings)
    try:
        if args.action == "assemble":
            broker.assemble()
            print(f"Apache Kafka {settings.kafka_version}: {broker.libs}")
        elif args.action == "start":
            if settings.kafka_bootstrap:
                print(f"PULSELINE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: nothing to start")
                return 0
            pid = broker.start()
            print(f"kafka ready on {settings.bootstrap} (pid {pid}, log {broker.log_file})")
        elif args.action == "stop":
            stopped = broker.stop()
            print("kafka stopped" if stopped else "kafka was not running")
        elif args.action == "status":
            return _status(broker)
        else:
            cmd = ["tail", "-n", "200", *(["-F"] if args.follow else []), str(broker.log_file)]
            return subprocess.call(cmd)
    except BrokerError as exc:
        print(f"pulseline kafka {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _status(broker: LocalBroker) -> int:
    import asyncio

    settings = broker.settings
    pid = broker.pid()
    ready = asyncio.run(metadata_ok(settings.bootstrap))
    where = settings.kafka_bootstrap or f"local broker, pid {pid or '-'}"
    print(f"kafka {settings.bootstrap} ({where}): {'ready' if ready else 'not reachable'}")
    return 0 if ready else 1
