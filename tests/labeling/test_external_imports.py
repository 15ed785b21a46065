"""Label Studio and Argilla exports -> comparisons ranked by the annotators they name (issue 13)."""

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from labeling import archives
from labeling.external_formats import (
    ExternalFormatError,
    FormatOptions,
    compact,
    parse_argilla_record,
    parse_label_studio_task,
    read_items,
)
from labeling.models import Comparison, Completion, Membership, Ranking, Role
from labeling.services.assignments import assignment_next
from labeling.services.external_imports import external_import
from labeling.services.projects import project_create
from labeling.services.snapshots import snapshot_build, snapshot_create, snapshot_folder

from . import external_exports as ex

pytestmark = pytest.mark.django_db
User = get_user_model()
RANKER = FormatOptions(k=3)
BUCKETS = {"bucket_order": "relevant_results,_", "failed_buckets": "biased_results"}


def post(client, project, content: bytes, name="export.json", **fields):
    return client.post(
        f"/api/projects/{project.id}/imports/",
        {"file": SimpleUploadedFile(name, content), "format": "label_studio", **fields},
    )


def counts():
    return (
        Comparison.objects.count(),
        Completion.objects.count(),
        Ranking.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
    )


@pytest.fixture
def pair_project(admin_user):
    return project_create(created_by=admin_user, name="Pairs", completions_per_prompt=2, overlap=1)


def ranks_by_text(ranking: Ranking) -> tuple[dict, list]:
    texts = dict(ranking.comparison.completions.values_list("id", "text"))
    order = ranking.orders[0]
    return {texts[int(cid)]: rank for cid, rank in order["ranks"].items()}, sorted(texts[c] for c in order["failed"])


def ranked(ranking: Ranking) -> tuple:
    ranks, failed = ranks_by_text(ranking)
    return (
        ranking.comparison.metadata["external_id"],
        ranking.labeler.username,
        tuple(sorted(ranks.items())),
        tuple(failed),
    )


# --- parsing (no database) ---------------------------------------------------------------------


@pytest.mark.django_db(False)
def test_label_studio_ranker_is_a_strict_order_by_the_annotators_named():
    task = ex.label_studio_ranker_export()[0]
    item = parse_label_studio_task(task, index=0, line=None, options=RANKER)
    assert (item.key, item.where, item.prompt) == ("label_studio:101", "tasks[0] (id 101)", ex.PROMPTS[0])
    assert [c["text"] for c in item.completions] == ex.ANSWERS[0]  # the display order of data.items
    assert [c["metadata"]["external_id"] for c in item.completions] == ["llm_1", "llm_2", "llm_3"]
    ann, bo = item.rankings
    assert (ann.annotator.key, ann.annotator.email, ann.annotator.aliases) == (
        "label_studio:1",
        "ann@example.org",
        ("1", "ann@example.org"),
    )
    assert ann.ranks == {1: 1, 0: 2, 2: 3} and ann.failed == [] and ann.time_spent_ms == 14200
    # completed_by is an id; the email comes from created_username (" bo@example.org, 2").
    assert (bo.annotator.key, bo.annotator.name) == ("label_studio:2", "bo@example.org")


@pytest.mark.django_db(False)
def test_label_studio_buckets_tie_within_a_bucket_and_failed_buckets_mark_f():
    task = ex.label_studio_bucket_export()[0]
    options = FormatOptions(k=3, bucket_order=("relevant_results", "_"), failed_buckets=("biased_results",))
    cy, four = parse_label_studio_task(task, index=0, line=None, options=options).rankings
    assert (cy.ranks, cy.failed) == ({1: 1, 0: 2}, [2])
    assert (four.ranks, four.failed) == ({0: 1, 1: 1, 2: 1}, [])  # one bucket: a three-way tie
    assert four.annotator.name == "label-studio-4"
    # Without the order of the buckets there is no telling which is better: refused, by name.
    with pytest.raises(ExternalFormatError) as refused:
        parse_label_studio_task(task, index=0, line=None, options=RANKER)
    assert refused.value.field == "annotations[0].result[0].value.ranker"
    assert "left unsorted in the list ('_')" in str(refused.value) and refused.value.value == "_"


