"""Real Celery workers for integration tests (a pytest plugin loaded by tests/conftest.py).

``start_worker(queues=..., beat=False, **env)`` starts a REAL ``celery worker`` subprocess against
the test database (PostgreSQL) and Redis, as production does; tests that use it carry the
``postgres`` and ``redis`` markers (they fail instead of skipping under CI=true).
"""

import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from config.celery_app import app as celery_app

# Fast supervision for tests: heartbeat twice a second, a run is stale after 3 s.
FAST = {
    "RANKFORGE_RUN_HEARTBEAT_S": "0.5",
    "RANKFORGE_RUN_POLL_S": "0.2",
    "RANKFORGE_RUN_KILL_GRACE_S": "3",
    "RANKFORGE_RUN_STALE_AFTER_S": "3",
    "RANKFORGE_RUN_REQUEUE_AFTER_S": "3600",
    "RANKFORGE_RUN_SWEEP_INTERVAL_S": "1",
}


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
