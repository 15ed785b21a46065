"""Training runs: start (``run_start``: any kind, its inputs resolved by its spec in ``training.kinds``)
and create, the one state-changing function, the event log, cancel, the sweep.

States (DESIGN.md, Jobs and workers)::

    queued ──> running ──> succeeded | failed
      │           │
      │           └──> cancelling ──> cancelled  (or succeeded / failed if it ended first)
      └──> cancelled | failed

``run_transition`` is the only code that changes ``TrainingRun.state``: it locks the row
(``select_for_update``), refuses a transition the table does not allow (409), and appends a
``state`` event in the same transaction. ``only_from`` makes a transition a no-op instead of an
error when the run is elsewhere: the worker's first step is ``queued -> running only_from queued``,
so a redelivered message can never start a run twice.

Attempts are fenced: the sweep requeues a run whose worker went quiet with ``attempt + 1``, and
every write a supervisor makes (events, heartbeat, its transitions) names the attempt it runs; a
write from an older attempt raises ``StaleAttempt`` and changes nothing, so a supervisor that was
only paused or cut off learns that the run is no longer its own and stops.
"""

import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from common import storage
from common.exceptions import Conflict, ServiceError
from training import tasks
from training.ml.configs import ConfigError, available_configs, config_for
from training.models import LIVE_STATES, TERMINAL_STATES, RunEvent, RunEventType, RunKind, RunState, TrainingRun
from training.services.lookups import RUNS_DIR as RUNS_DIR  # re-exported (the runner names runs.RUNS_DIR)
from training.services.lookups import run_folder, run_published_files, run_relpath
from training.services.run_inputs import resolve_inputs

logger = logging.getLogger(__name__)

S = RunState
TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    # running -> queued: the sweep requeues a run whose worker was lost, to resume it.
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLING, S.QUEUED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
MAX_ERROR_CHARS = 10_000


class IllegalTransition(Conflict):
    pass


class StaleAttempt(Conflict):
    """A supervisor wrote for an attempt the sweep has since replaced; nothing was written."""

    def __init__(self, run_id: int, attempt: int, current: int):
        super().__init__(f"Run {run_id} is on attempt {current}; attempt {attempt} may not write to it any more.")
        self.run_id, self.attempt, self.current = run_id, attempt, current


def _fence(run: TrainingRun, attempt: int | None) -> None:
    if attempt is not None and run.attempt != attempt:
        raise StaleAttempt(run.pk, attempt, run.attempt)


def _spec(kind: str):
    """The kind's spec. The one function-local import of training.services (documented in
    tests/training/test_service_imports.py): the registry names the handlers, and a handler starts
    runs (cai_revise's chained SFT, through ``run_start``), so this module cannot import the registry
    at load time."""
    from training.kinds import kind_spec

    return kind_spec(kind)


def _queue(kind: str) -> str:
    spec = _spec(kind)
    return spec.queue if spec is not None else tasks.QUEUE_GPU


def _append(run: TrainingRun, events: Iterable[tuple[str, dict]]) -> list[RunEvent]:
    """Append events to a run whose row the caller holds locked; seqs continue without gaps."""
    rows = []
    for event_type, payload in events:
        run.last_seq += 1
        rows.append(RunEvent(run=run, seq=run.last_seq, type=event_type, payload=payload))
    return RunEvent.objects.bulk_create(rows)


def _locked(run_id: int) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        raise ServiceError(f"Run {run_id} does not exist.", status=404)
    return run


