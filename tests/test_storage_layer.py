"""Artifacts through one layer (issue 14): preference snapshots and training runs' files go through the
artifact store (``common.storage``) like registry versions, so ``ARTIFACT_STORAGE=s3`` covers them
(a real S3 endpoint: moto's server, tests/s3.py), and no module outside ``common/storage`` joins paths
onto ``settings.ARTIFACT_ROOT`` itself."""

import ast
import io
import json
import shutil
import sys
import tarfile
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.conf import settings
from storages.backends.s3 import S3Storage

from common import storage
from labeling.models import Comparison, Completion, PreferenceSnapshot, Ranking, Role, SnapshotStatus
from labeling.services import snapshots as snapshot_services
from tests import s3 as s3_fixtures
from training import runner
from training.models import RunState
from training.services import lookups, run_inputs, runs

ROOT = Path(__file__).resolve().parent.parent

s3_endpoint = s3_fixtures.s3_endpoint
s3 = s3_fixtures.s3


# --- no ARTIFACT_ROOT joins outside the store --------------------------------------------------------

# Where ``ARTIFACT_ROOT`` may be read: the store itself, and the settings that define it.
ALLOWED = {"common/storage.py", "common/storage_s3.py", "config/settings.py"}
PACKAGES = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests")


def artifact_root_uses(source: str) -> list[int]:
    """Lines that read ``ARTIFACT_ROOT``: ``settings.ARTIFACT_ROOT``, a bare name (an import of it),
    or the string as an argument or key (``getattr(settings, "ARTIFACT_ROOT")``, ``environ["ARTIFACT_ROOT"]``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            (isinstance(node, ast.Attribute) and node.attr == "ARTIFACT_ROOT")
            or (isinstance(node, ast.Name) and node.id == "ARTIFACT_ROOT")
            or (isinstance(node, ast.alias) and node.name == "ARTIFACT_ROOT")
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            args = [*node.args, *(k.value for k in node.keywords)]
            lines += [a.lineno for a in args if isinstance(a, ast.Constant) and a.value == "ARTIFACT_ROOT"]
        elif isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and key.value == "ARTIFACT_ROOT":
                lines.append(node.lineno)
    return sorted(lines)


def test_the_check_finds_every_way_of_reading_artifact_root():
    source = textwrap.dedent(
        """
        import os
        from django.conf import settings
        from config.settings import ARTIFACT_ROOT
        a = Path(settings.ARTIFACT_ROOT) / "runs"
        b = getattr(settings, "ARTIFACT_ROOT")
        c = os.environ["ARTIFACT_ROOT"]
        d = os.environ.get("ARTIFACT_ROOT")
        help_text = "Folder relative to ARTIFACT_ROOT."  # prose is fine
        """
    )
    assert artifact_root_uses(source) == [4, 5, 6, 7, 8]


def test_no_module_outside_the_store_joins_artifact_root():
    assert {"common", "labeling", "training", "models_registry"} <= set(PACKAGES)
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in ALLOWED:
                continue
            offenders += [f"{name}:{line}" for line in artifact_root_uses(path.read_text())]
    assert offenders == [], "use common.storage (local_path, publish, open_file, materialize, ...) instead"


# --- snapshots on S3 ---------------------------------------------------------------------------------


@pytest.fixture
def ranked_project(project, labelers, add_member, make_user, settings):
    """Two labelers ranked a train, an eval and a test comparison; an eager Celery builds snapshots."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    for n, split in enumerate(("train", "train", "eval", "test")):
        comparison = Comparison.objects.create(project=project, prompt=f"prompt {n}", split=split)
        ids = [
            Completion.objects.create(comparison=comparison, position=i, text=f"answer {n}.{i}").pk for i in range(3)
        ]
        for labeler, ranks in zip(labelers, ([1, 2, 3], [1, 2, 2]), strict=False):
            order = {"criterion": None, "ranks": {str(i): r for i, r in zip(ids, ranks, strict=True)}, "failed": []}
            Ranking.objects.create(comparison=comparison, labeler=labeler, orders=[order])
    return project, add_member(make_user("rita"), Role.REVIEWER)


