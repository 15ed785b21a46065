"""The registry on S3 (ARTIFACT_STORAGE=s3): django-storages against a real S3 HTTP endpoint (moto's
server on 127.0.0.1), not a patched client. Uploads end with the _COMPLETE marker, a version without
it does not exist, failures leave nothing, materialize downloads once into the local cache."""

import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from storages.backends.s3 import S3Storage

from common import storage_s3
from models_registry import selectors, services, storage
from models_registry.models import ModelVersion, RegisteredModel
from tests import s3 as s3_fixtures

pytestmark = pytest.mark.django_db

# The moto server and a fresh bucket per test (tests/s3.py, shared with tests/test_storage_layer.py).
s3_endpoint = s3_fixtures.s3_endpoint
s3 = s3_fixtures.s3

FAKE = {"config.json": {"model_type": "llama", "hidden_size": 8}, "model.safetensors": b"weights"}


@pytest.fixture
def saves(monkeypatch) -> SimpleNamespace:
    """``saves.names``: what S3Storage uploads, in order; ``saves.fail_at = n`` fails the n-th upload."""
    saves = SimpleNamespace(names=[], fail_at=None)
    original = S3Storage._save

    def spy(self, name, content):
        saves.names.append(name)
        if saves.fail_at == len(saves.names):
            raise ConnectionError("the network went away mid-upload")
        return original(self, name, content)

    monkeypatch.setattr(S3Storage, "_save", spy)
    return saves


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def register(folder, django_capture_on_commit_callbacks, name="tiny", **kwargs):
    with django_capture_on_commit_callbacks(execute=True):  # the staged copy goes on commit
        return services.model_version_register(model_name=name, task="causal-lm", folder=folder, fmt=None, **kwargs)


def local_leftovers() -> list[str]:
    """Hidden work folders left under ARTIFACT_ROOT: staging, downloads, stale cache copies."""
    root = Path(settings.ARTIFACT_ROOT)
    prefixes = (storage.INCOMING_PREFIX, storage_s3.DOWNLOAD_PREFIX, storage_s3.STALE_PREFIX)
    return [str(p) for p in root.rglob("*") if p.is_dir() and p.name.startswith(prefixes)] if root.exists() else []


def test_register_uploads_every_file_then_the_marker(s3, saves, make_folder, django_capture_on_commit_callbacks):
    big = bytes(range(256)) * (9 * 4096)  # 9 MiB: above boto3's multipart threshold (8 MiB)
    folder = make_folder("m", {**FAKE, "sub/extra.json": {"a": 1}, "model-00002.safetensors": big})
    version = register(folder, django_capture_on_commit_callbacks)

    assert version.artifact_path == "models/tiny/1"
    files = files_of(folder)
    assert s3.keys() == sorted([f"models/tiny/1/{n}" for n in files] + ["models/tiny/1/_COMPLETE"])
    assert {n: s3.read(f"models/tiny/1/{n}") for n in files} == files
    assert saves.names[-1] == "models/tiny/1/_COMPLETE"  # written last
    marker = json.loads(s3.read("models/tiny/1/_COMPLETE"))
    assert sorted(map(tuple, marker["files"])) == sorted((n, len(b)) for n, b in files.items())
    assert len(marker["upload_id"]) == 32

    assert storage.exists("models/tiny/1")
    assert storage.list_files("models/tiny/1") == sorted((n, len(b)) for n, b in files.items())
    with storage.open_file("models/tiny/1", "model-00002.safetensors") as handle:
        assert handle.read() == big
    assert version.size_bytes == sum(len(b) for b in files.values())
    # Nothing stays on local disk: the staged copy is gone once the row is committed.
    assert not (Path(settings.ARTIFACT_ROOT) / "models" / "tiny" / "1").exists()
    assert local_leftovers() == []
    assert folder.is_dir()  # a copy leaves the source alone


