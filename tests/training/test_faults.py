"""Faults a team will meet (issue 11), injected for real with tests/faults.py: PostgreSQL restarted
mid-run, Redis restarted mid-run and with runs queued, a worker SIGKILLed mid-run, a supervisor
frozen while the sweep hands its run to a new attempt; plus the run process's parent watch under
``accelerate launch`` and its allow-listed environment.

The worker tests use tiny models and fast supervision (tests/workers.py FAST); one shows a 60 s
database outage, the others keep their outages short."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Comparison
from labeling.services.preferences import preferences_import
from labeling.services.projects import project_create
from labeling.services.snapshots import snapshot_build, snapshot_create
from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from tests.faults import kill_worker, pause_worker, pg_outage, redis_outage, resume_worker
from training import runner, tasks
from training.models import RunState, TrainingRun
from training.services import runs
from training.supervision import FolderLock, child_environment

from .conftest import process_alive, rows_jsonl, wait_for
from .test_runner import CONFIG, LIMITS, events, script  # noqa: F401 - script is a fixture
from .test_worker import TIMEOUT, finished, generating, poll_events

ROOT = django_settings.BASE_DIR
S = RunState


def on_workers(test):
    """Marks of a test on real Celery workers (PostgreSQL, Redis, a tiny model)."""
    marks = (pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow)
    for mark in marks:
        test = mark(test)
    return test


@pytest.fixture
def no_enqueue(monkeypatch):
    """In-process runs: nothing goes to the broker (a worker test later in the session would run it)."""
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: None)


def start_generation(client, project, dataset, model_dir, **generation) -> int:
    """The tiny model as the project's generation model (a shared base version), then POST generate."""
    version = model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=model_dir, fmt=None, shared=True
    )
    project.generation_model = version
    project.save(update_fields=["generation_model"])
    response = client.post(
        f"/api/projects/{project.pk}/generate/", {"dataset": dataset.pk, "generation": generation}, format="json"
    )
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def states(run_id: int) -> list[tuple[str | None, str]]:
    run = TrainingRun.objects.get(pk=run_id)
    return [(e.payload["from"], e.payload["to"]) for e in run.events.filter(type="state").order_by("seq")]


def assert_gapless(run_id: int) -> TrainingRun:
    run = TrainingRun.objects.get(pk=run_id)
    assert list(run.events.order_by("seq").values_list("seq", flat=True)) == list(range(1, run.last_seq + 1))
    return run


# -- the run's process: environment and parent watch (no database) --------------------------------


def test_the_run_process_gets_an_allow_list_of_environment_variables(settings):
    settings.RANKFORGE_RUN_ENV_ALLOW = "MY_PLUGIN_*,EXTRA_ONE"
    worker_env = {
        "PATH": "/usr/bin",
        "HOME": "/home/w",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/scratch",
        "PYTHONPATH": "/opt/lib",
        "HF_HOME": "/cache/hf",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TORCH_HOME": "/cache/torch",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "NCCL_DEBUG": "WARN",
        "OMP_PROC_BIND": "true",
        "MY_PLUGIN_MODE": "x",
        "EXTRA_ONE": "y",
        # What a worker holds and a training run must never see:
        "DATABASE_URL": "postgres://u:secret@db/rf",
        "SECRET_KEY": "django-secret",
        "CELERY_BROKER_URL": "redis://:secret@redis:6379/0",
        "CELERY_RESULT_BACKEND": "redis://:secret@redis:6379/1",
        "REDIS_URL": "redis://:secret@redis:6379/0",
        "AWS_ACCESS_KEY_ID": "AKIA...",
        "AWS_SECRET_ACCESS_KEY": "s3-secret",
        "AWS_STORAGE_BUCKET_NAME": "models",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GITHUB_TOKEN": "ghp_...",
        "EXTRA_ONE_MORE": "not named",
        "RANK": "3",  # accelerate sets the ranks' own; a stale one from the worker must not leak
    }
    env = child_environment(threads=2, source=worker_env)
    assert env["PYTHONPATH"] == os.pathsep.join([str(ROOT), "/opt/lib"])
    assert env["RANKFORGE_PARENT_PID"] == str(os.getpid())
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    kept = {k for k in worker_env if k in env}
    assert kept == {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "PYTHONPATH",
        "HF_HOME",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "TORCH_HOME",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_DEBUG",
        "OMP_PROC_BIND",
        "MY_PLUGIN_MODE",
        "EXTRA_ONE",
    }
    assert set(env) - kept == {
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TOKENIZERS_PARALLELISM",
        "PYTHONUNBUFFERED",
        "RANKFORGE_PARENT_PID",
    }