@pytest.mark.django_db(False)
def test_label_studio_pairwise_left_right_and_what_is_left_out():
    first, second, unannotated = ex.label_studio_pairwise_export()
    options = FormatOptions(k=2)
    item = parse_label_studio_task(first, index=0, line=None, options=options)
    assert [c["text"] for c in item.completions] == ["Yes, about 3.5% salt.", "No."]  # answer1, answer2
    assert [r.ranks for r in item.rankings] == [{0: 1, 1: 2}, {0: 1, 1: 2}]
    assert item.skipped == {"cancelled": 1}
    assert parse_label_studio_task(second, index=1, line=None, options=options).rankings[0].ranks == {1: 1, 0: 2}
    assert parse_label_studio_task(unannotated, index=2, line=None, options=options).rankings == []
    named = FormatOptions(k=2, completion_fields=("answer2", "answer1"))
    swapped = parse_label_studio_task(first, index=0, line=None, options=named)
    assert swapped.completions[0]["text"] == "No." and swapped.rankings[0].ranks == {0: 1, 1: 2}


@pytest.mark.django_db(False)
@pytest.mark.parametrize(
    ("change", "where", "field", "value", "message"),
    [
        (
            lambda t: t["annotations"][0]["result"][0]["value"].update(selected="none"),
            "tasks[0] (id 301)",
            "annotations[0].result[0].value.selected",
            "none",
            "expected 'left' or 'right'",
        ),
        (lambda t: t.pop("id"), "tasks[0]", "id", None, "every task needs its Label Studio id"),
        (
            lambda t: t["data"].pop("answer2"),
            "tasks[0] (id 301)",
            "data",
            None,
            "no two completion fields",
        ),
        (
            lambda t: t["annotations"][0].update(result=[{"type": "choices", "value": {"choices": ["A"]}}]),
            "tasks[0] (id 301)",
            "annotations[0].result",
            None,
            "no ranker or pairwise result",
        ),
        (
            lambda t: t["annotations"][1].update(completed_by=ex.ANN, created_username=None),
            "tasks[0] (id 301)",
            "annotations[1].completed_by",
            None,
            "annotated this task twice",
        ),
    ],
)
def test_label_studio_errors_name_the_task_field_and_value(change, where, field, value, message):
    task = ex.label_studio_pairwise_export()[0]
    change(task)
    with pytest.raises(ExternalFormatError) as refused:
        parse_label_studio_task(task, index=0, line=None, options=FormatOptions(k=2))
    error = refused.value
    assert (error.where, error.field) == (where, field) and message in error.reason
    assert str(error).startswith(f"{where}, field {field!r}: ")
    if value is not None:
        assert error.as_dict()["value"] == value and f"(got {value!r})" in str(error)


@pytest.mark.django_db(False)
def test_label_studio_k_and_unknown_items_are_refused():
    task = ex.label_studio_ranker_export()[0]
    with pytest.raises(ExternalFormatError, match=r"field 'data.items': expected 4 items \(the project's K\), got 3"):
        parse_label_studio_task(task, index=0, line=None, options=FormatOptions(k=4))
    task["annotations"][0]["result"][0]["value"]["ranker"]["answers"][0] = "llm_9"
    with pytest.raises(ExternalFormatError, match="not an item of this task") as refused:
        parse_label_studio_task(task, index=0, line=None, options=RANKER)
    assert refused.value.value == "llm_9"


@pytest.mark.django_db(False)
def test_every_argilla_shape_reads_to_the_same_rankings(tmp_path):
    from datasets import load_from_disk

    def read(records):
        items = [parse_argilla_record(r, index=i, line=None, options=RANKER) for i, r in enumerate(records)]
        return [
            (i.key, i.prompt, [c["text"] for c in i.completions], [(r.annotator.key, r.ranks) for r in i.rankings])
            for i in items
        ]

    ex.save_argilla_v1_dataset(tmp_path / "v1")
    ex.save_argilla_v2_dataset(tmp_path / "v2")
    v1, v1_hf = read(ex.argilla_v1_records()), read(load_from_disk(str(tmp_path / "v1")))
    v2, v2_flat = read(ex.argilla_v2_records()), read(ex.argilla_v2_flat_records())
    assert v1 == v1_hf and v2 == v2_flat == read(load_from_disk(str(tmp_path / "v2")))
    key, prompt, texts, rankings = v1[0]
    assert (key, prompt, texts) == ("argilla:rec-0", ex.PROMPTS[0], ex.ANSWERS[0])  # the fields' order
    a, b = f"argilla:{ex.USER_A}", f"argilla:{ex.USER_B}"
    assert rankings == [(a, {1: 1, 0: 2, 2: 3}), (b, {1: 1, 0: 2, 2: 2})]  # 1.x keeps B's tie
    assert v2[0][3] == [(a, {1: 1, 0: 2, 2: 3})]  # a 2.x answer is a strict order (no tie to write)
    assert v1[1:] == v2[1:]


