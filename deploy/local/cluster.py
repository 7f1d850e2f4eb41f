"""Three local Kafka brokers in one KRaft quorum, for scale-out and fault tests.

Each node is broker and controller at once, on its own loopback ports and data directory,
with the settings of a production cluster: replication factor 3, ``min.insync.replicas=2``
and unclean leader election off, internal topics included. Ports are kept in
``<base>/cluster.json`` so a restarted cluster finds its quorum again.

    python -m deploy.local.cluster start|stop|status [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deploy.local.broker import BrokerError, LocalBroker, die_with_parent, wait_ready
from pulseline.ports import free_port_pair
from pulseline.settings import LocalKafkaSettings

REPLICATION = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
}


@dataclass(frozen=True)
class ClusterNode(LocalBroker):
    """One member of the quorum: a ``LocalBroker`` with its own id and the shared voters."""

    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""

    def _write_config(self) -> Path:
        s = self.settings
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": self.voters,
            "log.dirs": str(self.data),
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.num.partitions": "10",
            **REPLICATION,
        }
        path = self.home / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _format(self, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cmd = self._java(
            "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(config), "-g"
        )
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting node {self.node_id} failed:\n" + result.stderr[-2000:])

    def spawn(self, *, tie_to_parent: bool = False) -> int:
        """Start the JVM without waiting: a node of a quorum cannot be ready on its own."""
        running = self.pid()
        if running is not None:
            return running
        self.assemble()
        self.home.mkdir(parents=True, exist_ok=True)
        self._format(self._write_config())
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(self.home / "server.properties")),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent if tie_to_parent else None,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc.pid


@dataclass(frozen=True)
class LocalCluster:
    base: Path
    size: int = 3
    dist_dir: Path | None = None
    heap: str = "384m"
    start_timeout_s: float = 90.0

    @property
    def layout_file(self) -> Path:
        return self.base / "cluster.json"

    def _layout(self) -> dict[str, object]:
        if self.layout_file.exists():
            layout: dict[str, object] = json.loads(self.layout_file.read_text())
            return layout
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        layout = {"cluster_id": "P" + cluster_id[1:], "ports": _disjoint_pairs(self.size)}
        self.base.mkdir(parents=True, exist_ok=True)
        self.layout_file.write_text(json.dumps(layout))
        return layout

    def nodes(self) -> list[ClusterNode]:
        layout = self._layout()
        ports = [int(p) for p in layout["ports"]]  # type: ignore[attr-defined]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p + 1}" for i, p in enumerate(ports))
        return [
            ClusterNode(
                LocalKafkaSettings.from_env(
                    {},
                    data_dir=self.base / f"node-{i + 1}",
                    kafka_port=port,
                    kafka_dist_dir=self.dist_dir,
                    kafka_heap=self.heap,
                    kafka_start_timeout_s=self.start_timeout_s,
                ),
                node_id=i + 1,
                voters=voters,
                cluster_id=str(layout["cluster_id"]),
            )
            for i, port in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.settings.bootstrap for n in self.nodes())

    def start(self, *, tie_to_parent: bool = False) -> str:
        """Start every node, then wait until each answers a metadata request."""
        nodes = self.nodes()
        try:
            for node in nodes:
                node.spawn(tie_to_parent=tie_to_parent)
            deadline = time.monotonic() + self.start_timeout_s
            for node in nodes:
                left = max(deadline - time.monotonic(), 1.0)
                wait_ready(node.settings.bootstrap, left, node.log_file)
        except BrokerError:
            self.stop()
            raise
        return self.bootstrap

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop every node at once: one by one, the last loses its quorum and hangs."""
        nodes = self.nodes()
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(lambda node: node.stop(grace_s), nodes))


def _disjoint_pairs(count: int) -> list[int]:
    """``count`` ports p, each with p + 1 free too, and no two pairs overlapping."""
    chosen: list[int] = []
    for _ in range(200):
        port = free_port_pair()
        taken = {q for p in chosen for q in (p, p + 1)}
        if port in taken or port + 1 in taken:
            continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError("no disjoint pairs of free loopback ports")


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.cluster")
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=Path(".pulseline/cluster"))
    parser.add_argument("--dist", type=Path, default=Path(".pulseline/kafka/dist"))
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.dir.resolve(), dist_dir=args.dist.resolve())
    if args.action == "start":
        print(cluster.start())
    elif args.action == "stop":
        cluster.stop()
    else:
        for node in cluster.nodes():
            up = "up" if _answers(node.settings.kafka_port) else "down"
            print(f"node {node.node_id}  {node.settings.bootstrap}  pid {node.pid() or '-'}  {up}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
