"""Celery entry points of the labeling app: fetch by id, call a service (DESIGN.md, Jobs and workers)."""

from datetime import timedelta

from celery import Task, shared_task

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


def enqueue_snapshot_build(snapshot_id: int) -> None:
    snapshot_build.apply_async(args=[snapshot_id], queue=QUEUE)
