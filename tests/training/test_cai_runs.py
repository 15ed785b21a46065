"""Constitutional-AI runs from the API (no worker here): the constitution and prompts or comparisons
become the run's files; errors name the field; a finished run's steps become browsable revisions
and its judgments AI rankings; an sft run reads a cai_revise run's revisions with lineage."""

import json

import pytest

from labeling.models import Comparison, LabelSource, Ranking
from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services.constitutions import constitution_create
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create
from labeling.services.templates import template_create
from models_registry.services import model_version_register
from tests.labeling.factories import add_comparisons
from tests.training.conftest import rows_jsonl
from training.models import CritiqueRevision, RunState, TrainingRun
from training.services import runs
from training.services.cai import CaiResults

pytestmark = pytest.mark.django_db


@pytest.fixture
def base_version(tiny_model_dir, admin_user):
    return model_version_register(model_name="tiny", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True)


@pytest.fixture
def pairs_project(admin_user):
    project = project_create(created_by=admin_user, name="Pairs", completions_per_prompt=2)
    add_comparisons(project, 4, gold=1)
    return project


def start(client, **body):
    return client.post("/api/runs/", {"config": {}, **body}, format="json")


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_cai_revise_needs_a_constitution_then_reads_it_and_the_comparison_prompts(
    api, admin_user, pairs_project, base_version, enqueued
):
    client = api(admin_user)
    body = {"kind": "cai_revise", "project": pairs_project.pk, "inputs": {"base_version": base_version.pk}}
    refused = start(client, **body)
    assert refused.status_code == 400 and "inputs.constitution" in refused.json()["errors"]
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES[:2])
    response = start(client, **{**body, "config": {"rounds": 2, "principle_keys": ["harm"]}})
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.inputs["constitution"] == 2 and [p["key"] for p in run.config["principles"]] == ["harm", "ethics"]
    prompts = read_jsonl(runs.run_folder(run.pk) / run.config["prompts_file"])
    assert [p["prompt"] for p in prompts] == [f"Prompt {i}" for i in range(4)]  # gold left out
    older = start(client, **{**body, "inputs": {**body["inputs"], "constitution": 1}})
    assert TrainingRun.objects.get(pk=older.json()["id"]).inputs["constitution"] == 1


@pytest.mark.parametrize(
    ("inputs", "config", "field"),
    [
        ({"constitution": 9}, {}, "inputs.constitution"),
        ({}, {"principle_keys": ["nope"]}, "principle_keys"),
        ({}, {"rounds": 0}, "rounds"),
        ({}, {"principles": DEFAULT_PRINCIPLES}, "config.principles"),
        ({"then_sft": {"config": {"lora_r": "big"}}}, {}, "inputs.then_sft.config.lora_r"),
        ({"then_sft": {"config": {"train_file": "x"}}}, {}, "inputs.then_sft.config.train_file"),
        ({"template": 1}, {}, "inputs.template"),
    ],
)
def test_bad_cai_revise_requests_name_the_field(
    api, admin_user, pairs_project, base_version, enqueued, inputs, config, field
):
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    response = start(
        api(admin_user),
        kind="cai_revise",
        project=pairs_project.pk,
        inputs={"base_version": base_version.pk, **inputs},
        config=config,
    )
    assert response.status_code == 400
    errors = response.json().get("errors") or response.json()
    assert any(field in key for key in errors), errors
    assert not TrainingRun.objects.exists()


def test_cai_revise_from_a_dataset_and_template(api, admin_user, pairs_project, base_version, enqueued):
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    rows = [{"question": f"How do I {verb}?", "split": "eval" if i == 2 else "train"} for i, verb in enumerate("abc")]
    dataset = dataset_import(project=pairs_project, stream=rows_jsonl(rows), filename="q.jsonl", created_by=admin_user)
    template = template_create(project=pairs_project, name="q", text="Human: {question}")
    response = start(
        api(admin_user),
        kind="cai_revise",
        project=pairs_project.pk,
        inputs={"base_version": base_version.pk, "dataset": dataset.pk, "template": template.pk},
    )
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    prompts = read_jsonl(runs.run_folder(run.pk) / "prompts.jsonl")
    assert [p["prompt"] for p in prompts] == ["Human: How do I a?", "Human: How do I b?"]  # train split


