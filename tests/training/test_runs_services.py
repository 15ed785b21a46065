"""The run state machine, the event log, cancel and the sweep, without a worker (fast, any database)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.exceptions import ServiceError
from training import tasks
from training.models import RunEvent, RunState, TrainingRun
from training.services import runs
from training.services.runs import IllegalTransition, run_transition

pytestmark = pytest.mark.django_db

S = RunState
CONFIG = {"model_path": "/models/tiny", "prompts_file": "/data/prompts.jsonl"}


@pytest.fixture
def make_run(admin_user, enqueued, django_capture_on_commit_callbacks):
    def make(state=S.QUEUED, **fields) -> TrainingRun:
        with django_capture_on_commit_callbacks(execute=True):
            run = runs.run_create(kind="generate", config=CONFIG, created_by=admin_user, **fields)
        path = {
            S.RUNNING: [S.RUNNING],
            S.CANCELLING: [S.RUNNING, S.CANCELLING],
            S.SUCCEEDED: [S.RUNNING, S.SUCCEEDED],
            S.FAILED: [S.RUNNING, S.FAILED],
            S.CANCELLED: [S.CANCELLED],
        }.get(state, [])
        for to in path:
            run_transition(run_id=run.pk, to=to)
        run.refresh_from_db()
        return run

    return make


def states(run) -> list:
    return [(e.payload["from"], e.payload["to"]) for e in run.events.filter(type="state").order_by("seq")]


def test_create_validates_fills_defaults_writes_an_event_and_enqueues_on_the_gpu_queue_after_commit(
    admin_user, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = runs.run_create(kind="generate", config=CONFIG, inputs={"note": "x"}, created_by=admin_user)
        assert enqueued == []  # not before the commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert enqueued == [(run.pk, "gpu")]
    assert run.state == S.QUEUED and run.config["k"] == 2 and run.config["max_new_tokens"] == 128
    assert run.enqueued_at is not None and run.enqueue_count == 1
    assert states(run) == [(None, "queued")]


@pytest.mark.parametrize(
    ("kind", "config", "key", "words"),
    [
        ("generate", {**CONFIG, "k": 12}, "config.k", "must be 1..9"),
        ("generate", {**CONFIG, "temprature": 1.0}, "config.temprature", "unknown option"),
        ("generate", {"model_path": "m"}, "config.prompts_file", "required"),
        ("generate", {**CONFIG, "top_p": "high"}, "config.top_p", "expected float | None"),
        ("cai_revise", {"model_path": "m", "prompts_file": "p", "principles": []}, "config.principles", "non-empty"),
        ("nonsense", {}, "kind", "unknown run kind"),
    ],
)
def test_a_bad_config_is_refused_naming_the_field(admin_user, enqueued, kind, config, key, words):
    with pytest.raises(ServiceError) as caught:
        runs.run_create(kind=kind, config=config, created_by=admin_user)
    assert caught.value.status == 400
    assert caught.value.message.startswith(f"{key}: ")
    assert words in caught.value.errors[key][0]
    assert not TrainingRun.objects.exists() and enqueued == []


def test_the_legal_paths_and_their_events(make_run):
    run = make_run(S.RUNNING)
    assert run.started_at is not None and run.heartbeat_at is not None and run.finished_at is None
    run_transition(run_id=run.pk, to=S.SUCCEEDED, outputs={"a": 1})
    run.refresh_from_db()
    assert run.state == S.SUCCEEDED and run.finished_at is not None and run.outputs == {"a": 1}
    assert states(run) == [(None, "queued"), ("queued", "running"), ("running", "succeeded")]

    run = make_run(S.CANCELLING)
    run_transition(run_id=run.pk, to=S.CANCELLED, note="exit status 143")
    assert states(run)[-2:] == [("running", "cancelling"), ("cancelling", "cancelled")]

    run = make_run(S.RUNNING)
    run_transition(run_id=run.pk, to=S.FAILED, error="CUDA out of memory; lower batch_size")
    run.refresh_from_db()
    assert run.error == "CUDA out of memory; lower batch_size"
    assert run.events.last().payload == {"from": "running", "to": "failed", "error": run.error}


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.QUEUED, S.SUCCEEDED),
        (S.QUEUED, S.CANCELLING),
        (S.CANCELLING, S.QUEUED),  # only a running run goes back to the queue (to resume)
        (S.RUNNING, S.CANCELLED),  # a running run is cancelled via cancelling
        (S.SUCCEEDED, S.FAILED),
        (S.FAILED, S.RUNNING),
        (S.CANCELLED, S.RUNNING),
        (S.CANCELLING, S.RUNNING),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(make_run, start, to):
    run = make_run(start)
    before = (run.state, run.last_seq, RunEvent.objects.count())
    with pytest.raises(IllegalTransition) as caught:
        run_transition(run_id=run.pk, to=to)
    assert caught.value.status == 409
    run.refresh_from_db()
    assert (run.state, run.last_seq, RunEvent.objects.count()) == before


def test_only_from_makes_a_transition_a_no_op_elsewhere(make_run):
    """The worker's first step: a redelivered message finds the run running (or done) and does nothing."""
    run = make_run(S.QUEUED)
    assert run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED}).state == S.RUNNING
    seq = TrainingRun.objects.get(pk=run.pk).last_seq
    assert run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED}) is None
    assert TrainingRun.objects.get(pk=run.pk).last_seq == seq
    with pytest.raises(ServiceError) as caught:
        run_transition(run_id=999_999, to=S.RUNNING)
    assert caught.value.status == 404


