"""A snapshot's Hugging Face dataset folder (``hf/``, issue 13): written by PairFileWriter as the pairs
stream, read by ``datasets.load_from_disk`` as the Parquet rows, made as ``datasets``' own
``save_to_disk`` makes it, and downloaded as a tar (the whole DatasetDict, or one split's Dataset).
"""

import hashlib
import io
import json
import random
import stat
import tarfile

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeling import pair_files, tar_stream
from labeling.models import Comparison, Completion, PreferenceSnapshot, Ranking, Role, SnapshotStatus
from labeling.pair_files import COLUMNS, HF_DATA_FILE, PairFileWriter, arrow_schema
from labeling.services import snapshots as snapshot_services

TEXTS = ["plain", 'quote " backslash \\', "new\nline\ttab", "ünï — 中文 🙂", "\x01 control", ""]
FEATURES = datasets.Features.from_arrow_schema(arrow_schema())


@pytest.fixture(autouse=True)
def quiet_datasets():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def random_rows(n: int, *, splits=("train", "eval", "test"), seed: int = 0) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            (
                f"{rng.choice(TEXTS)} prompt {i // 3}",
                rng.choice(TEXTS) * rng.randint(0, 4),
                f"{rng.choice(TEXTS)} rejected {i}",
                rng.choice([1.0, 0.5, -0.0, 1 / 3]),
                rng.choice([1.0, 1 / 3, 1 / 6]),
                i // 3,
                rng.choice([None, 7, 12]),
                rng.choice(["human", "ai", "imported", "mixed"]),
                rng.choice([None, 1, 2]),
                rng.choice(splits),
                rng.choice([1.0, 0.5, 2 / 3]),
                2 * i,
                2 * i + 1,
            )
        )
    return rows


def write(folder, rows, **kwargs) -> dict:
    with PairFileWriter(folder, hf_dataset=True, **kwargs) as writer:
        for start in range(0, len(rows), 5):  # a comparison's pairs at a time, as the build hands them
            writer.write(rows[start : start + 5])
        return writer.close()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_dict(rows, splits, folder):
    """The same rows saved by ``datasets`` itself (one shard per split, an empty split included)."""
    reference = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {column: [row[i] for row in rows if row[9] == split] for i, column in enumerate(COLUMNS)},
                features=FEATURES,
                split=split,
            )
            for split in splits
        }
    )
    reference.save_to_disk(str(folder), num_shards=dict.fromkeys(splits, 1))
    return reference


def batches(path) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_stream(source)  # a stream, as datasets writes: not the IPC file format
        return reader.schema, list(reader)


# ---------------------------------------------------------------------------------------------
# The folder PairFileWriter writes


@pytest.mark.parametrize("row_group_rows", [None, 7, 300, 1000])
def test_load_from_disk_gives_the_parquet_rows(tmp_path, row_group_rows):
    rows = random_rows(2600)
    files = write(tmp_path, rows, row_group_rows=row_group_rows)

    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert isinstance(loaded, datasets.DatasetDict)
    assert list(loaded) == ["train", "eval", "test"]
    for split, dataset in loaded.items():
        parquet = pq.read_table(tmp_path / f"{split}.parquet")
        assert dataset.to_list() == parquet.to_pylist()  # every column, nulls, order
        assert dataset.features == FEATURES and dataset.column_names == list(COLUMNS)
        assert str(dataset.split) == split
        assert len(dataset) == files[f"{split}.jsonl"]["rows"] == files[f"hf/{split}/{HF_DATA_FILE}"]["rows"]
        assert any(row["labeler_id"] is None for row in dataset) and any(row["criterion"] is None for row in dataset)
        _, written = batches(tmp_path / "hf" / split / HF_DATA_FILE)
        sizes = [batch.num_rows for batch in written]
        assert sizes[:-1] == [1000] * (len(sizes) - 1) and 0 < sizes[-1] <= 1000  # save_to_disk's batches
    if row_group_rows and row_group_rows < 1000:
        assert pq.ParquetFile(tmp_path / "train.parquet").metadata.num_row_groups > 1


