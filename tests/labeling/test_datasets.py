import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from common.exceptions import ServiceError
from labeling.models import Dataset, PromptRow, Role
from labeling.services.datasets import dataset_import, split_for
from training.demo_data import DIALOGSUM, data_file

pytestmark = pytest.mark.django_db


def jsonl(*rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def dialogue_rows(n: int) -> list[dict]:
    return [{"dialogue": f"#Person1#: hello {i}", "summary": f"greeting {i}"} for i in range(n)]


def upload(client, project, content: bytes, filename: str = "rows.jsonl", **form):
    file = SimpleUploadedFile(filename, content, content_type="application/octet-stream")
    return client.post(f"/api/projects/{project.id}/datasets/", {"file": file, **form}, format="multipart")


def assert_nothing_imported():
    assert not Dataset.objects.exists()
    assert not PromptRow.objects.exists()


def assert_names(response, *, line, field=None, status=400):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["detail"].startswith(f"line {line}" + (f", field {field!r}" if field else "")), body
    assert body["errors"][0]["line"] == line
    assert body["errors"][0]["field"] == field
    return body


# --- happy paths -----------------------------------------------------------------------------


def test_jsonl_upload_creates_dataset_and_rows(api, project, admin_user):
    rows = [{"prompt": "Hi", "n": 3, "ok": True, "score": 0.5}, {"prompt": "Yo", "n": 4, "ok": False, "score": 1}]
    response = upload(api(admin_user), project, jsonl(*rows), filename="greetings.jsonl")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "greetings"
    assert body["source_filename"] == "greetings.jsonl"
    assert body["fields"] == ["prompt", "n", "ok", "score"]
    assert body["row_count"] == 2
    assert sum(body["split_counts"].values()) == 2
    assert set(body["split_counts"]) == {"train", "eval", "test"}
    dataset = Dataset.objects.get()
    assert dataset.project == project and dataset.created_by == admin_user
    stored = list(dataset.rows.order_by("index").values_list("index", "data"))
    assert stored == [(0, rows[0]), (1, rows[1])]


def test_name_and_blank_lines_and_crlf(api, project, admin_user):
    content = b'{"a": "x"}\r\n\r\n   \n{"a": "y"}\r\n'
    response = upload(api(admin_user), project, content, name="  My set ")
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "My set"
    assert list(PromptRow.objects.order_by("index").values_list("index", "data")) == [(0, {"a": "x"}), (1, {"a": "y"})]


def test_csv_upload_with_split_column(api, project, admin_user):
    content = (
        "\ufeffdialogue,summary,split\r\n"
        '"#Person1#: hi, there\n#Person2#: hello",greeting,train\r\n'
        "b,B,EVAL\r\n"
        "c,C, test \r\n"
        "d,D,eval\r\n"
    ).encode()
    response = upload(api(admin_user), project, content, filename="set.csv")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["fields"] == ["dialogue", "summary"]  # the split column is not a data field
    assert body["split_counts"] == {"train": 1, "eval": 2, "test": 1}
    rows = list(PromptRow.objects.order_by("index").values_list("split", "data"))
    assert rows[0] == ("train", {"dialogue": "#Person1#: hi, there\n#Person2#: hello", "summary": "greeting"})
    assert [split for split, _ in rows] == ["train", "eval", "test", "eval"]


def test_jsonl_split_column_wins_over_fractions(api, project, admin_user):
    rows = [{"q": str(i), "split": "test"} for i in range(20)]
    response = upload(api(admin_user), project, jsonl(*rows), eval_fraction="0.5")
    assert response.status_code == 201
    assert response.json()["split_counts"] == {"train": 0, "eval": 0, "test": 20}


def test_hash_splits_follow_fractions_and_are_deterministic(api, project, admin_user):
    rows = [{"q": f"question {i}"} for i in range(400)]
    client = api(admin_user)
    first = upload(client, project, jsonl(*rows), eval_fraction="0.25", test_fraction="0.25").json()
    second = upload(client, project, jsonl(*reversed(rows)), eval_fraction="0.25", test_fraction="0.25").json()
    counts = first["split_counts"]
    assert sum(counts.values()) == 400
    for split in ("train", "eval", "test"):
        assert counts[split] > 40, counts  # ~100 / 100 / 200 expected
    assert counts == second["split_counts"]
    # The same row gets the same split whatever its position in the file.
    by_content = {r.data["q"]: r.split for r in PromptRow.objects.filter(dataset_id=first["id"])}
    assert by_content == {r.data["q"]: r.split for r in PromptRow.objects.filter(dataset_id=second["id"])}


def test_split_fractions_extremes(api, project, admin_user):
    client = api(admin_user)
    rows = jsonl(*[{"q": str(i)} for i in range(30)])
    all_train = upload(client, project, rows, eval_fraction="0", test_fraction="0").json()
    assert all_train["split_counts"] == {"train": 30, "eval": 0, "test": 0}
    all_eval = upload(client, project, rows, eval_fraction="1").json()
    assert all_eval["split_counts"] == {"train": 0, "eval": 30, "test": 0}


def test_default_fractions_are_ten_percent_eval_no_test(api, project, admin_user):
    body = upload(api(admin_user), project, jsonl(*[{"q": str(i)} for i in range(1000)])).json()
    assert body["split_counts"]["test"] == 0
    assert 50 < body["split_counts"]["eval"] < 150


def test_split_for_is_a_stable_content_hash():
    data = {"b": 2, "a": "x"}
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    u = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big") / 2**64
    expected = "eval" if u < 0.3 else ("test" if u < 0.5 else "train")
    assert split_for(data, eval_fraction=0.3, test_fraction=0.2) == expected
    assert split_for({"a": "x", "b": 2}, eval_fraction=0.3, test_fraction=0.2) == expected  # key order ignored


def test_dialogsum_dev_file_imports(api, project, admin_user):
    path = data_file(DIALOGSUM, larger=True)  # the shared 500 rows, else the shipped 150
    rows = len(path.read_text(encoding="utf-8").splitlines())
    with open(path, "rb") as handle:
        file = SimpleUploadedFile("dialogsum.dev.jsonl", handle.read())
    response = api(admin_user).post(f"/api/projects/{project.id}/datasets/", {"file": file}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["fields"] == ["fname", "dialogue", "summary", "topic"]
    assert body["row_count"] == rows
    assert sum(body["split_counts"].values()) == rows
    assert body["split_counts"]["eval"] > 0 and body["split_counts"]["test"] == 0
    first = PromptRow.objects.get(dataset_id=body["id"], index=0)
    assert first.data["fname"] == "dev_0"
    assert first.data["dialogue"].startswith("#Person1#: Hello, how are you doing today?")


def test_large_upload_spooled_to_disk_imports_in_batches(api, project, admin_user, settings):
    # Past FILE_UPLOAD_MAX_MEMORY_SIZE Django spools the upload to a temporary file; it is still read line by line.
    rows = [{"q": f"{i:05d} " + "x" * 1000} for i in range(2500)]
    content = jsonl(*rows)
    assert len(content) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    response = upload(api(admin_user), project, content, filename="big.jsonl")
    assert response.status_code == 201, response.json()
    assert response.json()["row_count"] == 2500
    last = PromptRow.objects.get(dataset_id=response.json()["id"], index=2499)
    assert last.data == rows[-1]


# --- bad files import nothing and name the line and field ------------------------------------


def test_malformed_jsonl_line(api, project, admin_user):
    content = jsonl({"q": "a"}, {"q": "b"}, '{"q": "c",}', {"q": "d"})
    body = assert_names(upload(api(admin_user), project, content), line=3)
    assert "malformed JSON" in body["detail"]
    assert_nothing_imported()


def test_non_object_jsonl_line(api, project, admin_user):
    body = assert_names(upload(api(admin_user), project, jsonl({"q": "a"}, "[1, 2]")), line=2)
    assert "expected a JSON object" in body["detail"]
    assert_nothing_imported()


def test_missing_field_names_line_and_field(api, project, admin_user):
    rows = [*dialogue_rows(6), {"summary": "no dialogue here"}]
    body = assert_names(upload(api(admin_user), project, jsonl(*rows)), line=7, field="dialogue")
    assert body["errors"][0]["message"].startswith("missing")
    assert_nothing_imported()


def test_unexpected_field_names_it(api, project, admin_user):
    rows = [*dialogue_rows(2), {"dialogue": "x", "summary": "y", "topic": "z"}]
    body = assert_names(upload(api(admin_user), project, jsonl(*rows)), line=3, field="topic")
    assert "dialogue, summary" in body["detail"]
    assert_nothing_imported()


@pytest.mark.parametrize(
    ("value", "words"),
    [({"nested": 1}, "nested object"), ([1, 2], "nested array"), (None, "null")],
)
def test_mistyped_value_names_field(api, project, admin_user, value, words):
    rows = [*dialogue_rows(3), {"dialogue": value, "summary": "s"}]
    body = assert_names(upload(api(admin_user), project, jsonl(*rows)), line=4, field="dialogue")
    assert words in body["detail"]
    assert_nothing_imported()


def test_non_finite_number_is_refused(api, project, admin_user):
    body = assert_names(upload(api(admin_user), project, b'{"q": "a", "x": NaN}\n'), line=1, field="x")
    assert "finite" in body["detail"]
    assert_nothing_imported()


def test_bad_split_value_names_line_field_and_value(api, project, admin_user):
    rows = [{"q": "a", "split": "train"}, {"q": "b", "split": "validation"}]
    body = assert_names(upload(api(admin_user), project, jsonl(*rows)), line=2, field="split")
    assert "'validation'" in body["detail"]
    assert "train, eval, test" in body["detail"]
    assert_nothing_imported()


def test_non_string_split_value_is_refused(api, project, admin_user):
    assert_names(upload(api(admin_user), project, jsonl({"q": "a", "split": 1})), line=1, field="split")
    assert_nothing_imported()


def test_csv_in_latin1_names_the_line(api, project, admin_user):
    content = "prompt,topic\nhello,greeting\ncafé au lait,drinks\n".encode("latin-1")
    body = assert_names(upload(api(admin_user), project, content, filename="drinks.csv"), line=3)
    assert "UTF-8" in body["detail"]
    assert_nothing_imported()


def test_jsonl_in_latin1_names_the_line(api, project, admin_user):
    content = '{"q": "ok"}\n{"q": "naïve"}\n'.encode("latin-1")
    assert_names(upload(api(admin_user), project, content), line=2)
    assert_nothing_imported()


def test_csv_wrong_column_count(api, project, admin_user):
    content = b"a,b\n1,2\n3\n"
    body = assert_names(upload(api(admin_user), project, content, filename="x.csv"), line=3)
    assert "expected 2 columns" in body["detail"]
    assert_nothing_imported()


def test_csv_bad_split_value(api, project, admin_user):
    content = b"q,split\nx,train\ny,dev\n"
    body = assert_names(upload(api(admin_user), project, content, filename="x.csv"), line=3, field="split")
    assert "'dev'" in body["detail"]
    assert_nothing_imported()


def test_empty_file_is_refused(api, project, admin_user):
    response = upload(api(admin_user), project, b"\n\n")
    assert response.status_code == 400
    assert "no rows" in response.json()["detail"]
    assert_nothing_imported()


def test_unsupported_file_type(api, project, admin_user):
    response = upload(api(admin_user), project, b"q\nx\n", filename="rows.txt")
    assert response.status_code == 400
    assert ".jsonl or .csv" in response.json()["detail"]
    assert_nothing_imported()


def test_missing_file_field(api, project, admin_user):
    response = api(admin_user).post(f"/api/projects/{project.id}/datasets/", {"name": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["detail"]
    assert_nothing_imported()


@pytest.mark.parametrize(
    ("form", "named"),
    [({"eval_fraction": "1.5"}, "eval_fraction"), ({"eval_fraction": "0.6", "test_fraction": "0.6"}, "more than 1")],
)
def test_bad_fractions(api, project, admin_user, form, named):
    response = upload(api(admin_user), project, jsonl({"q": "a"}), **form)
    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert_nothing_imported()


def test_oversized_upload_is_refused_up_front(api, project, admin_user, settings):
    settings.RANKFORGE_MAX_UPLOAD_BYTES = 100
    response = upload(api(admin_user), project, jsonl(*dialogue_rows(10)))
    assert response.status_code == 413
    assert "100 bytes" in response.json()["detail"]
    assert_nothing_imported()


def test_oversized_request_is_refused_before_reading_the_body(api, project, admin_user, settings):
    settings.RANKFORGE_MAX_UPLOAD_BYTES = 100
    response = upload(api(admin_user), project, jsonl(*[{"q": "x" * 1000}] * 100))
    assert response.status_code == 413
    assert "upload limit is 100 bytes" in response.json()["detail"]
    assert_nothing_imported()


def test_size_limit_is_also_checked_while_streaming(project, admin_user):
    lines = iter(jsonl(*dialogue_rows(10)).splitlines(keepends=True))
    with pytest.raises(ServiceError) as caught:
        dataset_import(project=project, stream=lines, filename="x.jsonl", size=None, max_bytes=150)
    assert caught.value.status == 413
    assert "150 bytes" in caught.value.message
    assert caught.value.errors[0]["line"] == 3
    assert_nothing_imported()


def test_import_streams_and_inserts_in_batches(project, admin_user, monkeypatch):
    consumed = []
    inserted_after = []

    def stream():
        for i, line in enumerate(jsonl(*dialogue_rows(7)).splitlines(keepends=True), start=1):
            consumed.append(i)
            yield line

    real_bulk_create = PromptRow.objects.bulk_create

    def spy(objs, *args, **kwargs):
        inserted_after.append((len(consumed), len(objs)))
        return real_bulk_create(objs, *args, **kwargs)

    monkeypatch.setattr(PromptRow.objects, "bulk_create", spy)
    dataset = dataset_import(project=project, stream=stream(), filename="x.jsonl", batch_size=3)
    assert dataset.row_count == 7
    # Batches go in while the file is still being read: rows never pile up in memory.
    assert inserted_after == [(3, 3), (6, 3), (7, 1)]
    assert list(dataset.rows.values_list("index", flat=True)) == list(range(7))


def test_error_after_several_batches_rolls_everything_back(project):
    content = jsonl(*dialogue_rows(5), {"dialogue": "x"})
    with pytest.raises(ServiceError) as caught:
        dataset_import(
            project=project, stream=iter(content.splitlines(keepends=True)), filename="x.jsonl", batch_size=2
        )
    assert caught.value.errors == [{"line": 6, "field": "summary", "message": caught.value.errors[0]["message"]}]
    assert_nothing_imported()


# --- roles -----------------------------------------------------------------------------------


def test_labelers_and_reviewers_cannot_upload(api, project, labelers, make_user, add_member):
    reviewer = add_member(make_user("rita"), Role.REVIEWER)
    for user in (labelers[0], reviewer):
        response = upload(api(user), project, jsonl({"q": "a"}))
        assert response.status_code == 403
        assert "admin role" in response.json()["detail"]
    assert_nothing_imported()


def test_outsider_gets_404(api, project, make_user):
    response = upload(api(make_user("mallory")), project, jsonl({"q": "a"}))
    assert response.status_code == 404
    assert api(make_user("eve")).get(f"/api/projects/{project.id}/datasets/").status_code == 404
    assert_nothing_imported()


def test_labelers_cannot_read_datasets(api, project, admin_user, labelers):
    dataset_id = upload(api(admin_user), project, jsonl({"q": "a"})).json()["id"]
    client = api(labelers[0])
    for url in ("datasets/", f"datasets/{dataset_id}/", f"datasets/{dataset_id}/rows/"):
        assert client.get(f"/api/projects/{project.id}/{url}").status_code == 403


# --- reading ---------------------------------------------------------------------------------


@pytest.fixture
def reviewer(make_user, add_member):
    return add_member(make_user("rita"), Role.REVIEWER)


@pytest.fixture
def split_dataset(api, project, admin_user):
    rows = [{"q": str(i), "split": ["train", "eval", "test"][i % 3]} for i in range(9)]
    return upload(api(admin_user), project, jsonl(*rows), name="splits").json()


def test_reviewer_lists_and_reads_datasets(api, project, reviewer, split_dataset):
    client = api(reviewer)
    listing = client.get(f"/api/projects/{project.id}/datasets/").json()
    assert listing["count"] == 1 and listing["results"][0]["name"] == "splits"
    detail = client.get(f"/api/projects/{project.id}/datasets/{split_dataset['id']}/").json()
    assert detail["split_counts"] == {"train": 3, "eval": 3, "test": 3}
    assert detail["fields"] == ["q"]


def test_rows_filter_order_and_paginate(api, project, reviewer, split_dataset):
    client = api(reviewer)
    url = f"/api/projects/{project.id}/datasets/{split_dataset['id']}/rows/"
    evals = client.get(url, {"split": "eval"}).json()
    assert evals["count"] == 3
    assert [r["index"] for r in evals["results"]] == [1, 4, 7]
    assert all(r["split"] == "eval" for r in evals["results"])
    assert evals["results"][0]["data"] == {"q": "1"}
    page = client.get(url, {"ordering": "-index", "limit": 2, "offset": 1}).json()
    assert page["count"] == 9 and [r["index"] for r in page["results"]] == [7, 6]


@pytest.mark.parametrize(
    ("params", "named"),
    [({"split": "dev"}, "split"), ({"ordering": "data"}, "ordering"), ({"data__q": "1"}, "data__q")],
)
def test_rows_reject_unknown_filters_and_orderings(api, project, reviewer, split_dataset, params, named):
    response = api(reviewer).get(f"/api/projects/{project.id}/datasets/{split_dataset['id']}/rows/", params)
    assert response.status_code == 400
    assert named in response.json()["detail"]


def test_dataset_of_another_project_is_404(api, project, admin_user, split_dataset):
    other = api(admin_user).post("/api/projects/", {"name": "Other"}, format="json").json()
    client = api(admin_user)
    assert client.get(f"/api/projects/{other['id']}/datasets/{split_dataset['id']}/").status_code == 404
    assert client.get(f"/api/projects/{other['id']}/datasets/{split_dataset['id']}/rows/").status_code == 404
    assert client.get(f"/api/projects/{other['id']}/datasets/").json()["count"] == 0
