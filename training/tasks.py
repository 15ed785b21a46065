"""Celery entry points of the training app: fetch the run by id, hand it to the runner (DESIGN.md,
Jobs and workers). Services enqueue through ``enqueue_run`` inside ``transaction.on_commit``."""

from datetime import timedelta

from celery import Task, shared_task

QUEUE_GPU = "gpu"  # generation, training, evaluation: one worker process per GPU
QUEUE_DEFAULT = "default"  # the sweep and other bookkeeping


class RunExecuteTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # The runner records its own failures; this covers a crash around it (database gone, ...).
        from training.services.runs import run_fail_if_live

        run_id = kwargs.get("run_id", args[0] if args else None)
        if run_id is not None:
            run_fail_if_live(run_id=run_id, error=f"the worker's task {task_id} crashed: {type(exc).__name__}: {exc}")


@shared_task(base=RunExecuteTask, name="training.run_execute", acks_late=True)
def run_execute(run_id: int) -> str | None:
    """Run one queued run to its end; a run in any other state is left alone (redelivery-safe)."""
    from training.runner import execute

    run = execute(run_id=run_id)
    return run.state if run is not None else None


@shared_task(name="training.sweep_runs")
def sweep_runs() -> dict:
    """Periodic (Celery beat): resume or fail runs whose worker stopped heartbeating, re-enqueue lost runs."""
    from django.conf import settings

    from training.services.runs import runs_sweep

    return runs_sweep(
        stale_after=timedelta(seconds=settings.RANKFORGE_RUN_STALE_AFTER_S),
        requeue_after=timedelta(seconds=settings.RANKFORGE_RUN_REQUEUE_AFTER_S),
        max_resumes=settings.RANKFORGE_RUN_MAX_RESUMES,
    )


def enqueue_run(run_id: int, *, queue: str) -> None:
    run_execute.apply_async(args=[run_id], queue=queue)