# A worker (W) starts a launcher (L) in its own session, as the runner starts `accelerate launch`;
# L starts the rank (R), which watches W, the pid the worker put in RANKFORGE_PARENT_PID.
RANK = (
    "import os, time\n"
    "from training.ml import cli\n"
    "cli._watch_parent(int(os.environ['RANKFORGE_PARENT_PID']), interval=0.1)\n"
    "time.sleep(60)\n"
)
LAUNCHER = (
    "import subprocess, sys, time\n"
    f"rank = subprocess.Popen([sys.executable, '-c', {RANK!r}])\n"
    "print(rank.pid, flush=True)\n"
    "rank.wait()\n"
    "time.sleep(60)\n"  # the launcher outlives its rank: the test sees who noticed what
)
WORKER_SCRIPT = (
    "import os, subprocess, sys, time\n"
    "env = {**os.environ, 'RANKFORGE_PARENT_PID': str(os.getpid())}\n"
    f"launcher = subprocess.Popen([sys.executable, '-c', {LAUNCHER!r}], start_new_session=True, env=env,"
    " stdout=subprocess.PIPE, text=True)\n"
    "print(launcher.pid, launcher.stdout.readline().strip(), flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.mark.parametrize("dies", ["worker", "launcher"])
def test_under_accelerate_launch_a_rank_watches_the_worker_through_the_launcher(dies):
    worker = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    launcher, rank = map(int, worker.stdout.readline().split())
    try:
        time.sleep(1.0)  # ten watch intervals: the rank's parent is the launcher, and that is fine
        assert process_alive(rank), "the rank stopped while its worker was alive"
        os.kill(worker.pid if dies == "worker" else launcher, signal.SIGKILL)
        wait_for(lambda: not process_alive(rank), timeout=5, message=f"the rank to notice the {dies} is gone")
        if dies == "worker":
            assert process_alive(launcher)  # the launcher did not stop it: the rank's own watch did
    finally:
        for pid in (rank, launcher, worker.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait()


def test_a_checkpoint_cut_off_by_a_kill_is_skipped_when_the_next_attempt_resumes(tmp_path):
    from training.ml.hf_training import resume_checkpoint

    assert resume_checkpoint(tmp_path) is None
    for step, complete in ((5, True), (10, True), (15, False)):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        if complete:  # the Trainer writes trainer_state.json last
            (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    assert resume_checkpoint(tmp_path) == str(tmp_path / "checkpoints" / "checkpoint-10")


# -- fencing: the service refuses a stale attempt; a stale supervisor stops itself -----------------


@pytest.mark.django_db
def test_writes_from_a_stale_attempt_are_refused_and_change_nothing(staff, no_enqueue):
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    runs.run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED})
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    sweep = {"stale_after": timedelta(minutes=2), "requeue_after": timedelta(hours=1), "max_resumes": 1}
    assert runs.runs_sweep(**sweep)["resumed"] == 1
    runs.run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED}, attempt=2)  # attempt 2 starts
    before = TrainingRun.objects.get(pk=run.pk)

    with pytest.raises(runs.StaleAttempt, match=f"Run {run.pk} is on attempt 2; attempt 1 may not write"):
        runs.run_events_append(run_id=run.pk, events=[("log", {"message": "late"})], progress=(5, 9), attempt=1)
    with pytest.raises(runs.StaleAttempt):
        runs.run_heartbeat(run_id=run.pk, attempt=1)
    with pytest.raises(runs.StaleAttempt):
        runs.run_transition(run_id=run.pk, to=S.SUCCEEDED, only_from={S.RUNNING}, attempt=1)
    with pytest.raises(runs.StaleAttempt):
        runs.run_fail_if_live(run_id=run.pk, error="crashed", attempt=1)
    after = TrainingRun.objects.get(pk=run.pk)
    assert (after.state, after.last_seq, after.heartbeat_at, after.progress_step) == (
        S.RUNNING,
        before.last_seq,
        before.heartbeat_at,
        None,
    )
    # The current attempt writes as before.
    assert runs.run_heartbeat(run_id=run.pk, attempt=2) == S.RUNNING
    assert runs.run_events_append(run_id=run.pk, events=[("log", {"message": "mine"})], attempt=2)[0] == S.RUNNING


