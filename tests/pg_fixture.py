"""A throwaway PostgreSQL server for tests, started from a temporary directory.

The binaries come from Debian's ``postgresql`` package (``make postgres`` installs it with
``postgresql-contrib``; ``make test`` runs that first): the highest version under
``/usr/lib/postgresql/<version>/bin``, else ``initdb`` on ``PATH``.
``PULSELINE_TEST_PG_BINDIR`` names another directory, to test another PostgreSQL version.
pg_stat_statements is loaded with ``shared_preload_libraries`` (unless a test asks for a
server without it). PostgreSQL refuses to run as root, so under root the server runs as
``nobody`` in a directory of its own under /tmp (pytest's tmp dirs are 0700 root), from a
copy of the binaries when ``nobody`` cannot reach the originals.

Superuser connections go over the Unix socket with trust; TCP on 127.0.0.1 asks for a
SCRAM password, so a DSN's password is really used.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pulseline.ports import free_port

START_TIMEOUT_S = 30.0
# Fast and small: a test server holds nothing worth an fsync.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "30",
    "shared_buffers": "16MB",
    "max_wal_senders": "2",
}


def _version(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def find_bindir() -> Path | None:
    """A directory holding ``initdb`` and ``postgres``; ``None`` when there is none.

    ``PULSELINE_TEST_PG_BINDIR`` picks one, to test against another PostgreSQL version."""
    chosen = os.environ.get("PULSELINE_TEST_PG_BINDIR")
    candidates: list[Path] = [Path(chosen)] if chosen else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


def has_pg_stat_statements(bindir: Path) -> bool:
    libdirs = [bindir.parent / "lib"]
    if (bindir / "pg_config").is_file():
        found = subprocess.run(
            [str(bindir / "pg_config"), "--pkglibdir"], capture_output=True, text=True, check=False
        )
        if found.returncode == 0:
            libdirs.insert(0, Path(found.stdout.strip()))
    names = ("pg_stat_statements.so", "pg_stat_statements.dylib")
    return any((d / n).is_file() for d in libdirs for n in names)


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    stat_statements: bool
    proc: subprocess.Popen[bytes]

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"

    def uri(self, user: str, password: str, dbname: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def seed_app(self, collector_password: str) -> None:
        """In database ``app`` (made by the caller): pg_stat_statements when preloaded, a
        ``collector`` role in ``pg_monitor`` and an ``orders`` table of 20,000 rows."""
        self.execute(
            *(["CREATE EXTENSION pg_stat_statements"] if self.stat_statements else []),
            f"CREATE ROLE collector LOGIN PASSWORD '{collector_password}' IN ROLE pg_monitor",
            "CREATE TABLE orders (id serial PRIMARY KEY, amount int, note text)",
            "INSERT INTO orders (amount, note) SELECT g % 100, md5(g::text) "
            "FROM generate_series(1, 20000) g",
            "ANALYZE orders",
            dbname="app",
        )

    def execute(self, *statements: str, dbname: str = "postgres") -> list[Any]:
        """Run statements as the superuser, autocommit; the last one's rows, if any."""
        rows: list[Any] = []
        with psycopg.connect(self.superuser_dsn(dbname), autocommit=True) as conn:
            for statement in statements:
                cursor = conn.execute(statement.encode())
                rows = cursor.fetchall() if cursor.description else []
        return rows


def _as_server_user() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``nobody``; none when not root."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _runs_as(bindir: Path, drop: dict[str, Any], env: dict[str, str]) -> bool:
    try:
        found = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, env=env, **drop
        )
    except OSError:
        return False
    return found.returncode == 0


def _copy_install(bindir: Path, target: Path) -> Path:
    """A copy ``nobody`` can run, for binaries under a directory only root may enter (a
    ``PULSELINE_TEST_PG_BINDIR`` build in /root). A relocatable build finds lib/ and share/
    next to bin/, and a bundled libpq through an rpath to a sibling ``<name>.libs``: both
    are kept. Debian's binaries are readable by everyone and never copied."""
    install = bindir.parent
    base = install.parents[1] if len(install.parents) > 1 else install.parent
    relative = install.relative_to(base)
    for part in ("bin", "lib", "share"):
        if (install / part).is_dir():
            shutil.copytree(install / part, target / relative / part, symlinks=True)
    bundled = base / f"{relative.parts[0]}.libs"
    if bundled.is_dir():
        shutil.copytree(bundled, target / bundled.name, symlinks=True)
    return target / relative / "bin"


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@contextmanager
def postgres_server(bindir: Path, *, stat_statements: bool = True) -> Iterator[PgServer]:
    """A running server; ``stat_statements`` preloads pg_stat_statements (when shipped)."""
    drop = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="pulseline-pg-"))
    try:
        (root / "run").mkdir()
        if drop:
            for path in (root, root / "run"):
                os.chown(path, drop["user"], drop["group"])
        env = _server_env()
        if drop and not _runs_as(bindir, drop, env):
            bindir = _copy_install(bindir, root / "pginstall")
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            **drop,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        port = free_port()
        settings = {
            **SERVER_SETTINGS,
            "port": str(port),
            "unix_socket_directories": str(root / "run"),
        }
        preload = stat_statements and has_pg_stat_statements(bindir)
        if preload:
            settings["shared_preload_libraries"] = "pg_stat_statements"
        args = [str(bindir / "postgres"), "-D", str(root / "data")]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with open(root / "server.log", "wb") as log:
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, **drop
            )
        server = PgServer(bindir, root, port, preload, proc)
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PgServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"postgres exited at start:\n{server.log.read_text()[-2000:]}")
        try:
            with psycopg.connect(server.superuser_dsn(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres not ready in {START_TIMEOUT_S:.0f}s:\n"
                    + server.log.read_text()[-2000:]
                ) from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # "fast" shutdown: end sessions, then stop
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
