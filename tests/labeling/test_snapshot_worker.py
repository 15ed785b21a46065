"""A real Celery worker over Redis builds a snapshot that the API created, against PostgreSQL."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from config.celery_app import app as celery_app
from labeling.models import LabelSource, PreferenceSnapshot, Ranking
from labeling.services.projects import project_create
from labeling.services.system_members import system_member

from .factories import add_comparisons

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


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
def worker(redis_broker, tmp_path):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": redis_broker,
        "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),
        "SECRET_KEY": "worker-test",
        "CELERY_TASK_ALWAYS_EAGER": "",
    }
    log = open(tmp_path / "worker.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "--pool", "solo", "-l", "info"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.seek(0)
    print(log.read()[-3000:])
    log.close()


def test_worker_builds_snapshot_created_through_the_api(api, make_user, worker):
    admin = make_user("boss", is_staff=True)
    project = project_create(created_by=admin, name="Worker", completions_per_prompt=3, overlap=1)
    add_comparisons(project, 4)
    ai = system_member(project=project, source=LabelSource.AI)
    for comparison in project.comparisons.all():
        ids = list(comparison.completions.order_by("position").values_list("id", flat=True))
        Ranking.objects.create(
            comparison=comparison,
            labeler=ai,
            source=LabelSource.AI,
            orders=[{"criterion": None, "ranks": {str(i): n + 1 for n, i in enumerate(ids)}, "failed": []}],
        )
    client = api(admin)
    response = client.post(
        f"/api/projects/{project.id}/snapshots/", {"mode": "per_labeler", "sources": ["ai"]}, format="json"
    )
    assert response.status_code == 202, response.json()
    snapshot_id = response.json()["id"]

    deadline = time.time() + 90
    status = "pending"
    while time.time() < deadline and status in ("pending", "building"):
        time.sleep(0.5)
        status = PreferenceSnapshot.objects.get(pk=snapshot_id).status
    assert status == "ready", f"snapshot is {status}; worker exit code {worker.poll()}"
    download = client.get(f"/api/projects/{project.id}/snapshots/{snapshot_id}/download/?format=jsonl&split=train")
    assert download.status_code == 200
    rows = b"".join(download.streaming_content).decode().strip().splitlines()
    assert len(rows) == 4 * 3  # 4 comparisons x C(3, 2) strict pairs, all in train
