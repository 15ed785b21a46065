"""Snapshot builds (and run creation) under faults, on real PostgreSQL, Redis and a real Celery worker.

- A build the sweep failed as stale can never turn ``ready`` afterwards: its last write checks, under
  the row lock, that the build still holds the claim it started with.
- A broker that is down at commit gives a clear 503 (with Retry-After), not a 500; the snapshot stays
  ``pending`` (the run ``queued``) and the sweep enqueues it once the broker is back, built once.
"""

import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from django.db import connection, transaction

from config.celery_app import app as celery_app
from labeling import pairs
from labeling.models import PreferenceSnapshot, SnapshotStatus
from labeling.services.snapshots import snapshot_build, snapshot_folder, snapshots_sweep
from labeling.tasks import enqueue_snapshot_build, sweep_snapshots
from training.models import RunState, TrainingRun
from training.services.runs import runs_sweep

from .factories import ai_ranked_project

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused at once


def _reset_publisher() -> None:
    """Forget the pooled broker connections (and the sender that captured the retry policy)."""
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
        amqp.__dict__.pop("send_task_message", None)


@contextmanager
def broker_at(url: str):
    """Publish to ``url`` with the real Redis transport, retrying once, quickly (Celery reads the
    CELERY_BROKER_URL environment variable before its own setting)."""
    previous = os.environ.get("CELERY_BROKER_URL"), celery_app.conf.task_publish_retry_policy
    os.environ["CELERY_BROKER_URL"] = url
    celery_app.conf.task_publish_retry_policy = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.1,
        "interval_max": 0.1,
    }
    _reset_publisher()
    try:
        yield
    finally:
        if previous[0] is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous[0]
        celery_app.conf.task_publish_retry_policy = previous[1]
        _reset_publisher()


def wait_until(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_a_build_the_sweep_failed_never_turns_ready(make_user):
    """The build is held mid-read (a table lock), the sweep fails it as stale, then the build finishes."""
    _, project = ai_ranked_project(make_user)
    snapshot = PreferenceSnapshot.objects.create(
        project=project, version=1, options=pairs.PairOptions.from_dict({"sources": ["ai"]}).to_dict()
    )
    result: dict = {}

    def build():
        try:
            result["snapshot"] = snapshot_build(snapshot_id=snapshot.pk)
        except BaseException as exc:  # reported below
            result["error"] = exc
        finally:
            connection.close()

    worker = threading.Thread(target=build)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE labeling_comparison IN ACCESS EXCLUSIVE MODE")
        worker.start()

        def build_waits_on_the_lock() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                    " WHERE c.relname = 'labeling_comparison' AND NOT l.granted"
                )
                return cursor.fetchone()[0] > 0

        wait_until(build_waits_on_the_lock, timeout=30, what="the build to claim the snapshot and block reading")
        assert PreferenceSnapshot.objects.get(pk=snapshot.pk).status == SnapshotStatus.BUILDING
        assert snapshots_sweep(requeue_after=timedelta(hours=1), stale_after=timedelta(0)) == {
            "requeued": 0,
            "failed": 1,
        }
    # The commit releases the lock: the build reads, writes its files, and tries to finish.
    worker.join(timeout=60)
    assert not worker.is_alive() and "error" not in result, result
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.FAILED and "the worker building it stopped" in snapshot.error
    assert result["snapshot"].status == SnapshotStatus.FAILED and snapshot.path == ""
    # Its files were dropped: no folder that looks like a built snapshot, no staging leftovers.
    folder = snapshot_folder(snapshot)
    assert not folder.exists()
    assert not folder.parent.exists() or list(folder.parent.iterdir()) == []


@pytest.mark.redis
def test_broker_down_at_commit_is_a_503_and_the_sweep_builds_it_once(api, make_user, start_worker):
    admin, project = ai_ranked_project(make_user)
    client = api(admin)
    url = f"/api/projects/{project.id}/snapshots/"
    with broker_at(DEAD_BROKER):
        started = time.monotonic()
        response = client.post(url, {"mode": "per_labeler", "sources": ["ai"]}, format="json")
        assert time.monotonic() - started < 10
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "30"
    body = response.json()
    snapshot = PreferenceSnapshot.objects.get()
    assert body["detail"].startswith(f"Task queue unavailable: snapshot {snapshot.pk} is saved (pending)")
    assert "broker" in body["errors"]
    assert snapshot.status == SnapshotStatus.PENDING and snapshot.started_at is None

    # The broker is back: a real worker runs the sweep, which enqueues the pending build.
    start_worker(queues="default", RANKFORGE_SNAPSHOT_REQUEUE_AFTER_S="0")
    sweep_snapshots.apply_async(queue="default")
    sweep_snapshots.apply_async(queue="default")  # a second sweep may send a second message: built once still
    ready = wait_until(
        lambda: PreferenceSnapshot.objects.filter(pk=snapshot.pk, status=SnapshotStatus.READY).first(),
        timeout=90,
        what="the swept snapshot to be built",
    )
    enqueue_snapshot_build(snapshot.pk)  # a late duplicate message, as a broker restore could deliver
    # A second snapshot behind it on the same queue (one solo worker, FIFO): once it is ready, the
    # duplicates before it were handled.
    second = client.post(url, {"mode": "per_labeler", "sources": ["ai"]}, format="json")
    assert second.status_code == 202, second.json()
    wait_until(
        lambda: PreferenceSnapshot.objects.filter(pk=second.json()["id"], status=SnapshotStatus.READY).exists(),
        timeout=90,
        what="the second snapshot",
    )
    again = PreferenceSnapshot.objects.get(pk=snapshot.pk)
    assert (again.status, again.started_at, again.finished_at) == (ready.status, ready.started_at, ready.finished_at)
    assert sorted(p.name for p in snapshot_folder(snapshot).parent.iterdir()) == ["1", "2"]  # no staging leftovers
    download = client.get(f"{url}{snapshot.pk}/download/?format=jsonl&split=train")
    assert download.status_code == 200
    assert len(b"".join(download.streaming_content).decode().strip().splitlines()) == 4 * 3


@pytest.mark.redis
def test_run_create_with_the_broker_down_is_a_503_and_the_sweep_enqueues_it(api, platform_admin):
    config = {"model_path": "/models/tiny", "prompts_file": "/data/prompts.jsonl"}
    with broker_at(DEAD_BROKER):
        response = api(platform_admin).post("/api/runs/", {"kind": "generate", "config": config}, format="json")
    assert response.status_code == 503, response.content
    run = TrainingRun.objects.get()
    assert response.json()["detail"].startswith(f"Task queue unavailable: run {run.pk} is saved (queued)")
    assert run.state == RunState.QUEUED and run.enqueue_count == 1

    # With the broker back, the sweep sends the run's message to the real Redis queue (once).
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])

    def messages_for_run() -> list[bytes]:
        return [
            raw
            for raw in broker.lrange("gpu", 0, -1)
            if json.loads(raw)["headers"].get("task") == "training.run_execute"
            and json.loads(raw)["headers"].get("argsrepr") in (f"[{run.pk}]", f"({run.pk},)")
        ]

    before = len(messages_for_run())
    try:
        assert runs_sweep(stale_after=timedelta(hours=1), requeue_after=timedelta(0))["requeued"] == 1
        assert len(messages_for_run()) == before + 1
        run.refresh_from_db()
        assert run.state == RunState.QUEUED and run.enqueue_count == 2
    finally:
        for raw in messages_for_run():  # leave no message for a worker of another test
            broker.lrem("gpu", 0, raw)