@pytest.mark.django_db
def test_a_supervisor_whose_run_was_requeued_kills_its_process_and_writes_nothing(
    staff,
    script,  # noqa: F811
    no_enqueue,
    monkeypatch,
):
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    append = runs.run_events_append
    requeued = {}

    def append_then_sweep(*, run_id, events, **kwargs):
        result = append(run_id=run_id, events=events, **kwargs)
        if any(p.get("message") == "ready" for _, p in events) and not requeued:
            # The sweep thought this worker dead (a long GC pause, a partition) and requeued the run.
            TrainingRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
            runs.runs_sweep(stale_after=timedelta(minutes=2), requeue_after=timedelta(hours=1), max_resumes=1)
            requeued["seq"] = TrainingRun.objects.get(pk=run_id).last_seq
        return result

    monkeypatch.setattr(runs, "run_events_append", append_then_sweep)
    script(
        """
        import subprocess
        child = subprocess.Popen(['sleep', '60'])
        emit('log', message=f'child {child.pid}')
        emit('log', message='ready')
        for step in range(600):
            emit('progress', step=step)
            time.sleep(0.05)
        """
    )
    started = time.monotonic()
    assert runner.execute(run_id=run.pk, limits=LIMITS) is None
    assert time.monotonic() - started < 10  # it stopped at its next write, not at the end of the script
    run = TrainingRun.objects.get(pk=run.pk)
    assert (run.state, run.attempt, run.last_seq) == (S.QUEUED, 2, requeued["seq"])  # nothing written after
    assert not process_alive(int(run.events.get(payload__message__startswith="child ").payload["message"].split()[1]))
    # The folder is free for the next attempt.
    lock = FolderLock(runs.run_folder(run.pk))
    assert lock.try_acquire()
    lock.release()


def test_a_run_folder_is_locked_while_any_process_of_the_run_lives(tmp_path):
    first = FolderLock(tmp_path)
    assert first.try_acquire()
    holder = subprocess.Popen(["sleep", "30"], pass_fds=(first.fd,))  # the run's process inherits it
    first.release()  # the supervisor is gone ...
    try:
        second = FolderLock(tmp_path)
        assert not second.try_acquire()  # ... but its run's process still holds the folder
        assert second.holder() == f"{socket.gethostname()} {os.getpid()}"
        holder.kill()
        holder.wait()
        assert second.try_acquire()
        second.release()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sweep_passes_over_a_run_whose_row_a_frozen_writer_holds_instead_of_waiting(staff, no_enqueue):
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    runs.run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED})
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    sweep = {"stale_after": timedelta(minutes=2), "requeue_after": timedelta(hours=1), "max_resumes": 1}
    locked, release = threading.Event(), threading.Event()

    def frozen_writer():  # a supervisor stopped inside run_events_append's transaction
        with transaction.atomic():
            TrainingRun.objects.select_for_update().get(pk=run.pk)
            locked.set()
            release.wait(30)
        connection.close()

    holder = threading.Thread(target=frozen_writer)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert runs.runs_sweep(**sweep)["resumed"] == 0
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join()
    assert runs.runs_sweep(**sweep)["resumed"] == 1
    # PostgreSQL ends a session left idle in a transaction (a frozen process's) after a while.
    with connection.cursor() as cursor:
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        assert cursor.fetchone()[0] == "5min"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_supervisor_heartbeats_while_the_outputs_are_stored(
    staff,
    script,  # noqa: F811
    no_enqueue,
    monkeypatch,
):
    """Registering a large model can take longer than stale_after: the sweep must not requeue it meanwhile."""
    seen = []

    class SlowRegistrar:  # stands in for a registrar moving or uploading a large model
        def on_artifact(self, event):
            return 0

        def finish(self, *, result, succeeded):
            for _ in range(3):
                seen.append(TrainingRun.objects.get(pk=run.pk).heartbeat_at)
                time.sleep(0.5)
            return {"registered": []}

    monkeypatch.setitem(runner.HANDLERS, "generate", lambda run, folder: SlowRegistrar())
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    script("emit('result', prompts=0)")
    assert runner.execute(run_id=run.pk, limits=LIMITS).state == S.SUCCEEDED
    assert seen[0] < seen[1] < seen[2]


