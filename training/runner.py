"""The worker side of a run: start ``python -m training.ml`` as a supervised subprocess.

``execute(run_id)`` (called by the Celery task):

1. ``queued -> running`` under the row lock, and nothing at all unless the run is still queued;
2. writes ``run.json`` into the run's work folder (``runs/<id>/`` on this worker's disk, under the
   artifact store's local root: ``lookups.run_folder``; with S3, input files the store holds for the
   run and the folder lacks are downloaded first) and starts
   ``python -m training.ml KIND --config run.json --out <that folder>`` in its own process group
   (``start_new_session``), with bounded CPU threads and an allow-listed environment (no credentials);
3. reads its stdout (JSON-lines events, :mod:`training.ml.events`) and stderr on two threads and
   stores them as RunEvents in order, in small batches; non-JSON stdout lines and stderr lines
   become ``log`` events (bounded: ``RANKFORGE_RUN_MAX_LOG_LINES``, each line cut at
   ``RANKFORGE_RUN_MAX_LINE_CHARS``); artifact events go to the kind's handler (a generate run for a
   project turns completions into comparisons as they arrive);
4. heartbeats every ``RANKFORGE_RUN_HEARTBEAT_S`` and polls the run's state every
   ``RANKFORGE_RUN_POLL_S``: ``cancelling`` sends SIGTERM to the process group and SIGKILL after
   ``RANKFORGE_RUN_KILL_GRACE_S``; a run that another process ended (the sweep) is stopped too;
5. ends the run: cancelled after a cancel, succeeded on exit 0, else failed with the last error
   event (or the tail of stderr) and how the process ended. Before that, with ``ARTIFACT_STORAGE=s3``,
   the folder's finished files (``lookups.run_published_files``) are published to ``runs/<id>`` in
   the store, so that readers on other machines find them (``lookups.run_file_open``); a run that
   would succeed fails when they cannot be stored.

Faults (:mod:`training.supervision`): every database touch is guarded, so the run goes on through a
database outage of up to ``RANKFORGE_RUN_DB_OUTAGE_S`` and its events are stored once the database
is back. Every write names the run's attempt: when the sweep has requeued the run meanwhile (this
supervisor looked dead), the write is refused and the supervisor kills its process and leaves the
run alone. The run folder's lock keeps a new attempt from starting next to an old one's process.
If this worker dies, the subprocess notices (``RANKFORGE_PARENT_PID``) and exits; the sweep
requeues or fails the run once its heartbeat is stale.
"""

import contextlib
import json
import logging
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from common import storage as store
from contracts.events import parse_event
from models_registry import storage
from training.kinds import KINDS
from training.models import LIVE_STATES, TERMINAL_STATES, RunEventType, RunState, TrainingRun
from training.progress_report import ProgressReport
from training.services import runs
from training.services.lookups import run_published_files, run_relpath
from training.services.run_inputs import REGISTRY_PREFIX, STORE_FILE_PREFIX
from training.services.runs import StaleAttempt
from training.supervision import (
    DOWN,
    DatabaseGuard,
    DatabaseOutage,
    FolderBusy,
    FolderLock,
    Limits,
    child_environment,
    describe_exit,
    kill_group,
)

logger = logging.getLogger(__name__)

# The kinds whose output the platform stores (``KindSpec.handler``): kind -> factory(run, folder) ->
# handler | None. A handler has ``on_artifact(event)`` and ``finish(result=, succeeded=) -> dict``
# (merged into the run's outputs; an exception fails the run).
HANDLERS = {kind: spec.handler for kind, spec in KINDS.items() if spec.handler is not None}
EVENT_TYPES = frozenset(RunEventType.values) - {RunEventType.STATE}
FLUSH_EVERY_S = 0.25
FLUSH_EVERY_EVENTS = 200
STDERR_TAIL = 30
MAX_EVENT_CHARS = 64_000