def test_cancel_queued_running_cancelling_and_finished(make_run, admin_user):
    queued = runs.run_cancel(run_id=make_run(S.QUEUED).pk, by=admin_user)
    assert queued.state == S.CANCELLED and queued.events.last().payload["note"] == "cancelled by alice"
    running = runs.run_cancel(run_id=make_run(S.RUNNING).pk)
    assert running.state == S.CANCELLING and running.finished_at is None
    again = runs.run_cancel(run_id=running.pk)
    assert again.state == S.CANCELLING and again.last_seq == running.last_seq  # idempotent
    for state in (S.SUCCEEDED, S.FAILED, S.CANCELLED):
        with pytest.raises(ServiceError) as caught:
            runs.run_cancel(run_id=make_run(state).pk)
        assert caught.value.status == 409 and "nothing to cancel" in caught.value.message


def test_events_get_gapless_seqs_progress_and_heartbeat_while_live(make_run):
    run = make_run(S.RUNNING)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    state, rows = runs.run_events_append(
        run_id=run.pk,
        events=[("progress", {"step": 1, "total": 4}), ("metric", {"name": "loss", "value": float("nan")})],
        progress=(1, 4),
        pid=4242,
    )
    assert state == S.RUNNING and [r.seq for r in rows] == [3, 4]
    run.refresh_from_db()
    assert (run.progress_step, run.progress_total, run.pid, run.last_seq) == (1, 4, 4242, 4)
    assert run.heartbeat_at > timezone.now() - timedelta(seconds=5)
    assert rows[1].payload["value"] is None  # NaN is not JSON PostgreSQL accepts
    assert list(run.events.values_list("seq", flat=True)) == [1, 2, 3, 4]

    run_transition(run_id=run.pk, to=S.FAILED)
    state, rows = runs.run_events_append(run_id=run.pk, events=[("log", {"message": "late"})], progress=(2, 4))
    run.refresh_from_db()
    assert state == S.FAILED and rows[0].seq == 6 and run.progress_step == 1  # stored, but no progress


def test_heartbeat_reports_the_state(make_run):
    run = make_run(S.RUNNING)
    assert runs.run_heartbeat(run_id=run.pk) == S.RUNNING
    runs.run_cancel(run_id=run.pk)
    assert runs.run_heartbeat(run_id=run.pk) == S.CANCELLING


def test_sweep_fails_stale_runs_and_cancels_stale_cancelling_ones(make_run):
    stale, fresh, cancelling = make_run(S.RUNNING), make_run(S.RUNNING), make_run(S.CANCELLING)
    old = timezone.now() - timedelta(minutes=10)
    TrainingRun.objects.filter(pk__in=[stale.pk, cancelling.pk]).update(heartbeat_at=old, worker_host="gpu-3", pid=77)
    result = runs.runs_sweep(stale_after=timedelta(minutes=2), requeue_after=timedelta(hours=1))
    assert result == {"failed": 2, "resumed": 0, "requeued": 0}
    stale.refresh_from_db()
    assert stale.state == S.FAILED
    assert stale.error.startswith(f"worker lost: heartbeat stale since {old.isoformat()}")
    assert "gpu-3 (process 77)" in stale.error
    assert TrainingRun.objects.get(pk=cancelling.pk).state == S.CANCELLED
    assert TrainingRun.objects.get(pk=fresh.pk).state == S.RUNNING
    # Nothing left to do: a second sweep changes nothing.
    assert runs.runs_sweep(stale_after=timedelta(minutes=2), requeue_after=timedelta(hours=1)) == {
        "failed": 0,
        "resumed": 0,
        "requeued": 0,
    }


