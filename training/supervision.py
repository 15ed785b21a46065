"""What keeps a run's supervisor honest (used by :mod:`training.runner`), and its limits.

- ``child_environment``: the run's process gets an allow-list of environment variables (locale,
  paths, the ML libraries' and GPU runtimes' knobs), never the worker's database, broker, cloud or
  Django credentials. ``RANKFORGE_RUN_ENV_ALLOW`` adds names (``NAME`` or a ``PREFIX*``).
- ``DatabaseGuard``: every database touch of the supervisor goes through it. A failing database does
  not end the run: the loop goes on (events wait in memory) and retries about every second, until the
  outage lasts longer than ``RANKFORGE_RUN_DB_OUTAGE_S``.
- ``FolderLock``: ``flock`` on ``<run folder>/.lock``, held by the supervisor and inherited by the
  run's process, so a new attempt never starts in a folder an earlier attempt's process still uses.
"""

import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """A supervisor's timings and bounds (the RANKFORGE_RUN_* settings)."""

    heartbeat_s: float
    poll_s: float
    kill_grace_s: float
    stale_after_s: float
    max_log_lines: int
    max_line_chars: int
    threads: int
    gpus: int = 1
    db_outage_s: float = 600.0

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            heartbeat_s=float(settings.RANKFORGE_RUN_HEARTBEAT_S),
            poll_s=float(settings.RANKFORGE_RUN_POLL_S),
            kill_grace_s=float(settings.RANKFORGE_RUN_KILL_GRACE_S),
            stale_after_s=float(settings.RANKFORGE_RUN_STALE_AFTER_S),
            max_log_lines=int(settings.RANKFORGE_RUN_MAX_LOG_LINES),
            max_line_chars=int(settings.RANKFORGE_RUN_MAX_LINE_CHARS),
            threads=int(settings.RANKFORGE_RUN_THREADS) or cores_owned(),
            gpus=int(settings.RANKFORGE_RUN_GPUS),
            db_outage_s=float(settings.RANKFORGE_RUN_DB_OUTAGE_S),
        )

    @property
    def retry_s(self) -> float:
        """How often a supervisor retries a failing database: soon after it is back, it heartbeats."""
        return min(1.0, self.heartbeat_s)

    @property
    def folder_wait_s(self) -> float:
        """How long a new attempt waits for an old one's process to leave the run folder: an old
        supervisor cut off from the database stops its process within its outage tolerance."""
        return self.db_outage_s + self.kill_grace_s + 30


def describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {code}"


def kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, sig)


# Exact names the run may see, and prefixes of families of names.
ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "TZ",
        "LANG",
        "LANGUAGE",
        "TMPDIR",
        "TMP",
        "TEMP",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONWARNINGS",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
        "XDG_CACHE_HOME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        # The hub behind a proxy (downloads by hub id).
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
ENV_PREFIXES = (
    "LC_",
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "TOKENIZERS_",
    "DATASETS_",
    "TORCH",  # TORCH_*, TORCHINDUCTOR_*, TORCH_HOME
    "PYTORCH_",
    "ACCELERATE_",
    "CUDA_",
    "CUBLAS_",
    "CUDNN_",
    "NCCL_",
    "NVIDIA_",
    "ROCR_",
    "HIP_",
    "HSA_",
    "TRITON_",
    "OMP_",
    "MKL_",
    "KMP_",
    "OPENBLAS_",
    "GOTO_",
)


def _allowed(name: str, extra: tuple[str, ...]) -> bool:
    if name in ENV_NAMES or name.startswith(ENV_PREFIXES):
        return True
    return any(name.startswith(e[:-1]) if e.endswith("*") else name == e for e in extra)


def cores_owned(*, cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this worker may use: its affinity mask (``taskset``, a Kubernetes CPU set), capped by
    a cgroup v2 CPU quota (``docker --cpus``, a pod's CPU limit) rounded up. A run's torch threads
    default to this: one run at a time per GPU-queue worker, so it owns them all."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity mask alone
    return max(1, cores)


def child_environment(*, threads: int, source: dict[str, str] | None = None) -> dict[str, str]:
    """The run's environment: the allow-listed part of ours, bounded CPU threads, our pid to watch."""
    source = os.environ if source is None else source
    extra = tuple(e.strip() for e in str(getattr(settings, "RANKFORGE_RUN_ENV_ALLOW", "")).split(",") if e.strip())
    env = {k: v for k, v in source.items() if _allowed(k, extra)}
    if threads > 0:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env["RANKFORGE_PARENT_PID"] = str(os.getpid())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.BASE_DIR), env.get("PYTHONPATH", "")) if p)
    return env


class DatabaseOutage(Exception):
    """The database stayed out of reach longer than the supervisor's tolerance."""


DOWN = object()  # what a guarded call returns while the database is out of reach


class DatabaseGuard:
    """Counts a database outage from its first failed call; ``call`` never raises DatabaseError."""

    REPORT_EVERY_S = 30.0

    def __init__(self, *, run_id: int, outage_s: float, retry_s: float):
        self.run_id, self.outage_s, self.retry_s = run_id, outage_s, retry_s
        self.failing_since: float | None = None
        self.last_try = 0.0
        self.last_report = 0.0
        self.outages = 0

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def due(self, now: float) -> bool:
        """Whether to touch the database now (while it fails: once per ``retry_s``)."""
        return self.failing_since is None or now - self.last_try >= self.retry_s

    def exhausted(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.failing_since is not None and now - self.failing_since > self.outage_s

    def call(self, function: Callable[..., Any], /, *args, **kwargs) -> Any:
        """``function(...)``, or DOWN when the database failed (the caller tries again later)."""
        self.last_try = time.monotonic()
        try:
            result = function(*args, **kwargs)
        except DatabaseError as exc:
            self.failed(exc)
            return DOWN
        if self.failing_since is not None:
            logger.warning(
                "run %s: the database is back after %.0f s", self.run_id, time.monotonic() - self.failing_since
            )
            self.failing_since = None
        return result

    def wait(self, function: Callable[..., Any], /, *args, **kwargs) -> Any:
        """``function(...)``, retried while the database fails; DatabaseOutage once past the tolerance
        (after at least one try)."""
        while True:
            result = self.call(function, *args, **kwargs)
            if result is not DOWN:
                return result
            if self.exhausted():
                raise DatabaseOutage(f"the database was out of reach for more than {self.outage_s:.0f} s")
            time.sleep(self.retry_s)

    def failed(self, exc: DatabaseError) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = self.last_report = now
            self.outages += 1
            logger.warning("run %s: database unavailable (%s); the run goes on, retrying", self.run_id, exc)
        elif now - self.last_report >= self.REPORT_EVERY_S:
            self.last_report = now
            logger.warning("run %s: database unavailable for %.0f s: %s", self.run_id, now - self.failing_since, exc)
        # Drop the broken connection so the next call reconnects (not inside a test's transaction,
        # which a close would end).
        if not connection.in_atomic_block:
            with contextlib.suppress(DatabaseError):
                close_old_connections()


class FolderBusy(Exception):
    pass


class FolderLock:
    """An exclusive ``flock`` on ``folder/.lock``. Its descriptor goes to the run's process too
    (``pass_fds``), so the lock lasts while the supervisor or any process of the run lives."""

    NAME = ".lock"

    def __init__(self, folder: Path):
        self.path = folder / self.NAME
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        self.fd = fd
        return True

    def holder(self) -> str:
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "unknown"
        return "unknown"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