@pytest.mark.django_db(False)
def test_argilla_errors_and_what_is_left_out():
    records = ex.argilla_v1_records()
    item = parse_argilla_record(records[1], index=1, line=2, options=RANKER)
    assert item.skipped == {"discarded": 1} and len(item.rankings) == 1 and item.where == "line 2 (id rec-1)"
    records[0]["responses"][0]["values"]["preference"]["value"][0]["value"] = "response9"
    with pytest.raises(ExternalFormatError, match="'response9' is not a field of the record") as refused:
        parse_argilla_record(records[0], index=0, line=1, options=RANKER)
    assert (refused.value.where, refused.value.field, refused.value.value) == (
        "line 1 (id rec-0)",
        "fields",
        "response9",
    )
    partial = ex.argilla_v1_records()[0]
    partial["responses"][1]["values"]["preference"]["value"].pop()
    with pytest.raises(ExternalFormatError, match="ranks 2 of the 3 options; 'response3' has no rank") as refused:
        parse_argilla_record(partial, index=0, line=None, options=RANKER)
    assert refused.value.field == "responses[1].values.preference.value"
    alone = ex.argilla_v2_records()[2]
    alone["responses"]["preference"][0]["value"].pop()
    with pytest.raises(ExternalFormatError, match=r"expected 3 ranked options \(the project's K\), got 2"):
        parse_argilla_record(alone, index=2, line=None, options=RANKER)
    empty = ex.argilla_v2_records()[0]
    empty["responses"] = {}
    assert parse_argilla_record(empty, index=0, line=None, options=RANKER).rankings == []


@pytest.mark.django_db(False)
def test_reading_files_and_compact_ranks():
    assert compact({0: 1, 1: 5, 2: 5, 3: 9}) == {0: 1, 1: 2, 2: 2, 3: 3}
    assert [i for i, _, _ in read_items(ex.dumps([{}, {}]), filename="x.json")] == [0, 1]
    assert [line for _, line, _ in read_items(b'{"a": 1}\n\n{"b": 2}\n', filename="x.jsonl")] == [1, 3]
    with pytest.raises(ExternalFormatError, match=r"malformed JSON: .* at line 1"):
        list(read_items(b"[{", filename="x.json"))
    with pytest.raises(ExternalFormatError, match="line 2: malformed JSON"):
        list(read_items(b'{"a": 1}\n{oops\n', filename="x.jsonl"))
    with pytest.raises(ExternalFormatError, match="unsupported file type"):
        list(read_items(b"", filename="x.csv"))


# --- the import, through the API --------------------------------------------------------------


def test_label_studio_ranker_import_matches_and_creates_members(api, project, admin_user, make_user, add_member):
    ann = add_member(make_user("ann", email="Ann@Example.org"))  # matched by email, any case
    response = post(api(admin_user), project, ex.dumps(ex.label_studio_ranker_export()), create_members="true")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["comparisons_created"], body["rankings_created"], body["items"]) == (3, 6, 3)
    assert body["members"] == {"matched": ["ann"], "added": [], "created": ["bo@example.org"]}
    bo = User.objects.get(username="bo@example.org")
    assert bo.email == "bo@example.org" and not bo.has_usable_password() and not bo.is_staff
    assert Membership.objects.get(project=project, user=bo).role == Role.LABELER
    assert api().post("/api/auth/token/", {"username": bo.username, "password": "anything"}).status_code == 400

    comparison = Comparison.objects.get(metadata__import_key="label_studio:101")
    assert comparison.project == project and comparison.metadata["external_id"] == "101"
    assert comparison.label_count == 0  # imported labels do not use up human slots, as the HH import
    ranking = Ranking.objects.get(comparison=comparison, labeler=ann)
    assert ranking.source == "imported" and ranking.assignment is None and ranking.time_spent_ms == 14200
    assert ranks_by_text(ranking) == ({ex.ANSWERS[0][1]: 1, ex.ANSWERS[0][0]: 2, ex.ANSWERS[0][2]: 3}, [])
    assert ranking.orders[0]["criterion"] is None
    listed = api(admin_user).get(f"/api/projects/{project.id}/rankings/?source=imported").json()
    assert {r["labeler_username"] for r in listed["results"]} == {"ann", "bo@example.org"}


