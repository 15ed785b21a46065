"""Training runs from the API: inputs by id become the files and folders a run reads; their errors
name the field; a finished run's outputs become registry versions with lineage (no worker here)."""

import json
from pathlib import Path

import pytest

from labeling.models import PreferenceSnapshot, SnapshotStatus
from labeling.services.datasets import dataset_import
from labeling.services.templates import template_create
from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from tests.training.conftest import rows_jsonl
from training.models import RunState, TrainingRun
from training.services import runs
from training.services.run_outputs import OutputsRegistrar

pytestmark = pytest.mark.django_db


@pytest.fixture
def base_version(tiny_model_dir, admin_user):
    return model_version_register(
        model_name="tiny-llama", task="causal-lm", folder=tiny_model_dir, fmt=None, created_by=admin_user, shared=True
    )


@pytest.fixture
def dialogues(project, admin_user):
    rows = [
        {"dialogue": f"#A#: hello {i}", "summary": f"They greet {i}.", "split": "eval" if i % 3 == 0 else "train"}
        for i in range(1, 8)
    ]
    dataset = dataset_import(project=project, stream=rows_jsonl(rows), filename="d.jsonl", created_by=admin_user)
    template_create(project=project, name="sum", text="Summarize:\n{dialogue}\nSummary:", make_default=True)
    project.refresh_from_db()
    return dataset


@pytest.fixture
def ready_snapshot(project, settings, tmp_path):
    settings.ARTIFACT_ROOT = str(settings.ARTIFACT_ROOT)
    folder = Path(settings.ARTIFACT_ROOT) / "snapshots" / str(project.pk) / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    return PreferenceSnapshot.objects.create(
        project=project,
        version=1,
        options={},
        status=SnapshotStatus.READY,
        path=f"snapshots/{project.pk}/1",
        counts={"train": 1},
    )


def post(client, **body):
    return client.post("/api/runs/", body, format="json")


def test_an_sft_run_from_a_dataset_writes_prompt_completion_files_and_fills_the_paths(
    api, admin_user, project, dialogues, base_version, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            api(admin_user),
            kind="sft",
            project=project.pk,
            config={"max_steps": 2, "peft_method": "lora"},
            inputs={"base_version": base_version.pk, "dataset": dialogues.pk, "target_field": "summary"},
        )
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.config["model_path"] == str(Path(run.config["model_path"])) and Path(run.config["model_path"]).is_dir()
    assert (run.config["train_file"], run.config["eval_file"]) == ("train.jsonl", "eval.jsonl")
    assert run.inputs["output_model"] == "tiny-llama-sft" and run.inputs["rows"] == {"train": 5, "eval": 2}
    train = [json.loads(line) for line in (runs.run_folder(run.pk) / "train.jsonl").read_text().splitlines()]
    assert train[0] == {"prompt": "Summarize:\n#A#: hello 1\nSummary:", "completion": " They greet 1.", "row_index": 0}
    assert enqueued == [(run.pk, "gpu")]


@pytest.mark.parametrize(
    ("kind", "inputs", "config", "key", "words"),
    [
        ("sft", {"dataset": "D"}, {}, "inputs.target_field", "required"),
        ("sft", {"dataset": "D", "target_field": "nope"}, {}, "inputs.target_field", "no text in field 'nope'"),
        ("sft", {"dataset": "D", "target_field": "summary", "colour": 1}, {}, "inputs.colour", "unknown input"),
        ("sft", {"dataset": 999, "target_field": "summary"}, {}, "inputs.dataset", "there is no dataset 999"),
        ("sft", {"dataset": "D", "target_field": "summary"}, {"model_path": "/x"}, "config.model_path", "set by"),
        ("sft", {"dataset": "D", "target_field": "summary"}, {"lora_r": 0}, "config.lora_r", "must be 1..1024"),
        ("reward_model", {"snapshot": 999}, {}, "inputs.snapshot", "there is no snapshot 999"),
        ("dpo", {"snapshot": "pending"}, {}, "inputs.snapshot", "is pending, not ready"),
        ("evaluate", {"dataset": "D", "reference_field": "summary", "split": "dev"}, {}, "inputs.split", "unknown"),
        ("evaluate", {"dataset": "D", "reference_field": "summary"}, {}, "inputs.split", "has no test rows"),
        ("sft", {"dataset": "D", "target_field": "summary", "output_model": "a b"}, {}, "inputs.output_model", "use"),
    ],
)
def test_bad_inputs_are_a_400_naming_the_field_and_queue_nothing(
    api, platform_admin, project, dialogues, base_version, enqueued, kind, inputs, config, key, words
):
    inputs = {"base_version": base_version.pk, **inputs}
    if inputs.get("dataset") == "D":
        inputs["dataset"] = dialogues.pk
    if inputs.get("snapshot") == "pending":
        inputs["snapshot"] = PreferenceSnapshot.objects.create(project=project, version=9, options={}).pk
    # A platform admin: the only one who may set config.model_path at all, so the clash is what is refused.
    response = post(api(platform_admin), kind=kind, project=project.pk, config=config, inputs=inputs)
    body = response.json()
    assert response.status_code == 400, body
    assert key in body["errors"] and words in body["errors"][key][0], body
    assert TrainingRun.objects.count() == 0 and enqueued == []