def build(client, project, capture) -> PreferenceSnapshot:
    with capture(execute=True):  # the build (eager), and what it leaves for commit (the staging copy)
        response = client.post(f"/api/projects/{project.id}/snapshots/", {}, format="json")
    assert response.status_code == 202, response.json()
    return PreferenceSnapshot.objects.get(pk=response.json()["id"])


def local_leftovers() -> list[str]:
    base = Path(settings.ARTIFACT_ROOT)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) if base.exists() else []


@pytest.mark.django_db
def test_a_snapshot_is_built_into_the_bucket_and_downloaded_from_it(
    s3, ranked_project, api, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    import datasets

    datasets.disable_progress_bars()
    project, reviewer = ranked_project
    uploads = []
    original = S3Storage._save
    monkeypatch.setattr(
        S3Storage, "_save", lambda self, name, content: uploads.append(name) or original(self, name, content)
    )
    client = api(reviewer)
    snapshot = build(client, project, django_capture_on_commit_callbacks)

    assert snapshot.status == SnapshotStatus.READY, snapshot.error
    prefix = f"snapshots/{project.id}/1/"
    assert snapshot.path == prefix.rstrip("/")
    names = set(snapshot.counts["files"]) | {"manifest.json"}
    assert s3.keys(prefix) == sorted([f"{prefix}{n}" for n in names] + [f"{prefix}_COMPLETE"])
    assert uploads[-1] == f"{prefix}_COMPLETE"  # the marker last
    marker = json.loads(s3.read(f"{prefix}_COMPLETE"))
    assert sorted(name for name, _size in marker["files"]) == sorted(names)
    # Nothing of it stays on this machine: built in staging, uploaded, the staging copy gone.
    assert not snapshot_services.snapshot_folder(snapshot).exists()
    assert local_leftovers() == []

    url = f"/api/projects/{project.id}/snapshots/{snapshot.pk}/download/"
    jsonl = client.get(url, {"format": "jsonl", "split": "train"})
    assert jsonl.status_code == 200
    body = b"".join(jsonl.streaming_content)
    assert int(jsonl["Content-Length"]) == len(body)
    assert body == s3.read(f"{prefix}train.jsonl")
    assert len(body.decode().splitlines()) == snapshot.counts["by_split"]["train"] > 0
    parquet = client.get(url, {"format": "parquet", "split": "eval"})
    table = pq.read_table(io.BytesIO(b"".join(parquet.streaming_content)))
    assert table.num_rows == snapshot.counts["by_split"]["eval"] > 0

    tar = client.get(url, {"format": "hf"})
    assert tar.status_code == 200
    data = b"".join(tar.streaming_content)
    assert int(tar["Content-Length"]) == len(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        archive.extractall(tmp_path / "hf", filter="data")
    loaded = datasets.load_from_disk(str(tmp_path / "hf" / snapshot_services.hf_download_name(snapshot)))
    assert {split: len(rows) for split, rows in loaded.items()} == snapshot.counts["by_split"]
    assert loaded["eval"].to_list() == table.to_pylist()

    # A run on the snapshot: the web process names the file; the worker gets a verified local copy.
    resolved = run_inputs.Resolved()
    run_inputs.snapshot_pairs(resolved, {"snapshot": snapshot.pk}, {}, project, None)
    assert resolved.config["train_file"] == f"store-file:{prefix}train.jsonl"
    assert local_leftovers() == []  # the web process downloaded nothing
    local = runner.materialize_config(resolved.config)
    assert Path(local["train_file"]).read_bytes() == body
    assert Path(local["eval_file"]).read_bytes() == s3.read(f"{prefix}eval.jsonl")
    assert Path(local["train_file"]).parent == Path(settings.ARTIFACT_ROOT).resolve() / "cache" / prefix.rstrip("/")

    # Without its marker the folder is gone for readers: a clear 404, not a broken stream.
    s3.client.delete_object(Bucket=s3.name, Key=f"{prefix}_COMPLETE")
    missing = client.get(url, {"format": "jsonl", "split": "train"})
    assert missing.status_code == 404 and "missing from the artifact store" in missing.json()["detail"]
    assert client.get(url, {"format": "hf"}).status_code == 404


@pytest.mark.django_db
def test_a_failed_upload_fails_the_snapshot_and_leaves_nothing(
    s3, ranked_project, api, monkeypatch, django_capture_on_commit_callbacks
):
    project, reviewer = ranked_project
    calls = []
    original = S3Storage._save

    def flaky(self, name, content):
        calls.append(name)
        if len(calls) == 3:
            raise ConnectionError("the network went away mid-upload")
        return original(self, name, content)

    monkeypatch.setattr(S3Storage, "_save", flaky)
    snapshot = build(api(reviewer), project, django_capture_on_commit_callbacks)

    assert snapshot.status == SnapshotStatus.FAILED and "the network went away" in snapshot.error
    assert snapshot.path == ""
    assert s3.keys() == []  # what made it up was deleted again
    assert local_leftovers() == []  # and the staging folder went too


@pytest.mark.django_db
def test_on_local_disk_a_snapshot_is_still_renamed_into_place(ranked_project, api, django_capture_on_commit_callbacks):
    project, reviewer = ranked_project
    snapshot = build(api(reviewer), project, django_capture_on_commit_callbacks)
    folder = snapshot_services.snapshot_folder(snapshot)
    assert folder == storage.local_path(snapshot.path) and (folder / "train.jsonl").is_file()
    assert [p.name for p in folder.parent.iterdir()] == ["1"]  # no staging leftovers
    resolved = run_inputs.Resolved()
    run_inputs.snapshot_pairs(resolved, {"snapshot": snapshot.pk}, {}, project, None)
    assert resolved.config["train_file"] == str(folder / "train.jsonl")
    assert runner.materialize_config(resolved.config) == resolved.config


# --- a run's files -----------------------------------------------------------------------------------

LIMITS = runner.Limits(
    heartbeat_s=0.2, poll_s=0.1, kill_grace_s=1.0, stale_after_s=10, max_log_lines=1000, max_line_chars=4000, threads=1
)
# The run's process: reads its input, writes a result file, a model folder and a checkpoint.
SCRIPT = """
import json, os, sys, time
folder = sys.argv[1]
prompts = open(os.path.join(folder, "prompts.jsonl")).read().splitlines()
with open(os.path.join(folder, "eval_samples.jsonl"), "w") as out:
    for line in prompts:
        out.write(json.dumps({"prompt": json.loads(line)["prompt"], "reward": 1.0}) + "\\n")
os.makedirs(os.path.join(folder, "model"))
open(os.path.join(folder, "model", "model.safetensors"), "wb").write(b"weights")
os.makedirs(os.path.join(folder, "checkpoints", "checkpoint-1"))
open(os.path.join(folder, "checkpoints", "checkpoint-1", "state.json"), "w").write("{}")
print(json.dumps({"type": "result", "t": time.time(), "samples": len(prompts)}), flush=True)
"""
PROMPTS = b'{"prompt_id": 1, "prompt": "hello"}\n{"prompt_id": 2, "prompt": "bye"}\n'


@pytest.fixture
def scripted(monkeypatch, make_user):
    """A queued run whose process is SCRIPT; returns a function that executes it."""
    monkeypatch.setattr(
        runner, "command", lambda run, config_path, folder, **_: [sys.executable, "-c", SCRIPT, str(folder)]
    )
    run = runs.run_create(
        kind="generate", config={"model_path": "/models/tiny", "prompts_file": "prompts.jsonl"}, created_by=make_user()
    )

    def execute():
        runner.execute(run_id=run.pk, limits=LIMITS)
        run.refresh_from_db()
        return run

    return run, execute


def publish_inputs(run, tmp_path) -> None:
    """The run's inputs in the store only (written on another machine): no local run folder here."""
    elsewhere = tmp_path / "web-host"
    elsewhere.mkdir()
    (elsewhere / "prompts.jsonl").write_bytes(PROMPTS)
    storage.publish_copy(elsewhere, lookups.run_relpath(run.pk), names=["prompts.jsonl"])
    shutil.rmtree(lookups.run_folder(run.pk), ignore_errors=True)


@pytest.mark.django_db
def test_on_s3_a_run_gets_its_inputs_and_its_finished_files_are_read_through_the_store(s3, scripted, tmp_path):
    run, execute = scripted
    publish_inputs(run, tmp_path)
    assert not lookups.run_folder(run.pk).exists()

    run = execute()
    assert run.state == RunState.SUCCEEDED, run.error
    assert run.outputs["result"]["samples"] == 2 and run.outputs["folder"] == f"runs/{run.pk}"
    prefix = f"runs/{run.pk}/"
    # The top-level files, marker last; not the model folder, checkpoints, the lock or downloads.
    assert s3.keys(prefix) == [
        f"{prefix}{name}" for name in ("_COMPLETE", "eval_samples.jsonl", "prompts.jsonl", "run.json")
    ]
    assert storage.list_files(lookups.run_relpath(run.pk)) == [
        ("eval_samples.jsonl", len(s3.read(f"{prefix}eval_samples.jsonl"))),
        ("prompts.jsonl", len(PROMPTS)),
        ("run.json", len(s3.read(f"{prefix}run.json"))),
    ]

    # Another machine (the web process), without the worker's folder, reads them from the bucket.
    shutil.rmtree(lookups.run_folder(run.pk))
    assert lookups.run_file_exists(run.pk, "eval_samples.jsonl")
    with lookups.run_file_open(run.pk, "eval_samples.jsonl") as handle:
        rows = [json.loads(line) for line in handle.read().decode().splitlines()]
    assert rows == [{"prompt": "hello", "reward": 1.0}, {"prompt": "bye", "reward": 1.0}]
    assert json.loads(lookups.run_file_open(run.pk, "run.json").read())["run_id"] == run.pk
    assert not lookups.run_file_exists(run.pk, "model.safetensors")
    with pytest.raises(FileNotFoundError):
        lookups.run_file_open(run.pk, "checkpoints")


@pytest.mark.django_db
def test_on_s3_a_run_whose_files_cannot_be_stored_fails(s3, scripted, tmp_path, monkeypatch):
    run, execute = scripted
    publish_inputs(run, tmp_path)

    def down(*args, **kwargs):
        raise ConnectionError("the bucket is unreachable")

    monkeypatch.setattr(storage, "publish_copy", down)
    run = execute()
    assert run.state == RunState.FAILED
    assert "could not store the run's files" in run.error and "the bucket is unreachable" in run.error


@pytest.mark.django_db
def test_on_local_disk_the_run_folder_is_the_stores_folder(scripted):
    run, execute = scripted
    folder = lookups.run_folder(run.pk)
    assert folder == storage.local_path(f"runs/{run.pk}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts.jsonl").write_bytes(PROMPTS)

    run = execute()
    assert run.state == RunState.SUCCEEDED, run.error
    assert lookups.run_published_files(folder) == ["eval_samples.jsonl", "prompts.jsonl", "run.json"]
    assert storage.exists(lookups.run_relpath(run.pk))
    assert lookups.run_file_exists(run.pk, "eval_samples.jsonl") and not lookups.run_file_exists(run.pk, "nope")
    with lookups.run_file_open(run.pk, "prompts.jsonl") as handle:
        assert handle.read() == PROMPTS
    with storage.open_file(lookups.run_relpath(run.pk), "model/model.safetensors") as handle:
        assert handle.read() == b"weights"  # (on local disk the work folder is the store's folder)


@pytest.mark.django_db
def test_on_s3_a_run_created_by_the_web_side_publishes_its_input_files(s3, make_user):
    """run_create writes the inputs into the web host's folder; a worker elsewhere reads the store's copy."""

    def prepare(run, folder):
        (folder / "prompts.jsonl").write_bytes(PROMPTS)

    run = runs.run_create(
        kind="generate",
        config={"model_path": "/models/tiny", "prompts_file": "prompts.jsonl"},
        created_by=make_user(),
        prepare=prepare,
    )
    assert storage.list_files(lookups.run_relpath(run.pk)) == [("prompts.jsonl", len(PROMPTS))]
    shutil.rmtree(lookups.run_folder(run.pk))
    with lookups.run_file_open(run.pk, "prompts.jsonl") as handle:
        assert handle.read() == PROMPTS
