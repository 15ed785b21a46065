"""A sweep end to end on REAL Celery workers (Redis, PostgreSQL) with the tiny model: started through
the API, its trials real ``sft`` runs on the gpu queue, advanced by the trials' ends and by beat on
the default queue, ending with the best trial's version aliased ``best``."""

import time

import pytest

from labeling.services.datasets import dataset_import
from labeling.services.templates import template_create
from models_registry.models import ModelAlias, ModelVersion
from models_registry.services import model_version_register
from training.models import RunState, Sweep, TrainingRun

from .conftest import rows_jsonl
from .test_worker import TIMEOUT

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def qa(project, admin_user):
    rows = [
        {"question": f"Name colour {i}.", "answer": f"The colour is {c}.", "split": "eval" if i % 4 == 0 else "train"}
        for i, c in enumerate(["red", "blue", "green", "black", "white", "grey"] * 2, start=1)
    ]
    dataset = dataset_import(project=project, stream=rows_jsonl(rows), filename="c.jsonl", created_by=admin_user)
    template_create(project=project, name="qa", text="Q: {question}\nA:", make_default=True)
    return dataset


def test_a_sweep_of_sft_trials_on_workers_aliases_its_best_version(
    api, admin_user, project, qa, tiny_model_dir, start_worker
):
    base = model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True
    )
    start_worker(queues="gpu", name="gpu")
    start_worker(queues="default", beat=True, name="default", RANKFORGE_SWEEP_ADVANCE_INTERVAL_S="1")
    client = api(admin_user)
    response = client.post(
        "/api/sweeps/",
        {
            "kind": "sft",
            "project": project.pk,
            "config": {
                "max_steps": 2,
                "eval_steps": 1,
                "logging_steps": 1,
                "save_steps": 0,
                "per_device_train_batch_size": 4,
                "max_length": 64,
            },
            "inputs": {"base_version": base.pk, "dataset": qa.pk, "target_field": "answer"},
            "search_space": {
                "learning_rate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
                "lora_r": {"type": "choice", "values": [4, 8]},
            },
            "metric": "eval_loss",
            "direction": "minimize",
            "budget": 3,
            "parallelism": 2,
            "seed": 1,
            "pruner": "none",
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    sweep_id = response.json()["id"]

    deadline = time.monotonic() + TIMEOUT
    live_at_once = 0
    while time.monotonic() < deadline:
        detail = client.get(f"/api/sweeps/{sweep_id}/").json()
        live_at_once = max(live_at_once, detail["trials_live"])
        if detail["state"] != "running":
            break
        time.sleep(0.5)
    assert detail["state"] == "succeeded", detail
    trials = detail["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2] and {t["state"] for t in trials} == {"complete"}, trials
    runs = list(TrainingRun.objects.filter(sweep_id=sweep_id).order_by("sweep_trial"))
    assert len(runs) == 3 and live_at_once <= 2
    # Two at once: the third trial was asked only once one of the first two had ended.
    assert runs[2].created_at >= min(runs[0].finished_at, runs[1].finished_at) > runs[1].created_at
    for trial in trials:
        run = TrainingRun.objects.get(pk=trial["run"])
        assert run.state == RunState.SUCCEEDED and run.config["learning_rate"] == trial["params"]["learning_rate"]
        assert trial["value"] == run.outputs["result"]["metrics"]["eval_loss"]
        assert [p["step"] for p in trial["intermediate_values"]] == [1, 2]  # eval_loss at every eval step
    best = min(trials, key=lambda t: t["value"])
    assert detail["best"]["trial"] == best["number"] and detail["best_run"] == best["run"]

    # The best trial's merged model is aliased `best`; its lineage: the run that made it, of this sweep.
    sweep = Sweep.objects.get(pk=sweep_id)
    alias = ModelAlias.objects.select_related("version__model").get(name="best")
    assert alias.version == sweep.best_version and alias.version.merged
    assert alias.version.model.name == f"sweep-{sweep_id}-sft" and alias.version.base_version == base
    assert TrainingRun.objects.get(pk=alias.version.source_run_id).sweep_id == sweep_id
    assert alias.version.source_run_id == best["run"]
    assert ModelVersion.objects.filter(model=alias.version.model).count() == 6  # each trial: adapter + merged