def test_a_base_version_that_is_not_a_hugging_face_folder_is_refused(
    api, admin_user, project, dialogues, tmp_path, enqueued
):
    gguf = tmp_path / "g"
    gguf.mkdir()
    (gguf / "model.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    version = model_version_register(model_name="g", task="causal-lm", folder=gguf, fmt="gguf", shared=True)
    response = post(
        api(admin_user),
        kind="sft",
        project=project.pk,
        config={},
        inputs={"base_version": version.pk, "dataset": dialogues.pk, "target_field": "summary"},
    )
    assert response.status_code == 400
    assert "is a GGUF file" in response.json()["errors"]["inputs.base_version"][0]


def test_a_snapshot_of_another_project_is_refused(api, admin_user, project, ready_snapshot, base_version, enqueued):
    from labeling.services.projects import project_create

    other = project_create(created_by=admin_user, name="Other", completions_per_prompt=2, overlap=1)
    response = post(
        api(admin_user),
        kind="reward_model",
        project=other.pk,
        config={},
        inputs={"base_version": base_version.pk, "snapshot": ready_snapshot.pk},
    )
    body = response.json()
    assert response.status_code == 400 and "there is no snapshot" in body["errors"]["inputs.snapshot"][0]


def test_a_finished_runs_outputs_are_registered_with_lineage(
    admin_user, project, base_version, ready_snapshot, tiny_model_dir, enqueued, django_capture_on_commit_callbacks
):
    import shutil

    with django_capture_on_commit_callbacks(execute=True):
        run = runs.run_create(
            kind="generate",  # any kind's row; the registrar reads only inputs and the result
            config={"model_path": str(tiny_model_dir), "prompts_file": "p.jsonl"},
            inputs={"base_version": base_version.pk, "snapshot": ready_snapshot.pk, "output_model": "tiny-rm"},
            project=project,
            created_by=admin_user,
        )
    run.kind = "sft"
    folder = runs.run_folder(run.pk)
    shutil.copytree(tiny_model_dir, folder / "model")
    shutil.copytree(tiny_model_dir, folder / "adapter-like")
    result = {
        "outputs": [
            {"dir": "model", "task": "causal-lm", "role": "merged"},
            {"dir": "adapter-like", "task": "causal-lm", "role": "full"},
        ],
        "metrics": {"train_loss": 1.25, "curve": [1, 2]},
    }
    registrar = OutputsRegistrar.for_run(run, folder)
    assert registrar.finish(result=result, succeeded=False) == {}
    registered = registrar.finish(result=result, succeeded=True)["registered"]
    assert [(r["model"], r["version"], r["role"]) for r in registered] == [
        ("tiny-rm", 1, "full"),
        ("tiny-rm", 2, "merged"),
    ]
    merged = ModelVersion.objects.get(pk=registered[1]["id"])
    assert merged.base_version == base_version and merged.merged is True
    assert (merged.source_run_id, merged.source_snapshot_id) == (run.pk, ready_snapshot.pk)
    assert merged.metrics == {"train_loss": 1.25} and merged.tags == ["sft", "merged"]
    assert not (folder / "model").exists()  # moved into the store, not copied

    with pytest.raises(ValueError, match="not a folder inside the run's folder"):
        registrar.finish(result={"outputs": [{"dir": "../..", "task": "causal-lm"}]}, succeeded=True)
    assert run.state == RunState.QUEUED


def test_with_artifacts_on_s3_the_worker_not_the_web_process_downloads_the_model(monkeypatch, base_version, tmp_path):
    from models_registry import storage
    from training import runner
    from training.services import run_inputs

    downloads = []
    monkeypatch.setattr(storage, "on_s3", lambda: True)
    monkeypatch.setattr(storage, "materialize", lambda rel: downloads.append(rel) or tmp_path / "cache" / rel)
    named = run_inputs.version_folder(base_version)
    assert named == f"registry:{base_version.artifact_path}" and downloads == []  # the web process: a name only
    config = runner.materialize_config({"model_path": named, "k": 2, "note": "plain"})
    assert config == {"model_path": str(tmp_path / "cache" / base_version.artifact_path), "k": 2, "note": "plain"}
    assert downloads == [base_version.artifact_path]