def test_the_manifest_describes_every_file(tmp_path):
    files = write(tmp_path, random_rows(50))
    hf = sorted(name for name in files if name.startswith("hf/"))
    assert hf == sorted(
        ["hf/dataset_dict.json"]
        + [
            f"hf/{split}/{name}"
            for split in ("train", "eval", "test")
            for name in (HF_DATA_FILE, "dataset_info.json", "state.json")
        ]
    )
    on_disk = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert on_disk == sorted(files)
    for name, info in files.items():
        assert info["bytes"] == (tmp_path / name).stat().st_size and info["sha256"] == sha256(tmp_path / name), name
        assert info["rows"] is None if name.endswith(".json") else isinstance(info["rows"], int)
    state = json.loads((tmp_path / "hf" / "train" / "state.json").read_text())
    # A content fingerprint (datasets' are 16 hex digits): the same rows give the same one.
    assert state["_fingerprint"] == files[f"hf/train/{HF_DATA_FILE}"]["sha256"][:16]


def test_empty_eval_is_a_dataset_with_the_columns_and_no_test_means_no_test_folder(tmp_path):
    files = write(tmp_path, random_rows(30, splits=("train",)))
    assert json.loads((tmp_path / "hf" / "dataset_dict.json").read_text()) == {"splits": ["train", "eval"]}
    assert not (tmp_path / "hf" / "test").exists() and not any(name.startswith("hf/test/") for name in files)
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert list(loaded) == ["train", "eval"]
    assert len(loaded["eval"]) == 0 and loaded["eval"].features == FEATURES
    assert len(loaded["train"]) == 30


@pytest.mark.parametrize("row_group_rows", [None, 300])
def test_the_folder_is_what_datasets_save_to_disk_writes(tmp_path, row_group_rows):
    rows = random_rows(2345, splits=("train", "eval"))
    ours = tmp_path / "ours"
    write(ours, rows, row_group_rows=row_group_rows)
    theirs = tmp_path / "theirs"
    reference_dict(rows, ["train", "eval"], theirs)

    assert (ours / "hf" / "dataset_dict.json").read_bytes() == (theirs / "dataset_dict.json").read_bytes()
    assert sorted(p.name for p in (ours / "hf").iterdir()) == sorted(p.name for p in theirs.iterdir())
    for split in ("train", "eval"):
        mine, reference = ours / "hf" / split, theirs / split
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in reference.iterdir())
        assert (mine / "dataset_info.json").read_bytes() == (reference / "dataset_info.json").read_bytes()
        # state.json byte for byte but the fingerprint (datasets makes a random one)
        text, reference_text = (mine / "state.json").read_text(), (reference / "state.json").read_text()
        fingerprint, reference_fingerprint = (json.loads(t)["_fingerprint"] for t in (text, reference_text))
        assert text == reference_text.replace(reference_fingerprint, fingerprint)
        assert json.loads(text)["_split"] == split
        (schema, written), (reference_schema, reference_written) = (
            batches(mine / HF_DATA_FILE),
            batches(reference / HF_DATA_FILE),
        )
        assert schema.equals(reference_schema, check_metadata=True)  # the "huggingface" metadata too
        assert schema.metadata == reference_schema.metadata
        assert [b.num_rows for b in written] == [b.num_rows for b in reference_written]
        assert [b.to_pylist() for b in written] == [b.to_pylist() for b in reference_written]
        if row_group_rows is None:  # one row group: byte for byte
            assert (mine / HF_DATA_FILE).read_bytes() == (reference / HF_DATA_FILE).read_bytes()


def test_an_empty_split_is_what_save_to_disk_writes_for_one_shard(tmp_path):
    write(tmp_path / "ours", random_rows(3, splits=("train",)))
    reference_dict([], ["eval"], tmp_path / "theirs")
    empty = (tmp_path / "ours" / "hf" / "eval" / HF_DATA_FILE).read_bytes()
    assert empty == (tmp_path / "theirs" / "eval" / HF_DATA_FILE).read_bytes()
    assert batches(tmp_path / "ours" / "hf" / "eval" / HF_DATA_FILE)[1] == []