def test_versions_list_and_download_through_the_api(s3, api, labeler, make_folder, django_capture_on_commit_callbacks):
    folder = make_folder("m", FAKE)
    register(folder, django_capture_on_commit_callbacks, shared=True)  # shared: any signed-in user reads it
    version = register(folder, django_capture_on_commit_callbacks, shared=True)
    client = api(labeler)

    page = client.get(f"/api/models/{version.model_id}/versions/").json()
    assert [v["version"] for v in page["results"]] == [2, 1]

    response = client.get(f"/api/models/{version.model_id}/versions/2/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {n: archive.read(n) for n in archive.namelist()} == {f"tiny-v2/{n}": b for n, b in files_of(folder).items()}
    assert archive.testzip() is None

    storage.remove(version.artifact_path)
    response = client.get(f"/api/models/{version.model_id}/versions/2/download/")
    assert response.status_code == 404
    assert "missing from the artifact store" in response.json()["detail"]


def test_materialize_downloads_once_then_reuses_the_cache(
    s3, make_folder, django_capture_on_commit_callbacks, monkeypatch
):
    folder = make_folder("m", FAKE)
    version = register(folder, django_capture_on_commit_callbacks)
    downloads = []
    original = storage_s3._download
    monkeypatch.setattr(storage_s3, "_download", lambda *a: downloads.append(a[0]) or original(*a))

    first = storage.materialize(version.artifact_path)
    assert first == Path(settings.ARTIFACT_ROOT) / "cache" / "models" / "tiny" / "1"
    assert {n: b for n, b in files_of(first).items() if n != "_COMPLETE"} == files_of(folder)
    assert storage.materialize(version.artifact_path) == first
    assert selectors.version_for_generation(version_id=version.pk) == (version, str(first), None, None)
    assert downloads == ["models/tiny/1"]  # once

    # The bucket's copy changes under the same key (a number registered again after a removal):
    # the cache notices (upload ids differ) and downloads afresh.
    other = make_folder("other", {**FAKE, "model.safetensors": b"other weights"})
    staged = storage.stage(other, model_name="tiny", move=False)
    with django_capture_on_commit_callbacks(execute=True):
        storage.publish(staged, version.artifact_path)
    again = storage.materialize(version.artifact_path)
    assert again == first and (again / "model.safetensors").read_bytes() == b"other weights"
    assert len(downloads) == 2
    assert local_leftovers() == []


@pytest.mark.parametrize("locking", [True, False], ids=["flock", "rename-only"])
def test_materialize_is_safe_when_callers_race(
    s3, make_folder, django_capture_on_commit_callbacks, monkeypatch, locking
):
    folder = make_folder("m", {**FAKE, "model.safetensors": os.urandom(300_000)})
    version = register(folder, django_capture_on_commit_callbacks)
    downloads = []
    original = storage_s3._download
    monkeypatch.setattr(storage_s3, "_download", lambda *a: downloads.append(a[0]) or original(*a))
    if not locking:  # a filesystem where flock is not honoured: the rename alone must keep it sound
        monkeypatch.setattr(storage_s3, "_locked", lambda target: nullcontext())

    start = threading.Barrier(4)
    results, errors = [], []

    def worker():
        start.wait()
        try:
            results.append(storage.materialize(version.artifact_path))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(set(results)) == 1
    assert {n: b for n, b in files_of(results[0]).items() if n != "_COMPLETE"} == files_of(folder)
    if locking:
        assert len(downloads) == 1
    assert local_leftovers() == []


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "move"])
def test_a_failed_upload_leaves_no_version_and_no_row(s3, saves, make_folder, django_capture_on_commit_callbacks, copy):
    source = make_folder("m", {**FAKE, "tokenizer.json": {"v": 1}})
    saves.fail_at = 2  # the second file of three; the marker is never written
    with pytest.raises(ConnectionError):
        register(source, django_capture_on_commit_callbacks, copy=copy)

    assert len(saves.names) == 2
    assert s3.keys() == []  # the file that made it is deleted again
    assert not storage.exists("models/tiny/1")
    with pytest.raises(FileNotFoundError):
        storage.list_files("models/tiny/1")
    assert not ModelVersion.objects.exists() and not RegisteredModel.objects.exists()
    assert local_leftovers() == []
    assert files_of(source) == {  # a moved folder is moved back
        "config.json": json.dumps(FAKE["config.json"]).encode(),
        "model.safetensors": b"weights",
        "tokenizer.json": b'{"v": 1}',
    }


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "move"])
def test_a_failure_after_the_upload_deletes_it(s3, make_folder, django_capture_on_commit_callbacks, monkeypatch, copy):
    source = make_folder("m", FAKE)

    def boom(self, *args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(ModelVersion, "save", boom)
    with pytest.raises(RuntimeError):
        register(source, django_capture_on_commit_callbacks, copy=copy)

    assert s3.keys() == []
    assert not ModelVersion.objects.exists()
    assert local_leftovers() == []
    assert files_of(source) == {
        "config.json": json.dumps(FAKE["config.json"]).encode(),
        "model.safetensors": b"weights",
    }


def test_objects_without_a_marker_are_not_a_version_and_are_replaced(
    s3, make_folder, django_capture_on_commit_callbacks
):
    s3.put("models/tiny/1/junk.bin", b"from an upload that crashed")
    assert not storage.exists("models/tiny/1")
    for read in (storage.list_files, storage.materialize):
        with pytest.raises(FileNotFoundError, match="missing from the artifact store"):
            read("models/tiny/1")

    version = register(make_folder("m", FAKE), django_capture_on_commit_callbacks)
    assert version.artifact_path == "models/tiny/1"
    assert s3.keys() == ["models/tiny/1/_COMPLETE", "models/tiny/1/config.json", "models/tiny/1/model.safetensors"]


def test_remove_deletes_the_objects_and_the_cache(s3, make_folder, django_capture_on_commit_callbacks):
    version = register(make_folder("m", FAKE), django_capture_on_commit_callbacks)
    register(make_folder("m2", FAKE), django_capture_on_commit_callbacks, name="keep")
    cached = storage.materialize(version.artifact_path)

    storage.remove(version.artifact_path)

    assert s3.keys() == ["models/keep/1/_COMPLETE", "models/keep/1/config.json", "models/keep/1/model.safetensors"]
    assert not storage.exists(version.artifact_path) and not cached.exists()
    with pytest.raises(FileNotFoundError):
        storage.materialize(version.artifact_path)
    with pytest.raises(ValueError, match="missing from the artifact store"):
        selectors.version_for_generation(version_id=version.pk)
    assert local_leftovers() == []


def test_paths_cannot_climb_out_of_the_store(s3):
    for bad in ("../models/x/1", "/models/x/1", "models/../../x"):
        with pytest.raises(ValueError):
            storage.exists(bad)
        with pytest.raises(ValueError):
            storage.materialize(bad)


def _settings_in_subprocess(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARTIFACT_STORAGE"))}
    code = (
        "import json, config.settings as s; "
        "print(json.dumps({'mode': s.ARTIFACT_STORAGE, 'artifacts': s.STORAGES.get('artifacts')}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, "DEBUG": "1", **env}, capture_output=True, text=True, check=False
    )


def test_settings_pick_the_backend_from_the_environment():
    assert json.loads(_settings_in_subprocess().stdout) == {"mode": "local", "artifacts": None}

    done = _settings_in_subprocess(
        ARTIFACT_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="models",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        AWS_S3_REGION_NAME="eu-west-1",
    )
    artifacts = json.loads(done.stdout)["artifacts"]
    assert artifacts["BACKEND"] == "storages.backends.s3.S3Storage"
    assert artifacts["OPTIONS"]["bucket_name"] == "models"
    assert artifacts["OPTIONS"]["endpoint_url"] == "http://minio:9000"
    assert artifacts["OPTIONS"]["region_name"] == "eu-west-1"

    failed = _settings_in_subprocess(ARTIFACT_STORAGE="s3")
    assert failed.returncode != 0
    assert "ImproperlyConfigured" in failed.stderr and "AWS_STORAGE_BUCKET_NAME" in failed.stderr