# -- database restarts ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_supervisor_rides_out_a_database_restart_and_stores_every_event(
    staff,
    script,  # noqa: F811
    no_enqueue,
):
    """In process (a scripted run): the supervise loop keeps reading while PostgreSQL is down and
    stores the events it kept once it is back."""
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    script(
        """
        for step in range(1, 41):
            emit('progress', step=step, total=40)
            time.sleep(0.15)
        emit('result', steps=40)
        """
    )
    outage = pg_outage(3)
    threading.Timer(1.5, outage.run).start()
    done = runner.execute(run_id=run.pk, limits=LIMITS)
    while outage.up_at is None:  # (the run may end before the server is back)
        time.sleep(0.1)
    assert done is not None and done.state == S.SUCCEEDED, done and done.error
    run = assert_gapless(run.pk)
    assert [p["step"] for _, p in events(run, "progress")] == list(range(1, 41))
    assert states(run.pk) == [(None, "queued"), ("queued", "running"), ("running", "succeeded")]
    assert any("database was out of reach 1 time(s)" in p["message"] for _, p in events(run, "log"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sweep_does_not_count_a_database_restart_against_a_run(staff, settings, no_enqueue):
    settings.RANKFORGE_RUN_STALE_AFTER_S = 4
    settings.RANKFORGE_RUN_MAX_RESUMES = 1
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    runs.run_transition(run_id=run.pk, to=S.RUNNING, only_from={S.QUEUED})
    # The last heartbeat before the outage; the outage makes it older than stale_after.
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=2))
    pg_outage(3).run()
    assert tasks.sweep_runs()["resumed"] == 0  # its supervisor gets stale_after to write one
    assert TrainingRun.objects.get(pk=run.pk).state == S.RUNNING
    # Its supervisor does not come back: stale_after after the restart, the run is stale after all.
    wait_for(lambda: tasks.sweep_runs()["resumed"] == 1, timeout=10, interval=0.5, message="the sweep to requeue")
    run = TrainingRun.objects.get(pk=run.pk)
    assert (run.state, run.attempt) == (S.QUEUED, 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_web_answers_503_while_the_database_is_down_and_reconnects_after_it_without_a_500(
    api, admin_user, project, tmp_path
):
    """A real gunicorn (one sync worker, persistent connections as in production) across a restart."""
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=admin_user)
    db = connection.settings_dict
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SECRET_KEY": "web-test",
        "DB_CONN_MAX_AGE": "600",
    }
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 - closed below
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answer() -> http.client.HTTPResponse:
        web_connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            web_connection.request(
                "GET", f"/api/projects/{project.pk}/", headers={"Authorization": f"Token {token.key}"}
            )
            response = web_connection.getresponse()
            response.read()
            return response
        finally:
            web_connection.close()

    def get() -> int:
        return answer().status

    def up():
        try:
            return get() == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.3, message="gunicorn to answer")
        with pg_outage(2):
            # While the database is down: a 503 that tells the client when to retry, not a 500.
            during = answer()
        assert during.status == 503 and during.getheader("Retry-After") == "5"
        assert [get() for _ in range(3)] == [200, 200, 200]
    finally:
        web.terminate()
        web.wait(timeout=20)
        log.seek(0)
        print(log.read()[-3000:])
        log.close()


# -- on real workers --------------------------------------------------------------------------------