def test_ai_feedback_reads_comparisons_without_an_ai_label(api, admin_user, pairs_project, base_version, enqueued):
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    first = Comparison.objects.filter(project=pairs_project, is_gold=False).order_by("id").first()
    a, b = first.completions.values_list("pk", flat=True)
    from labeling.services.ai_labels import ai_rankings_record

    ai_rankings_record(project=pairs_project, judgments=[{"comparison_id": first.pk, "ranks": {str(a): 1, str(b): 2}}])
    response = start(
        api(admin_user),
        kind="ai_feedback",
        project=pairs_project.pk,
        inputs={"base_version": base_version.pk, "limit": 2},
        config={"principle": "harm"},
    )
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    rows = read_jsonl(runs.run_folder(run.pk) / "comparisons.jsonl")
    assert first.pk not in [r["comparison_id"] for r in rows] and len(rows) == 2
    assert all(len(r["completions"]) == 2 and r["completions"][0]["text"].startswith("answer") for r in rows)


def finish(run: TrainingRun, files: dict[str, list[dict]], result: dict) -> dict:
    folder = runs.run_folder(run.pk)
    for name, rows in files.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    TrainingRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING)  # as the worker holds it
    run.refresh_from_db()
    handler = CaiResults.for_run(run, folder)
    outputs = handler.finish(result=result, succeeded=True)
    TrainingRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED, outputs=outputs)
    return outputs


def test_revisions_are_stored_browsable_and_chain_an_sft_run_with_lineage(
    api, admin_user, pairs_project, base_version, enqueued
):
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    client = api(admin_user)
    response = start(
        client,
        kind="cai_revise",
        project=pairs_project.pk,
        inputs={
            "base_version": base_version.pk,
            "then_sft": {"config": {"max_steps": 2}, "output_model": "tiny-cai"},
        },
    )
    run = TrainingRun.objects.get(pk=response.json()["id"])
    steps = [
        {
            "prompt_id": f"comparison-{i}",
            "prompt": f"Prompt {i}",
            "initial": f"bad {i}",
            "rounds": [{"principle": "harm" if i % 2 else "honesty", "critique": "c", "revision": f"good {i}"}],
            "final": f"good {i}",
        }
        for i in range(12)
    ]
    sft_rows = [{"prompt_id": s["prompt_id"], "prompt": s["prompt"], "completion": s["final"]} for s in steps]
    pairs = [{**r, "chosen": r.pop("completion"), "rejected": "bad"} for r in (dict(r) for r in sft_rows)]
    files = {"steps.jsonl": steps, "sft.jsonl": sft_rows, "pairs.jsonl": pairs}
    outputs = finish(run, files, {"principle_counts": {"harm": 6}})
    assert outputs["revisions_stored"] == 12 and CritiqueRevision.objects.filter(run=run).count() == 12
    # Stored once: the handler may run again on a resumed attempt.
    assert CaiResults.for_run(run, runs.run_folder(run.pk)).finish(result={}, succeeded=True)["revisions_stored"] == 0
    page = client.get(f"/api/runs/{run.pk}/revisions/?principle=harm&limit=3").json()
    assert page["count"] == 6 and page["results"][0]["rounds"][0]["principle"] == "harm"
    sft = TrainingRun.objects.get(pk=outputs["sft_run"])
    assert sft.kind == "sft" and sft.inputs["cai_run"] == run.pk and sft.inputs["constitution"] == 1
    assert sft.inputs["output_model"] == "tiny-cai" and sft.config["max_steps"] == 2
    train = read_jsonl(runs.run_folder(sft.pk) / "train.jsonl")
    evals = read_jsonl(runs.run_folder(sft.pk) / "eval.jsonl") if sft.config.get("eval_file") else []
    assert len(train) + len(evals) == 12 and train[0]["completion"].startswith(" good")
    # The same revisions as preference pairs (revision over first answer) for a DPO run.
    dpo = start(
        client, kind="dpo", project=pairs_project.pk, inputs={"base_version": base_version.pk, "cai_run": run.pk}
    )
    assert dpo.status_code == 202, dpo.json()
    dpo_run = TrainingRun.objects.get(pk=dpo.json()["id"])
    rows = read_jsonl(runs.run_folder(dpo_run.pk) / "train.jsonl")
    assert rows[0]["chosen"].startswith("good") and rows[0]["rejected"] == "bad"
    assert dpo_run.inputs["constitution"] == 1


