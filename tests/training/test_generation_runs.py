"""POST /api/projects/{id}/generate/ and turning a run's completions into comparisons (no worker)."""

import json

import pytest

from common.exceptions import ServiceError
from labeling.models import Comparison, Completion, Role
from labeling.services.comparisons import ParsedComparison, comparisons_create
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create, project_update
from training.models import TrainingRun
from training.services import runs
from training.services.generation import CompletionsIngest
from training.services.runs import run_folder

from .conftest import rows_jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Every run this module creates is recorded instead of sent."""


def generate(client, project, **body):
    return client.post(f"/api/projects/{project.pk}/generate/", {"model_path": "/models/smol", **body}, format="json")


def prompts_of(run) -> list[dict]:
    return [json.loads(line) for line in (run_folder(run.pk) / "prompts.jsonl").read_text().splitlines()]


def test_admins_start_a_generation_run_over_rendered_prompts(api, platform_admin, project, dataset, enqueued):
    response = generate(api(platform_admin), project, dataset=dataset.pk, generation={"temperature": 0.7})
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.kind == "generate" and run.project == project and run.state == "queued"
    assert run.config["k"] == 3 and run.config["temperature"] == 0.7 and run.config["prompts_file"] == "prompts.jsonl"
    rows = list(dataset.rows.order_by("index"))
    assert prompts_of(run) == [{"prompt_id": r.pk, "prompt": f"Question: {r.data['question']}\nAnswer:"} for r in rows]
    assert run.inputs["dataset"] == dataset.pk and run.inputs["prompts"] == 6 and run.inputs["model_name"] == "smol"


def test_split_limit_and_rows_already_done_are_respected(api, platform_admin, project, dataset):
    client = api(platform_admin)
    train = list(dataset.rows.filter(split="train").order_by("index"))
    [done] = comparisons_create(project=project, parsed=[ParsedComparison(0, "x", [{"text": "a"}] * 3)])
    done.prompt_row = train[0]
    done.save()
    run = TrainingRun.objects.get(pk=generate(client, project, dataset=dataset.pk, split="train", limit=2).json()["id"])
    assert [p["prompt_id"] for p in prompts_of(run)] == [train[1].pk, train[2].pk]
    assert run.inputs["rows_selected"] == 4

    for row in train[1:]:
        c = comparisons_create(project=project, parsed=[ParsedComparison(0, "x", [{"text": "a"}] * 3)])[0]
        c.prompt_row = row
        c.save()
    response = generate(client, project, dataset=dataset.pk, split="train")
    assert response.status_code == 409 and "already has a comparison" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"k": 2}, "k: the project compares 3 completions per prompt, so k must be 3"),
        ({"generation": {"temperature": -1.0}}, "generation.temperature: must be > 0 when sampling"),
        ({"generation": {"temprature": 1.0}}, "generation.temprature: unknown option"),
        ({"generation": {"greedy": True}}, "generation.greedy: greedy decoding gives K identical completions"),
        ({"split": "dev"}, "split:"),
        ({"limit": 0}, "limit:"),
        ({"model_path": ""}, "model_path:"),
        ({"dataset": 999}, "dataset: project"),
        ({"colour": "red"}, "colour: Unknown field"),
    ],
)
def test_bad_requests_name_the_field(api, platform_admin, project, dataset, body, detail):
    response = generate(api(platform_admin), project, **{"dataset": dataset.pk, **body})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail), response.json()
    assert not TrainingRun.objects.exists()


def test_the_project_generation_config_is_the_default_and_named_when_bad(api, platform_admin, project, dataset):
    client = api(platform_admin)
    project_update(project=project, generation_config={"max_new_tokens": 64, "top_p": 0.5, "model": "note"})
    run = TrainingRun.objects.get(pk=generate(client, project, dataset=dataset.pk, limit=1).json()["id"])
    assert (run.config["max_new_tokens"], run.config["top_p"]) == (64, 0.5)
    assert run.inputs["ignored_project_generation_keys"] == ["model"]
    run = TrainingRun.objects.get(
        pk=generate(client, project, dataset=dataset.pk, limit=1, generation={"top_p": 0.9}).json()["id"]
    )
    assert run.config["top_p"] == 0.9

    project_update(project=project, generation_config={"top_p": 7})
    response = generate(client, project, dataset=dataset.pk)
    assert response.status_code == 400
    assert response.json()["detail"] == "project.generation_config.top_p: must be in (0, 1], got 7"


def test_no_template_and_roles(api, admin_user, platform_admin, project, dataset, reviewer, make_user, add_member):
    assert generate(api(reviewer), project, dataset=dataset.pk).status_code == 403
    assert generate(api(make_user("x")), project, dataset=dataset.pk).status_code == 404
    project_admin = add_member(make_user("pam"), Role.ADMIN)
    # Naming a folder on the workers is for platform admins only: not a project admin, not staff.
    for user in (project_admin, admin_user):
        refused = generate(api(user), project, dataset=dataset.pk, limit=1)
        assert refused.status_code == 403 and "registered model_version" in refused.json()["detail"]
        assert "model_path" in refused.json()["errors"]

    other = project_create(created_by=admin_user, name="Bare", completions_per_prompt=2)
    bare = dataset_import(project=other, stream=rows_jsonl([{"q": "a"}]), filename="q.jsonl")
    response = generate(api(platform_admin), other, dataset=bare.pk)
    assert response.status_code == 400 and "has no prompt template" in response.json()["detail"]
    assert generate(api(platform_admin), project, dataset=bare.pk).json()["detail"].startswith("dataset: project")


def completion_line(row_id, k=3, truncated=False):
    return {
        "prompt_id": row_id,
        "prompt_tokens": 9,
        "truncated": truncated,
        "completions": [
            {"text": f"answer {row_id}.{j}", "seed": 40 + row_id, "params": {"temperature": 0.7}, "tokens": 3}
            for j in range(k)
        ],
    }


@pytest.fixture
def generation_run(api, platform_admin, project, dataset):
    return TrainingRun.objects.get(pk=generate(api(platform_admin), project, dataset=dataset.pk).json()["id"])


def test_completions_become_comparisons_once(generation_run, project, dataset):
    run = generation_run
    folder = run_folder(run.pk)
    rows = list(dataset.rows.order_by("index"))
    handler = CompletionsIngest.for_run(run, folder)
    assert handler.ingest() == 0  # nothing written yet

    with open(folder / "completions.jsonl", "w") as out:
        out.write(json.dumps(completion_line(rows[0].pk)) + "\n")
        out.write(json.dumps(completion_line(rows[1].pk, truncated=True)) + "\n")
        out.write(json.dumps(completion_line(rows[2].pk))[:20])  # still being written
    assert handler.on_artifact({"kind": "completions", "path": "completions.jsonl"}) == 2

    comparison = Comparison.objects.get(prompt_row=rows[1])
    assert comparison.project == project and comparison.prompt == f"Question: {rows[1].data['question']}\nAnswer:"
    assert comparison.split == rows[1].split
    assert comparison.metadata == {"run_id": run.pk, "dataset_id": dataset.pk, "row_index": 1, "prompt_truncated": True}
    completions = list(comparison.completions.order_by("position"))
    assert [c.text for c in completions] == [f"answer {rows[1].pk}.{j}" for j in range(3)]
    assert {(c.model_name, c.seed, json.dumps(c.generation_params)) for c in completions} == {
        ("smol", 40 + rows[1].pk, '{"temperature": 0.7}')
    }
    assert completions[0].metadata == {"run_id": run.pk, "tokens": 3}

    with open(folder / "completions.jsonl", "a") as out:  # the torn line completes, and one more arrives
        out.write(json.dumps(completion_line(rows[2].pk))[20:] + "\n")
        out.write(json.dumps(completion_line(rows[0].pk)) + "\n")  # a duplicate line
    assert handler.ingest() == 1
    # A second reader of the whole file (a retried ingest, another run) creates nothing twice.
    again = CompletionsIngest.for_run(run, folder)
    assert again.ingest() == 0 and again.skipped == 4
    assert Comparison.objects.filter(project=project).count() == 3
    assert Completion.objects.filter(comparison__project=project).count() == 9
    assert handler.finish() == {"comparisons_created": 3, "comparisons_skipped": 1}


def test_a_line_with_the_wrong_k_is_refused(generation_run, dataset):
    folder = run_folder(generation_run.pk)
    (folder / "completions.jsonl").write_text(json.dumps(completion_line(dataset.rows.first().pk, k=2)) + "\n")
    with pytest.raises(ServiceError, match="has 2 completions; the project compares 3"):
        CompletionsIngest.for_run(generation_run, folder).ingest()
    assert not Comparison.objects.exists()


def test_only_project_generation_runs_ingest(staff):
    run = runs.run_create(kind="generate", config={"model_path": "m", "prompts_file": "/p"}, created_by=staff)
    assert CompletionsIngest.for_run(run, run_folder(run.pk)) is None


def test_generation_uses_the_registered_model_version(api, project, dataset, make_user, add_member, tmp_path):
    from models_registry.services import model_version_register

    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    version = model_version_register(
        model_name="tiny-lm", task="causal-lm", folder=folder, fmt="hf-folder", project_id=project.pk
    )
    encoder = model_version_register(
        model_name="tiny-enc", task="classifier", folder=folder, fmt="hf-folder", project_id=project.pk
    )
    elsewhere = model_version_register(model_name="other-lm", task="causal-lm", folder=folder, fmt="hf-folder")
    project_admin = add_member(make_user("pam"), Role.ADMIN)
    client = api(project_admin)
    url = f"/api/projects/{project.pk}/generate/"

    missing = client.post(url, {"dataset": dataset.pk}, format="json")
    assert missing.status_code == 400 and missing.json()["detail"].startswith("model_version: choose the model")
    wrong = client.post(url, {"dataset": dataset.pk, "model_version": encoder.pk}, format="json")
    assert wrong.status_code == 400 and "not a causal-lm" in wrong.json()["detail"]

    # A version that is neither shared nor the project's own cannot generate here, nor become its default.
    foreign = client.post(url, {"dataset": dataset.pk, "model_version": elsewhere.pk}, format="json")
    assert foreign.status_code == 400
    assert foreign.json()["detail"] == (
        f"model_version: there is no model version {elsewhere.pk} you can use in project {project.pk}"
    )
    refused = client.patch(f"/api/projects/{project.pk}/", {"generation_model": elsewhere.pk}, format="json")
    assert refused.status_code == 400 and "generation_model" in refused.json()["errors"]
    project.refresh_from_db()
    assert project.generation_model_id is None

    patched = client.patch(f"/api/projects/{project.pk}/", {"generation_model": version.pk}, format="json")
    assert patched.status_code == 200 and patched.json()["generation_model"] == version.pk
    response = client.post(url, {"dataset": dataset.pk, "limit": 2}, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.config["model_path"].endswith("models/tiny-lm/1") and run.config["gguf_file"] is None
    assert run.inputs["model_version"] == version.pk and run.inputs["model_name"] == "tiny-lm v1"

    # A LoRA adapter version generates over its base: the base's folder plus the adapter's.
    adapter_folder = tmp_path / "adapter"
    adapter_folder.mkdir()
    (adapter_folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "tiny-lm"}))
    (adapter_folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    adapter = model_version_register(
        model_name="tiny-sft",
        task="causal-lm",
        folder=adapter_folder,
        fmt="peft-adapter",
        base_version=version,
        project_id=project.pk,
    )
    response = client.post(url, {"dataset": dataset.pk, "model_version": adapter.pk, "limit": 1}, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.config["model_path"].endswith("models/tiny-lm/1")
    assert run.config["adapter_path"].endswith("models/tiny-sft/1")
    assert run.inputs["model_name"] == "tiny-sft v1"
