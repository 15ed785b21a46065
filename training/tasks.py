"""Celery entry points of the training app: fetch the run by id, hand it to the runner (DESIGN.md,
Jobs and workers). Services enqueue through ``enqueue_run`` inside ``transaction.on_commit``.

The services import this module (to enqueue), so the tasks reach the runner and the services only
when they run: their function-local imports are the documented exceptions of
tests/training/test_service_imports.py."""

import contextlib
import logging
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from labeling.tasks import BROKER_DOWN, send_or_unavailable

logger = logging.getLogger(__name__)
QUEUE_GPU = "gpu"  # generation, training, evaluation: one worker process per GPU
QUEUE_DEFAULT = "default"  # the sweep and other bookkeeping


class RunExecuteTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # The runner records its own failures; this covers a crash around it (database gone, ...).
        # ``run_attempt`` (set by the runner) fences it: a crash of a stale attempt fails nothing.
        from training.services.runs import StaleAttempt, run_fail_if_live

        run_id = kwargs.get("run_id", args[0] if args else None)
        if run_id is None:
            return
        with contextlib.suppress(StaleAttempt):
            run_fail_if_live(
                run_id=run_id,
                error=f"the worker's task {task_id} crashed: {type(exc).__name__}: {exc}",
                attempt=getattr(exc, "run_attempt", None),
            )


@shared_task(base=RunExecuteTask, name="training.run_execute", acks_late=True)
def run_execute(run_id: int) -> str | None:
    """Run one queued run to its end; a run in any other state is left alone (redelivery-safe)."""
    from training.runner import execute

    run = execute(run_id=run_id)
    return run.state if run is not None else None


# When this process's sweep last failed on the database, and when it next reached it again.
_database = {"failing": False, "back_at": None}


@shared_task(name="training.sweep_runs")
def sweep_runs() -> dict:
    """Periodic (Celery beat): resume or fail runs whose worker stopped heartbeating, re-enqueue lost runs.

    No heartbeat could be written while the database was restarting or out of reach of this sweep
    too, so staleness counts from the end of such an outage at the earliest (``not_before``).
    """
    from training.services.runs import database_up_since, runs_sweep

    try:
        up_since = database_up_since()
        if _database["failing"]:
            _database.update(failing=False, back_at=timezone.now())
        return runs_sweep(
            stale_after=timedelta(seconds=settings.RANKFORGE_RUN_STALE_AFTER_S),
            requeue_after=timedelta(seconds=settings.RANKFORGE_RUN_REQUEUE_AFTER_S),
            max_resumes=settings.RANKFORGE_RUN_MAX_RESUMES,
            not_before=max((t for t in (up_since, _database["back_at"]) if t is not None), default=None),
        )
    except DatabaseError:
        _database["failing"] = True
        raise


def enqueue_run(run_id: int, *, queue: str) -> None:
    """Send the run's task (services call this in ``transaction.on_commit``); with the broker down, the
    run stays queued and the sweep enqueues it again later."""
    send_or_unavailable(
        run_execute,
        args=[run_id],
        queue=queue,
        saved=f"run {run_id} is saved (queued)",
        then="the sweep enqueues it once the queue is back. Poll the run; do not start it again.",
    )


@shared_task(name="training.advance_sweep", acks_late=True)
def advance_sweep(sweep_id: int) -> str | None:
    """Advance one hyperparameter sweep: tell its study what its trials' runs did, start the next
    trials (idempotent under the sweep's row lock: a duplicate message changes nothing)."""
    from training.services.sweeps import sweep_advance

    sweep = sweep_advance(sweep_id=sweep_id)
    return sweep.state if sweep is not None else None


@shared_task(name="training.advance_sweeps")
def advance_sweeps() -> dict:
    """Periodic (Celery beat): advance every running sweep, so one whose trigger was lost (a worker or
    the broker down when its trial ended) goes on, and running trials' intermediate metrics reach the
    pruner."""
    from training.services.sweeps import sweeps_advance_running

    return sweeps_advance_running()


def enqueue_sweep_advance(sweep_id: int) -> None:
    """Send the sweep's advance (in ``transaction.on_commit``). Never raises: it runs after a trial's
    run changed state, in the worker that ran it; with the broker down, beat's ``advance_sweeps``
    advances the sweep a few seconds later."""
    try:
        advance_sweep.apply_async(args=[sweep_id], queue=QUEUE_DEFAULT)
    except BROKER_DOWN as exc:
        logger.warning("could not enqueue the advance of sweep %s (beat advances it): %s", sweep_id, exc)
