"""A real Celery worker over Redis builds a snapshot that the API created, against PostgreSQL."""

import time

import pytest

from labeling.models import PreferenceSnapshot

from .factories import ai_ranked_project

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(start_worker):
    return start_worker(queues="default")


def test_worker_builds_snapshot_created_through_the_api(api, make_user, worker):
    admin, project = ai_ranked_project(make_user, name="Worker")
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
