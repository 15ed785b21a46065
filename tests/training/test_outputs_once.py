"""Outputs exactly once (issue 11): a run resumed after a kill between registering and finishing runs
its handler's ``finish()`` again; registration, the chained ``then_sft`` run and an evaluation
written into a version still happen once. Each test calls the handler twice, the second time as a
resumed attempt does (a fresh handler over the same run and folder)."""

import json
import shutil
import threading

import pytest
from django.db import connection

from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services.constitutions import constitution_create
from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from training.models import RunKind, RunState, TrainingRun
from training.services import runs
from training.services.cai import CaiResults
from training.services.run_outputs import OutputsRegistrar


@pytest.fixture
def shared_base(tiny_model_dir):
    return model_version_register(model_name="base", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True)


def a_run(kind, *, project, user, inputs, tiny_model_dir) -> TrainingRun:
    """A running run row of ``kind`` (created as a generate run: the handlers read inputs and result)."""
    run = runs.run_create(
        kind="generate",
        config={"model_path": str(tiny_model_dir), "prompts_file": "p.jsonl"},
        inputs=inputs,
        project=project,
        created_by=user,
    )
    TrainingRun.objects.filter(pk=run.pk).update(kind=kind, state=RunState.RUNNING)
    run.refresh_from_db()
    runs.run_folder(run.pk).mkdir(parents=True, exist_ok=True)
    return run


def write_outputs(folder, tiny_model_dir, names=("adapter", "merged")) -> dict:
    """What the ML leaves in the run folder and reports: a full model per role (the registrar does
    not care that the 'adapter' holds full weights here)."""
    for name in names:
        if not (folder / name).exists():
            shutil.copytree(tiny_model_dir, folder / name)
    return {
        "outputs": [
            {"dir": name, "task": "causal-lm", "role": "full" if name == "adapter" else name} for name in names
        ],
        "metrics": {"train_loss": 0.5},
    }


@pytest.mark.django_db
def test_a_resumed_run_registers_its_outputs_once(project, admin_user, shared_base, tiny_model_dir, enqueued):
    inputs = {"base_version": shared_base.pk, "output_model": "tuned"}
    run = a_run("sft", project=project, user=admin_user, inputs=inputs, tiny_model_dir=tiny_model_dir)
    folder = runs.run_folder(run.pk)
    result = write_outputs(folder, tiny_model_dir)
    first = OutputsRegistrar.for_run(run, folder).finish(result=result, succeeded=True)["registered"]
    assert [(r["model"], r["version"], r["role"]) for r in first] == [("tuned", 1, "full"), ("tuned", 2, "merged")]
    assert not (folder / "adapter").exists()  # moved into the store

    # Killed before the run was marked succeeded; the next attempt's ML writes its folders again.
    result = write_outputs(folder, tiny_model_dir)
    resumed = TrainingRun.objects.get(pk=run.pk)
    again = OutputsRegistrar.for_run(resumed, folder).finish(result=result, succeeded=True)["registered"]
    assert again == first
    assert ModelVersion.objects.filter(source_run_id=run.pk).count() == 2
    assert (folder / "adapter" / "config.json").exists()  # the duplicate stays in the run folder

    # A resumed attempt whose ML did not write the folders again (they were moved) finds them too.
    shutil.rmtree(folder / "adapter")
    shutil.rmtree(folder / "merged")
    assert OutputsRegistrar.for_run(resumed, folder).finish(result=result, succeeded=True)["registered"] == first
    assert ModelVersion.objects.filter(model__name="tuned").count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_attempts_finishing_at_once_register_once(project, admin_user, shared_base, tiny_model_dir, enqueued):
    """A stale supervisor and the resumed one both finish: the model's row lock and the unique
    (run, role) constraint leave one version per role, and the loser's folder goes back."""
    inputs = {"base_version": shared_base.pk, "output_model": "raced"}
    run = a_run("sft", project=project, user=admin_user, inputs=inputs, tiny_model_dir=tiny_model_dir)
    folder = runs.run_folder(run.pk)
    results = {name: write_outputs(folder, tiny_model_dir, names=(name,)) for name in ("adapter", "adapter-2")}
    results["adapter-2"]["outputs"][0]["role"] = "full"
    barrier = threading.Barrier(2)
    answers, errors = {}, []

    def finish(name):
        try:
            barrier.wait(timeout=10)
            handler = OutputsRegistrar.for_run(TrainingRun.objects.get(pk=run.pk), folder)
            answers[name] = handler.finish(result=results[name], succeeded=True)["registered"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert answers["adapter"] == answers["adapter-2"]
    assert ModelVersion.objects.filter(source_run_id=run.pk).count() == 1
    # The winner's folder went into the store; the loser's went back where it was.
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("adapter")) in (["adapter"], ["adapter-2"])