def command(run: TrainingRun, config_path: Path, folder: Path, *, gpus: int = 1) -> list[str]:
    """The run's command line: ``accelerate launch`` with one process per GPU when the worker owns
    several (``RANKFORGE_RUN_GPUS``) and the kind trains; only rank 0 writes events."""
    args = ["-m", "training.ml", run.kind, "--config", str(config_path), "--out", str(folder)]
    spec = KINDS.get(run.kind)
    if gpus > 1 and spec is not None and spec.multi_gpu:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus)]
        return [*launch, *args]
    return [sys.executable, *args]


def _local(value):
    if not isinstance(value, str):
        return value
    if value.startswith(REGISTRY_PREFIX):
        return str(storage.materialize(value.removeprefix(REGISTRY_PREFIX)))
    if value.startswith(STORE_FILE_PREFIX):
        folder, _, name = value.removeprefix(STORE_FILE_PREFIX).rpartition("/")
        return str(store.materialize(folder) / name)
    return value


def materialize_config(config: dict) -> dict:
    """The config with every ``registry:<path>`` value (``run_inputs.version_folder`` with artifacts on
    S3) replaced by a local folder, and every ``store-file:<folder>/<name>`` (``run_inputs.store_file``:
    a snapshot's pairs) by a file in a local copy of its folder: the worker downloads them when the run
    starts (once: ``materialize`` keeps a verified cache), never the web process."""
    return {key: _local(value) for key, value in config.items()}


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
        self.attempt = run.attempt  # every write names it: the sweep may hand the run to a new attempt
        self.limits = limits
        self.folder = runs.run_folder(run.pk)
        self.db = DatabaseGuard(run_id=run.pk, outage_s=limits.db_outage_s, retry_s=limits.retry_s)
        self.lock = FolderLock(self.folder)
        self.pending: list[tuple[str, dict]] = []
        self.progress: tuple[int, int | None] | None = None
        self.progress_report = ProgressReport(f"run {run.pk} ({run.kind})")
        self.unhandled: deque[dict] = deque()  # stored artifact events the handler has yet to take
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
        self.fenced: StaleAttempt | None = None  # the run went to a newer attempt: write nothing more

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

    def _note(self, message: str, *, level: str = "info") -> None:
        """A log event of the supervisor's own (not counted against the run's log limit)."""
        self.pending.append((RunEventType.LOG, {"level": level, "message": message, "stream": "worker"}))

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
        said = self.progress_report.line(*self.progress)
        if said:
            logger.info(said)

    def flush(self) -> bool:
        """Store what is pending (and a heartbeat); learn the run's state; feed artifacts to the
        handler. False (everything kept for the next try) while the database is out of reach."""
        stored = self.db.call(
            runs.run_events_append,
            run_id=self.run.pk,
            events=self.pending,
            progress=self.progress,
            attempt=self.attempt,
        )
        if stored is DOWN:
            return False
        self.state, rows = stored
        self.pending, self.progress = [], None
        if self.handler is not None and self.handler_error is None:
            self.unhandled.extend(row.payload for row in rows if row.type == RunEventType.ARTIFACT)
        return self._feed_handler()

    def _feed_handler(self) -> bool:
        while self.unhandled and self.handler is not None and self.handler_error is None:
            try:
                self.handler.on_artifact(self.unhandled[0])
            except DatabaseError as exc:
                self.db.failed(exc)  # the artifact is fed again once the database is back
                return False
            except Exception as exc:
                logger.exception("run %s: storing output failed", self.run.pk)
                self.handler_error = f"could not store the run's output: {type(exc).__name__}: {exc}"
                self.unhandled.clear()
                self.stop("handler")
            else:
                self.unhandled.popleft()
        return True

    def heartbeat(self) -> None:
        state = self.db.call(runs.run_heartbeat, run_id=self.run.pk, attempt=self.attempt)
        if state is not DOWN:
            self.state = state

    def poll(self) -> None:
        row = self.db.call(lambda: TrainingRun.objects.filter(pk=self.run.pk).values_list("state", "attempt").first())
        if row is DOWN:
            return
        if row is None or row[1] != self.attempt:
            raise StaleAttempt(self.run.pk, self.attempt, row[1] if row else 0)
        self.state = row[0]

    # -- process --------------------------------------------------------------------------------

    def stop(self, why: str) -> None:
        """SIGTERM the run's process group (once); the first reason given is the one that counts."""
        self.stopped_because = self.stopped_because or why
        if self.term_sent_at is None and self.process is not None and self.process.poll() is None:
            self.term_sent_at = time.monotonic()
            kill_group(self.process.pid, signal.SIGTERM)

    def _fence(self, stale: StaleAttempt) -> None:
        """The run belongs to a newer attempt: its process must not write on, so it dies at once."""
        if self.fenced is None:
            logger.warning("run %s: %s Stopping this attempt's process; the run is left alone.", self.run.pk, stale)
            self.fenced = stale
        if self.process is not None:
            kill_group(self.process.pid, signal.SIGKILL)
            self.killed = True

    def _fetch_inputs(self) -> None:
        """With S3, the run's files that the store holds and this worker's folder lacks (inputs written
        on another machine, or what an earlier attempt elsewhere left) are downloaded into the folder."""
        if not store.on_s3():
            return
        relpath = run_relpath(self.run.pk)
        try:
            stored = store.list_files(relpath)
        except FileNotFoundError:
            return
        for name, _size in stored:
            target = self.folder / name
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            incoming = target.with_name(f".{target.name}.download")  # hidden: never published
            try:
                with store.open_file(relpath, name) as source, incoming.open("wb") as out:
                    while block := source.read(store.CHUNK):
                        out.write(block)
                incoming.replace(target)
            finally:
                incoming.unlink(missing_ok=True)

    def _publish_files(self) -> str | None:
        """With S3, put the folder's finished files in the store (``runs/<id>``); the error, if that
        failed (the local backend keeps them where they are: nothing to do)."""
        if not store.on_s3():
            return None
        try:
            with self._beating():
                store.publish_copy(self.folder, run_relpath(self.run.pk), names=run_published_files(self.folder))
        except Exception as exc:
            logger.exception("run %s: publishing its files failed", self.run.pk)
            return f"could not store the run's files: {type(exc).__name__}: {exc}"
        return None

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

    def _take_folder(self) -> None:
        """Lock the run folder, heartbeating while an earlier attempt's process still holds it."""
        if self.lock.try_acquire():
            return
        holder = self.lock.holder()
        self._note(f"waiting for an earlier attempt's process ({holder}) to leave the run folder", level="warning")
        deadline = time.monotonic() + self.limits.folder_wait_s
        while not self.lock.try_acquire():
            if time.monotonic() > deadline:
                raise FolderBusy(
                    f"the run folder {self.folder} is still locked by an earlier attempt ({holder}) after "
                    f"{self.limits.folder_wait_s:.0f} s; not starting a second process in it"
                )
            if self.pending:
                self.flush()
            else:
                self.heartbeat()
            time.sleep(min(self.limits.heartbeat_s, 1.0))

    def start(self) -> None:
        self._take_folder()
        self._fetch_inputs()
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
            pass_fds=(self.lock.fd,),  # the folder stays locked while any process of the run lives
        )
        resuming = f" (attempt {self.attempt}: resuming)" if self.attempt > 1 else ""
        self._note(f"started process {self.process.pid} on {socket.gethostname()}{resuming}")
        try:
            self.state, _ = self.db.wait(
                runs.run_events_append,
                run_id=self.run.pk,
                events=self.pending,
                pid=self.process.pid,
                attempt=self.attempt,
            )
        except StaleAttempt as stale:
            self._fence(stale)
            raise
        self.pending = []

    def _round(self, now: float, clock: dict[str, float]) -> None:
        """One round of database work: flush, else heartbeat, else poll, whichever is due. While the
        database fails, one try per retry interval, always one that writes a heartbeat."""
        if not self.db.due(now):
            return
        if self.db.failing:
            if self.pending or self.unhandled:
                self.flush()
            else:
                self.heartbeat()
            clock.update(flush=now, beat=now, poll=now)
            return
        if self.unhandled or (
            self.pending and (now - clock["flush"] >= FLUSH_EVERY_S or len(self.pending) >= FLUSH_EVERY_EVENTS)
        ):
            self.flush()
            clock.update(flush=now, beat=now, poll=now)
        elif now - clock["beat"] >= self.limits.heartbeat_s:
            self.heartbeat()
            clock.update(beat=now, poll=now)
        elif now - clock["poll"] >= self.limits.poll_s:
            self.poll()
            clock["poll"] = now

    def supervise(self) -> None:
        lines: queue.Queue = queue.Queue()
        readers = [
            threading.Thread(target=_pump, args=(name, stream, lines), daemon=True, name=f"run-{self.run.pk}-{name}")
            for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr))
        ]
        for reader in readers:
            reader.start()
        open_streams = len(readers)
        start = time.monotonic()
        clock = {"flush": start, "beat": start, "poll": start}
        exited_at: float | None = None
        while True:
            try:
                item = lines.get(timeout=0.1)
                while True:
                    name, raw = item
                    if raw is None:
                        open_streams -= 1
                    elif self.fenced is None:
                        self._take(name, raw)
                    if len(self.pending) >= FLUSH_EVERY_EVENTS:
                        break
                    item = lines.get_nowait()
            except queue.Empty:
                pass
            now = time.monotonic()
            if self.fenced is None:
                try:
                    self._round(now, clock)
                except StaleAttempt as stale:
                    self._fence(stale)
            if self.fenced is None:
                if self.state == RunState.CANCELLING:
                    self.stop("cancel")
                elif self.state in TERMINAL_STATES:
                    self.stop("ended elsewhere")
                if self.db.exhausted(now):
                    self.stop("database")
            alive = self.process.poll() is None
            if self.term_sent_at is not None and alive and now - self.term_sent_at > self.limits.kill_grace_s:
                kill_group(self.process.pid, signal.SIGKILL)
                self.killed = True
            if not alive:
                exited_at = exited_at or now
                if open_streams == 0:
                    break
                if now - exited_at > 5:  # a leftover child holds the pipes open
                    kill_group(self.process.pid, signal.SIGKILL)
        kill_group(self.process.pid, signal.SIGKILL)  # nothing of the run outlives it
        for reader in readers:
            reader.join(timeout=5)

    # -- the end --------------------------------------------------------------------------------

    def _settle(self) -> None:
        """Store every pending event and feed every artifact, waiting out a database outage."""
        while not self.flush() or self.pending or self.unhandled:
            if self.db.exhausted():
                raise DatabaseOutage(f"the database was out of reach for more than {self.limits.db_outage_s:.0f} s")
            time.sleep(self.limits.retry_s)

    @contextlib.contextmanager
    def _beating(self):
        """Heartbeats from a thread (its own connection) while the handler stores outputs, which may
        take longer than the sweep's stale_after (moving or uploading a large model)."""
        done = threading.Event()

        def beat():
            while not done.wait(self.limits.heartbeat_s):
                with contextlib.suppress(Exception):  # the main thread learns of a stale attempt itself
                    runs.run_heartbeat(run_id=self.run.pk, attempt=self.attempt)
            connection.close()

        beater = threading.Thread(target=beat, daemon=True, name=f"run-{self.run.pk}-heartbeat")
        beater.start()
        try:
            yield
        finally:
            done.set()
            beater.join()

    def _handler_finish(self, *, succeeded: bool) -> dict:
        while True:
            try:
                with self._beating():
                    return self.handler.finish(result=self.result, succeeded=succeeded)
            except DatabaseError as exc:
                self.db.failed(exc)
                if self.db.exhausted():
                    raise DatabaseOutage(
                        f"the database was out of reach for more than {self.limits.db_outage_s:.0f} s"
                    ) from exc
                time.sleep(self.limits.retry_s)
            except Exception as exc:
                logger.exception("run %s: storing output failed", self.run.pk)
                self.handler_error = f"could not store the run's output: {type(exc).__name__}: {exc}"
                return {}

    def _transition(self, **kwargs) -> TrainingRun | None:
        return self.db.wait(
            runs.run_transition, run_id=self.run.pk, only_from=LIVE_STATES, attempt=self.attempt, **kwargs
        )

    def finish(self) -> TrainingRun | None:
        """End the run by how its process ended (None, touching nothing, when another attempt owns it)."""
        if self.fenced is not None:
            return None
        code = self.process.returncode
        if self.dropped:
            limit = f"limit RANKFORGE_RUN_MAX_LOG_LINES={self.limits.max_log_lines}"
            self._note(f"{self.dropped} more log lines were not stored ({limit})", level="warning")
        if self.db.outages:
            self._note(
                f"the database was out of reach {self.db.outages} time(s) during the run; "
                "its events were kept and stored late",
                level="warning",
            )
        self._settle()
        outputs: dict[str, Any] = {
            "folder": f"{runs.RUNS_DIR}/{self.run.pk}",
            "exit_code": code,
            "artifacts": self.artifacts,
        }
        if self.result:
            outputs["result"] = self.result
        if self.handler is not None and self.handler_error is None:
            outputs.update(self._handler_finish(succeeded=code == 0 and self.stopped_because is None))
        publish_error = self._publish_files()
        if publish_error:
            self._note(publish_error, level="error")
        self._settle()

        if self.stopped_because == "ended elsewhere":
            logger.warning("run %s ended elsewhere (%s); its process was stopped", self.run.pk, self.state)
            return self.db.wait(TrainingRun.objects.get, pk=self.run.pk)
        if self.handler_error:
            return self._transition(to=RunState.FAILED, error=self.handler_error, outputs=outputs)
        if self.stopped_because == "database":
            error = (
                f"the worker lost the database for more than {self.limits.db_outage_s:.0f} s "
                "(RANKFORGE_RUN_DB_OUTAGE_S) and stopped the run"
            )
            return self._transition(to=RunState.FAILED, error=error, outputs=outputs)
        if self.stopped_because == "cancel" and self.term_sent_at is not None:
            # (A process that had already exited when the cancel came ends by its exit status.)
            how = "killed after the grace period" if self.killed else describe_exit(code)
            return self.db.wait(
                runs.run_transition,
                run_id=self.run.pk,
                to=RunState.CANCELLED,
                only_from={RunState.CANCELLING},
                outputs=outputs,
                note=how,
                attempt=self.attempt,
            )
        if code == 0 and publish_error:
            return self._transition(to=RunState.FAILED, error=publish_error, outputs=outputs)
        if code == 0:
            return self._transition(to=RunState.SUCCEEDED, outputs=outputs)
        reason = self.last_error or "\n".join(self.stderr_tail).strip() or "no error message"
        return self._transition(to=RunState.FAILED, error=f"{reason}\n({describe_exit(code)})", outputs=outputs)

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process.pid, signal.SIGKILL)


