"""Runs on REAL Celery workers over Redis, against PostgreSQL, on the tiny model: comparisons appear,
events arrive in order, cancel and a killed worker end as they should and leave no process behind."""

import os
import signal
import time

import pytest
import redis

from labeling.models import Comparison
from models_registry.services import model_version_register
from training import tasks
from training.models import TERMINAL_STATES, RunState, TrainingRun
from training.services.runs import run_folder

from .conftest import FAST, process_alive, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow]

TIMEOUT = 240  # a cold worker and a cold `import transformers` on a busy 2-core machine


def start_generation(client, project, dataset, model_dir, **generation):
    """Register the tiny model in the project and make it the project's generation model, as an admin would."""
    version = model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=model_dir, fmt=None, project_id=project.pk
    )
    project.generation_model = version
    project.save(update_fields=["generation_model"])
    response = client.post(
        f"/api/projects/{project.pk}/generate/", {"dataset": dataset.pk, "generation": generation}, format="json"
    )
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def poll_events(client, run_id: int, *, until, timeout: float = TIMEOUT) -> list[dict]:
    """Poll /events/ as a client does (?after=next_after) until ``until(events)``; returns every event."""
    events: list[dict] = []
    after = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/runs/{run_id}/events/?after={after}").json()
        events += body["events"]
        after = body["next_after"]
        if until(events, body):
            return events
        if not body["has_more"]:
            time.sleep(0.3)
    raise AssertionError(f"run {run_id} timed out; events so far: {[e['type'] for e in events][-20:]}")


def finished(events, body) -> bool:
    return body["state"] in TERMINAL_STATES and not body["has_more"]


def generating(events, body) -> bool:
    return any(e["type"] == "artifact" for e in events)


def test_a_generation_run_creates_comparisons_and_its_events_arrive_in_order(
    api, admin_user, project, dataset, tiny_model_dir, start_worker, tmp_path
):
    start_worker(queues="gpu")
    client = api(admin_user)
    run_id = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=6, batch_size=2)
    tasks.enqueue_run(run_id, queue="gpu")  # a duplicate message, as a redelivery would be

    events = poll_events(client, run_id, until=finished)
    run = TrainingRun.objects.get(pk=run_id)
    assert run.state == RunState.SUCCEEDED, run.error
    # In order, none lost, none twice: the seqs a client collected are exactly 1..last_seq.
    assert [e["seq"] for e in events] == list(range(1, run.last_seq + 1))
    assert [e["payload"]["to"] for e in events if e["type"] == "state"] == ["queued", "running", "succeeded"]
    assert [e["payload"]["count"] for e in events if e["type"] == "artifact"] == [2, 4, 6]
    steps = [e["payload"]["step"] for e in events if e["type"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == 6
    assert events[-1]["type"] == "state" and events[-2]["type"] == "result"

    comparisons = Comparison.objects.filter(project=project)
    assert comparisons.count() == 6 and not comparisons.filter(prompt_row__isnull=True).exists()
    assert sorted(comparisons.values_list("prompt_row_id", flat=True)) == sorted(
        dataset.rows.values_list("pk", flat=True)
    )
    for comparison in comparisons:
        completions = list(comparison.completions.all())
        assert len(completions) == 3
        assert {c.model_name for c in completions} == {"tiny-causal v1"}
        assert {c.seed for c in completions} and all(c.generation_params["max_new_tokens"] == 6 for c in completions)
    assert run.outputs["comparisons_created"] == 6 and (run.progress_step, run.progress_total) == (6, 6)
    assert not process_alive(run.pid)

    # The duplicate message reaches the worker after the run and starts nothing.
    log = tmp_path / "worker-w.log"
    wait_for(lambda: f"run {run_id} is succeeded, not queued" in log.read_text(), timeout=30, message="duplicate")
    assert TrainingRun.objects.get(pk=run_id).last_seq == run.last_seq


def test_cancel_mid_run_ends_cancelled_and_leaves_no_process(
    api, admin_user, project, dataset, tiny_model_dir, start_worker
):
    start_worker(queues="gpu")
    client = api(admin_user)
    run_id = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=300, batch_size=1)
    poll_events(client, run_id, until=generating)
    pid = TrainingRun.objects.get(pk=run_id).pid
    assert process_alive(pid)

    response = client.post(f"/api/runs/{run_id}/cancel/")
    assert response.status_code == 202 and response.json()["state"] == "cancelling"
    events = poll_events(client, run_id, until=finished, timeout=30)
    run = TrainingRun.objects.get(pk=run_id)
    assert run.state == RunState.CANCELLED
    # The API's cancel and the worker's events interleave without a gap or a repeat.
    assert [e["seq"] for e in events] == list(range(1, run.last_seq + 1))
    assert [e["payload"]["to"] for e in events if e["type"] == "state"][-2:] == ["cancelling", "cancelled"]
    assert not process_alive(pid)
    # What finished before the cancel is kept (also a batch written just before the signal, whose
    # artifact event never came); nothing after it.
    done = [e for e in events if e["type"] == "artifact"]
    complete_lines = (run_folder(run_id) / "completions.jsonl").read_text().count("\n")
    stored = Comparison.objects.filter(project=project).count()
    assert 1 <= done[-1]["payload"]["count"] <= stored == complete_lines < 6


def test_a_killed_worker_fails_the_run_within_the_heartbeat_timeout(
    api, admin_user, project, dataset, tiny_model_dir, start_worker
):
    worker = start_worker(queues="gpu", name="gpu")
    # Runs the periodic sweep every second; with no resumes allowed a lost run fails.
    start_worker(queues="default", beat=True, name="sweeper", RANKFORGE_RUN_MAX_RESUMES="0")
    client = api(admin_user)
    run_id = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=300, batch_size=1)
    poll_events(client, run_id, until=generating)
    pid = TrainingRun.objects.get(pk=run_id).pid

    os.killpg(worker.pid, signal.SIGKILL)  # the worker, not the run: that has its own session
    killed = time.monotonic()
    run = wait_for(
        lambda: (r := TrainingRun.objects.get(pk=run_id)).state != RunState.RUNNING and r,
        timeout=30,
        interval=0.1,
        message="the sweep to fail the run",
    )
    took = time.monotonic() - killed
    assert run.state == RunState.FAILED
    assert run.error.startswith("worker lost: heartbeat stale since ")
    budget = float(FAST["RANKFORGE_RUN_STALE_AFTER_S"]) + float(FAST["RANKFORGE_RUN_SWEEP_INTERVAL_S"])
    print(f"run failed {took:.1f} s after the worker was killed")
    assert took < budget + 3, f"failed {took:.1f} s after the kill; stale after + sweep interval = {budget} s"
    # The orphaned run process noticed its parent was gone and exited.
    wait_for(lambda: not process_alive(pid), timeout=5, message=f"run process {pid} to exit")


