"""A side-by-side evaluation on a REAL Celery worker (Redis, PostgreSQL) with the tiny model: both
versions' generate runs answer every prompt, the answers become one blind pair per prompt, and the
labelers' votes become results."""

import pytest

from labeling.models import SideBySideEval, SideBySidePair, SideBySideSample
from models_registry.services import model_version_register
from tests.labeling.sxs_factories import label_all, questions_dataset
from training.models import RunState, TrainingRun

from .test_worker import finished, poll_events

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_evaluation_generates_pairs_and_results_on_a_worker(
    api, admin_user, project, labelers, tiny_model_dir, start_worker
):
    start_worker(queues="gpu")
    dataset = questions_dataset(project, admin_user, n=4)
    versions = [
        model_version_register(
            model_name="tiny-causal", task="causal-lm", folder=tiny_model_dir, fmt=None, project_id=project.pk
        )
        for _ in range(2)
    ]
    client = api(admin_user)
    response = client.post(
        f"/api/projects/{project.pk}/evaluations/",
        {"versions": [v.pk for v in versions], "dataset": dataset.pk, "generation": {"max_new_tokens": 6}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    evaluation_id = response.json()["id"]
    made = 0
    for entry in response.json()["entries"]:
        poll_events(client, entry["run"], until=finished)
        run = TrainingRun.objects.get(pk=entry["run"])
        assert run.state == RunState.SUCCEEDED, run.error
        made += run.outputs["pairs_created"]
    assert made == 4  # whichever run answered last made the pairs, once
    assert SideBySideSample.objects.filter(entry__evaluation_id=evaluation_id).count() == 8
    assert SideBySidePair.objects.filter(evaluation_id=evaluation_id).count() == 4
    detail = client.get(f"/api/evaluations/{evaluation_id}/").json()
    assert detail["status"] == "labeling" and detail["progress"]["comparisons"] == 4

    assert label_all(SideBySideEval.objects.get(pk=evaluation_id), labelers[:2], lambda pair, labeler: "b") == 8
    results = client.get(f"/api/evaluations/{evaluation_id}/results/").json()
    [human] = results["human"]
    assert human["pairs"][0]["win_rate"] == 0.0 and human["scores"][0]["entry"] == detail["entries"][1]["id"]
    assert client.get(f"/api/evaluations/{evaluation_id}/").json()["status"] == "complete"