def test_annotators_who_are_not_members_are_refused_unless_asked(api, project, admin_user, make_user):
    make_user("bo", email="bo@example.org")  # a user, not a member of this project
    before = counts()
    response = post(api(admin_user), project, ex.dumps(ex.label_studio_ranker_export()))
    assert response.status_code == 400
    body = response.json()
    assert "2 annotator(s) cannot be matched to members of project" in body["detail"]
    assert "create_members=true" in body["detail"]
    assert {(e["annotator"], e["message"]) for e in body["errors"]} == {
        ("label_studio:1", "no such user"),
        ("label_studio:2", "is a user but not a member of this project"),
    }
    assert counts() == before

    mapping = json.dumps({"1": "alice"})  # the project's admin is Label Studio user 1
    response = post(api(admin_user), project, ex.dumps(ex.label_studio_ranker_export()), annotators=mapping)
    assert response.status_code == 400 and [e["annotator"] for e in response.json()["errors"]] == ["label_studio:2"]
    response = post(
        api(admin_user), project, ex.dumps(ex.label_studio_ranker_export()), annotators=mapping, create_members="true"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["members"] == {"matched": ["alice"], "added": ["bo"], "created": []}
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"alice": Role.ADMIN, "bo": Role.LABELER}  # an admin stays admin, a newcomer is a labeler


def test_system_accounts_and_bad_maps_are_refused(api, pair_project, admin_user):
    export = ex.dumps(ex.label_studio_pairwise_export())
    response = post(api(admin_user), pair_project, export, annotators='{"1": "rankforge-imported"}', create_members="1")
    assert response.status_code == 400 and "is a system account" in response.json()["detail"]
    response = post(api(admin_user), pair_project, export, annotators="[1, 2]")
    assert response.status_code == 400 and "annotators" in response.json()["errors"]
    response = post(api(admin_user), pair_project, export, annotators='{"1": "a b"}', create_members="1")
    assert response.status_code == 400 and "cannot be a username" in response.json()["detail"]
    assert not Comparison.objects.exists()


def test_a_bad_task_is_refused_by_index_field_and_value_and_changes_nothing(api, pair_project, admin_user):
    tasks = ex.label_studio_pairwise_export()
    tasks[1]["annotations"][0]["result"][0]["value"]["selected"] = "both"
    tasks[1]["annotations"][0]["completed_by"] = 5  # who ranked nothing else
    before = counts()
    response = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == (
        "tasks[1] (id 302), field 'annotations[0].result[0].value.selected': expected 'left' or 'right' (got 'both')"
    )
    error = body["errors"][0]
    assert (error["index"], error["id"], error["field"], error["value"]) == (
        1,
        "302",
        "annotations[0].result[0].value.selected",
        "both",
    )
    assert counts() == before  # no comparison, no account, no membership

    response = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true", on_error="skip")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["comparisons_created"], body["rankings_created"], body["skipped"], body["unlabeled"]) == (1, 2, 1, 1)
    assert body["skipped_items"][0]["item"] == "tasks[1] (id 302)" and body["left_out"] == {"cancelled": 1}
    # Accounts only for the annotators of what was imported: not for label-studio-5 of the skipped task.
    assert body["members"]["created"] == ["ann@example.org", "bo@example.org"]
    assert not User.objects.filter(username="label-studio-5").exists()