@transaction.atomic
def run_transition(
    *,
    run_id: int,
    to: str,
    only_from: Iterable[str] | None = None,
    only_if: Callable[[TrainingRun], bool] | None = None,
    error: str | None = None,
    outputs: dict | None = None,
    worker_host: str | None = None,
    pid: int | None = None,
    note: str | None = None,
    attempt: int | None = None,
) -> TrainingRun | None:
    """Move a run to ``to`` and record it as a ``state`` event; the only writer of ``state``.

    Returns None, changing nothing, when the run's state is not in ``only_from`` or ``only_if(run)``
    is false; otherwise a transition the table refuses raises IllegalTransition (409).
    ``outputs`` are merged into the run's outputs. A supervisor passes its ``attempt``: a stale one
    raises StaleAttempt.
    """
    run = _locked(run_id)
    _fence(run, attempt)
    if only_from is not None and run.state not in set(only_from):
        return None
    if only_if is not None and not only_if(run):
        return None
    if to not in TRANSITIONS[run.state]:
        raise IllegalTransition(f"Run {run.pk} is {run.state}; it cannot become {to}.")
    now = timezone.now()
    previous = run.state
    run.state = to
    fields = ["state", "last_seq"]
    if to == S.RUNNING:
        run.started_at = run.heartbeat_at = now
        fields += ["started_at", "heartbeat_at"]
    if to in TERMINAL_STATES:
        run.finished_at = now
        fields.append("finished_at")
    if error is not None:
        run.error = error[-MAX_ERROR_CHARS:] if len(error) > MAX_ERROR_CHARS else error
        fields.append("error")
    if outputs:
        run.outputs = {**run.outputs, **outputs}
        fields.append("outputs")
    if worker_host is not None:
        run.worker_host = worker_host[:255]
        fields.append("worker_host")
    if pid is not None:
        run.pid = pid
        fields.append("pid")
    payload: dict[str, Any] = {"from": previous, "to": to}
    if error:
        payload["error"] = run.error
    if note:
        payload["note"] = note
    _append(run, [(RunEventType.STATE, payload)])
    run.save(update_fields=fields)
    if to in TERMINAL_STATES and run.sweep_id is not None:  # a sweep's trial ended: its sweep goes on
        sweep_id = run.sweep_id
        transaction.on_commit(lambda: tasks.enqueue_sweep_advance(sweep_id), robust=True)
    return run


def _config_or_400(kind: str, config: Any, *, prefix: str = "config"):
    if kind in RunKind.values and kind not in available_configs():
        message = f"{kind} runs are not available yet; available kinds: {', '.join(sorted(available_configs()))}"
        raise ServiceError(f"kind: {message}", errors={"kind": [message]})
    try:
        return config_for(kind, config)
    except ConfigError as exc:
        key = "kind" if exc.field == "kind" else f"{prefix}.{exc.field}"
        raise ServiceError(f"{key}: {exc.message}", errors={key: [exc.message]}) from None


def run_validate_config(*, kind: str, config: Any, prefix: str = "config") -> dict:
    """The config with defaults filled in, or a 400 whose message and errors name the field."""
    return _config_or_400(kind, config, prefix=prefix).to_dict()


def _set_aside_leftovers(folder: Path) -> None:
    """A fresh run id with a folder already there: leftovers of a database that was reset."""
    if folder.exists():
        aside = folder.with_name(f"{folder.name}.orphaned-{timezone.now():%Y%m%dT%H%M%S}")
        logger.warning("run folder %s already exists; moving it to %s", folder, aside)
        shutil.move(str(folder), str(aside))


def run_create(
    *,
    kind: str,
    config: dict,
    created_by,
    inputs: dict | None = None,
    project=None,
    prepare: Callable[[TrainingRun, Path], None] | None = None,
) -> TrainingRun:
    """A queued run; its task is enqueued once the transaction commits (never before, never inline).

    ``prepare(run, folder)`` may write the run's input files into its fresh folder.
    """
    validated = run_validate_config(kind=kind, config=config)
    with transaction.atomic():
        now = timezone.now()
        run = TrainingRun.objects.create(
            kind=kind,
            config=validated,
            inputs=inputs or {},
            project=project,
            created_by=created_by,
            enqueued_at=now,
            enqueue_count=1,
        )
        _append(run, [(RunEventType.STATE, {"from": None, "to": S.QUEUED})])
        run.save(update_fields=["last_seq"])
        if prepare is not None:
            folder = run_folder(run.pk)
            _set_aside_leftovers(folder)
            folder.mkdir(parents=True)
            prepare(run, folder)
            if storage.on_s3():  # the worker may be another machine: it reads its inputs from the store
                storage.publish_copy(folder, run_relpath(run.pk), names=run_published_files(folder))
        run_id, queue = run.pk, _queue(kind)
        transaction.on_commit(lambda: tasks.enqueue_run(run_id, queue=queue))
    return run


