"""A single-node Apache Kafka (KRaft) assembled from Maven Central and run on 127.0.0.1.

Layout under ``<data_dir>/kafka``::

    dist/<version>/libs/   every runtime jar (cached; assembled once per version)
    data/                  KRaft metadata and logs (kept across restarts)
    server.properties  broker.pid  broker.log
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pulseline.settings import LocalKafkaSettings

HERE = Path(__file__).resolve().parent


class BrokerError(Exception):
    """The local broker could not be assembled, started or stopped."""


@dataclass(frozen=True)
class LocalBroker:
    settings: LocalKafkaSettings

    @property
    def home(self) -> Path:
        return self.settings.data_dir.resolve() / "kafka"

    @property
    def libs(self) -> Path:
        dist = self.settings.kafka_dist_dir or self.home / "dist"
        return dist.resolve() / self.settings.kafka_version / "libs"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def data(self) -> Path:
        return self.home / "data"

    def assembled(self) -> bool:
        return any(self.libs.glob("kafka_2.13-*.jar"))

    def assemble(self) -> None:
        if self.assembled():
            return
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise BrokerError("Java 17+ and Maven are needed to assemble the local broker")
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"assembling Apache Kafka {self.settings.kafka_version} from Maven Central…",
            file=sys.stderr,
            flush=True,
        )
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(HERE / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-Dkafka.version={self.settings.kafka_version}",
            f"-DoutputDirectory={staging}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError("mvn failed:\n" + (result.stdout + result.stderr)[-4000:])
        staging.rename(self.libs)

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def _write_config(self) -> Path:
        s = self.settings
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@127.0.0.1:{s.controller_port}",
            "log.dirs": str(self.data),
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        path = self.home / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def _format(self, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if cluster_id.startswith("-"):
            cluster_id = "P" + cluster_id[1:]
        cmd = self._java(
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), "-g"
        )
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError("formatting KRaft storage failed:\n" + result.stderr[-2000:])

    def start(self, *, tie_to_parent: bool = False) -> int:
        """Start the broker (if not running) and wait until it answers a metadata request.

        ``tie_to_parent`` makes the broker receive SIGTERM when this process dies.
        """
        running = self.pid()
        if running is not None:
            wait_ready(self.settings.bootstrap, self.settings.kafka_start_timeout_s, self.log_file)
            return running
        self.assemble()
        self.home.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format(config)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent if tie_to_parent else None,
            )
        self.pid_file.write_text(str(proc.pid))
        try:
            wait_ready(
                self.settings.bootstrap,
                self.settings.kafka_start_timeout_s,
                self.log_file,
                proc=proc,
            )
        except BrokerError:
            self.stop()
            raise
        return proc.pid

    def stop(self, grace_s: float = 20.0) -> bool:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL. False when nothing was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True


def die_with_parent() -> None:
    """Runs in a child before exec: SIGTERM it when its parent dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def alive(pid: int) -> bool:
    """Still running (reaping it when it is our child: a zombie still answers signal 0)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_ready(
    bootstrap: str, timeout_s: float, log_file: Path, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll until a metadata request succeeds: an open port alone is not readiness."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerError(f"the broker exited with {proc.returncode}; see {log_file}")
        if asyncio.run(metadata_ok(bootstrap)):
            return
        time.sleep(0.5)
    raise BrokerError(
        f"the broker at {bootstrap} was not ready after {timeout_s:.0f}s; see {log_file}"
    )


async def metadata_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        with _quiet("aiokafka"):  # a starting broker refuses connections; each is logged
            await asyncio.wait_for(admin.start(), 3)
            await asyncio.wait_for(admin.describe_cluster(), 3)
        return True
    except Exception:
        return False
    finally:
        await admin.close()


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
