"""Fixtures for training tests: tiny models, a project ready to generate, real Celery workers.

``start_worker(queues=..., beat=False, **env)`` starts a REAL ``celery worker`` subprocess against
the test database (PostgreSQL) and Redis, as production does; tests that use it carry the
``postgres`` and ``redis`` markers (they fail instead of skipping under CI=true).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery_app import app as celery_app
from labeling.models import Role
from labeling.services.datasets import dataset_import
from labeling.services.templates import template_create

# The tiny-model fixtures of tests/ml, shared (a conftest applies to its own folder only).
from tests.ml.conftest import make_tiny_model, tiny_model_dir, tiny_tokenizer, tiny_tokenizer_json  # noqa: F401

# Fast supervision for tests: heartbeat twice a second, a run is stale after 3 s.
FAST = {
    "RANKFORGE_RUN_HEARTBEAT_S": "0.5",
    "RANKFORGE_RUN_POLL_S": "0.2",
    "RANKFORGE_RUN_KILL_GRACE_S": "3",
    "RANKFORGE_RUN_STALE_AFTER_S": "3",
    "RANKFORGE_RUN_REQUEUE_AFTER_S": "3600",
    "RANKFORGE_RUN_SWEEP_INTERVAL_S": "1",
}


def rows_jsonl(rows):
    return iter([(json.dumps(r) + "\n").encode() for r in rows])


@pytest.fixture
def fast_runs(settings):
    for name, value in FAST.items():
        setattr(settings, name, float(value))
    return settings


@pytest.fixture
def reviewer(make_user, add_member):
    return add_member(make_user("rita"), Role.REVIEWER)


@pytest.fixture
def labeler(make_user, add_member):
    return add_member(make_user("lars"), Role.LABELER)


@pytest.fixture
def staff(make_user):
    return make_user("stan", is_staff=True)


@pytest.fixture
def dataset(project, admin_user):
    """Six questions with fixed splits (4 train, 2 eval) and the project's default template."""
    rows = [
        {"question": f"What does the {word} statement do?", "split": split}
        for word, split in (
            ("with", "train"),
            ("for", "train"),
            ("while", "eval"),
            ("return", "train"),
            ("yield", "eval"),
            ("import", "train"),
        )
    ]
    dataset = dataset_import(
        project=project, stream=rows_jsonl(rows), filename="questions.jsonl", created_by=admin_user
    )
    template_create(
        project=project, name="qa", text="Question: {question}\nAnswer:", dataset=dataset, make_default=True
    )
    project.refresh_from_db()
    return dataset


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


def process_alive(pid: int) -> bool:
    """A zombie (exited, not yet reaped by whoever adopted it) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def redis_broker():
    """This process publishes to Redis too (CI sets CELERY_BROKER_URL to it already)."""
    url = os.environ["REDIS_URL"]
    previous = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    if previous == (url, False):
        yield url
        return
    celery_app.conf.update(broker_url=url, task_always_eager=False)
    yield url
    celery_app.conf.update(broker_url=previous[0], task_always_eager=previous[1])
    celery_app.pool.force_close_all()
    celery_app._pool = None  # the next publish opens a pool on the restored broker


@pytest.fixture
def start_worker(redis_broker, tmp_path):
    """Start real Celery workers; all are stopped (and their logs printed) after the test."""
    started: list[tuple[subprocess.Popen, object]] = []
    db = connection.settings_dict

    def start(*, queues: str = "gpu", beat: bool = False, name: str = "w", **extra_env) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": redis_broker,
            "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),
            "SECRET_KEY": "worker-test",
            "CELERY_TASK_ALWAYS_EAGER": "",
            **FAST,
            **extra_env,
        }
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "--pool", "solo"]
        argv += ["-n", f"{name}-{os.getpid()}@%h", "-l", "info"]
        if beat:
            argv += ["--beat", "--schedule", str(tmp_path / f"beat-{name}")]
        log = open(tmp_path / f"worker-{name}.log", "w+")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            argv, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.seek(0)
        print(f"--- {log.name} ---\n{log.read()[-4000:]}")
        log.close()