def run_start(*, kind: str, config: dict, inputs: dict, project=None, created_by) -> TrainingRun:
    """A queued run of any kind from the API (or a handler that chains one): its inputs resolved by the
    kind's spec, their files written into the run's folder, its config validated."""
    spec = _spec(kind)
    if spec is None or spec.config_class is None:
        run_validate_config(kind=kind, config=config)  # the 400 says which kinds are available
    resolved = resolve_inputs(spec=spec, inputs=inputs, config=config, project=project, requester=created_by)
    if not resolved.config and not resolved.files:
        return run_create(kind=kind, config=config, inputs=inputs, project=project, created_by=created_by)

    def write_files(run: TrainingRun, folder: Path) -> None:
        for name, rows in resolved.files.items():
            with open(folder / name, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    return run_create(
        kind=kind,
        config={**config, **resolved.config},
        inputs={**inputs, **resolved.inputs},
        project=project,
        created_by=created_by,
        prepare=write_files if resolved.files else None,
    )


@transaction.atomic
def run_cancel(*, run_id: int, by=None) -> TrainingRun:
    """Queued: cancelled at once. Running: cancelling (the worker stops the process). Cancelling:
    unchanged. Finished: 409."""
    run = _locked(run_id)
    who = f"cancelled by {by.get_username()}" if by is not None else "cancelled"
    if run.state == S.QUEUED:
        return run_transition(run_id=run_id, to=S.CANCELLED, note=who)
    if run.state == S.RUNNING:
        return run_transition(run_id=run_id, to=S.CANCELLING, note=who)
    if run.state == S.CANCELLING:
        return run
    raise Conflict(f"Run {run.pk} already {run.state}; there is nothing to cancel.")


def _finite(value: Any) -> Any:
    """JSON for PostgreSQL's jsonb, which refuses NaN and Infinity: those become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


@transaction.atomic
def run_events_append(
    *,
    run_id: int,
    events: list[tuple[str, dict]],
    progress: tuple[int, int | None] | None = None,
    heartbeat: bool = True,
    pid: int | None = None,
    attempt: int | None = None,
) -> tuple[str, list[RunEvent]]:
    """Store a batch of the run's events in order (and progress, heartbeat, pid while it is live).

    Returns the run's state, so the worker learns of a cancel in the same round trip, and the rows.
    A supervisor passes its ``attempt``: a stale one raises StaleAttempt and stores nothing.
    """
    run = _locked(run_id)
    _fence(run, attempt)
    rows = _append(run, [(t, _finite(p)) for t, p in events])
    fields = ["last_seq"]
    if run.state in LIVE_STATES:
        if heartbeat:
            run.heartbeat_at = timezone.now()
            fields.append("heartbeat_at")
        if progress is not None:
            run.progress_step, run.progress_total = progress
            fields += ["progress_step", "progress_total"]
        if pid is not None:
            run.pid = pid
            fields.append("pid")
    run.save(update_fields=fields)
    return run.state, rows


def run_heartbeat(*, run_id: int, attempt: int | None = None) -> str | None:
    """Note that the worker is alive; returns the run's state (a cancel shows up here), None when the
    run is gone. A supervisor passes its ``attempt``: a stale one raises StaleAttempt."""
    live = TrainingRun.objects.filter(pk=run_id, state__in=LIVE_STATES)
    if attempt is not None:
        live = live.filter(attempt=attempt)
    live.update(heartbeat_at=timezone.now())
    row = TrainingRun.objects.filter(pk=run_id).values_list("state", "attempt").first()
    if row is None:
        return None
    if attempt is not None and row[1] != attempt:
        raise StaleAttempt(run_id, attempt, row[1])
    return row[0]


def run_fail_if_live(*, run_id: int, error: str, attempt: int | None = None) -> TrainingRun | None:
    """A crash around the runner: fail the run unless it already finished (or, given the
    supervisor's ``attempt``, unless another attempt holds it: StaleAttempt)."""
    return run_transition(run_id=run_id, to=S.FAILED, only_from=LIVE_STATES | {S.QUEUED}, error=error, attempt=attempt)


def database_up_since() -> datetime | None:
    """When the database server last started (PostgreSQL), else None: nobody could write a heartbeat
    before, so the sweep counts staleness from this moment at the earliest."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        return cursor.fetchone()[0]


def _requeue_due(run: TrainingRun, now, requeue_after: timedelta) -> bool:
    # Backs off (x2 per try, at most x64) so a run waiting behind a long one gets few duplicate messages.
    wait = requeue_after * (2 ** min(max(run.enqueue_count - 1, 0), 6))
    return run.state == S.QUEUED and run.enqueued_at is not None and run.enqueued_at <= now - wait


def _resume(run_id: int, *, attempt: int, stale_after: timedelta, reason: str) -> TrainingRun | None:
    """A running run whose worker is lost goes back to the queue; its next attempt resumes from what
    the last one left in the run folder (checkpoints, finished prompts)."""
    with transaction.atomic():
        run = run_transition(
            run_id=run_id,
            to=S.QUEUED,
            only_from={S.RUNNING},
            only_if=lambda r: r.heartbeat_at is not None and r.heartbeat_at < timezone.now() - stale_after,
            note=f"{reason}; requeued to resume (attempt {attempt + 1})",
        )
        if run is None:
            return None
        run.attempt = attempt + 1
        run.enqueued_at = timezone.now()
        run.enqueue_count += 1
        run.pid = None
        run.save(update_fields=["attempt", "enqueued_at", "enqueue_count", "pid"])
        queue = _queue(run.kind)
        transaction.on_commit(lambda: tasks.enqueue_run(run_id, queue=queue))
    return run


def runs_sweep(
    *, stale_after: timedelta, requeue_after: timedelta, max_resumes: int = 0, not_before: datetime | None = None
) -> dict:
    """Recover from lost work (Celery beat runs this).

    - A running (or cancelling) run whose heartbeat is older than ``stale_after`` lost its worker.
      A running one that has been resumed fewer than ``max_resumes`` times is queued again to resume
      (from its last checkpoint); otherwise it becomes failed (cancelled if it was being cancelled),
      saying since when. ``not_before`` (the end of a database outage everyone shared: nobody could
      write a heartbeat) counts as a heartbeat of every run, so none is stale until ``stale_after``
      after it.
    - A run left queued longer than ``requeue_after`` may have lost its message (the SQLAlchemy
      broker does not redeliver after a worker dies): it is enqueued again. A duplicate message is
      harmless: the task's first step does nothing unless the run is still queued.
    """
    now = timezone.now()
    failed = resumed = 0
    stale_ids = []
    if not_before is None or not_before < now - stale_after:
        stale_ids = list(
            TrainingRun.objects.filter(state__in=LIVE_STATES, heartbeat_at__lt=now - stale_after)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    for run_id in stale_ids:
        with transaction.atomic():
            # A row someone holds locked is being written right now: not stale; and a frozen holder
            # must not stall the sweep (PostgreSQL ends its session: DB_IDLE_IN_TRANSACTION_TIMEOUT_S).
            run = TrainingRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None:
                continue
            since = run.heartbeat_at
            where = f" on {run.worker_host}" if run.worker_host else ""
            process = f" (process {run.pid})" if run.pid else ""
            if run.state == S.RUNNING and run.attempt <= max_resumes:
                reason = f"worker lost{where}{process}: heartbeat stale since {since.isoformat()}"
                if _resume(run_id, attempt=run.attempt, stale_after=stale_after, reason=reason) is not None:
                    resumed += 1
                    continue
            done = run_transition(
                run_id=run_id,
                to=S.CANCELLED if run.state == S.CANCELLING else S.FAILED,
                only_from={run.state},
                only_if=lambda r: r.heartbeat_at is not None and r.heartbeat_at < timezone.now() - stale_after,
                error=(
                    f"worker lost: heartbeat stale since {since.isoformat()}; the worker{where}{process} stopped "
                    f"reporting for more than {int(stale_after.total_seconds())} s. Start a new run."
                ),
            )
            failed += done is not None

    requeued = 0
    candidates = TrainingRun.objects.filter(state=S.QUEUED, enqueued_at__lte=now - requeue_after).order_by("pk")
    for candidate in candidates:
        if not _requeue_due(candidate, now, requeue_after):
            continue
        with transaction.atomic():
            run = _locked(candidate.pk)
            if not _requeue_due(run, now, requeue_after):
                continue
            run.enqueued_at = timezone.now()
            run.enqueue_count += 1
            _append(
                run,
                [
                    (
                        RunEventType.LOG,
                        {"level": "warning", "message": f"still queued; enqueued again (try {run.enqueue_count})"},
                    )
                ],
            )
            run.save(update_fields=["enqueued_at", "enqueue_count", "last_seq"])
            run_id, queue = run.pk, _queue(run.kind)
            transaction.on_commit(lambda run_id=run_id, queue=queue: tasks.enqueue_run(run_id, queue=queue))
        requeued += 1
    return {"failed": failed, "resumed": resumed, "requeued": requeued}