@on_workers
def test_a_run_on_a_worker_rides_out_a_60_s_database_outage(
    api, admin_user, project, dataset, tiny_model_dir, start_worker
):
    start_worker(queues="gpu", name="gpu")
    # The sweep runs every second with stale_after 3 s: it must not count the outage against the run.
    start_worker(queues="default", beat=True, name="sweeper", RANKFORGE_RUN_MAX_RESUMES="1")
    client = api(admin_user)
    run_id = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=120, batch_size=1)
    poll_events(client, run_id, until=generating)
    before = TrainingRun.objects.get(pk=run_id)
    assert before.state == S.RUNNING and before.progress_step < 6
    outage = pg_outage(60).run()
    back = time.monotonic()
    # (This test process's own connection was recovered by the helper; the web's is covered below.)
    seen = poll_events(client, run_id, until=finished, timeout=TIMEOUT)
    run = assert_gapless(run_id)
    print(f"outage {outage.lasted:.0f} s; the run ended {time.monotonic() - back:.0f} s after the restart")
    assert run.state == S.SUCCEEDED, run.error
    assert (run.attempt, states(run_id)) == (1, [(None, "queued"), ("queued", "running"), ("running", "succeeded")])
    steps = [e["payload"]["step"] for e in seen if e["type"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == 6
    assert Comparison.objects.filter(project=project).count() == 6
    logs = [e["payload"].get("message", "") for e in seen if e["type"] == "log"]
    assert any("database was out of reach 1 time(s)" in m for m in logs)  # it was running through it


@on_workers
def test_a_killed_worker_s_run_resumes_on_another_worker_and_registers_its_model_once(
    api, admin_user, tiny_tokenizer, make_tiny_model, tmp_path, start_worker
):
    project = project_create(created_by=admin_user, name="Pairs", completions_per_prompt=2, overlap=1)
    pairs = [
        {"prompt": f"Question {i}:", "chosen": f" yes {i} indeed", "rejected": f" no {i} never"} for i in range(24)
    ]
    preferences_import(project=project, stream=rows_jsonl(pairs), filename="p.jsonl", eval_fraction=0.25)
    snapshot = snapshot_build(snapshot_id=snapshot_create(project=project, created_by=admin_user).pk)
    folder = tmp_path / "tiny-rm"
    make_tiny_model("sequence_classification").save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    backbone = model_version_register(
        model_name="tiny-encoder", task="classifier", folder=folder, fmt=None, shared=True
    )

    first = start_worker(queues="gpu", name="gpu-1")
    start_worker(queues="default", beat=True, name="sweeper", RANKFORGE_RUN_MAX_RESUMES="1")
    client = api(admin_user)
    response = client.post(
        "/api/runs/",
        {
            "kind": "reward_model",
            "project": project.pk,
            "config": {
                "num_train_epochs": 40,
                "save_steps": 5,
                "logging_steps": 5,
                "per_device_train_batch_size": 4,
                "max_length": 32,
            },
            "inputs": {"base_version": backbone.pk, "snapshot": snapshot.pk, "output_model": "rm"},
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    poll_events(client, run_id, until=lambda events, body: any(e["type"] == "checkpoint" for e in events))
    pid = TrainingRun.objects.get(pk=run_id).pid
    kill_worker(first)
    killed = time.monotonic()
    wait_for(lambda: TrainingRun.objects.get(pk=run_id).attempt == 2, timeout=30, message="the sweep to requeue")
    wait_for(lambda: not process_alive(pid), timeout=10, message="the first attempt's process to exit")
    start_worker(queues="gpu", name="gpu-2")
    seen = poll_events(client, run_id, until=finished, timeout=TIMEOUT)
    run = assert_gapless(run_id)
    print(f"the run ended {time.monotonic() - killed:.0f} s after its first worker was killed")
    assert run.state == S.SUCCEEDED, run.error
    assert states(run_id) == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    [registered] = run.outputs["registered"]
    [version] = ModelVersion.objects.filter(source_run_id=run_id)
    assert version.pk == registered["id"] and version.model.name == "rm"
    assert version.metrics["resumed_from"].startswith("checkpoint-")  # from the first attempt's checkpoint
    assert sum("started process" in e["payload"].get("message", "") for e in seen if e["type"] == "log") == 2


@on_workers
def test_a_frozen_supervisor_whose_run_moved_on_stops_itself_and_never_shares_the_folder(
    api, admin_user, project, dataset, tiny_model_dir, start_worker, tmp_path
):
    # Frozen inside a transaction, it would hold the run's row lock: PostgreSQL ends such a session.
    first = start_worker(queues="gpu", name="gpu-1", DB_IDLE_IN_TRANSACTION_TIMEOUT_S="2")
    start_worker(queues="default", beat=True, name="sweeper", RANKFORGE_RUN_MAX_RESUMES="1")
    client = api(admin_user)
    run_id = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=400, batch_size=1)
    poll_events(client, run_id, until=generating)
    pid = TrainingRun.objects.get(pk=run_id).pid
    pause_worker(first)  # alive, holding its run and the run folder, but silent
    try:
        wait_for(lambda: TrainingRun.objects.get(pk=run_id).attempt == 2, timeout=30, message="the sweep to requeue")
        start_worker(queues="gpu", name="gpu-2")
        waiting = "waiting for an earlier attempt's process"
        wait_for(
            lambda: TrainingRun.objects.get(pk=run_id).events.filter(payload__message__startswith=waiting).exists(),
            timeout=TIMEOUT,
            message="attempt 2 to wait for the folder",
        )
        time.sleep(2)  # attempt 2 heartbeats while it waits: the sweep leaves it alone
        run = TrainingRun.objects.get(pk=run_id)
        # Attempt 2 started no process: the frozen supervisor still holds the folder (its own run
        # process may have finished meanwhile, or still be going).
        assert (run.state, run.attempt, run.pid) == (S.RUNNING, 2, None)
        print(f"attempt 1's process {'still runs' if process_alive(pid) else 'has exited'} when its worker resumes")
    finally:
        resume_worker(first)
    seen = poll_events(client, run_id, until=finished, timeout=TIMEOUT)
    run = assert_gapless(run_id)
    assert run.state == S.SUCCEEDED, run.error
    assert not process_alive(pid)
    # Attempt 1 wrote nothing after the requeue: nothing lies between the requeue and attempt 2's start.
    state_seqs = [e["seq"] for e in seen if e["type"] == "state"]
    requeue, restart = state_seqs[2], state_seqs[3]
    assert restart == requeue + 1
    assert states(run_id)[2:] == [("running", "queued"), ("queued", "running"), ("running", "succeeded")]
    log = (tmp_path / "worker-gpu-1.log").read_text()
    assert f"Run {run_id} is on attempt 2; attempt 1 may not write to it any more" in log
    assert Comparison.objects.filter(project=project).count() == 6
    assert sorted(Comparison.objects.values_list("prompt_row_id", flat=True)) == sorted(
        dataset.rows.values_list("pk", flat=True)
    )


@on_workers
def test_a_redis_restart_mid_run_and_with_a_run_queued_loses_nothing_and_runs_nothing_twice(
    api, admin_user, project, dataset, tiny_model_dir, start_worker, redis_broker
):
    from labeling.services.datasets import dataset_import
    from labeling.services.templates import template_create

    other = project_create(created_by=admin_user, name="Other", completions_per_prompt=3, overlap=1)
    rows = [{"question": f"What is {n}?", "split": "train"} for n in ("a", "b", "c")]
    other_rows = dataset_import(project=other, stream=rows_jsonl(rows), filename="q.jsonl", created_by=admin_user)
    template_create(project=other, name="qa", text="Question: {question}\nAnswer:", make_default=True)
    worker = start_worker(queues="gpu", name="gpu")
    client = api(admin_user)
    running = start_generation(client, project, dataset, tiny_model_dir, max_new_tokens=60, batch_size=1)
    poll_events(client, running, until=generating)
    other.refresh_from_db()
    queued = start_generation(client, other, other_rows, tiny_model_dir, max_new_tokens=6, batch_size=1)
    assert redis.Redis.from_url(redis_broker).llen("gpu") == 1  # waiting behind the running one
    outage = redis_outage(3).run()
    print(f"Redis was down {outage.lasted:.1f} s")
    for run_id, count in ((running, 6), (queued, 3)):
        poll_events(client, run_id, until=finished, timeout=TIMEOUT)
        run = assert_gapless(run_id)
        assert run.state == S.SUCCEEDED, run.error
        assert (run.attempt, states(run_id)) == (
            1,
            [(None, "queued"), ("queued", "running"), ("running", "succeeded")],
        )
        assert Comparison.objects.filter(project_id=run.project_id).count() == count
    assert worker.poll() is None  # the worker rode out the broker restart