@pytest.mark.django_db
def test_a_resumed_cai_run_chains_its_sft_run_once(project, admin_user, shared_base, tiny_model_dir, enqueued):
    constitution_create(project=project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    inputs = {
        "base_version": shared_base.pk,
        "constitution": 1,
        "then_sft": {"config": {"max_steps": 1}, "output_model": "cai-sft"},
    }
    run = a_run(RunKind.CAI_REVISE, project=project, user=admin_user, inputs=inputs, tiny_model_dir=tiny_model_dir)
    folder = runs.run_folder(run.pk)
    rows = [{"prompt_id": f"p{i}", "prompt": f"Prompt {i}", "completion": f"good {i}"} for i in range(6)]
    (folder / "sft.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    first = CaiResults.for_run(run, folder).finish(result={}, succeeded=True)
    chained = first["sft_run"]
    # The chained run's id is in the parent's outputs already, before the run is marked succeeded.
    assert TrainingRun.objects.get(pk=run.pk).outputs["sft_run"] == chained

    # Killed here; the resumed attempt finishes again.
    again = CaiResults.for_run(TrainingRun.objects.get(pk=run.pk), folder).finish(result={}, succeeded=True)
    assert again["sft_run"] == chained
    sft_runs = TrainingRun.objects.filter(kind=RunKind.SFT)
    assert [r.pk for r in sft_runs] == [chained] and sft_runs[0].inputs["cai_run"] == run.pk

    runs.run_transition(run_id=run.pk, to=RunState.SUCCEEDED, outputs=again)
    assert TrainingRun.objects.get(pk=run.pk).outputs["sft_run"] == chained


@pytest.mark.django_db
def test_a_resumed_evaluation_is_written_once(project, admin_user, shared_base, tiny_model_dir, enqueued):
    inputs = {"base_version": shared_base.pk, "dataset": 1, "split": "test"}
    run = a_run(RunKind.EVALUATE, project=project, user=admin_user, inputs=inputs, tiny_model_dir=tiny_model_dir)
    folder = runs.run_folder(run.pk)
    first = {"metrics": {"rouge1": 0.25}, "table": [{"variant": "zero-shot", "rouge1": 0.25}]}
    assert OutputsRegistrar.for_run(run, folder).finish(result=first, succeeded=True) == {
        "evaluated_version": shared_base.pk
    }
    resumed = TrainingRun.objects.get(pk=run.pk)
    second = {"metrics": {"rouge1": 0.3}, "table": [{"variant": "zero-shot", "rouge1": 0.3}]}
    assert OutputsRegistrar.for_run(resumed, folder).finish(result=second, succeeded=True) == {
        "evaluated_version": shared_base.pk
    }
    evaluations = ModelVersion.objects.get(pk=shared_base.pk).metrics["evaluations"]
    assert [(e["run"], e["summary"]) for e in evaluations] == [(run.pk, {"rouge1": 0.25})]

    other = a_run(RunKind.EVALUATE, project=project, user=admin_user, inputs=inputs, tiny_model_dir=tiny_model_dir)
    OutputsRegistrar.for_run(other, runs.run_folder(other.pk)).finish(result=second, succeeded=True)
    evaluations = ModelVersion.objects.get(pk=shared_base.pk).metrics["evaluations"]
    assert [e["run"] for e in evaluations] == [run.pk, other.pk]  # another run adds its own
