"""Preference snapshots through the REST API: create (202), build in the (eager) task, poll, download."""

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from labeling import tasks
from labeling.models import Comparison, Completion, PreferenceSnapshot, Ranking, Role, SnapshotStatus
from labeling.pairs import COLUMNS
from labeling.services import snapshots as snapshot_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def reviewer(make_user, add_member):
    return add_member(make_user("rita"), Role.REVIEWER)


def add_comparison(project, prompt, split="train", gold=None):
    comparison = Comparison.objects.create(
        project=project, prompt=prompt, split=split, is_gold=gold is not None, gold=None
    )
    completions = [
        Completion.objects.create(comparison=comparison, position=i, text=f"{prompt} / answer {i}") for i in range(3)
    ]
    if gold is not None:
        comparison.gold = {"ranks": {str(completions[i].pk): r for i, r in enumerate(gold)}, "failed": []}
        comparison.save(update_fields=["gold"])
    return comparison, completions


def rank(comparison, completions, labeler, ranks, failed=(), source="human"):
    """``ranks`` and ``failed`` are by position; stored by completion id as the ranking API does."""
    order = {
        "criterion": None,
        "ranks": {str(completions[i].pk): r for i, r in enumerate(ranks) if i not in failed},
        "failed": [completions[i].pk for i in failed],
    }
    return Ranking.objects.create(comparison=comparison, labeler=labeler, source=source, orders=[order])


@pytest.fixture
def ranked(project, labelers):
    """Two train, one eval, one test comparison ranked by two labelers; a gold item the third got wrong."""
    a, b, c = labelers
    rows = {}
    for name, split in (("t1", "train"), ("t2", "train"), ("e1", "eval"), ("x1", "test")):
        comparison, completions = add_comparison(project, name, split)
        rank(comparison, completions, a, [1, 2, 3])
        rank(comparison, completions, b, [1, 2, 2])
        rows[name] = (comparison, completions)
    t1, t1_completions = rows["t1"]
    rank(t1, t1_completions, c, [3, 2, 1], source="ai")
    gold, gold_completions = add_comparison(project, "g1", gold=[1, 2, 3])
    rank(gold, gold_completions, a, [1, 2, 3])
    rank(gold, gold_completions, c, [3, 2, 1], source="ai")
    return rows


def post_snapshot(client, project, options, *, build=True, capture=None):
    with capture(execute=build):
        return client.post(f"/api/projects/{project.id}/snapshots/", options, format="json")


def test_create_poll_and_download_jsonl_and_parquet(
    api, project, reviewer, ranked, settings, django_capture_on_commit_callbacks
):
    client = api(reviewer)
    response = post_snapshot(client, project, {"mode": "per_labeler"}, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["version"] == 1 and body["status"] == "pending"

    detail = client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/").json()
    assert detail["status"] == "ready", detail["error"]
    counts = detail["counts"]
    # labeler a: 3 pairs per comparison, b: 2 (a tie), c: 3 on t1 only; the gold item is left out.
    assert counts["by_split"] == {"train": 5 + 5 + 3, "eval": 5, "test": 5}
    assert counts["gold_comparisons_skipped"] == 1
    assert set(detail["downloads"]) == {"train", "eval", "test"}

    url = f"/api/projects/{project.id}/snapshots/{body['id']}/download/"
    download = client.get(url, {"format": "jsonl", "split": "train"})
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    rows = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert len(rows) == 13 and list(rows[0]) == list(COLUMNS)
    assert {r["split"] for r in rows} == {"train"}
    first = rows[0]
    assert first["prompt"] == "t1" and first["chosen"] == "t1 / answer 0" and first["rejected"] == "t1 / answer 1"
    assert first["weight"] == pytest.approx(1 / 3) and first["margin"] == pytest.approx(0.5)
    assert first["labeler_id"] is not None and first["source"] == "human" and first["criterion"] is None

    parquet = client.get(url, {"format": "parquet", "split": "eval"})
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(b"".join(parquet.streaming_content)))
    assert table.column_names == list(COLUMNS) and table.num_rows == 5

    snapshot = PreferenceSnapshot.objects.get(pk=body["id"])
    folder = snapshot_services.snapshot_folder(snapshot)
    assert folder == Path(settings.ARTIFACT_ROOT) / "snapshots" / str(project.id) / "1"
    assert snapshot.path == f"snapshots/{project.id}/1"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["options"]["mode"] == "per_labeler" and manifest["counts"] == counts
    assert manifest["files"]["train.jsonl"]["rows"] == 13
    assert snapshot.finished_at is not None