def test_sweep_requeues_a_lost_run_to_resume_then_fails_it_when_resumes_are_spent(
    make_run, enqueued, django_capture_on_commit_callbacks
):
    run = make_run(S.RUNNING)
    enqueued.clear()
    old = timezone.now() - timedelta(minutes=10)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=old, worker_host="gpu-3", pid=77)
    sweep = {"stale_after": timedelta(minutes=2), "requeue_after": timedelta(hours=1), "max_resumes": 1}
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep(**sweep) == {"failed": 0, "resumed": 1, "requeued": 0}
    run.refresh_from_db()
    assert (run.state, run.attempt, run.pid, run.enqueue_count) == (S.QUEUED, 2, None, 2)
    assert enqueued == [(run.pk, "gpu")]
    note = run.events.filter(type="state").last().payload
    assert note["to"] == S.QUEUED and "requeued to resume (attempt 2)" in note["note"] and "gpu-3" in note["note"]
    # The second attempt starts, and its worker is lost too: resumes are spent, so it fails.
    run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED})
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep(**sweep) == {"failed": 1, "resumed": 0, "requeued": 0}
    run.refresh_from_db()
    assert run.state == S.FAILED and run.error.startswith("worker lost")
    assert states(run) == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "failed"),
    ]


def test_sweep_requeues_runs_left_queued_with_backoff(make_run, enqueued, django_capture_on_commit_callbacks):
    run, young = make_run(S.QUEUED), make_run(S.QUEUED)
    enqueued.clear()
    TrainingRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(minutes=3))
    after = timedelta(minutes=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep(stale_after=after, requeue_after=after)["requeued"] == 1
    assert enqueued == [(run.pk, "gpu")]
    run.refresh_from_db()
    assert run.enqueue_count == 2 and run.events.last().payload["message"] == "still queued; enqueued again (try 2)"
    # The next try waits twice as long: 3 minutes later is not enough, 5 is.
    TrainingRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(minutes=3))
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep(stale_after=after, requeue_after=after)["requeued"] == 0
    TrainingRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep(stale_after=after, requeue_after=after)["requeued"] == 1
    assert [run_id for run_id, _ in enqueued] == [run.pk, run.pk] and young.pk not in dict(enqueued)


def test_the_sweep_task_uses_the_settings_and_beat_schedules_it(settings, monkeypatch):
    seen = {}
    monkeypatch.setattr(runs, "runs_sweep", lambda **kw: seen.update(kw) or {"failed": 0, "requeued": 0})
    settings.RANKFORGE_RUN_STALE_AFTER_S = 7
    settings.RANKFORGE_RUN_REQUEUE_AFTER_S = 9
    settings.RANKFORGE_RUN_MAX_RESUMES = 2
    assert tasks.sweep_runs() == {"failed": 0, "requeued": 0}
    # Staleness counts from the database server's start at the earliest (None on SQLite).
    assert seen.pop("not_before") == runs.database_up_since()
    assert seen == {"stale_after": timedelta(seconds=7), "requeue_after": timedelta(seconds=9), "max_resumes": 2}
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-runs"]
    assert entry["task"] == tasks.sweep_runs.name and entry["options"]["queue"] == "default"
    assert settings.CELERY_TASK_ROUTES[tasks.run_execute.name] == {"queue": "gpu"}
    assert tasks.run_execute.acks_late is True


def test_a_crash_around_the_runner_fails_the_run_through_on_failure(make_run):
    run = make_run(S.RUNNING)
    tasks.run_execute.on_failure(RuntimeError("db gone"), "task-1", (run.pk,), {}, None)
    run.refresh_from_db()
    assert run.state == S.FAILED and run.error == "the worker's task task-1 crashed: RuntimeError: db gone"
    done = make_run(S.SUCCEEDED)
    tasks.run_execute.on_failure(RuntimeError("late"), "task-2", (done.pk,), {}, None)
    assert TrainingRun.objects.get(pk=done.pk).state == S.SUCCEEDED
