"""Constitutional AI end to end on a REAL Celery worker (Redis, PostgreSQL) with the tiny model:
cai_revise stores its steps and chains a LoRA SFT on the revisions, registered with lineage to the
run (whose inputs name the constitution version); ai_feedback writes AI rankings that snapshots
filtered to AI labels turn into pairs."""

import pytest

from labeling.models import Comparison, LabelSource, Ranking
from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services.constitutions import constitution_create
from labeling.services.projects import project_create
from labeling.services.snapshots import snapshot_build, snapshot_create
from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from tests.labeling.factories import add_comparisons
from training.models import CritiqueRevision, RunState, TrainingRun

from .test_worker import TIMEOUT, finished, poll_events

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def setup(admin_user, tiny_model_dir):
    project = project_create(created_by=admin_user, name="CAI", completions_per_prompt=2)
    add_comparisons(project, 6)
    constitution_create(project=project, created_by=admin_user, principles=DEFAULT_PRINCIPLES[:2])
    base = model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True
    )
    return project, base


def run_to_the_end(client, **body) -> TrainingRun:
    response = client.post("/api/runs/", body, format="json")
    assert response.status_code == 202, response.json()
    poll_events(client, response.json()["id"], until=finished, timeout=TIMEOUT)
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.state == RunState.SUCCEEDED, run.error
    return run


def test_cai_revise_then_chained_sft_on_a_worker(api, admin_user, setup, start_worker):
    project, base = setup
    start_worker(queues="gpu", name="gpu")
    client = api(admin_user)
    run = run_to_the_end(
        client,
        kind="cai_revise",
        project=project.pk,
        config={"max_new_tokens": 8, "rounds": 2, "sampling": "cycle", "batch_size": 4},
        inputs={
            "base_version": base.pk,
            "then_sft": {"config": {"max_steps": 2, "max_length": 64}, "output_model": "tiny-cai"},
        },
    )
    stored = CritiqueRevision.objects.filter(run=run)
    assert stored.count() == 6 and all(len(r.rounds) == 2 for r in stored)
    assert {r.rounds[0]["principle"] for r in stored} | {r.rounds[1]["principle"] for r in stored} == {"harm", "ethics"}
    sft_id = run.outputs["sft_run"]
    poll_events(client, sft_id, until=finished, timeout=TIMEOUT)
    sft = TrainingRun.objects.get(pk=sft_id)
    assert sft.state == RunState.SUCCEEDED, sft.error
    assert sft.inputs["cai_run"] == run.pk and sft.inputs["constitution"] == 1
    versions = ModelVersion.objects.filter(model__name="tiny-cai")
    assert versions.exists() and all(v.source_run_id == sft.pk and v.base_version_id == base.pk for v in versions)
    assert all({"cai", "constitution-v1"} <= set(v.tags) for v in versions)


def test_ai_feedback_labels_flow_into_an_ai_snapshot(api, admin_user, setup, start_worker):
    project, base = setup
    start_worker(queues="gpu", name="gpu")
    run = run_to_the_end(
        api(admin_user),
        kind="ai_feedback",
        project=project.pk,
        config={"batch_size": 4},
        inputs={"base_version": base.pk},
    )
    assert run.outputs["recorded"] == 6
    ai = Ranking.objects.filter(comparison__project=project, source=LabelSource.AI)
    assert ai.count() == 6 and all(0 <= r.orders[0]["ai"]["probability"] <= 1 for r in ai)
    assert Comparison.objects.filter(project=project, human_queue=False).count() == 6 - run.outputs["spot_checks"]
    snapshot = snapshot_create(project=project, created_by=admin_user, options={"sources": ["ai"]})
    snapshot = snapshot_build(snapshot_id=snapshot.pk)
    assert snapshot.counts["pairs"] == 6 and snapshot.counts["rankings_used"] == 6