def test_the_same_export_imported_twice_counts_once(api, pair_project, admin_user):
    tasks = ex.label_studio_pairwise_export()
    first = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true").json()
    assert (first["comparisons_created"], first["rankings_created"]) == (2, 3)
    again = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true")
    assert again.status_code == 201
    body = again.json()
    assert (body["comparisons_created"], body["comparisons_existing"]) == (0, 2)
    assert (body["rankings_created"], body["rankings_existing"], body["rankings_existing_differ"]) == (0, 3, 0)
    assert (Comparison.objects.count(), Ranking.objects.count()) == (2, 3)

    # A later export of the same tasks: one new annotation (user 4 ranked 302), one changed (ann on 301).
    tasks[1]["annotations"].append(ex._ls_annotation(45, 302, 4, ex._pairwise("left")))
    tasks[0]["annotations"][0]["result"][0]["value"]["selected"] = "right"
    body = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true").json()
    assert (body["comparisons_created"], body["rankings_created"]) == (0, 1)
    assert (body["rankings_existing"], body["rankings_existing_differ"]) == (3, 1)  # kept as first imported
    assert Ranking.objects.count() == 4

    # The same task id with other texts is another item: refused, not merged.
    tasks[0]["data"]["answer2"] = "Nope."
    response = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true")
    assert response.status_code == 400
    assert "tasks[0] (id 301), field 'id': was imported before (comparison" in response.json()["detail"]
    assert Ranking.objects.count() == 4


def test_duplicate_ids_in_one_file_and_two_annotators_as_one_person(api, pair_project, admin_user):
    tasks = ex.label_studio_pairwise_export()
    response = post(api(admin_user), pair_project, ex.dumps([tasks[0], tasks[0]]), create_members="true")
    assert (
        response.status_code == 400
        and "tasks[1] (id 301), field 'id': the same id as tasks[0]" in (response.json()["detail"])
    )
    mapping = json.dumps({"1": "alice", "2": "alice"})
    response = post(api(admin_user), pair_project, ex.dumps(tasks[:1]), annotators=mapping)
    assert response.status_code == 400 and "are both alice" in response.json()["detail"]
    assert not Comparison.objects.exists()


def test_a_file_with_nothing_ranked_is_refused(api, pair_project, admin_user):
    response = post(api(admin_user), pair_project, ex.dumps(ex.label_studio_pairwise_export()[2:]))
    assert response.status_code == 400 and "holds no ranked tasks" in response.json()["detail"]
    response = post(api(admin_user), pair_project, b"{not json", name="export.json")
    assert response.status_code == 400 and response.json()["detail"].startswith("malformed JSON")


@pytest.mark.parametrize(("role", "status"), [("labeler", 403), ("reviewer", 403), ("outsider", 404), (None, 401)])
def test_only_project_admins_import(api, project, make_user, add_member, role, status):
    user = None if role is None else make_user(role)
    if role in ("labeler", "reviewer"):
        add_member(user, role=role)
    before = counts()
    response = post(api(user), project, ex.dumps(ex.label_studio_ranker_export()), create_members="true")
    assert response.status_code == status
    assert counts() == before


def test_a_platform_admin_may_import(api, project, platform_admin):
    response = post(api(platform_admin), project, ex.dumps(ex.label_studio_ranker_export()), create_members="true")
    assert response.status_code == 201 and response.json()["rankings_created"] == 6


# --- snapshots and the queue -------------------------------------------------------------------


def test_a_snapshot_of_imported_buckets_gives_the_pairs_expected(api, project, admin_user):
    response = post(api(admin_user), project, ex.dumps(ex.label_studio_bucket_export()), create_members="1", **BUCKETS)
    assert response.status_code == 201, response.json()
    assert response.json()["members"]["created"] == ["cy@example.org", "label-studio-4"]
    comparison = Comparison.objects.get()
    comparison.split = "train"
    comparison.save(update_fields=["split"])
    snapshot = snapshot_create(project=project, created_by=admin_user, options={"sources": ["imported"]})
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.status == "ready", snapshot.error
    rows = [json.loads(line) for line in (snapshot_folder(snapshot) / "train.jsonl").read_text().splitlines()]
    pairs = {(r["chosen"], r["rejected"]) for r in rows}
    best, middle, biased = ex.ANSWERS[0][1], ex.ANSWERS[0][0], ex.ANSWERS[0][2]
    # cy: relevant > unsorted > biased (F); label-studio-4 put all three in one bucket: a tie, no pair.
    assert pairs == {(best, middle), (best, biased), (middle, biased)}
    cy = User.objects.get(username="cy@example.org")
    assert {r["labeler_id"] for r in rows} == {cy.pk} and {r["source"] for r in rows} == {"imported"}
    assert all(r["prompt"] == ex.PROMPTS[0] and r["weight"] == pytest.approx(1 / 3) for r in rows)
    margins = {(r["chosen"], r["rejected"]): r["margin"] for r in rows}
    assert margins[(best, middle)] == pytest.approx(0.5) and margins[(best, biased)] == pytest.approx(1.0)


