"""Celery entry points of the labeling app: fetch by id, call a service (DESIGN.md, Jobs and workers)."""

import logging
from datetime import timedelta

from celery import Task, shared_task
from kombu.exceptions import OperationalError

from common.exceptions import Unavailable

logger = logging.getLogger(__name__)
# What publishing raises once kombu's retries give up on an unreachable broker (kombu wraps transport
# errors in OperationalError; a bare socket error can still come through).
BROKER_DOWN = (OperationalError, ConnectionError, TimeoutError)

# Exports and imports run on CPU workers. Services pass the queue when they enqueue (a `queue` task
# attribute is deprecated in Celery 5.x and ignored from 6.0).
QUEUE = "default"


class SnapshotBuildTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # The service records its own failures; this covers a crash around it (database gone, ...).
        from labeling.services.snapshots import snapshot_mark_failed

        snapshot_id = kwargs.get("snapshot_id", args[0] if args else None)
        if snapshot_id is not None:
            snapshot_mark_failed(snapshot_id=snapshot_id, error=f"task {task_id} crashed: {type(exc).__name__}: {exc}")


@shared_task(base=SnapshotBuildTask, name="labeling.snapshot_build", acks_late=True)
def snapshot_build(snapshot_id: int) -> None:
    """Build one pending preference snapshot; a snapshot in any other state is left alone."""
    from labeling.services.snapshots import snapshot_build as build

    build(snapshot_id=snapshot_id)


@shared_task(name="labeling.sweep_snapshots")
def sweep_snapshots() -> dict:
    """Periodic (Celery beat): re-enqueue lost snapshot builds, fail builds whose worker died."""
    from django.conf import settings

    from labeling.services.snapshots import snapshots_sweep

    return snapshots_sweep(
        requeue_after=timedelta(seconds=settings.RANKFORGE_SNAPSHOT_REQUEUE_AFTER_S),
        stale_after=timedelta(seconds=settings.RANKFORGE_SNAPSHOT_STALE_AFTER_S),
    )


def send_or_unavailable(task, *, args: list, queue: str, saved: str, then: str) -> None:
    """Publish ``task``; with the broker down, a 503 that says the row is saved (``saved``, e.g. "run 3
    is saved (queued)") and what happens next (``then``), so that a client polls instead of retrying."""
    try:
        task.apply_async(args=args, queue=queue)
    except BROKER_DOWN as exc:
        logger.warning("could not enqueue %s: %s", task.name, exc)
        message = f"{saved}, but the task queue is unreachable ({exc}); {then}"
        raise Unavailable(f"Task queue unavailable: {message}", errors={"broker": [message]}) from exc


def enqueue_snapshot_build(snapshot_id: int) -> None:
    """Send the build (services call this in ``transaction.on_commit``); the sweep enqueues a build
    the broker could not take, once it is back."""
    send_or_unavailable(
        snapshot_build,
        args=[snapshot_id],
        queue=QUEUE,
        saved=f"snapshot {snapshot_id} is saved (pending)",
        then="its build is enqueued by the sweep once the queue is back. Poll the snapshot; do not create it again.",
    )