def test_sft_refuses_a_cai_run_that_did_not_succeed(api, admin_user, pairs_project, base_version, enqueued):
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    client = api(admin_user)
    cai = start(client, kind="cai_revise", project=pairs_project.pk, inputs={"base_version": base_version.pk})
    response = start(
        client,
        kind="sft",
        project=pairs_project.pk,
        inputs={"base_version": base_version.pk, "cai_run": cai.json()["id"]},
    )
    assert response.status_code == 400 and "inputs.cai_run" in response.json()["errors"]


def test_judgments_become_ai_rankings_once(api, admin_user, pairs_project, base_version, enqueued):
    constitution_create(project=pairs_project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    response = start(
        api(admin_user), kind="ai_feedback", project=pairs_project.pk, inputs={"base_version": base_version.pk}
    )
    run = TrainingRun.objects.get(pk=response.json()["id"])
    judgments = []
    for comparison in Comparison.objects.filter(project=pairs_project, is_gold=False):
        a, b = comparison.completions.values_list("pk", flat=True)
        judgments.append({"comparison_id": comparison.pk, "principle": "harm", "ranks": {str(a): 2, str(b): 1}})
    outputs = finish(run, {"judgments.jsonl": judgments}, {})
    assert outputs["recorded"] == 4
    again = CaiResults.for_run(run, runs.run_folder(run.pk)).finish(result={}, succeeded=True)
    assert (again["recorded"], again["already"]) == (0, 4)
    ai = Ranking.objects.filter(comparison__project=pairs_project, source=LabelSource.AI)
    assert ai.count() == 4 and all(r.orders[0]["ai"]["run"] == run.pk for r in ai)
    assert all(r.orders[0]["ai"]["constitution"] == 1 for r in ai)


def test_run_kinds_describe_inputs_and_config_fields(api, admin_user):
    kinds = {k["kind"]: k for k in api(admin_user).get("/api/runs/kinds/").json()}
    assert "generate" not in kinds and {"sft", "cai_revise", "ai_feedback", "rlhf"} <= set(kinds)
    assert all(k["description"] for k in kinds.values())
    cai = kinds["cai_revise"]
    assert "constitution" in cai["inputs"] and "then_sft" in cai["inputs"]
    fields = {f["name"]: f for f in cai["config"]}
    assert fields["rounds"] == {**fields["rounds"], "type": "int", "default": 1, "required": False}
    assert fields["principles"]["filled_by_inputs"] and fields["prompts_file"]["filled_by_inputs"]
    assert not any(f["required"] for k in kinds.values() for f in k["config"])  # inputs fill the rest


def test_a_torn_last_line_is_left_out_but_a_corrupt_one_fails(tmp_path):
    from training.services.cai import _jsonl

    path = tmp_path / "judgments.jsonl"
    path.write_text('{"comparison_id": 1}\n{"comparison_id": 2, "ra')
    assert _jsonl(path) == [{"comparison_id": 1}]
    path.write_text('{"comparison_id": 1}\nnot json\n{"comparison_id": 3}\n')
    with pytest.raises(ValueError, match=r"judgments\.jsonl, line 2"):
        _jsonl(path)
