"""Human side-by-side evaluations through the API and the ingest the worker calls (no worker):
creation, blind pairs, roles, results, publishing, an AI judge."""

import json
from collections import Counter
from itertools import combinations

import pytest

from labeling.models import (
    Comparison,
    Completion,
    Project,
    ProjectKind,
    Role,
    SideBySideEval,
    SideBySidePair,
)
from labeling.services.ai_labels import ai_rankings_record
from labeling.services.projects import criterion_create
from models_registry.models import ModelVersion
from tests.labeling.sxs_factories import answer, label_all, make_evaluation, questions_dataset, tiny_versions
from training.models import TrainingRun
from training.services import runs
from training.services.side_by_side import SamplesIngest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Every run this module creates is recorded instead of sent."""


@pytest.fixture
def versions(project, tmp_path):
    return tiny_versions(tmp_path / "tiny", project, n=3)


@pytest.fixture
def questions(project, admin_user):
    return questions_dataset(project, admin_user, n=6)


def create(client, project, **body):
    return client.post(f"/api/projects/{project.pk}/evaluations/", body, format="json")


def test_admins_start_an_evaluation_project_with_one_run_per_version(
    api, project, admin_user, labelers, versions, questions, enqueued, django_capture_on_commit_callbacks
):
    criterion_create(project=project, name="helpful", instructions="Most useful answer")
    with django_capture_on_commit_callbacks(execute=True):
        response = create(api(admin_user), project, versions=[v.pk for v in versions], dataset=questions.pk, limit=4)
    assert response.status_code == 201, response.json()
    body = response.json()
    evaluation = SideBySideEval.objects.get(pk=body["id"])
    target = evaluation.project
    assert target.kind == ProjectKind.EVALUATION and target.completions_per_prompt == 2
    assert target.overlap == project.overlap and evaluation.source_project_id == project.pk
    assert set(target.memberships.values_list("user_id", "role")) == set(
        project.memberships.values_list("user_id", "role")
    )
    assert list(target.criteria.values_list("name", flat=True)) == ["helpful"]
    assert sorted(target.datasets.get().rows.values_list("index", flat=True)) == [0, 1, 2, 3]
    assert body["status"] == "generating" and body["progress"]["pairs_expected"] == 4 * 3
    assert [e["version"] for e in body["entries"]] == [v.pk for v in versions]
    runs_made = TrainingRun.objects.filter(pk__in=[e["run"] for e in body["entries"]])
    assert {r.kind for r in runs_made} == {"generate"} and {r.project_id for r in runs_made} == {target.pk}
    assert all(r.config["k"] == 1 for r in runs_made) and len(enqueued) == 3
    prompts = (runs.run_folder(runs_made[0].pk) / "prompts.jsonl").read_text().splitlines()
    rows = set(target.datasets.get().rows.values_list("pk", flat=True))
    assert {json.loads(line)["prompt_id"] for line in prompts} == rows
    assert json.loads(prompts[0])["prompt"] == "Q: Question number 0?\nA:"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"versions": "one"}, "versions", "list"),
        ({"versions": [1]}, "versions", "at least 2"),
        ({"dup": True}, "versions", "each version once"),
        ({"limit": 0}, "limit", ""),
        ({"split": "train"}, "split", "has no rows in split 'train'"),
        ({"dataset": 9999}, "dataset", "has no dataset 9999"),
        ({"colour": "red"}, "colour", "Unknown field"),
        ({"generation": {"temprature": 1}}, "generation.temprature", "unknown option"),
        ({"foreign": True}, "versions[1]", "no model version"),
    ],
)
def test_bad_requests_name_the_field_and_create_nothing(
    api, project, admin_user, versions, questions, tmp_path, body, field, message
):
    ids = [v.pk for v in versions[:2]]
    if body.pop("dup", False):
        ids = [ids[0], ids[0]]
    if body.pop("foreign", False):
        other = Project.objects.create(name="Elsewhere")
        ids = [ids[0], tiny_versions(tmp_path / "other", other, n=1, name="other")[0].pk]
    projects_before = Project.objects.count()
    response = create(api(admin_user), project, **{"versions": ids, "dataset": questions.pk, **body})
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors and message in json.dumps(errors[field])
    assert Project.objects.count() == projects_before and not TrainingRun.objects.exists()


def test_who_may_start_and_read_an_evaluation(api, project, admin_user, make_user, add_member, versions, questions):
    reviewer = add_member(make_user("rev"), Role.REVIEWER)
    labeler = add_member(make_user("lab"), Role.LABELER)
    outsider = make_user("out")
    staff = make_user("staffer", is_staff=True)
    body = {"versions": [v.pk for v in versions[:2]], "dataset": questions.pk}
    assert create(api(reviewer), project, **body).status_code == 403
    assert create(api(labeler), project, **body).status_code == 403
    assert create(api(outsider), project, **body).status_code == 404
    assert create(api(staff), project, **body).status_code == 404
    evaluation_id = create(api(admin_user), project, **body).json()["id"]
    base = f"/api/evaluations/{evaluation_id}/"
    # Labelers label it blind: the evaluation (which model is which) is not theirs to read.
    for user, status in ((labeler, 404), (outsider, 404), (staff, 404), (reviewer, 200), (admin_user, 200)):
        assert api(user).get(base).status_code == status, user
        assert api(user).get(base + "results/").status_code == status, user
    assert api(reviewer).post(base + "publish/").status_code == 403
    assert api(labeler).post(base + "publish/").status_code == 404
    assert api(admin_user).post(base + "publish/").status_code == 200
    assert api(labeler).get("/api/evaluations/").json()["count"] == 0
    assert api(reviewer).get("/api/evaluations/", {"project": project.pk}).json()["count"] == 1


def test_answers_become_blind_pairs_once(api, project, admin_user, labelers, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions, questions, limit=6, seed=5)
    answer(evaluation)
    pairs = list(SideBySidePair.objects.filter(evaluation=evaluation))
    entries = list(evaluation.entries.order_by("position"))
    assert len(pairs) == 6 * 3
    assert Counter((p.entry_a_id, p.entry_b_id) for p in pairs) == {
        (a.pk, b.pk): 6 for a, b in combinations(entries, 2)
    }
    # Reading the same lines again (a redelivered event, a resumed run) makes nothing new.
    for entry in entries:
        run = TrainingRun.objects.get(pk=entry.run_id)
        assert SamplesIngest.for_run(run, runs.run_folder(run.pk)).ingest() == 0
    assert SideBySidePair.objects.filter(evaluation=evaluation).count() == 18
    for pair in pairs:
        completions = list(Completion.objects.filter(comparison=pair.comparison).order_by("position"))
        # ids follow the positions, so not even the id order tells which entry is which
        assert [c.pk for c in completions] == sorted(c.pk for c in completions)
        assert completions[pair.a_position].metadata["entry"] == pair.entry_a_id
        assert completions[1 - pair.a_position].metadata["entry"] == pair.entry_b_id


def test_positions_are_a_fair_coin_not_the_entry_order(project, admin_user, tmp_path):
    versions = tiny_versions(tmp_path / "coin", project, n=2)
    dataset = questions_dataset(project, admin_user, n=200)
    evaluation = make_evaluation(project, admin_user, versions, dataset, limit=200, seed=1)
    answer(evaluation)
    first = Counter(SideBySidePair.objects.filter(evaluation=evaluation).values_list("a_position", flat=True))
    assert first[0] + first[1] == 200
    assert 70 <= first[0] <= 130  # a fair coin: P(outside) < 1e-4
    # Same seed, same positions: an evaluation can be audited.
    again = make_evaluation(project, admin_user, versions, dataset, limit=200, seed=1)
    answer(again)
    by_row = lambda e: [p.a_position for p in SideBySidePair.objects.filter(evaluation=e).order_by("prompt_row__index")]  # noqa: E731
    assert by_row(again) == by_row(evaluation)


def test_labelers_see_no_model_names(api, project, admin_user, labelers, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=2)
    answer(evaluation, text_for=lambda entry, prompt: f"An answer of {len(prompt)} characters.")
    lease = api(labelers[0]).get(f"/api/projects/{evaluation.project_id}/next/")
    assert lease.status_code == 200
    assert "policy" not in json.dumps(lease.json())  # the model's name, on the completions for reviewers
    assert set(lease.json()["completions"][0]) == {"id", "position", "text"}
    assert set(lease.json()["comparison"]) == {"id", "prompt"}
    assert Completion.objects.filter(comparison__project=evaluation.project, model_name__startswith="policy").exists()


def test_results_win_rates_and_scores_follow_the_votes(api, project, admin_user, labelers, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=6, seed=2)
    answer(evaluation)
    first, second = evaluation.entries.order_by("position")
    # labeler0 and labeler1 (overlap 2) prefer the first version, except one tie and one "both bad".
    calls = Counter()

    def prefer(pair, labeler):
        calls[labeler.pk] += 1
        if labeler == labelers[1] and calls[labeler.pk] == 1:
            return "tie"
        if labeler == labelers[1] and calls[labeler.pk] == 2:
            return "both_bad"
        return "a"

    assert label_all(evaluation, labelers[:2], prefer) == 12
    results = api(admin_user).get(f"/api/evaluations/{evaluation.pk}/results/").json()
    [human] = results["human"]
    assert human["votes"] == 12 and human["comparisons"] == 6
    [pair] = human["pairs"]
    assert (pair["a"], pair["b"], pair["wins"], pair["ties"], pair["both_bad"], pair["n"]) == (
        first.pk,
        second.pk,
        10,
        1,
        1,
        12,
    )
    assert pair["win_rate"] == pytest.approx(11 / 12)
    scores = {row["entry"]: row for row in human["scores"]}
    assert scores[first.pk]["rank"] == 1 and scores[first.pk]["score"] > 1000 > scores[second.pk]["score"]
    assert results["ai"] == [] and results["agreement"] == []
    detail = api(admin_user).get(f"/api/evaluations/{evaluation.pk}/").json()
    assert detail["status"] == "complete" and detail["progress"]["labels"] == 12


def test_publish_puts_the_verdict_on_each_version(api, project, admin_user, labelers, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=4)
    answer(evaluation)
    label_all(evaluation, labelers[:2], lambda pair, labeler: "b")
    client = api(admin_user)
    assert client.post(f"/api/evaluations/{evaluation.pk}/publish/").status_code == 200
    assert client.post(f"/api/evaluations/{evaluation.pk}/publish/").status_code == 200  # replaces, not adds
    winner = ModelVersion.objects.get(pk=versions[1].pk)
    [entry] = winner.metrics["human_evals"]
    [overall] = entry["criteria"]
    assert entry["evaluation"] == evaluation.pk and overall["rank"] == 1
    assert overall["against"][0]["version"] == versions[0].pk and overall["against"][0]["win_rate"] == 1.0
    detail = client.get(f"/api/models/{winner.model_id}/versions/{winner.version}/")
    assert detail.status_code == 200 and "human_evals" in json.dumps(detail.json())


def test_an_ai_judge_stands_beside_the_humans(api, project, admin_user, labelers, versions, questions, make_user):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=4)
    answer(evaluation)
    label_all(evaluation, labelers[:1], lambda pair, labeler: "a")
    judgments = []
    for pair in SideBySidePair.objects.filter(evaluation=evaluation).select_related("comparison"):
        shown = Completion.objects.filter(comparison=pair.comparison).order_by("position")
        ids = list(shown.values_list("pk", flat=True))
        # the judge always prefers whatever is shown first: it agrees when a sits first
        judgments.append({"comparison_id": pair.comparison_id, "ranks": {str(ids[0]): 1, str(ids[1]): 2}})
    recorded = ai_rankings_record(project=evaluation.project, judgments=judgments)
    assert recorded["recorded"] == 4
    # An AI judge of an evaluation never takes comparisons away from the humans.
    assert not Comparison.objects.filter(project=evaluation.project, human_queue=False).exists()
    results = api(admin_user).get(f"/api/evaluations/{evaluation.pk}/results/").json()
    [judge], [agreement] = results["ai"], results["agreement"]
    assert judge["votes"] == 4
    first_shown = SideBySidePair.objects.filter(evaluation=evaluation, a_position=0).count()
    assert agreement["n"] == 4 and agreement["agree"] == first_shown


def test_per_criterion_verdicts(api, project, admin_user, labelers, versions, questions):
    project.rank_per_criterion = True
    project.save()
    criterion_create(project=project, name="helpful")
    criterion_create(project=project, name="harmless")
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=3)
    answer(evaluation)
    helpful, harmless = evaluation.project.criteria.order_by("position")
    for labeler in labelers[:2]:
        while (lease := api(labeler).get(f"/api/projects/{evaluation.project_id}/next/")).status_code == 200:
            body = lease.json()
            pair = SideBySidePair.objects.get(comparison_id=body["comparison"]["id"])
            ids = {c["position"]: c["id"] for c in body["completions"]}
            a, b = ids[pair.a_position], ids[1 - pair.a_position]
            criteria = {str(helpful.pk): {"ranks": {a: 1, b: 2}}, str(harmless.pk): {"ranks": {a: 2, b: 1}}}
            submit = api(labeler).post(
                f"/api/assignments/{body['assignment']['id']}/ranking/", {"criteria": criteria}, format="json"
            )
            assert submit.status_code == 201, submit.json()
    results = api(admin_user).get(f"/api/evaluations/{evaluation.pk}/results/").json()
    assert [c["name"] for c in results["criteria"]] == ["helpful", "harmless"]
    by_name = {v["name"]: v["pairs"][0]["win_rate"] for v in results["human"]}
    assert by_name == {"helpful": 1.0, "harmless": 0.0}


def test_length_bias_is_visible(api, project, admin_user, labelers, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=6)
    first = evaluation.entries.order_by("position").first()
    answer(evaluation, text_for=lambda entry, prompt: "word " * (40 if entry == first else 3))
    label_all(evaluation, labelers[:2], lambda pair, labeler: "a")  # a is the longer one every time
    [human] = api(admin_user).get(f"/api/evaluations/{evaluation.pk}/results/").json()["human"]
    bias = human["length_bias"]
    assert bias["n"] == 12 and bias["longer_wins"] == 1.0
    assert [(b["min_words"], b["max_words"]) for b in bias["bins"]] == [(15, 40)]


def test_an_evaluation_project_takes_no_generation_run(api, project, admin_user, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=2)
    response = api(admin_user).post(
        f"/api/projects/{evaluation.project_id}/generate/",
        {"dataset": evaluation.dataset_id, "model_version": versions[0].pk},
        format="json",
    )
    assert response.status_code == 409 and "side-by-side evaluation" in response.json()["detail"]
    nested = api(admin_user).post(
        f"/api/projects/{evaluation.project_id}/evaluations/",
        {"versions": [v.pk for v in versions[:2]], "dataset": evaluation.dataset_id},
        format="json",
    )
    assert nested.status_code == 400 and "is an evaluation" in nested.json()["detail"]


def test_a_failed_generation_shows(api, project, admin_user, versions, questions):
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=2)
    for entry in evaluation.entries.all():
        runs.run_transition(run_id=entry.run_id, to="running")
        runs.run_transition(run_id=entry.run_id, to="failed", error="boom")
    assert api(admin_user).get(f"/api/evaluations/{evaluation.pk}/").json()["status"] == "failed"


def test_an_ai_judge_run_reads_the_evaluation_pairs(api, project, admin_user, versions, questions, tiny_model_dir):
    """An ``ai_feedback`` run on the evaluation project (its copied constitution) reads every pair."""
    from labeling.principles import DEFAULT_PRINCIPLES
    from labeling.services.constitutions import constitution_create
    from models_registry.services import model_version_register

    constitution_create(project=project, created_by=admin_user, principles=DEFAULT_PRINCIPLES[:2])
    evaluation = make_evaluation(project, admin_user, versions[:2], questions, limit=3)
    answer(evaluation)
    assert evaluation.project.constitutions.get().principles == DEFAULT_PRINCIPLES[:2]
    judge = model_version_register(model_name="judge", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True)
    response = api(admin_user).post(
        "/api/runs/",
        {"kind": "ai_feedback", "project": evaluation.project_id, "inputs": {"base_version": judge.pk}, "config": {}},
        format="json",
    )
    assert response.status_code == 202, response.json()
    folder = runs.run_folder(response.json()["id"])
    rows = [json.loads(line) for line in (folder / "comparisons.jsonl").read_text().splitlines()]
    pairs = set(SideBySidePair.objects.filter(evaluation=evaluation).values_list("comparison_id", flat=True))
    assert {row["comparison_id"] for row in rows} == pairs
