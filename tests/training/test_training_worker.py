"""Training kinds end to end on a REAL Celery worker (Redis, PostgreSQL) with the tiny model: started
through the API by id (registry version, dataset, snapshot), trained in the run's subprocess, their
models registered with lineage, evaluations stored on the version they scored."""

import json

import pytest

from labeling.services.datasets import dataset_import
from labeling.services.preferences import preferences_import
from labeling.services.snapshots import snapshot_build, snapshot_create
from labeling.services.templates import template_create
from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from training.models import RunState, TrainingRun

from .conftest import rows_jsonl
from .test_worker import TIMEOUT, finished, poll_events

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow]

COLOURS = ["red", "blue", "green", "black", "white", "grey", "pink", "brown"]


@pytest.fixture
def base_version(tiny_model_dir):
    return model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True
    )


@pytest.fixture
def colours(project, admin_user):
    """Questions whose answer is always 'The colour is <c>.': easy to learn, easy to score."""
    rows = [
        {"question": f"Name colour {i}.", "answer": f"The colour is {c}.", "split": "eval" if i % 4 == 0 else "train"}
        for i, c in enumerate(COLOURS * 2, start=1)
    ]
    dataset = dataset_import(project=project, stream=rows_jsonl(rows), filename="c.jsonl", created_by=admin_user)
    template_create(project=project, name="qa", text="Q: {question}\nA:", make_default=True)
    project.refresh_from_db()
    return dataset


def run_to_the_end(client, **body) -> tuple[TrainingRun, list[dict]]:
    response = client.post("/api/runs/", body, format="json")
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    events = poll_events(client, run_id, until=finished, timeout=TIMEOUT)
    run = TrainingRun.objects.get(pk=run_id)
    assert run.state == RunState.SUCCEEDED, run.error
    return run, events


def test_sft_then_evaluate_through_the_api_on_a_worker(api, admin_user, project, colours, base_version, start_worker):
    start_worker(queues="gpu", name="gpu")
    client = api(admin_user)
    run, events = run_to_the_end(
        client,
        kind="sft",
        project=project.pk,
        config={
            "max_steps": 6,
            "save_steps": 3,
            "per_device_train_batch_size": 4,
            "learning_rate": 3e-3,
            "max_length": 64,
            "logging_steps": 1,
        },
        inputs={
            "base_version": base_version.pk,
            "dataset": colours.pk,
            "target_field": "answer",
            "output_model": "tiny-sft",
        },
    )
    losses = [e["payload"]["value"] for e in events if e["type"] == "metric" and e["payload"]["name"] == "loss"]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert [e["payload"]["step"] for e in events if e["type"] == "checkpoint"][:2] == [3, 6]
    registered = run.outputs["registered"]
    assert [(r["model"], r["role"]) for r in registered] == [("tiny-sft", "adapter"), ("tiny-sft", "merged")]
    adapter, merged = (ModelVersion.objects.get(pk=r["id"]) for r in registered)
    assert adapter.is_adapter and adapter.base_version == base_version and adapter.source_run_id == run.pk
    assert merged.merged and merged.base_version == base_version and merged.source_run_id == run.pk
    assert merged.tags == ["sft", "merged"] and "train_loss" in merged.metrics

    evaluation, _ = run_to_the_end(
        client,
        kind="evaluate",
        project=project.pk,
        config={"generations": [{"max_new_tokens": 8, "greedy": True}]},
        inputs={"base_version": merged.pk, "dataset": colours.pk, "split": "eval", "reference_field": "answer"},
    )
    merged.refresh_from_db()
    stored = merged.metrics["evaluations"][-1]
    assert stored["run"] == evaluation.pk and stored["split"] == "eval" and stored["table"]
    row = stored["table"][0]
    assert 0 <= row["rouge1"] <= 1 and "kl" in json.dumps(row)  # KL to the base named by the lineage


def test_a_reward_model_from_an_imported_preference_snapshot(
    api, admin_user, make_user, tiny_tokenizer, make_tiny_model, tmp_path, start_worker
):
    from labeling.services.projects import project_create

    project = project_create(created_by=admin_user, name="Pairs", completions_per_prompt=2, overlap=1)
    pairs = [
        {"prompt": f"Question {i}:", "chosen": f" yes {c} indeed", "rejected": f" no {c} never"}
        for i, c in enumerate(COLOURS * 3)
    ]
    preferences_import(project=project, stream=rows_jsonl(pairs), filename="p.jsonl", eval_fraction=0.25)
    snapshot = snapshot_create(project=project, created_by=admin_user)
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    folder = tmp_path / "tiny-rm"
    make_tiny_model("sequence_classification").save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    backbone = model_version_register(
        model_name="tiny-encoder", task="classifier", folder=folder, fmt=None, shared=True
    )

    start_worker(queues="gpu", name="gpu")
    run, _ = run_to_the_end(
        api(admin_user),
        kind="reward_model",
        project=project.pk,
        config={"num_train_epochs": 3, "learning_rate": 1e-3, "per_device_train_batch_size": 4, "max_length": 32},
        inputs={"base_version": backbone.pk, "snapshot": snapshot.pk},
    )
    [registered] = run.outputs["registered"]
    version = ModelVersion.objects.get(pk=registered["id"])
    assert version.model.task == "reward-model" and version.model.name == "tiny-encoder-reward-model"
    assert (version.base_version, version.source_snapshot_id, version.source_run_id) == (backbone, snapshot.pk, run.pk)
    assert version.metrics["eval_accuracy"] > 0.5