def execute(*, run_id: int, limits: Limits | None = None) -> TrainingRun | None:
    """Run one queued run to its end; None (and nothing done) when it is not queued any more, or when
    the sweep handed it to a newer attempt while this one ran."""
    limits = limits or Limits.from_settings()
    guard = DatabaseGuard(run_id=run_id, outage_s=limits.db_outage_s, retry_s=limits.retry_s)
    run = guard.wait(
        runs.run_transition,
        run_id=run_id,
        to=RunState.RUNNING,
        only_from={RunState.QUEUED},
        worker_host=socket.gethostname(),
    )
    if run is None:
        state = guard.wait(lambda: TrainingRun.objects.filter(pk=run_id).values_list("state", flat=True).first())
        logger.info("run %s is %s, not queued; not starting it", run_id, state or "gone")
        return None
    supervisor = Supervisor(run, limits)
    try:
        supervisor.start()
        supervisor.supervise()
        return supervisor.finish()
    except StaleAttempt as stale:
        supervisor._fence(stale)
        if supervisor.process is not None:
            supervisor.process.wait()
        return None
    except BaseException as exc:
        supervisor.kill()
        logger.exception("run %s: the supervisor failed", run_id)
        exc.run_attempt = supervisor.attempt  # fences the task's on_failure too
        with contextlib.suppress(StaleAttempt, DatabaseError):
            runs.run_fail_if_live(
                run_id=run_id,
                error=f"the worker failed while running it: {type(exc).__name__}: {exc}",
                attempt=supervisor.attempt,
            )
        raise
    finally:
        supervisor.lock.release()
