"""The run-kind registry (training/kinds.py): every kind is declared once, on its ML side
(training.ml.kinds) and its platform side, and every reader agrees with it."""

from importlib import import_module
from pathlib import Path

import pytest

from training import kinds, runner
from training.ml import cli, configs
from training.ml.kinds import CONFIGS_MODULE, ML_KINDS
from training.models import RunKind, TrainingRun
from training.services import run_inputs


def test_the_ml_table_the_registry_and_run_kind_name_the_same_kinds_in_the_same_order():
    assert list(kinds.KINDS) == list(ML_KINDS) == list(RunKind.values)
    assert all(spec.kind == kind for kind, spec in kinds.KINDS.items())
    # The ML side reads the same table: the CLI's kinds and run modules, the config registry.
    assert tuple(ML_KINDS) == cli.KINDS
    assert {kind: ml.run_module for kind, ml in ML_KINDS.items()} == cli.RUN_MODULES
    assert set(configs.available_configs()) == set(ML_KINDS)


@pytest.mark.parametrize("kind", list(ML_KINDS))
def test_each_kinds_config_class_comes_from_the_module_the_ml_table_names(kind):
    spec = kinds.KINDS[kind]
    module = import_module(ML_KINDS[kind].config_module)
    expected = configs.GenerateConfig if ML_KINDS[kind].config_module == CONFIGS_MODULE else module.CONFIG
    assert spec.config_class is expected and kind == expected.KIND


def test_a_spec_is_consistent_with_itself():
    for spec in kinds.KINDS.values():
        assert set(spec.hints) <= set(spec.inputs), f"{spec.kind}: a hint for an input it does not take"
        assert (spec.resolve is None) == (not spec.inputs), f"{spec.kind}: inputs without a resolver, or back"
        assert set(kinds.filled_fields(spec)) <= {f for names in run_inputs.FILLS.values() for f in names} | set(
            spec.always_filled
        )
        if spec.output_task is not None:  # a kind that registers names its output model and stores it
            assert "output_model" in spec.inputs and spec.handler is not None
    # What the tables this registry replaced said (behaviour unchanged).
    assert {k for k, s in kinds.KINDS.items() if s.multi_gpu} == {"sft", "reward_model", "dpo", "rlhf"}
    assert {k for k, s in kinds.KINDS.items() if s.output_task} == {"sft", "reward_model", "dpo", "rlhf"}
    assert {s.queue for s in kinds.KINDS.values()} == {"gpu"}
    startable = {kind for kind, spec in kinds.KINDS.items() if spec.startable}
    assert startable == set(RunKind.values) - {RunKind.GENERATE}


def test_the_runner_reads_handlers_and_multi_gpu_off_the_registry(tmp_path):
    assert {k: s.handler for k, s in kinds.KINDS.items() if s.handler is not None} == runner.HANDLERS
    for kind, spec in kinds.KINDS.items():
        line = runner.command(TrainingRun(pk=1, kind=kind), Path("run.json"), tmp_path, gpus=2)
        assert ("accelerate.commands.launch" in line) == spec.multi_gpu, kind
        assert "accelerate.commands.launch" not in runner.command(TrainingRun(pk=1, kind=kind), Path("r"), tmp_path)


@pytest.mark.django_db
def test_the_kinds_endpoint_serves_each_kinds_inputs_and_hints_from_the_registry(api, admin_user):
    served = {k["kind"]: k for k in api(admin_user).get("/api/runs/kinds/").json()}
    assert set(served) == {kind for kind, spec in kinds.KINDS.items() if spec.startable}
    for kind, entry in served.items():
        spec = kinds.KINDS[kind]
        assert entry["inputs"] == list(spec.inputs)
        assert entry["hints"] == spec.hints
        filled = {f["name"] for f in entry["config"] if f["filled_by_inputs"]}
        assert filled == {f for f in kinds.filled_fields(spec) if f in {c["name"] for c in entry["config"]}}
    assert served["sft"]["hints"]["cai_run"].startswith("Instead of a dataset")
    assert served["evaluate"]["hints"]["split"] == "Default: test."


@pytest.mark.django_db
def test_a_run_is_enqueued_on_its_kinds_queue(monkeypatch, enqueued, admin_user, django_capture_on_commit_callbacks):
    from dataclasses import replace

    from training.services import runs

    monkeypatch.setitem(kinds.KINDS, "generate", replace(kinds.KINDS["generate"], queue="elsewhere"))
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.run_create(
            kind="generate", config={"model_path": "/m", "prompts_file": "p.jsonl"}, created_by=admin_user
        )
    assert enqueued == [(run.pk, "elsewhere")]


def test_the_form_reads_each_kinds_version_tasks_and_common_fields_from_its_spec():
    from training.selectors import run_kinds

    by_kind = {row["kind"]: row for row in run_kinds()}
    assert by_kind["reward_model"]["version_tasks"] == {"base_version": ["causal-lm", "classifier", "reward-model"]}
    assert by_kind["rlhf"]["version_tasks"]["reward_version"] == ["reward-model", "classifier"]
    assert by_kind["evaluate"]["adapter_base"] is True and by_kind["sft"]["adapter_base"] is False
    for row in by_kind.values():
        names = {f["name"] for f in row["config"]}
        assert set(row["common_config"]) <= names, row["kind"]  # a common field the config class lacks
        assert set(row["version_tasks"]) <= set(row["inputs"])