def test_a_run_whose_worker_was_killed_resumes_on_another_worker_and_creates_each_comparison_once(
    api, admin_user, project, dataset, tiny_model_dir, start_worker
):
    first = start_worker(queues="gpu", name="gpu-1")
    start_worker(queues="default", beat=True, name="sweeper", RANKFORGE_RUN_MAX_RESUMES="1")
    client = api(admin_user)
    run_id = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=200, batch_size=1)
    poll_events(client, run_id, until=generating)
    os.killpg(first.pid, signal.SIGKILL)
    wait_for(
        lambda: TrainingRun.objects.get(pk=run_id).attempt == 2,
        timeout=30,
        interval=0.1,
        message="the sweep to requeue the run",
    )
    start_worker(queues="gpu", name="gpu-2")
    events = poll_events(client, run_id, until=finished)
    run = TrainingRun.objects.get(pk=run_id)
    assert run.state == RunState.SUCCEEDED, run.error
    states = [(e["payload"]["from"], e["payload"]["to"]) for e in events if e["type"] == "state"]
    assert states == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    logs = [e["payload"].get("message", "") for e in events if e["type"] == "log"]
    assert any("attempt 2: resuming" in message for message in logs)
    # The second attempt skipped the prompts the first finished; every dataset row has one comparison.
    assert any("prompts already have completions; skipping them" in message for message in logs)
    assert Comparison.objects.filter(project=project).count() == 6
    assert sorted(Comparison.objects.values_list("prompt_row_id", flat=True)) == sorted(
        dataset.rows.values_list("pk", flat=True)
    )


def test_a_bad_config_is_refused_at_the_api_and_nothing_is_queued(api, platform_admin, redis_broker):
    queue = redis.Redis.from_url(redis_broker)
    before = queue.llen("gpu")
    response = api(platform_admin).post(
        "/api/runs/",
        {"kind": "generate", "config": {"model_path": "m", "prompts_file": "p.jsonl", "max_new_tokens": 0}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "config.max_new_tokens: must be 1..4096, got 0"
    assert response.json()["errors"] == {"config.max_new_tokens": ["must be 1..4096, got 0"]}
    assert not TrainingRun.objects.exists() and queue.llen("gpu") == before
