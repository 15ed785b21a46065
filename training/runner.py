"""The worker side of a run: start ``python -m training.ml`` as a supervised subprocess.

``execute(run_id)`` (called by the Celery task):

1. ``queued -> running`` under the row lock, and nothing at all unless the run is still queued;
2. writes ``run.json`` into ``ARTIFACT_ROOT/runs/<id>/`` and starts
   ``python -m training.ml KIND --config run.json --out <that folder>`` in its own process group
   (``start_new_session``), with bounded CPU threads and no database or broker credentials;
3. reads its stdout (JSON-lines events, :mod:`training.ml.events`) and stderr on two threads and
   stores them as RunEvents in order, in small batches; non-JSON stdout lines and stderr lines
   become ``log`` events (bounded: ``RANKFORGE_RUN_MAX_LOG_LINES``, each line cut at
   ``RANKFORGE_RUN_MAX_LINE_CHARS``); artifact events go to the kind's handler (a generate run for a
   project turns completions into comparisons as they arrive);
4. heartbeats every ``RANKFORGE_RUN_HEARTBEAT_S`` and polls the run's state every
   ``RANKFORGE_RUN_POLL_S``: ``cancelling`` sends SIGTERM to the process group and SIGKILL after
   ``RANKFORGE_RUN_KILL_GRACE_S``; a run that another process ended (the sweep) is stopped too;
5. ends the run: cancelled after a cancel, succeeded on exit 0, else failed with the last error
   event (or the tail of stderr) and how the process ended.

If this worker dies, the subprocess notices its parent is gone (``RANKFORGE_PARENT_PID``) and
exits; the sweep fails the run once its heartbeat is stale.
"""

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from training.ml.events import parse_event
from training.models import LIVE_STATES, TERMINAL_STATES, RunEventType, RunState, TrainingRun
from training.services import runs
from training.services.cai import CaiResults
from training.services.generation import CompletionsIngest
from training.services.run_inputs import materialize_config
from training.services.run_outputs import OutputsRegistrar

logger = logging.getLogger(__name__)

# The kinds whose output the platform stores as it arrives: kind -> factory(run, folder) -> handler | None.
# A handler has ``on_artifact(event)`` and ``finish(result=, succeeded=) -> dict`` (merged into the
# run's outputs; an exception fails the run).
HANDLERS = {
    "generate": CompletionsIngest.for_run,
    **dict.fromkeys(OutputsRegistrar.KINDS, OutputsRegistrar.for_run),
    **dict.fromkeys(CaiResults.KINDS, CaiResults.for_run),
}
EVENT_TYPES = frozenset(RunEventType.values) - {RunEventType.STATE}
FLUSH_EVERY_S = 0.25
FLUSH_EVERY_EVENTS = 200
STDERR_TAIL = 30
MAX_EVENT_CHARS = 64_000


@dataclass(frozen=True)
class Limits:
    heartbeat_s: float
    poll_s: float
    kill_grace_s: float
    stale_after_s: float
    max_log_lines: int
    max_line_chars: int
    threads: int
    gpus: int = 1

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            heartbeat_s=float(settings.RANKFORGE_RUN_HEARTBEAT_S),
            poll_s=float(settings.RANKFORGE_RUN_POLL_S),
            kill_grace_s=float(settings.RANKFORGE_RUN_KILL_GRACE_S),
            stale_after_s=float(settings.RANKFORGE_RUN_STALE_AFTER_S),
            max_log_lines=int(settings.RANKFORGE_RUN_MAX_LOG_LINES),
            max_line_chars=int(settings.RANKFORGE_RUN_MAX_LINE_CHARS),
            threads=int(settings.RANKFORGE_RUN_THREADS),
            gpus=int(settings.RANKFORGE_RUN_GPUS),
        )


_SECRET_ENV = frozenset(
    {"DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
)


def child_environment(*, threads: int) -> dict[str, str]:
    """The run's environment: no database or broker credentials, bounded CPU threads, our parent pid."""
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    if threads > 0:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env["RANKFORGE_PARENT_PID"] = str(os.getpid())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.BASE_DIR), env.get("PYTHONPATH", "")) if p)
    return env


