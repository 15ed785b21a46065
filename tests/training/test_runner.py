"""The runner without Celery: a scripted subprocess stands in for ``python -m training.ml`` (fast),
plus one real generation run on the tiny model in-process (slow)."""

import json
import os
import signal
import sys
import textwrap

import pytest

from labeling.models import Comparison
from training import runner, supervision
from training.models import RunState, TrainingRun
from training.services import runs

from .conftest import process_alive, wait_for

pytestmark = pytest.mark.django_db

LIMITS = runner.Limits(
    heartbeat_s=0.2, poll_s=0.1, kill_grace_s=1.0, stale_after_s=10, max_log_lines=1000, max_line_chars=4000, threads=1
)
CONFIG = {"model_path": "/models/tiny", "prompts_file": "/data/prompts.jsonl"}


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Runs created here are executed in-process by the tests, never sent."""


@pytest.fixture
def script(monkeypatch):
    """``script(code)``: the run's process runs this Python code; ``emit(type, **fields)`` writes an
    event, ``FOLDER`` is the --out folder."""

    def use(code: str) -> None:
        prelude = (
            "import json, os, signal, sys, time\n"
            "FOLDER = sys.argv[1]\n"
            "def emit(type_, **fields):\n"
            "    print(json.dumps({'type': type_, 't': time.time(), **fields}), flush=True)\n"
        )
        monkeypatch.setattr(
            runner,
            "command",
            lambda run, config_path, folder, **_: [sys.executable, "-c", prelude + textwrap.dedent(code), str(folder)],
        )

    return use


@pytest.fixture
def queued_run(staff):
    return runs.run_create(kind="generate", config=CONFIG, created_by=staff)


def execute(run, limits=LIMITS) -> TrainingRun:
    result = runner.execute(run_id=run.pk, limits=limits)
    run.refresh_from_db()
    assert result is None or result.state == run.state
    return run


def events(run, *types):
    rows = run.events.order_by("seq")
    if types:
        rows = rows.filter(type__in=types)
    return [(e.type, e.payload) for e in rows]


def test_events_are_stored_in_order_and_the_run_succeeds(queued_run, script, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret")
    script(
        """
        emit('log', level='info', message='starting')
        print('not an event', flush=True)
        print('a warning on stderr', file=sys.stderr, flush=True)
        for step in range(1, 4):
            emit('progress', step=step, total=3)
            emit('metric', name='loss', value=1.0 / step, step=step)
        emit('artifact', kind='weights', path='model.safetensors')
        emit('log', message='env ' + json.dumps({k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'DATABASE_URL')}))
        emit('result', prompts=3)
        """
    )
    run = execute(queued_run)
    assert run.state == RunState.SUCCEEDED, run.error
    assert list(run.events.values_list("seq", flat=True)) == list(range(1, run.last_seq + 1))  # gapless
    assert [t for t, _ in events(run, "progress", "metric")] == ["progress", "metric"] * 3
    assert [p["step"] for _, p in events(run, "progress")] == [1, 2, 3]
    logs = [(p["stream"], p["message"]) for _, p in events(run, "log")]
    assert logs[0][0] == "worker" and logs[0][1].startswith("started process ")
    assert ("event", "starting") in logs and ("stdout", "not an event") in logs
    assert ("stderr", "a warning on stderr") in logs
    assert ("event", 'env {"OMP_NUM_THREADS": "1", "DATABASE_URL": null}') in logs  # no credentials
    assert [p["to"] for _, p in events(run, "state")] == ["queued", "running", "succeeded"]
    assert (run.progress_step, run.progress_total) == (3, 3)
    assert run.outputs["exit_code"] == 0 and run.outputs["result"]["prompts"] == 3
    assert run.outputs["artifacts"]["weights"]["path"] == "model.safetensors"
    assert run.pid and run.worker_host and run.error == ""
    written = json.loads((runs.run_folder(run.pk) / "run.json").read_text())
    assert written == {"run_id": run.pk, "kind": "generate", "config": run.config, "inputs": {}, "project": None}


def test_a_failed_run_keeps_the_last_error_event_as_its_error(queued_run, script):
    script(
        """
        emit('error', message='first')
        emit('error', message='CUDA out of memory: lower batch_size')
        sys.exit(1)
        """
    )
    run = execute(queued_run)
    assert run.state == RunState.FAILED
    assert run.error == "CUDA out of memory: lower batch_size\n(exit status 1)"


def test_without_an_error_event_the_stderr_tail_explains(queued_run, script):
    script("raise ValueError('the prompts file is empty')")
    run = execute(queued_run)
    assert run.state == RunState.FAILED
    assert "ValueError: the prompts file is empty" in run.error and run.error.endswith("(exit status 1)")
    assert "Traceback" in run.error


def test_a_process_killed_by_a_signal_says_so(queued_run, script):
    script("os.kill(os.getpid(), signal.SIGKILL)")
    run = execute(queued_run)
    assert run.state == RunState.FAILED and "killed by SIGKILL (out of memory?" in run.error


def test_a_run_that_is_not_queued_is_never_started(queued_run, script):
    script("emit('log', message='should not run')")
    runs.run_cancel(run_id=queued_run.pk)
    before = TrainingRun.objects.get(pk=queued_run.pk).last_seq
    assert runner.execute(run_id=queued_run.pk, limits=LIMITS) is None
    run = TrainingRun.objects.get(pk=queued_run.pk)
    assert run.state == RunState.CANCELLED and run.last_seq == before and run.pid is None


def test_logs_are_bounded_and_long_lines_cut(queued_run, script):
    script(
        """
        for i in range(20):
            print(f'line {i}', flush=True)
        print('x' * 100, flush=True)
        emit('metric', name='loss', value=1.0)
        """
    )
    limits = runner.Limits(**{**LIMITS.__dict__, "max_log_lines": 5, "max_line_chars": 50})
    run = execute(queued_run, limits)
    messages = [p["message"] for _, p in events(run, "log")]
    assert messages[1:] == ["line 0", "line 1", "line 2", "line 3", "line 4", messages[-1]]
    assert messages[-1] == "16 more log lines were not stored (limit RANKFORGE_RUN_MAX_LOG_LINES=5)"
    assert len(events(run, "metric")) == 1  # events other than logs are not dropped

    run = runs.run_create(kind="generate", config=CONFIG, created_by=queued_run.created_by)
    script("print('y' * 100, flush=True)")
    run = execute(run, runner.Limits(**{**LIMITS.__dict__, "max_line_chars": 50}))
    assert events(run, "log")[1][1]["message"] == "y" * 50 + "... [50 chars cut]"


@pytest.fixture
def cancel_when_ready(monkeypatch):
    """Cancel the run through the service once it reported 'ready' (as the API would, from elsewhere)."""
    append = runs.run_events_append

    def append_then_cancel(*, run_id, events, **kwargs):
        state, rows = append(run_id=run_id, events=events, **kwargs)
        if any(p.get("message") == "ready" for _, p in events):
            state = runs.run_cancel(run_id=run_id).state
        return state, rows

    monkeypatch.setattr(runs, "run_events_append", append_then_cancel)


def test_cancel_stops_the_whole_process_group(queued_run, script, cancel_when_ready):
    script(
        """
        import subprocess
        child = subprocess.Popen(['sleep', '60'])
        emit('log', message=f'child {child.pid}')
        emit('log', message='ready')
        time.sleep(60)
        """
    )
    run = execute(queued_run)
    assert run.state == RunState.CANCELLED
    assert [p["to"] for _, p in events(run, "state")] == ["queued", "running", "cancelling", "cancelled"]
    assert events(run, "state")[-1][1]["note"] == "killed by SIGTERM"
    child = int(next(p["message"].split()[1] for _, p in events(run, "log") if p["message"].startswith("child ")))
    wait_for(lambda: not process_alive(child), timeout=5, message="the grandchild to be gone")
    assert not process_alive(run.pid)


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(queued_run, script, cancel_when_ready):
    script(
        """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit('log', message='ready')
        time.sleep(60)
        """
    )
    run = execute(queued_run)
    assert run.state == RunState.CANCELLED
    assert events(run, "state")[-1][1]["note"] == "killed after the grace period"


def test_a_run_failed_by_the_sweep_meanwhile_is_stopped(queued_run, script, monkeypatch):
    beat = runs.run_heartbeat

    def heartbeat_after_sweep(*, run_id, **kwargs):
        runs.run_transition(run_id=run_id, to=RunState.FAILED, only_from={RunState.RUNNING}, error="worker lost: ...")
        return beat(run_id=run_id, **kwargs)

    monkeypatch.setattr(runs, "run_heartbeat", heartbeat_after_sweep)
    script("time.sleep(60)")
    run = execute(queued_run)
    assert run.state == RunState.FAILED and run.error == "worker lost: ..."
    assert not process_alive(run.pid)


def test_a_project_generation_run_creates_comparisons_as_batches_arrive(api, platform_admin, project, dataset, script):
    response = api(platform_admin).post(
        f"/api/projects/{project.pk}/generate/", {"dataset": dataset.pk, "model_path": "/m"}, format="json"
    )
    run = TrainingRun.objects.get(pk=response.json()["id"])
    script(
        """
        prompts = [json.loads(l) for l in open(os.path.join(FOLDER, 'prompts.jsonl'))]
        with open(os.path.join(FOLDER, 'completions.jsonl'), 'a') as out:
            for p in prompts:
                c = {'text': 'answer to ' + p['prompt'], 'seed': 1, 'params': {'temperature': 0.8}}
                out.write(json.dumps({'prompt_id': p['prompt_id'], 'completions': [c] * 3}) + '\\n')
                out.flush()
                emit('artifact', kind='completions', path='completions.jsonl')
        """
    )
    run = execute(run)
    assert run.state == RunState.SUCCEEDED, run.error
    assert run.outputs["comparisons_created"] == 6 and run.outputs["comparisons_skipped"] == 0
    assert Comparison.objects.filter(project=project, prompt_row__isnull=False).count() == 6
    comparison = Comparison.objects.get(prompt_row=dataset.rows.get(index=2))
    assert comparison.completions.first().text == "answer to Question: What does the while statement do?\nAnswer:"


def test_output_that_cannot_be_stored_fails_the_run_and_stops_the_process(
    api, platform_admin, project, dataset, script
):
    response = api(platform_admin).post(
        f"/api/projects/{project.pk}/generate/", {"dataset": dataset.pk, "model_path": "/m"}, format="json"
    )
    run = TrainingRun.objects.get(pk=response.json()["id"])
    script(
        """
        p = json.loads(open(os.path.join(FOLDER, 'prompts.jsonl')).readline())
        with open(os.path.join(FOLDER, 'completions.jsonl'), 'a') as out:
            out.write(json.dumps({'prompt_id': p['prompt_id'], 'completions': [{'text': 'a'}] * 2}) + '\\n')
        emit('artifact', kind='completions', path='completions.jsonl')
        time.sleep(60)
        """
    )
    run = execute(run)
    assert run.state == RunState.FAILED
    assert run.error.startswith("could not store the run's output: ServiceError: prompt row ")
    assert "has 2 completions; the project compares 3" in run.error
    assert not process_alive(run.pid) and not Comparison.objects.exists()


@pytest.mark.slow
def test_a_real_generation_run_on_the_tiny_model(api, platform_admin, project, dataset, tiny_model_dir):
    response = api(platform_admin).post(
        f"/api/projects/{project.pk}/generate/",
        {
            "dataset": dataset.pk,
            "model_path": str(tiny_model_dir),
            "generation": {"max_new_tokens": 6, "batch_size": 4},
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    run = execute(TrainingRun.objects.get(pk=response.json()["id"]))
    assert run.state == RunState.SUCCEEDED, run.error
    comparisons = Comparison.objects.filter(project=project)
    assert comparisons.count() == 6
    assert {c.completions.count() for c in comparisons} == {3}
    assert [p["count"] for _, p in events(run, "artifact")] == [4, 6]
    assert run.outputs["result"]["prompts"] == 6 and run.outputs["comparisons_created"] == 6
    assert os.path.exists(runs.run_folder(run.pk) / "completions.jsonl")
    assert events(run, "metric")[0][1]["name"] == "tokens_per_s"
    assert not process_alive(run.pid)
    assert signal.SIGTERM  # (the cancel path is covered above and by the worker tests)


def test_training_kinds_spread_over_the_workers_gpus_with_accelerate_and_only_rank_0_reports(monkeypatch, tmp_path):
    import io

    from training.ml.events import EventWriter
    from training.models import TrainingRun
    from training.runner import command

    sft, generate = TrainingRun(pk=1, kind="sft"), TrainingRun(pk=2, kind="generate")
    config, folder = tmp_path / "run.json", tmp_path
    assert command(sft, config, folder)[1:4] == ["-m", "training.ml", "sft"]
    launched = command(sft, config, folder, gpus=4)
    assert launched[1:3] == ["-m", "accelerate.commands.launch"] and launched[3:6] == [
        "--multi_gpu",
        "--num_processes",
        "4",
    ]
    assert launched[6:9] == ["-m", "training.ml", "sft"]
    assert command(generate, config, folder, gpus=4)[1:4] == ["-m", "training.ml", "generate"]  # one process

    for rank, lines in (("0", 1), ("3", 0)):
        monkeypatch.setenv("RANK", rank)
        stream = io.StringIO()
        EventWriter(stream).metric("loss", 1.0, step=1)
        assert len(stream.getvalue().splitlines()) == lines


def test_a_run_without_torch_threads_gets_the_cores_the_worker_owns(settings):
    settings.RANKFORGE_RUN_THREADS = 0  # the default
    assert runner.Limits.from_settings().threads == supervision.cores_owned() >= 1
    settings.RANKFORGE_RUN_THREADS = 3
    assert runner.Limits.from_settings().threads == 3


def test_cores_owned_is_capped_by_a_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert supervision.cores_owned(cgroup=tmp_path) == affinity
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # docker --cpus 1.5: 2 threads
    assert supervision.cores_owned(cgroup=tmp_path) == min(affinity, 2)
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core: still one thread
    assert supervision.cores_owned(cgroup=tmp_path) == 1
    (tmp_path / "cpu.max").unlink()  # no cgroup v2: the affinity mask alone
    assert supervision.cores_owned(cgroup=tmp_path) == affinity
