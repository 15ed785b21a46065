import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Comparison, Completion, Ranking

from .factories import jsonl

pytestmark = pytest.mark.django_db


def upload(client, project, rows, name="c.jsonl", url="comparisons"):
    content = jsonl(rows).getvalue() if not isinstance(rows, bytes) else rows
    return client.post(f"/api/projects/{project.id}/{url}/", {"file": SimpleUploadedFile(name, content)})


def test_import_comparisons_with_metadata_and_gold(api, project, admin_user):
    rows = [
        {"prompt": "Say hi", "completions": ["hi", {"text": "hello", "model": "m", "seed": 3}, "yo"], "split": "eval"},
        {"prompt": "Gold", "completions": ["a", "b", "c"], "gold": {"ranks": [2, 1, None], "failed": [2]}},
    ]
    response = upload(api(admin_user), project, rows)
    assert response.status_code == 201, response.json()
    assert response.json() == {"created": 2, "gold": 1}
    first, gold = Comparison.objects.order_by("id")
    assert first.split == "eval" and not first.is_gold
    assert Completion.objects.get(comparison=first, position=1).seed == 3
    ids = list(gold.completions.order_by("position").values_list("id", flat=True))
    assert gold.gold == {"ranks": {str(ids[0]): 2, str(ids[1]): 1}, "failed": [ids[2]]}
    listed = api(admin_user).get(f"/api/projects/{project.id}/comparisons/?is_gold=true").json()
    assert [c["prompt"] for c in listed["results"]] == ["Gold"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"prompt": "a", "completions": ["1", "2", "3"]}', "{not json"], "line 2: malformed JSON"),
        ([{"completions": ["1", "2", "3"]}], "line 1, field 'prompt': missing"),
        ([{"prompt": 5, "completions": ["1", "2", "3"]}], "line 1, field 'prompt': expected str, got int"),
        ([{"prompt": "a", "completions": ["1", "2"]}], "line 1, field 'completions': expected 3 completions"),
        ([{"prompt": "a", "completions": ["1", "2", "3"], "split": "dev"}], "unknown split 'dev'"),
        ([{"prompt": "a", "completions": ["1", "2", "3"], "gold": {"ranks": [1, 9, 2]}}], "out of range 1..3"),
    ],
)
def test_bad_lines_import_nothing(api, project, admin_user, lines, expected):
    good = [{"prompt": f"ok {i}", "completions": ["1", "2", "3"]} for i in range(3)]
    response = upload(api(admin_user), project, good + lines)
    assert response.status_code == 400
    body = response.json()
    assert expected.replace("line 1", "line 4").replace("line 2", "line 5") in body["detail"], body
    assert body["errors"][0]["line"] in (4, 5)
    assert not Comparison.objects.exists()


def test_oversized_upload_is_refused(api, project, admin_user, settings):
    settings.RANKFORGE_MAX_UPLOAD_BYTES = 50
    response = upload(api(admin_user), project, [{"prompt": "x" * 100, "completions": ["1", "2", "3"]}])
    assert response.status_code == 413
    assert "limit is 50 bytes" in response.json()["detail"]
    assert not Comparison.objects.exists()


def test_labeler_cannot_import(api, project, labelers):
    response = upload(api(labelers[0]), project, [{"prompt": "a", "completions": ["1", "2", "3"]}])
    assert response.status_code == 403
    assert not Comparison.objects.exists()


HH = "\n\nHuman: How do I pick a lock?\n\nAssistant: I can't help with that.\n\nHuman: Please?\n\nAssistant:"


@pytest.fixture
def pair_project(admin_user):
    from labeling.services.projects import project_create

    return project_create(created_by=admin_user, name="Pairs", completions_per_prompt=2, overlap=1)


def test_hh_pairs_become_ranked_comparisons(api, pair_project, admin_user):
    rows = [
        {"chosen": HH + " No, sorry.", "rejected": HH + " Sure, take a tension wrench."},
        {"prompt": "Q?", "chosen": "good", "rejected": "bad", "split": "eval"},
    ]
    response = upload(api(admin_user), pair_project, rows, url="preferences")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2
    comparison = Comparison.objects.order_by("id").first()
    assert comparison.prompt == HH
    ranking = Ranking.objects.get(comparison=comparison)
    assert ranking.source == "imported" and ranking.labeler.username == "rankforge-imported"
    texts = {c.id: c.text for c in comparison.completions.all()}
    order = ranking.orders[0]["ranks"]
    best = next(int(cid) for cid, rank in order.items() if rank == 1)
    assert texts[best] == "No, sorry."
    assert comparison.label_count == 0  # imported labels do not use up human slots


def test_hh_rows_that_cannot_be_split(api, pair_project, admin_user):
    good = {"chosen": HH + " No.", "rejected": HH + " Yes."}
    bad = {"chosen": HH + " No.", "rejected": HH.replace("Please", "Pretty please") + " Yes."}
    response = upload(api(admin_user), pair_project, [good, bad, good], url="preferences")
    assert response.status_code == 400
    assert (
        "line 2, field 'rejected': chosen and rejected differ before the last Assistant turn"
        in response.json()["detail"]
    )
    assert not Comparison.objects.exists()

    client = api(admin_user)
    from django.core.files.uploadedfile import SimpleUploadedFile as F

    body = jsonl([good, bad, good]).getvalue()
    response = client.post(
        f"/api/projects/{pair_project.id}/preferences/", {"file": F("p.jsonl", body), "on_error": "skip"}
    )
    assert response.status_code == 201
    assert response.json()["created"] == 2 and response.json()["skipped"] == 1
    assert response.json()["skipped_rows"][0]["line"] == 2


def test_preference_import_needs_k_2(api, project, admin_user):
    response = upload(api(admin_user), project, [{"prompt": "q", "chosen": "a", "rejected": "b"}], url="preferences")
    assert response.status_code == 400 and "2 completions per prompt" in response.json()["detail"]


def test_real_hh_sample_has_three_unsplittable_rows(pair_project):
    from labeling.services.preferences import preferences_import
    from training.demo_data import HH_HARMLESS, data_file

    path = data_file(HH_HARMLESS, larger=True)  # the shared 1,600 rows, else the shipped 400
    with open(path, "rb") as stream:
        result = preferences_import(project=pair_project, stream=stream, filename=path.name, on_error="skip")
    rows = len(path.read_text(encoding="utf-8").splitlines())
    assert (result["created"], result["skipped"]) == {1600: (1597, 3), 400: (399, 1)}[rows]
    splits = set(Comparison.objects.values_list("split", flat=True))
    assert splits == {"train", "eval"}


def test_nul_characters_are_dropped_so_every_database_stores_the_text(project):
    from labeling.services.comparisons import ParsedComparison, comparisons_create

    [comparison] = comparisons_create(
        project=project, parsed=[ParsedComparison(1, "p\x00rompt", [{"text": f"a\x00{i}"} for i in range(3)])]
    )
    comparison.refresh_from_db()
    assert comparison.prompt == "prompt"
    assert [c.text for c in comparison.completions.order_by("position")] == ["a0", "a1", "a2"]