# Kinds that train with a (TRL) Trainer and so spread over several GPUs through accelerate.
MULTI_GPU_KINDS = frozenset({"sft", "reward_model", "dpo", "rlhf"})


def command(run: TrainingRun, config_path: Path, folder: Path, *, gpus: int = 1) -> list[str]:
    """The run's command line: ``accelerate launch`` with one process per GPU when the worker owns
    several (``RANKFORGE_RUN_GPUS``) and the kind trains; only rank 0 writes events."""
    args = ["-m", "training.ml", run.kind, "--config", str(config_path), "--out", str(folder)]
    if gpus > 1 and run.kind in MULTI_GPU_KINDS:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus)]
        return [*launch, *args]
    return [sys.executable, *args]


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {code}"


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pid, sig)


def _pump(name: str, stream, out: queue.Queue) -> None:
    try:
        # A line longer than the limit arrives in pieces (and is kept as log lines, not parsed).
        for raw in iter(lambda: stream.readline(MAX_EVENT_CHARS * 4), b""):
            out.put((name, raw))
    finally:
        out.put((name, None))


class Supervisor:
    def __init__(self, run: TrainingRun, limits: Limits):
        self.run = run
        self.limits = limits
        self.folder = runs.run_folder(run.pk)
        self.pending: list[tuple[str, dict]] = []
        self.progress: tuple[int, int | None] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self.last_error: str | None = None
        self.result: dict = {}
        self.artifacts: dict[str, dict] = {}
        self.log_lines = 0
        self.dropped = 0
        self.state = RunState.RUNNING
        self.process: subprocess.Popen | None = None
        self.term_sent_at: float | None = None
        self.killed = False
        self.stopped_because: str | None = None  # "cancel" | "ended elsewhere" | "handler" | "database"
        self.handler_error: str | None = None
        self.handler = None
        self.db_failing_since: float | None = None

    # -- events ---------------------------------------------------------------------------------

    def _log(self, message: str, *, level: str, stream: str) -> None:
        if self.log_lines >= self.limits.max_log_lines:
            self.dropped += 1
            return
        self.log_lines += 1
        if len(message) > self.limits.max_line_chars:
            message = (
                message[: self.limits.max_line_chars] + f"... [{len(message) - self.limits.max_line_chars} chars cut]"
            )
        self.pending.append((RunEventType.LOG, {"level": level, "message": message, "stream": stream}))

    def _take(self, name: str, raw: bytes) -> None:
        # PostgreSQL's jsonb refuses NUL characters; a process may print one.
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n").replace("\x00", "")
        if name == "stderr":
            self.stderr_tail.append(line)
            self._log(line, level="stderr", stream="stderr")
            return
        event = parse_event(line) if len(line) <= MAX_EVENT_CHARS else None
        if event is None or event["type"] not in EVENT_TYPES:
            if line.strip():
                self._log(line, level="info", stream="stdout")
            return
        event_type = event.pop("type")
        if event_type == RunEventType.LOG:
            self._log(str(event.get("message", "")), level=str(event.get("level", "info")), stream="event")
            return
        if event_type == RunEventType.PROGRESS:
            self._note_progress(event)
        elif event_type == RunEventType.ERROR:
            self.last_error = str(event.get("message", ""))
        elif event_type == RunEventType.RESULT:
            self.result = event
        elif event_type == RunEventType.ARTIFACT:
            self.artifacts[str(event.get("kind", "artifact"))] = event
        self.pending.append((event_type, event))

    def _note_progress(self, event: dict) -> None:
        step, total = event.get("step"), event.get("total")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            return
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            total = None
        self.progress = (min(step, total) if total is not None else step, total)

    def flush(self) -> None:
        """Store what is pending (and a heartbeat); learn the run's state; feed artifacts to the handler."""
        events, progress = self.pending, self.progress
        try:
            self.state, rows = runs.run_events_append(run_id=self.run.pk, events=events, progress=progress)
        except DatabaseError:
            self._database_trouble()
            return
        self.db_failing_since = None
        self.pending, self.progress = [], None
        if self.handler is not None and self.handler_error is None:
            for row in rows:
                if row.type == RunEventType.ARTIFACT:
                    try:
                        self.handler.on_artifact(row.payload)
                    except Exception as exc:
                        logger.exception("run %s: storing output failed", self.run.pk)
                        self.handler_error = f"could not store the run's output: {type(exc).__name__}: {exc}"
                        self.stop("handler")
                        break

    def heartbeat(self) -> None:
        try:
            self.state = runs.run_heartbeat(run_id=self.run.pk)
        except DatabaseError:
            self._database_trouble()
        else:
            self.db_failing_since = None

    def _database_trouble(self) -> None:
        logger.exception("run %s: database unavailable; keeping %d events to retry", self.run.pk, len(self.pending))
        close_old_connections()
        now = time.monotonic()
        self.db_failing_since = self.db_failing_since or now
        if now - self.db_failing_since > self.limits.stale_after_s:
            self.stop("database")

    # -- process --------------------------------------------------------------------------------

    def stop(self, why: str) -> None:
        """SIGTERM the run's process group (once); the first reason given is the one that counts."""
        self.stopped_because = self.stopped_because or why
        if self.term_sent_at is None and self.process is not None and self.process.poll() is None:
            self.term_sent_at = time.monotonic()
            _kill_group(self.process.pid, signal.SIGTERM)

    def _write_run_json(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "run.json"
        temporary = path.with_suffix(".json.tmp")
        run = self.run
        temporary.write_text(
            json.dumps(
                {
                    "run_id": run.pk,
                    "kind": run.kind,
                    "config": materialize_config(run.config),
                    "inputs": run.inputs,
                    "project": run.project_id,
                },
                indent=2,
            )
        )
        temporary.replace(path)
        return path

    def start(self) -> None:
        config_path = self._write_run_json()
        self.handler = (HANDLERS.get(self.run.kind) or (lambda run, folder: None))(self.run, self.folder)
        threads = self.run.config.get("torch_threads") or self.limits.threads
        self.process = subprocess.Popen(
            command(self.run, config_path, self.folder, gpus=self.limits.gpus),
            cwd=settings.BASE_DIR,
            env=child_environment(threads=threads),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: cancel signals the whole group
        )
        self.pending.append(
            (
                RunEventType.LOG,
                {
                    "level": "info",
                    "message": f"started process {self.process.pid} on {socket.gethostname()}"
                    + (f" (attempt {self.run.attempt}: resuming)" if self.run.attempt > 1 else ""),
                    "stream": "worker",
                },
            )
        )
        self.state, _ = runs.run_events_append(run_id=self.run.pk, events=self.pending, pid=self.process.pid)
        self.pending = []

    def supervise(self) -> None:
        lines: queue.Queue = queue.Queue()
        readers = [
            threading.Thread(target=_pump, args=(name, stream, lines), daemon=True, name=f"run-{self.run.pk}-{name}")
            for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr))
        ]
        for reader in readers:
            reader.start()
        open_streams = len(readers)
        last_flush = last_beat = last_poll = time.monotonic()
        exited_at: float | None = None
        while True:
            try:
                item = lines.get(timeout=0.1)
                while True:
                    name, raw = item
                    if raw is None:
                        open_streams -= 1
                    else:
                        self._take(name, raw)
                    if len(self.pending) >= FLUSH_EVERY_EVENTS:
                        break
                    item = lines.get_nowait()
            except queue.Empty:
                pass
            now = time.monotonic()
            if self.pending and (now - last_flush >= FLUSH_EVERY_S or len(self.pending) >= FLUSH_EVERY_EVENTS):
                self.flush()
                last_flush = last_beat = last_poll = now
            elif now - last_beat >= self.limits.heartbeat_s:
                self.heartbeat()
                last_beat = last_poll = now
            elif now - last_poll >= self.limits.poll_s:
                self.state = TrainingRun.objects.filter(pk=self.run.pk).values_list("state", flat=True).first()
                last_poll = now

            if self.state == RunState.CANCELLING:
                self.stop("cancel")
            elif self.state in TERMINAL_STATES:
                self.stop("ended elsewhere")
            alive = self.process.poll() is None
            if self.term_sent_at is not None and alive and now - self.term_sent_at > self.limits.kill_grace_s:
                _kill_group(self.process.pid, signal.SIGKILL)
                self.killed = True
            if not alive:
                exited_at = exited_at or now
                if open_streams == 0:
                    break
                if now - exited_at > 5:  # a leftover child holds the pipes open
                    _kill_group(self.process.pid, signal.SIGKILL)
        _kill_group(self.process.pid, signal.SIGKILL)  # nothing of the run outlives it
        for reader in readers:
            reader.join(timeout=5)

    # -- the end --------------------------------------------------------------------------------

    def finish(self) -> TrainingRun | None:
        code = self.process.returncode
        if self.dropped:
            self.pending.append(
                (
                    RunEventType.LOG,
                    {
                        "level": "warning",
                        "message": f"{self.dropped} more log lines were not stored "
                        f"(limit RANKFORGE_RUN_MAX_LOG_LINES={self.limits.max_log_lines})",
                        "stream": "worker",
                    },
                )
            )
        self.flush()
        outputs: dict[str, Any] = {
            "folder": f"{runs.RUNS_DIR}/{self.run.pk}",
            "exit_code": code,
            "artifacts": self.artifacts,
        }
        if self.result:
            outputs["result"] = self.result
        if self.handler is not None and self.handler_error is None:
            try:
                succeeded = code == 0 and self.stopped_because is None
                outputs.update(self.handler.finish(result=self.result, succeeded=succeeded))
            except Exception as exc:
                logger.exception("run %s: storing output failed", self.run.pk)
                self.handler_error = f"could not store the run's output: {type(exc).__name__}: {exc}"
        self.flush()

        live = LIVE_STATES
        if self.stopped_because == "ended elsewhere":
            logger.warning("run %s ended elsewhere (%s); its process was stopped", self.run.pk, self.state)
            return TrainingRun.objects.get(pk=self.run.pk)
        if self.handler_error:
            return runs.run_transition(
                run_id=self.run.pk, to=RunState.FAILED, only_from=live, error=self.handler_error, outputs=outputs
            )
        if self.stopped_because == "database":
            error = "the worker lost the database for too long and stopped the run"
            return runs.run_transition(
                run_id=self.run.pk, to=RunState.FAILED, only_from=live, error=error, outputs=outputs
            )
        if self.stopped_because == "cancel" and self.term_sent_at is not None:
            # (A process that had already exited when the cancel came ends by its exit status.)
            how = "killed after the grace period" if self.killed else _describe_exit(code)
            return runs.run_transition(
                run_id=self.run.pk, to=RunState.CANCELLED, only_from={RunState.CANCELLING}, outputs=outputs, note=how
            )
        if code == 0:
            return runs.run_transition(run_id=self.run.pk, to=RunState.SUCCEEDED, only_from=live, outputs=outputs)
        reason = self.last_error or "\n".join(self.stderr_tail).strip() or "no error message"
        return runs.run_transition(
            run_id=self.run.pk,
            to=RunState.FAILED,
            only_from=live,
            error=f"{reason}\n({_describe_exit(code)})",
            outputs=outputs,
        )

    def kill(self) -> None:
        if self.process is not None:
            _kill_group(self.process.pid, signal.SIGKILL)


def execute(*, run_id: int, limits: Limits | None = None) -> TrainingRun | None:
    """Run one queued run to its end; None (and nothing done) when it is not queued any more."""
    run = runs.run_transition(
        run_id=run_id, to=RunState.RUNNING, only_from={RunState.QUEUED}, worker_host=socket.gethostname()
    )
    if run is None:
        state = TrainingRun.objects.filter(pk=run_id).values_list("state", flat=True).first()
        logger.info("run %s is %s, not queued; not starting it", run_id, state or "gone")
        return None
    supervisor = Supervisor(run, limits or Limits.from_settings())
    try:
        supervisor.start()
        supervisor.supervise()
        return supervisor.finish()
    except BaseException as exc:
        supervisor.kill()
        logger.exception("run %s: the supervisor failed", run_id)
        runs.run_fail_if_live(run_id=run_id, error=f"the worker failed while running it: {type(exc).__name__}: {exc}")
        raise