def test_make_read_only_reaches_the_hf_files(tmp_path):
    write(tmp_path, random_rows(10))
    pair_files.make_read_only(tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o444, path


def test_without_hf_dataset_the_writer_writes_no_hf_folder(tmp_path):
    with PairFileWriter(tmp_path) as writer:
        writer.write(random_rows(10))
        files = writer.close()
    assert not (tmp_path / "hf").exists() and not any(name.startswith("hf/") for name in files)


def test_a_failed_write_closes_the_arrow_files(tmp_path, monkeypatch):
    def broken(self, table):
        raise OSError("disk full")

    monkeypatch.setattr(pair_files._DatasetStream, "write", broken)
    with (
        pytest.raises(OSError, match="disk full"),
        PairFileWriter(tmp_path, hf_dataset=True, row_group_rows=4) as writer,
    ):
        for _ in range(10):
            writer.write(random_rows(4, splits=("train",)))
        writer.close()


# ---------------------------------------------------------------------------------------------
# The download (a tar, made as it is sent)


@pytest.fixture
def eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def reviewer(make_user, add_member):
    return add_member(make_user("rita"), Role.REVIEWER)


def seed(project, labelers, splits=("train", "train", "eval", "test")):
    for n, split in enumerate(splits):
        comparison = Comparison.objects.create(project=project, prompt=f"{TEXTS[n % len(TEXTS)]} {n}", split=split)
        ids = [
            Completion.objects.create(comparison=comparison, position=i, text=f"answer {n}.{i}").pk for i in range(3)
        ]
        for labeler, ranks in zip(labelers, ([1, 2, 3], [1, 2, 2], [3, 2, 1]), strict=False):
            order = {"criterion": None, "ranks": {str(i): r for i, r in zip(ids, ranks, strict=True)}, "failed": []}
            Ranking.objects.create(comparison=comparison, labeler=labeler, orders=[order])


def create_snapshot(client, project, capture, *, build=True):
    with capture(execute=build):
        response = client.post(f"/api/projects/{project.id}/snapshots/", {}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def download_url(project, snapshot_id) -> str:
    return f"/api/projects/{project.id}/snapshots/{snapshot_id}/download/"


def extract(response, into):
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:  # uncompressed
        members = tar.getmembers()
        tar.extractall(into, filter="data")
    return members


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_the_tar_is_the_dataset_dict_and_split_gives_one_dataset(
    api, project, reviewer, labelers, tmp_path, settings, django_capture_on_commit_callbacks
):
    seed(project, labelers)
    client = api(reviewer)
    snapshot_id = create_snapshot(client, project, django_capture_on_commit_callbacks)
    snapshot = PreferenceSnapshot.objects.get(pk=snapshot_id)
    assert snapshot.status == SnapshotStatus.READY, snapshot.error
    folder = snapshot_services.snapshot_folder(snapshot)
    detail = client.get(f"/api/projects/{project.id}/snapshots/{snapshot_id}/").json()
    assert detail["hf_download"] == f"{download_url(project, snapshot_id)}?format=hf"
    assert set(detail["downloads"]["train"]) == {"jsonl", "parquet"}  # the per-split files, as before

    response = client.get(detail["hf_download"])
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-tar"
    top = f"project{project.id}-snapshot-v{snapshot.version}-hf"
    assert response["Content-Disposition"] == f'attachment; filename="{top}.tar"'
    members = extract(response, tmp_path / "all")
    assert all(m.name == top or m.name.startswith(f"{top}/") for m in members)
    assert {stat.S_IMODE(m.mode) for m in members if m.isfile()} == {0o644}  # writable once extracted
    assert {stat.S_IMODE(m.mode) for m in members if m.isdir()} == {0o755}
    assert {m.name.removeprefix(f"{top}/") for m in members if m.isfile()} == {
        name.removeprefix("hf/") for name in snapshot.counts["files"] if name.startswith("hf/")
    }
    loaded = datasets.load_from_disk(str(tmp_path / "all" / top))
    assert list(loaded) == ["train", "eval", "test"]
    for split, dataset in loaded.items():
        assert dataset.to_list() == pq.read_table(folder / f"{split}.parquet").to_pylist()
        assert len(dataset) == snapshot.counts["by_split"][split] > 0

    one = client.get(download_url(project, snapshot_id), {"format": "hf", "split": "eval"})
    assert one.status_code == 200
    top = f"project{project.id}-snapshot-v{snapshot.version}-eval-hf"
    assert one["Content-Disposition"] == f'attachment; filename="{top}.tar"'
    extract(one, tmp_path / "eval")
    dataset = datasets.load_from_disk(str(tmp_path / "eval" / top))
    assert isinstance(dataset, datasets.Dataset) and str(dataset.split) == "eval"
    assert dataset.to_list() == pq.read_table(folder / "eval.parquet").to_pylist()


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_the_tar_is_sent_in_small_pieces(
    api, project, reviewer, labelers, monkeypatch, django_capture_on_commit_callbacks
):
    seed(project, labelers)
    client = api(reviewer)
    snapshot_id = create_snapshot(client, project, django_capture_on_commit_callbacks)
    monkeypatch.setattr(tar_stream, "CHUNK_BYTES", 256)
    response = client.get(download_url(project, snapshot_id), {"format": "hf"})
    pieces = list(response.streaming_content)
    assert max(map(len, pieces)) <= tarfile.RECORDSIZE + 2 * tarfile.BLOCKSIZE  # the end of the archive
    assert sum(len(p) for p in pieces) == int(response["Content-Length"]) and len(pieces) > 50


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_no_test_split_is_404_and_an_unknown_split_400(
    api, project, reviewer, labelers, django_capture_on_commit_callbacks
):
    seed(project, labelers, splits=("train",))
    client = api(reviewer)
    snapshot_id = create_snapshot(client, project, django_capture_on_commit_callbacks)
    url = download_url(project, snapshot_id)
    missing = client.get(url, {"format": "hf", "split": "test"})
    assert missing.status_code == 404 and "no test split" in missing.json()["detail"]
    assert client.get(url, {"format": "hf", "split": "dev"}).status_code == 400
    assert client.get(url, {"format": "hf", "split": ""}).status_code == 400
    assert client.get(url, {"format": "hf", "split": "eval"}).status_code == 200  # present, empty


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_snapshot_built_before_hf_existed_is_a_clear_404(
    api, project, reviewer, labelers, monkeypatch, django_capture_on_commit_callbacks
):
    seed(project, labelers)
    # The build as it was: the same writer without the hf/ folder.
    monkeypatch.setattr(snapshot_services, "PairFileWriter", lambda folder, **kwargs: PairFileWriter(folder))
    client = api(reviewer)
    snapshot_id = create_snapshot(client, project, django_capture_on_commit_callbacks)
    snapshot = PreferenceSnapshot.objects.get(pk=snapshot_id)
    assert snapshot.status == SnapshotStatus.READY and not (snapshot_services.snapshot_folder(snapshot) / "hf").exists()

    detail = client.get(f"/api/projects/{project.id}/snapshots/{snapshot_id}/").json()
    assert detail["hf_download"] is None and set(detail["downloads"]) == {"train", "eval", "test"}
    for params in ({"format": "hf"}, {"format": "hf", "split": "train"}):
        response = client.get(download_url(project, snapshot_id), params)
        assert response.status_code == 404
        assert "built before" in response.json()["detail"] and "create a new snapshot" in response.json()["detail"]
    assert client.get(download_url(project, snapshot_id), {"format": "jsonl"}).status_code == 200


@pytest.mark.django_db
def test_hf_is_409_until_ready_and_after_a_failure(
    api, project, reviewer, labelers, django_capture_on_commit_callbacks
):
    seed(project, labelers)
    client = api(reviewer)
    snapshot_id = create_snapshot(client, project, django_capture_on_commit_callbacks, build=False)
    url = download_url(project, snapshot_id)
    response = client.get(url, {"format": "hf"})
    assert response.status_code == 409 and "not ready yet (status: pending)" in response.json()["detail"]
    assert client.get(f"/api/projects/{project.id}/snapshots/{snapshot_id}/").json()["hf_download"] is None
    PreferenceSnapshot.objects.filter(pk=snapshot_id).update(status=SnapshotStatus.BUILDING)
    assert client.get(url, {"format": "hf", "split": "train"}).status_code == 409
    PreferenceSnapshot.objects.filter(pk=snapshot_id).update(status=SnapshotStatus.FAILED, error="disk on fire")
    failed = client.get(url, {"format": "hf"})
    assert failed.status_code == 409 and "disk on fire" in failed.json()["detail"]


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_labeler_gets_the_refusal_of_the_other_formats(
    api, project, labelers, admin_user, django_capture_on_commit_callbacks
):
    seed(project, labelers)
    snapshot_id = create_snapshot(api(admin_user), project, django_capture_on_commit_callbacks)
    client = api(labelers[0])
    url = download_url(project, snapshot_id)
    jsonl, hf = client.get(url, {"format": "jsonl"}), client.get(url, {"format": "hf"})
    assert jsonl.status_code == hf.status_code == 403
    assert hf.json() == jsonl.json() and "reviewer role" in hf.json()["detail"]