def test_download_is_409_until_ready(api, project, reviewer, ranked, django_capture_on_commit_callbacks):
    client = api(reviewer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = client.post(f"/api/projects/{project.id}/snapshots/", {}, format="json").json()
    assert len(callbacks) == 1  # enqueued on commit, not before
    url = f"/api/projects/{project.id}/snapshots/{body['id']}/download/?format=jsonl"
    response = client.get(url)
    assert response.status_code == 409
    assert "not ready yet (status: pending)" in response.json()["detail"]
    assert client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/").json()["downloads"] == {}

    PreferenceSnapshot.objects.filter(pk=body["id"]).update(status=SnapshotStatus.BUILDING)
    assert client.get(url).status_code == 409
    PreferenceSnapshot.objects.filter(pk=body["id"]).update(status=SnapshotStatus.PENDING)

    callbacks[0]()  # the worker picks the message up
    assert client.get(url).status_code == 200


def test_build_runs_once(project, admin_user, ranked, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = snapshot_services.snapshot_create(project=project, created_by=admin_user, options={})
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.READY
    finished = snapshot.finished_at
    tasks.snapshot_build.delay(snapshot.pk)  # a redelivered message
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.READY and snapshot.finished_at == finished


def test_snapshot_is_immutable_and_versions_increase(
    api, project, reviewer, labelers, ranked, django_capture_on_commit_callbacks
):
    client = api(reviewer)
    first = post_snapshot(client, project, {}, capture=django_capture_on_commit_callbacks).json()
    comparison, completions = add_comparison(project, "late")
    rank(comparison, completions, labelers[0], [1, 2, 3])
    second = post_snapshot(client, project, {}, capture=django_capture_on_commit_callbacks).json()
    assert (first["version"], second["version"]) == (1, 2)

    one = client.get(f"/api/projects/{project.id}/snapshots/{first['id']}/").json()["counts"]["by_split"]
    two = client.get(f"/api/projects/{project.id}/snapshots/{second['id']}/").json()["counts"]["by_split"]
    assert two["train"] == one["train"] + 3

    listed = client.get(f"/api/projects/{project.id}/snapshots/").json()["results"]
    assert [s["version"] for s in listed] == [2, 1]
    assert client.get(f"/api/projects/{project.id}/snapshots/?status=failed").json()["results"] == []


def test_consensus_and_filters_through_the_api(api, project, reviewer, ranked, django_capture_on_commit_callbacks):
    client = api(reviewer)
    options = {"mode": "consensus", "min_gold_accuracy": 0.5, "sources": ["human", "ai"], "consensus_threshold": 0.6}
    body = post_snapshot(client, project, options, capture=django_capture_on_commit_callbacks).json()
    detail = client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/").json()
    assert detail["status"] == "ready" and detail["options"]["mode"] == "consensus"
    assert detail["counts"]["labelers_excluded_gold_accuracy"] == 1  # the third labeler got the gold backwards
    download = client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/download/?format=jsonl&split=train")
    rows = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    # Two labelers per comparison: the pair they tie on (1 vs 2 for b) has share 1/2 < 0.6.
    assert len(rows) == 2 * 2
    assert all(r["labeler_id"] is None and r["source"] == "human" for r in rows)
    assert {r["margin"] for r in rows} == {1.0}


def test_labeler_is_refused(api, project, labelers, ranked):
    client = api(labelers[0])
    response = client.post(f"/api/projects/{project.id}/snapshots/", {}, format="json")
    assert response.status_code == 403
    assert "reviewer role" in response.json()["detail"]
    assert client.get(f"/api/projects/{project.id}/snapshots/").status_code == 403
    assert not PreferenceSnapshot.objects.exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"min_agreemnt": 0.5}, "min_agreemnt"),
        ({"mode": "majority"}, "mode"),
        ({"min_agreement": 2}, "min_agreement"),
        ({"sources": ["human", "robots"]}, "sources"),
        ({"sources": []}, "sources"),
        ({"criterion": "helpfulness"}, "criterion"),
        ({"criterion": 999999}, "criterion"),
        ({"consensus_threshold": -1}, "consensus_threshold"),
    ],
)
def test_bad_option_is_400_naming_it(api, project, reviewer, options, field):
    response = api(reviewer).post(f"/api/projects/{project.id}/snapshots/", options, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith(field), response.json()
    assert not PreferenceSnapshot.objects.exists()


def test_download_refuses_unknown_format_and_missing_split(
    api, project, reviewer, labelers, django_capture_on_commit_callbacks
):
    comparison, completions = add_comparison(project, "only-train")
    rank(comparison, completions, labelers[0], [1, 2, 3])
    client = api(reviewer)
    body = post_snapshot(client, project, {}, capture=django_capture_on_commit_callbacks).json()
    url = f"/api/projects/{project.id}/snapshots/{body['id']}/download/"
    response = client.get(url, {"format": "csv"})
    assert response.status_code == 400 and "csv" in response.json()["detail"]
    assert client.get(url, {"split": "dev"}).status_code == 400
    missing = client.get(url, {"split": "test"})
    assert missing.status_code == 404 and "no test split" in missing.json()["detail"]
    assert client.get(url, {"split": "eval"}).status_code == 200  # present, empty
    assert client.get(url, {"limit": 1, "nope": 1}).status_code == 400


def test_failed_build_keeps_the_error(api, project, reviewer, ranked, monkeypatch, django_capture_on_commit_callbacks):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(snapshot_services.conversion, "export_pairs", explode)
    client = api(reviewer)
    body = post_snapshot(client, project, {}, capture=django_capture_on_commit_callbacks).json()
    detail = client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/").json()
    assert detail["status"] == "failed" and "disk on fire" in detail["error"]
    response = client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/download/")
    assert response.status_code == 409 and "failed" in response.json()["detail"]
    assert not snapshot_services.snapshot_folder(PreferenceSnapshot.objects.get()).exists()


def test_build_is_enqueued_on_the_default_queue_after_commit(
    project, admin_user, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.snapshot_build, "apply_async", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        snapshot = snapshot_services.snapshot_create(project=project, created_by=admin_user, options={})
        assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [{"args": [snapshot.pk], "queue": "default"}]
    assert tasks.snapshot_build.acks_late is True


@pytest.mark.django_db(transaction=True)
def test_committed_request_enqueues_and_builds(api, project, reviewer, ranked):
    """No captured callbacks: the request's transaction commits, on_commit enqueues, the (eager) worker
    builds in its own read transaction (REPEATABLE READ on PostgreSQL)."""
    client = api(reviewer)
    body = client.post(f"/api/projects/{project.id}/snapshots/", {"criterion": "overall"}, format="json").json()
    detail = client.get(f"/api/projects/{project.id}/snapshots/{body['id']}/").json()
    assert detail["status"] == "ready", detail["error"]
    assert detail["counts"]["pairs"] == 13 + 5 + 5


def test_sweep_requeues_lost_builds_and_fails_stale_ones(project, admin_user, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    sent = []
    monkeypatch.setattr(tasks, "enqueue_snapshot_build", sent.append)
    old = timezone.now() - timedelta(hours=2)
    lost = PreferenceSnapshot.objects.create(project=project, version=1, options={}, status="pending")
    fresh = PreferenceSnapshot.objects.create(project=project, version=2, options={}, status="pending")
    stale = PreferenceSnapshot.objects.create(project=project, version=3, options={}, status="building", started_at=old)
    PreferenceSnapshot.objects.filter(pk=lost.pk).update(created_at=old)

    result = tasks.sweep_snapshots()

    assert result == {"requeued": 1, "failed": 1}
    assert sent == [lost.pk]
    stale.refresh_from_db()
    assert stale.status == "failed" and "worker building it stopped" in stale.error
    fresh.refresh_from_db()
    assert fresh.status == "pending"
