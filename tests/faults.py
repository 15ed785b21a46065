"""Fault injection for tests, the one helper every fault test uses (issue 11).

Acts on the servers the test settings point at, as CI runs them (``.ci/run``: no systemd, root):

- ``pg_outage(seconds)``: stop PostgreSQL (``pg_ctl stop -m fast`` as the postgres user, so every
  connection gets "terminating connection due to administrator command"), wait, start it again with
  the options it was started with (``postmaster.opts``). The data directory comes from
  ``SHOW data_directory`` when the test role may read it, else from the postmaster whose
  ``postmaster.pid`` names the test database's port.
- ``redis_outage(seconds)``: ``SHUTDOWN SAVE`` the broker's Redis (its queues are kept on disk),
  wait, start ``redis-server`` again with the same port, bind, dir and files.
- ``kill_worker(proc)``: SIGKILL a worker's whole process group (the worker, not its runs' own
  sessions), as the kernel's OOM killer or a lost node would.

Each outage is a context manager (the body runs while the server is down) or, called with
``.run()``, a plain function; afterwards this process's own Django connections are usable again.
A test that restarts PostgreSQL needs ``django_db(transaction=True)``: a restart ends every open
transaction, the test's own too.
"""

import contextlib
import glob
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from django.db import DatabaseError, close_old_connections, connection, connections, transaction

PG_CTL_WAIT_S = 60


def _as_postgres(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=check, capture_output=True, text=True)


def _pg_bin(data_dir: Path) -> Path:
    """The server binaries of the data directory's major version (else the newest installed)."""
    with contextlib.suppress(OSError):
        matching = Path("/usr/lib/postgresql") / (data_dir / "PG_VERSION").read_text().strip() / "bin"
        if (matching / "pg_ctl").exists():
            return matching
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _data_dir_by_port(port: int) -> Path:
    """The data directory of the postmaster listening on ``port`` (its postmaster.pid says so)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            cwd = Path(os.readlink(proc / "cwd"))  # a postmaster runs in its data directory
            lines = (cwd / "postmaster.pid").read_text().splitlines()
            if lines[0].strip() == proc.name and int(lines[3]) == port:
                return cwd
    raise RuntimeError(f"no PostgreSQL postmaster on port {port} found under /proc")


@dataclass
class Postgres:
    data_dir: Path
    bin_dir: Path
    port: int

    @classmethod
    def of_test_database(cls) -> "Postgres":
        port = int(connection.settings_dict.get("PORT") or 5432)
        try:
            with transaction.atomic(), connection.cursor() as cursor:  # a savepoint inside a test's transaction
                cursor.execute("SHOW data_directory")
                data_dir = Path(cursor.fetchone()[0])
        except DatabaseError:  # needs superuser or pg_read_all_settings; the test role has neither
            data_dir = _data_dir_by_port(port)
        return cls(data_dir=data_dir, bin_dir=_pg_bin(data_dir), port=port)

    def _options(self) -> str:
        """``postmaster.opts`` minus the binary and ``-D``: what ``pg_ctl start -o`` takes."""
        argv = shlex.split((self.data_dir / "postmaster.opts").read_text())[1:]
        kept, skip = [], False
        for arg in argv:
            if skip:
                skip = False
            elif arg == "-D":
                skip = True
            else:
                kept.append(arg)
        return shlex.join(kept)

    def stop(self) -> str:
        options = self._options()
        _as_postgres(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        return options

    def start(self, options: str) -> None:
        # .ci/run logs next to the data directory; a log file is needed either way (without -l the
        # server would hold our captured stdout open).
        log = Path(f"{self.data_dir}.log")
        if not log.exists():
            log = Path(f"/tmp/postgres-{self.port}.log")
        pg_ctl = str(self.bin_dir / "pg_ctl")
        _as_postgres(
            pg_ctl, "-D", str(self.data_dir), "-l", str(log), "-w", "-t", str(PG_CTL_WAIT_S), "-o", options, "start"
        )
        ready = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        for _ in range(PG_CTL_WAIT_S * 4):
            if subprocess.run(ready, check=False).returncode == 0:
                return
            time.sleep(0.25)
        raise RuntimeError(f"PostgreSQL in {self.data_dir} did not come back")


@dataclass
class Redis:
    url: str
    argv: list[str]

    @classmethod
    def of(cls, url: str | None = None) -> "Redis":
        url = url or os.environ.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"]
        client = redis.Redis.from_url(url)
        config = {}
        for key in ("port", "bind", "dir", "dbfilename", "logfile", "appendonly", "save"):
            config.update({k.decode() if isinstance(k, bytes) else k: v for k, v in client.config_get(key).items()})
        config = {k: v.decode() if isinstance(v, bytes) else v for k, v in config.items()}
        argv = ["redis-server", "--port", config["port"], "--daemonize", "yes", "--dir", config["dir"]]
        argv += ["--bind", *(config["bind"].split() or ["127.0.0.1"])]
        argv += ["--dbfilename", config["dbfilename"], "--appendonly", config["appendonly"]]
        argv += ["--save", config["save"]] if config["save"] else ["--save", ""]
        if config.get("logfile"):
            argv += ["--logfile", config["logfile"]]
        return cls(url=url, argv=argv)

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)

    def stop(self) -> None:
        with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
            self._client().shutdown(save=True)
        for _ in range(100):
            try:
                self._client().ping()
            except redis.ConnectionError:
                return
            time.sleep(0.1)
        raise RuntimeError("Redis did not shut down")

    def start(self) -> None:
        subprocess.run(self.argv, check=True, capture_output=True)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if self._client().ping():
                    return
            time.sleep(0.1)
        raise RuntimeError("Redis did not come back")


def _recover_django_connections() -> None:
    """This test process's connections died with the server: drop them, so the next query reconnects."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
            conn.close()
    close_old_connections()


class _Outage(contextlib.ContextDecorator):
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.down_at = self.up_at = None

    def __enter__(self):
        self._stop()
        self.down_at = time.monotonic()
        return self

    def __exit__(self, *exc):
        # The body may return early: the server stays down for ``seconds`` all the same.
        remaining = self.seconds - (time.monotonic() - self.down_at)
        if remaining > 0:
            time.sleep(remaining)
        self._start()
        self.up_at = time.monotonic()
        return False

    def run(self) -> "_Outage":
        with self:
            pass
        return self

    @property
    def lasted(self) -> float:
        return self.up_at - self.down_at


class pg_outage(_Outage):
    """PostgreSQL (the test database's server) down for ``seconds``."""

    def _stop(self):
        self.server = Postgres.of_test_database()
        self.options = self.server.stop()

    def _start(self):
        self.server.start(self.options)
        _recover_django_connections()


class redis_outage(_Outage):
    """The broker's Redis down for ``seconds``; what it held is saved and loaded back."""

    def __init__(self, seconds: float, url: str | None = None):
        super().__init__(seconds)
        self.server = Redis.of(url)

    def _stop(self):
        self.server.stop()

    def _start(self):
        self.server.start()


def kill_worker(process: subprocess.Popen) -> None:
    """SIGKILL a worker started by ``start_worker`` (its own process group) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def pause_worker(process: subprocess.Popen) -> None:
    """SIGSTOP a worker's process group: alive but silent, as a partitioned or frozen node."""
    os.killpg(process.pid, signal.SIGSTOP)


def resume_worker(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGCONT)