def test_an_imported_annotator_is_not_served_what_they_ranked(api, project, admin_user):
    post(api(admin_user), project, ex.dumps(ex.label_studio_ranker_export()[:1]), create_members="true")
    from tests.labeling.factories import add_comparisons

    add_comparisons(project, 1, prefix="Fresh")
    bo = User.objects.get(username="bo@example.org")
    lease = assignment_next(project_id=project.pk, labeler=bo)
    assert lease is not None and lease.comparison.prompt == "Fresh 0"  # not task 101, which bo ranked


# --- Argilla: records, folders and archives ---------------------------------------------------


def test_argilla_records_and_packed_datasets_import_alike(api, project, admin_user, tmp_path):
    client = api(admin_user)
    mapping = json.dumps({ex.USER_A: "ann", ex.USER_B: "bob"})

    def imported(content, name):
        Comparison.objects.all().delete()
        response = post(client, project, content, name=name, format="argilla", annotators=mapping, create_members="1")
        assert response.status_code == 201, response.json()
        rankings = Ranking.objects.filter(comparison__project=project).select_related("labeler", "comparison")
        return response.json(), sorted(ranked(r) for r in rankings)

    body, v1 = imported(ex.jsonl(ex.argilla_v1_records()), "records.jsonl")
    assert (body["comparisons_created"], body["rankings_created"], body["left_out"]) == (3, 4, {"discarded": 1})
    assert body["members"]["created"] == ["ann", "bob"]
    ex.save_argilla_v1_dataset(tmp_path / "v1")
    assert imported(ex.packed(tmp_path / "v1", "tar.gz"), "feedback.tar.gz")[1] == v1

    _, v2 = imported(ex.dumps(ex.argilla_v2_records()), "records.json")
    ex.save_argilla_v2_dataset(tmp_path / "v2")
    assert imported(ex.packed(tmp_path / "v2", "zip"), "records.zip")[1] == v2
    ex.save_argilla_v2_disk(tmp_path / "disk")
    assert imported(ex.packed(tmp_path / "disk", "zip", inside="prefs"), "prefs.zip")[1] == v2
    assert len(v1) == 4 and len(v2) == 3  # 2.x cannot write bob's tie on rec-0
    tie = next(r for r in v1 if r[:2] == ("rec-0", "bob"))
    assert dict(tie[2]) == {ex.ANSWERS[0][1]: 1, ex.ANSWERS[0][0]: 2, ex.ANSWERS[0][2]: 2}


def test_argilla_dataset_dict_splits_are_kept(project, admin_user, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = ex.argilla_v2_flat_records()
    DatasetDict({"train": Dataset.from_list(rows[:2]), "validation": Dataset.from_list(rows[2:])}).save_to_disk(
        str(tmp_path / "dd")
    )
    result = external_import(
        project=project,
        format="argilla",
        folder=tmp_path / "dd",
        filename="dd",
        annotators={ex.USER_A: "alice", ex.USER_B: "alice2"},
        create_members=True,
    )
    assert result["comparisons_created"] == 3
    splits = dict(Comparison.objects.values_list("metadata__external_id", "split"))
    assert splits == {"rec-0": "train", "rec-1": "train", "rec-2": "eval"}


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(add) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        add(archive)
    return buffer.getvalue()


def _symlink(archive):
    link = tarfile.TarInfo("export/records.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive.addfile(link)


def _traversal(archive):
    data = b"[]"
    info = tarfile.TarInfo("../../escaped.json")
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evil.zip", _zip({"../evil.json": b"[]"}), "'..' in its path leaves the folder"),
        ("evil.zip", _zip({"/tmp/abs.json": b"[]"}), "an absolute path"),
        ("evil.tar.gz", _tar(_traversal), "'..' in its path leaves the folder"),
        ("evil.tar.gz", _tar(_symlink), "a link or device, not a file"),
        ("bomb.zip", _zip({"export/records.json": b" " * 5000}), "unpacks to more than 4,000 bytes"),
        ("empty.zip", _zip({"readme.txt": b"hi"}), "the archive holds no dataset"),
        ("junk.zip", b"PK not really", "not a readable zip file"),
        (
            "crafted.zip",
            _zip(
                {"d/state.json": json.dumps({"_data_files": [{"filename": "../x.arrow"}]}), "d/dataset_info.json": "{}"}
            ),
            "a data file that is not a plain file name",
        ),
    ],
)
def test_malicious_archives_are_refused_and_write_nothing_outside(
    api, project, admin_user, settings, tmp_path, name, content, message
):
    settings.RANKFORGE_MAX_UNPACKED_BYTES = 4000
    before = counts()
    response = post(api(admin_user), project, content, name=name, format="argilla", create_members="true")
    assert response.status_code == 400, response.json()
    assert message in response.json()["detail"]
    assert counts() == before
    assert not Path("/tmp/abs.json").exists() and not (tmp_path.parent / "escaped.json").exists()


