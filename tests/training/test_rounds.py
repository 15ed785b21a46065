"""Rounds of the loop through the API (no worker): numbering, lineage of runs and evaluations, the
figures side by side, and the reward-hacking guard's samples put back to labelers."""

import json
from collections import Counter

import pytest

from labeling.models import Comparison, Completion, PreferenceSnapshot, Role, SideBySideEval, SnapshotStatus
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create
from labeling.services.templates import template_create
from models_registry.models import ModelAlias, ModelVersion
from tests.labeling.factories import ranks_best_first
from tests.labeling.sxs_factories import answer, label_all, tiny_versions
from training.ml.guard import SAMPLES_FILE
from training.models import Round, RunState, TrainingRun
from training.services import runs

from .conftest import rows_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Every run this module creates is recorded instead of sent."""


@pytest.fixture
def pairs_project(admin_user, labelers):
    """K = 2, overlap 2, the three labelers as members, 20 questions (helpful and harmless)."""
    project = project_create(created_by=admin_user, name="Loop", completions_per_prompt=2, overlap=2)
    for labeler in labelers:
        project.memberships.create(user=labeler, role=Role.LABELER)
    rows = [{"question": f"q{i}", "group": "helpful" if i % 2 else "harmless"} for i in range(20)]
    dataset = dataset_import(project=project, stream=rows_jsonl(rows), filename="q.jsonl", created_by=admin_user)
    template_create(project=project, name="qa", text="Q: {question}\nA:", dataset=dataset, make_default=True)
    project.refresh_from_db()
    return project


@pytest.fixture
def base(pairs_project, tmp_path):
    [version] = tiny_versions(tmp_path / "tiny", pairs_project, n=1)
    return version


def start(client, project, **body):
    return client.post(f"/api/projects/{project.pk}/rounds/", body, format="json")


def dataset_of(project):
    return project.datasets.get().pk


def test_rounds_are_numbered_and_start_their_generation(api, admin_user, pairs_project, base):
    client = api(admin_user)
    first = start(client, pairs_project, version=base.pk, dataset=dataset_of(pairs_project), limit=5)
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["number"] == 1 and body["previous"] is None and body["base_version"]["id"] == base.pk
    run = TrainingRun.objects.get(pk=body["generation_run"])
    assert run.kind == "generate" and run.round_id == body["id"] and run.inputs["model_version"] == base.pk
    assert [r["id"] for r in body["runs"]] == [run.pk]
    ModelAlias.objects.create(model=base.model, name="candidate", version=base)
    second = start(client, pairs_project, model=base.model_id, alias="candidate", dataset=dataset_of(pairs_project))
    assert second.status_code == 201, second.json()
    assert second.json()["number"] == 2 and second.json()["previous"] == body["id"]
    assert second.json()["guard_samples"] == {"skipped": "round 1 has no succeeded rlhf run"}
    listed = client.get(f"/api/projects/{pairs_project.pk}/rounds/").json()
    assert [r["number"] for r in listed] == [1, 2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "version"),
        ({"version": 1, "alias": "x", "model": 1}, "version"),
        ({"alias": "nope", "model": "MODEL"}, "alias"),
        ({"alias": "candidate"}, "model"),
        ({"version": 999999}, "version"),
        ({"guard_samples": 1000}, "guard_samples"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_rounds_name_the_field_and_start_nothing(api, admin_user, pairs_project, base, body, field):
    body = {k: (base.model_id if v == "MODEL" else v) for k, v in body.items()}
    response = start(api(admin_user), pairs_project, dataset=dataset_of(pairs_project), **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not Round.objects.exists() and not TrainingRun.objects.exists()


def test_who_may_start_and_read_rounds(api, admin_user, pairs_project, base, labelers, make_user):
    reviewer = make_user("rev")
    pairs_project.memberships.create(user=reviewer, role=Role.REVIEWER)
    body = {"version": base.pk, "dataset": dataset_of(pairs_project)}
    assert start(api(labelers[0]), pairs_project, **body).status_code == 403
    assert start(api(reviewer), pairs_project, **body).status_code == 403
    assert start(api(make_user("out")), pairs_project, **body).status_code == 404
    round_id = start(api(admin_user), pairs_project, **body).json()["id"]
    assert api(reviewer).get(f"/api/projects/{pairs_project.pk}/rounds/").status_code == 200
    assert api(labelers[0]).get(f"/api/projects/{pairs_project.pk}/rounds/").status_code == 403
    assert api(reviewer).get(f"/api/rounds/{round_id}/").status_code == 200
    assert api(labelers[0]).get(f"/api/rounds/{round_id}/").status_code == 404
    assert api(make_user("out2")).get(f"/api/rounds/{round_id}/").status_code == 404


def test_runs_and_evaluations_join_a_round_of_their_project(api, admin_user, pairs_project, base, tmp_path):
    client = api(admin_user)
    round_id = start(client, pairs_project, version=base.pk, dataset=dataset_of(pairs_project)).json()["id"]
    run = client.post(
        "/api/runs/",
        {"kind": "generate", "project": pairs_project.pk, "round": round_id, "config": {}, "inputs": {}},
        format="json",
    )
    assert run.status_code == 400  # the config is refused first: nothing joins
    other = project_create(created_by=admin_user, name="Other", completions_per_prompt=2)
    elsewhere = client.post(
        "/api/runs/",
        {"kind": "reward_model", "project": other.pk, "round": round_id, "config": {}, "inputs": {}},
        format="json",
    )
    assert elsewhere.status_code == 400 and "round" in elsewhere.json()["errors"]
    new = tiny_versions(tmp_path / "new", pairs_project, n=1)[0]
    evaluation = client.post(
        f"/api/projects/{pairs_project.pk}/evaluations/",
        {"versions": [base.pk, new.pk], "dataset": dataset_of(pairs_project), "split": None, "round": round_id},
        format="json",
    )
    assert evaluation.status_code == 201, evaluation.json()
    assert client.get(f"/api/rounds/{round_id}/").json()["evaluations"] == [evaluation.json()["id"]]


def test_a_round_shows_its_figures_side_by_side(api, admin_user, pairs_project, base, labelers, tmp_path):
    client = api(admin_user)
    round_id = start(client, pairs_project, version=base.pk, dataset=dataset_of(pairs_project), limit=4).json()["id"]
    round_ = Round.objects.get(pk=round_id)
    # The generation run's comparisons, labeled by two labelers who agree.
    folder = runs.run_folder(round_.generation_run_id)
    prompts = [json.loads(line) for line in (folder / "prompts.jsonl").read_text().splitlines()]
    with open(folder / "completions.jsonl", "w") as handle:
        for p in prompts:
            texts = [{"text": f"short {p['prompt_id']}"}, {"text": f"a longer answer {p['prompt_id']}"}]
            handle.write(json.dumps({"prompt_id": p["prompt_id"], "completions": texts}) + "\n")
    from training.services.generation import CompletionsIngest

    CompletionsIngest.for_run(round_.generation_run, folder).finish()
    for labeler in labelers[:2]:
        while (lease := api(labeler).get(f"/api/projects/{pairs_project.pk}/next/")).status_code == 200:
            submit = api(labeler).post(
                f"/api/assignments/{lease.json()['assignment']['id']}/ranking/",
                {"ranks": ranks_best_first(lease.json())},
                format="json",
            )
            assert submit.status_code == 201
    # A reward model and an RLHF run of the round, and the version the RLHF run registered.
    snapshot = PreferenceSnapshot.objects.create(
        project=pairs_project, version=1, options={}, status=SnapshotStatus.READY
    )
    trained_on = {"snapshot": snapshot.pk}
    reward = finished_run(pairs_project, round_, "reward_model", {"eval_accuracy": 0.71}, inputs=trained_on)
    rlhf = finished_run(pairs_project, round_, "rlhf", {"eval_heldout_reward_after": 0.4, "eval_kl_after": 0.05})
    new = tiny_versions(tmp_path / "new", pairs_project, n=1, name="policy-rlhf")[0]
    ModelVersion.objects.filter(pk=new.pk).update(source_run_id=rlhf.pk)
    evaluation_id = client.post(
        f"/api/projects/{pairs_project.pk}/evaluations/",
        {"versions": [base.pk, new.pk], "dataset": dataset_of(pairs_project), "split": None, "limit": 3},
        format="json",
    ).json()["id"]
    evaluation = SideBySideEval.objects.get(pk=evaluation_id)
    Round.objects.get(pk=round_id).evaluations.add(evaluation)
    answer(evaluation)
    new_entry = evaluation.entries.get(version=new).pk
    label_all(evaluation, labelers[:2], lambda pair, labeler: "a" if pair.entry_a_id == new_entry else "b")

    body = client.get(f"/api/rounds/{round_id}/").json()
    assert body["labeling"]["comparisons"] == 4 and body["labeling"]["rankings"] == 8
    assert body["labeling"]["pairs"] == 8 and body["labeling"]["agreement"] == 1.0
    assert body["reward_model"] == {"run": reward.pk, "eval_accuracy": 0.71}
    assert body["policy"]["run"] == rlhf.pk and body["policy"]["eval_kl_after"] == 0.05
    assert [v["id"] for v in body["versions"]] == [new.pk] and body["snapshots"] == [snapshot.pk]
    win = body["human_win_rate"]
    assert (win["version"], win["against"], win["win_rate"], win["n"]) == (new.pk, base.pk, 1.0, 6)
    assert body["guard"]["run"] == rlhf.pk  # an RLHF run with no samples file: an empty report


def finished_run(project, round_, kind, metrics, samples=None, inputs=None) -> TrainingRun:
    run = TrainingRun.objects.create(
        kind=kind,
        state=RunState.SUCCEEDED,
        config={},
        inputs=inputs or {},
        project=project,
        round=round_,
        outputs={"result": {"metrics": metrics}},
    )
    if samples is not None:
        folder = runs.run_folder(run.pk)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SAMPLES_FILE).write_text("".join(json.dumps(s) + "\n" for s in samples))
    return run


def hacked_samples(project):
    """What the real HH loop learned: the best-scored answers write the user's next turn, and the
    policy refuses helpful questions it used to answer."""
    rows = list(project.datasets.get().rows.order_by("index"))
    samples = []
    for i, row in enumerate(rows):
        helpful = row.data["group"] == "helpful"
        completion = (
            f"Sure.\n\nHuman: tell me more about {i}?"
            if i < 6
            else "I'm sorry, I can't help with that."
            if helpful
            else "I won't help with that."
        )
        samples.append(
            {
                "prompt_id": row.pk,
                "prompt": f"Q: {row.data['question']}\nA:",
                "completion": completion,
                "completion_before": f"Here is an answer about {i}." if helpful else "I can't help with that.",
                "reward": 10.0 - i,
                "reward_before": 1.0,
                "heldout_reward": 0.1,
                "heldout_reward_before": 0.3,
            }
        )
    return samples


def test_the_guard_puts_the_extremes_back_and_flags_a_hacked_policy(api, admin_user, pairs_project, base, labelers):
    client = api(admin_user)
    first_id = start(client, pairs_project, version=base.pk, dataset=dataset_of(pairs_project), limit=2).json()["id"]
    rlhf = finished_run(
        pairs_project,
        Round.objects.get(pk=first_id),
        "rlhf",
        {"eval_reward_gain_low": 2.0, "eval_heldout_reward_before": 0.3, "eval_heldout_reward_after": 0.1},
        samples=hacked_samples(pairs_project),
    )
    second = start(client, pairs_project, version=base.pk, dataset=dataset_of(pairs_project), limit=2, guard_samples=4)
    assert second.status_code == 201, second.json()
    guard_ids = second.json()["guard_samples"]
    assert guard_ids["run"] == rlhf.pk and len(guard_ids["best"]) == 4 and len(guard_ids["worst"]) == 4
    queued = Comparison.objects.filter(pk__in=guard_ids["best"] + guard_ids["worst"])
    assert {c.metadata["guard"] for c in queued} == {"best", "worst"} and all(c.human_queue for c in queued)
    positions = Counter(
        Completion.objects.filter(comparison__in=queued, metadata__source="policy").values_list("position", flat=True)
    )
    assert set(positions) == {0, 1}  # shuffled: labelers cannot tell the policy's answer by its place

    # People prefer the reference to the policy's best-scored answers (they write the user's turn).
    for labeler in labelers[:2]:
        while (lease := api(labeler).get(f"/api/projects/{pairs_project.pk}/next/")).status_code == 200:
            body = lease.json()
            policy = set(
                Completion.objects.filter(
                    comparison_id=body["comparison"]["id"], metadata__source="policy"
                ).values_list("pk", flat=True)
            )
            ids = [c["id"] for c in body["completions"]]
            ranks = {cid: (2 if cid in policy else 1) for cid in ids} if policy else {ids[0]: 1, ids[1]: 2}
            response = api(labeler).post(
                f"/api/assignments/{body['assignment']['id']}/ranking/", {"ranks": ranks}, format="json"
            )
            assert response.status_code == 201
    report = client.get(f"/api/runs/{rlhf.pk}/guard/").json()
    assert report["after"]["user_turn_rate"] == 6 / 20 and report["before"]["user_turn_rate"] == 0
    assert report["groups"]["helpful"]["refusal_rate_after"] == 0.7
    assert report["groups"]["helpful"]["refusal_rate_before"] == 0.0
    assert report["people"]["best"]["votes"] == 8 and report["people"]["best"]["policy_win_rate"] == 0.0
    codes = {flag["code"] for flag in report["flags"]}
    assert codes == {"writes_user_turn", "refuses", "over_refusal", "heldout_reward_flat", "humans_disagree"}
    first = client.get(f"/api/rounds/{first_id}/").json()
    assert {flag["code"] for flag in first["guard"]["flags"]} == codes
    # Only RLHF runs have a guard.
    generate_run = Round.objects.get(pk=first_id).generation_run_id
    assert client.get(f"/api/runs/{generate_run}/guard/").status_code == 404


def test_guard_comparisons_need_pairs(api, admin_user, labelers, tmp_path):
    project = project_create(created_by=admin_user, name="K3", completions_per_prompt=3)
    dataset = dataset_import(
        project=project, stream=rows_jsonl([{"question": "q"}] * 3), filename="q.jsonl", created_by=admin_user
    )
    template_create(project=project, name="qa", text="{question}", dataset=dataset, make_default=True)
    [version] = tiny_versions(tmp_path / "k3", project, n=1)
    client = api(admin_user)
    first = start(client, project, version=version.pk, dataset=dataset.pk, limit=1).json()["id"]
    finished_run(project, Round.objects.get(pk=first), "rlhf", {}, samples=[])
    second = start(client, project, version=version.pk, dataset=dataset.pk, limit=1).json()
    assert "K > 2" in second["guard_samples"]["skipped"]