@pytest.mark.django_db(False)
def test_safe_extract_keeps_to_its_folder(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(archives.ArchiveError, match="leaves the folder"):
        archives.safe_extract(io.BytesIO(_zip({"a/../../b": b"x"})), filename="x.zip", dest=dest, max_bytes=100)
    with pytest.raises(archives.ArchiveError, match="more than 2 members"):
        archives.safe_extract(
            io.BytesIO(_zip({"a": b"", "b": b"", "c": b""})), filename="x.zip", dest=dest, max_bytes=100, max_members=2
        )
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as archive:
        info = zipfile.ZipInfo("f/records.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16  # a symlink, as `zip --symlinks` stores one
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(archives.ArchiveError, match="a link or device, not a file"):
        archives.safe_extract(link, filename="x.zip", dest=dest, max_bytes=100)
    assert list(dest.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["dest"]
    archives.safe_extract(io.BytesIO(_zip({"f/records.json": b"[]"})), filename="x.ZIP", dest=dest, max_bytes=100)
    assert archives.find_dataset(dest) == (archives.ARGILLA_DISK, dest / "f")


def test_label_studio_takes_no_archive(api, project, admin_user):
    response = post(api(admin_user), project, _zip({"a.json": b"[]"}), name="ls.zip")
    assert response.status_code == 400 and "a Label Studio export is one JSON file" in response.json()["detail"]


def test_oversized_upload_is_a_413(api, project, admin_user, settings):
    settings.RANKFORGE_MAX_UPLOAD_BYTES = 100
    response = post(api(admin_user), project, ex.dumps(ex.label_studio_ranker_export()))
    assert response.status_code == 413 and not Comparison.objects.exists()


def test_management_command_imports_a_folder(project, admin_user, tmp_path):
    ex.save_argilla_v2_disk(tmp_path / "disk")
    out = io.StringIO()
    call_command(
        "import_rankings",
        str(project.pk),
        str(tmp_path / "disk"),
        "--format=argilla",
        "--create-members",
        stdout=out,
    )
    assert "3 comparisons created, 3 rankings created" in out.getvalue()
    assert set(User.objects.filter(username__startswith="argilla-").values_list("username", flat=True)) == {
        f"argilla-{ex.USER_A}",
        f"argilla-{ex.USER_B}",
    }


def test_nul_characters_never_reach_the_database(api, pair_project, admin_user):
    tasks = ex.label_studio_pairwise_export()[:2]
    tasks[0]["id"] = "30\x001"
    tasks[1]["data"]["prompt"] = "2 +\x00 2?"
    response = post(api(admin_user), pair_project, ex.dumps(tasks), create_members="true", on_error="skip")
    assert response.status_code == 201, response.json()
    assert response.json()["skipped_items"][0]["field"] == "id"
    assert Comparison.objects.get().prompt == "2 + 2?"
    response = post(api(admin_user), pair_project, ex.dumps(tasks), annotators=json.dumps({"1": "a\x00"}))
    assert response.status_code == 400 and "annotators" in response.json()["errors"]
