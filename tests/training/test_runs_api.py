"""/api/runs/: create (400 naming the field), who sees what, filters, events, logs, metrics, cancel."""

import pytest

from labeling.models import Role
from labeling.services.projects import project_create
from training.models import RunState, TrainingRun
from training.services import runs
from training.services.runs import run_transition

pytestmark = pytest.mark.django_db

CONFIG = {"model_path": "/models/tiny", "prompts_file": "/data/prompts.jsonl"}


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Every run this module creates is recorded instead of sent."""


def post_run(client, **body):
    return client.post("/api/runs/", {"kind": "generate", "config": CONFIG, **body}, format="json")


def test_platform_admins_and_project_reviewers_start_runs(
    api, platform_admin, staff, project, reviewer, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_run(api(platform_admin), inputs={"why": "smoke"})
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["state"] == "queued" and body["project"] is None and body["inputs"] == {"why": "smoke"}
    assert body["config"]["k"] == 2 and body["created_by"] == platform_admin.pk and body["last_seq"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = post_run(api(platform_admin), project=project.pk)
    assert response.status_code == 202 and response.json()["project"] == project.pk
    assert enqueued == [(body["id"], "gpu"), (response.json()["id"], "gpu")]
    # A project reviewer may start runs in the project, but not name paths on the workers by hand;
    # neither may staff, even for a platform-level run: only platform admins.
    for client, project_id in ((api(reviewer), project.pk), (api(staff), None)):
        response = post_run(client, project=project_id)
        assert response.status_code == 403
        assert response.json()["detail"].startswith(
            "config.model_path names a path on the workers; only platform admins may."
        )
        assert "config.model_path" in response.json()["errors"]
    assert TrainingRun.objects.count() == 2


def test_a_bad_config_is_a_400_naming_the_field_and_creates_nothing(api, platform_admin, enqueued):
    client = api(platform_admin)
    response = post_run(client, config={**CONFIG, "k": 12})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "config.k: must be 1..9, got 12",
        "errors": {"config.k": ["must be 1..9, got 12"]},
    }
    response = post_run(client, config={**CONFIG, "temperature": "hot"})
    assert response.status_code == 400 and response.json()["detail"].startswith("config.temperature: expected float")
    response = post_run(client, config={"prompts_file": "p.jsonl"})
    assert response.json()["detail"] == "config.model_path: required"
    response = post_run(client, config=[1])
    assert response.status_code == 400 and response.json()["detail"] == "config: Must be a JSON object."
    # jsonb cannot hold \u0000: refused by name before the save would fail (a 500).
    response = post_run(client, config={**CONFIG, "prompt_prefix": "a\u0000b"})
    assert response.status_code == 400 and response.json()["detail"].startswith(
        "config: A key or string contains a NUL"
    )
    response = post_run(client, kind="cai_revise", config={})
    assert response.status_code == 400
    assert response.json()["detail"] == "inputs.base_version: required: the registered model version to start from"
    response = post_run(client, kind="alchemy")
    assert response.status_code == 400 and response.json()["detail"].startswith("kind:")
    response = post_run(client, priority=1)
    assert response.status_code == 400 and response.json()["detail"].startswith("priority: Unknown field")
    assert not TrainingRun.objects.exists() and enqueued == []


def test_who_may_start_runs(api, make_user, project, labeler):
    assert post_run(api(make_user("nobody"))).status_code == 403  # no project: staff only
    assert post_run(api(make_user("outsider")), project=project.pk).status_code == 404
    response = post_run(api(labeler), project=project.pk)
    assert response.status_code == 403 and "reviewer role" in response.json()["detail"]
    assert post_run(api(make_user("s", is_staff=True)), project=999).status_code == 404
    # Staff who are not members of the project are outsiders there.
    response = post_run(api(make_user("t", is_staff=True)), project=project.pk)
    assert response.status_code == 404 and "not a member" in response.json()["detail"]
    assert post_run(api(None)).status_code in (401, 403)


def test_visibility_and_allow_listed_filters(
    api, staff, platform_admin, admin_user, project, reviewer, labeler, make_user, add_member
):
    project_admin = add_member(make_user("pam"), Role.ADMIN)
    other = project_create(created_by=make_user("olga", is_staff=True), name="Other", completions_per_prompt=2)
    mine = runs.run_create(kind="generate", config=CONFIG, project=project, created_by=admin_user)
    theirs = runs.run_create(kind="generate", config=CONFIG, project=other, created_by=staff)
    loose = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    run_transition(run_id=mine.pk, to=RunState.RUNNING)

    def ids(client, query=""):
        response = client.get("/api/runs/" + query)
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids(api(platform_admin)) == [loose.pk, theirs.pk, mine.pk]  # newest first
    # Staff see the platform-level runs, and a project's runs only as its member (alice administers it).
    assert ids(api(staff)) == [loose.pk]
    assert ids(api(admin_user)) == [loose.pk, mine.pk]
    assert ids(api(reviewer)) == [mine.pk]
    assert ids(api(project_admin)) == [mine.pk]
    assert ids(api(labeler)) == []
    assert ids(api(platform_admin), f"?project={other.pk}") == [theirs.pk]
    assert ids(api(platform_admin), "?state=running&kind=generate") == [mine.pk]
    assert ids(api(platform_admin), "?ordering=id") == [mine.pk, theirs.pk, loose.pk]
    for query, key in (("?owner=1", "filters"), ("?state=sleeping", "state"), ("?ordering=error", "ordering")):
        response = api(platform_admin).get("/api/runs/" + query)
        assert response.status_code == 400 and key in response.json()["errors"], query

    assert api(reviewer).get(f"/api/runs/{mine.pk}/").json()["state"] == "running"
    for user, run in ((reviewer, theirs), (labeler, mine), (reviewer, loose), (staff, mine), (staff, theirs)):
        response = api(user).get(f"/api/runs/{run.pk}/")
        assert response.status_code == 404 and "cannot see it" in response.json()["detail"]
        assert api(user).post(f"/api/runs/{run.pk}/cancel/").status_code == 404


def test_events_poll_in_order_with_after_limit_and_type(api, staff):
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    run_transition(run_id=run.pk, to=RunState.RUNNING)
    runs.run_events_append(
        run_id=run.pk,
        events=[("progress", {"step": i, "total": 5}) for i in range(5)]
        + [("log", {"message": "hi", "level": "info"})],
    )
    client = api(staff)
    url = f"/api/runs/{run.pk}/events/"
    first = client.get(url + "?limit=3").json()
    assert [e["seq"] for e in first["events"]] == [1, 2, 3]
    assert first["has_more"] and first["next_after"] == 3 and first["last_seq"] == 8 and first["state"] == "running"
    rest = client.get(url + f"?after={first['next_after']}").json()
    assert [e["seq"] for e in rest["events"]] == [4, 5, 6, 7, 8] and not rest["has_more"]
    assert rest["events"][0] == {**rest["events"][0], "type": "progress", "payload": {"step": 1, "total": 5}}
    empty = client.get(url + "?after=8").json()
    assert empty["events"] == [] and empty["next_after"] == 8
    assert [e["type"] for e in client.get(url + "?type=state,log").json()["events"]] == ["state", "state", "log"]
    assert client.get(url + "?type=gossip").status_code == 400
    assert client.get(url + "?after=-1").status_code == 400
    assert client.get(url + "?limit=5000").status_code == 400


def test_logs_and_metric_series(api, staff):
    run = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    run_transition(run_id=run.pk, to=RunState.RUNNING)
    runs.run_events_append(
        run_id=run.pk,
        events=[
            ("log", {"level": "info", "message": "loaded", "stream": "event"}),
            ("metric", {"name": "loss", "value": 0.9, "step": 1, "t": 1.0}),
            ("log", {"level": "stderr", "message": "warning: x", "stream": "stderr"}),
            ("metric", {"name": "tokens_per_s", "value": 30.5, "step": 1, "t": 1.5}),
            ("metric", {"name": "loss", "value": 0.7, "step": 2, "t": 2.0}),
            ("error", {"message": "boom"}),
        ],
    )
    client = api(staff)
    logs = client.get(f"/api/runs/{run.pk}/logs/").json()
    assert [(line["level"], line["stream"], line["message"]) for line in logs["lines"]] == [
        ("info", "event", "loaded"),
        ("stderr", "stderr", "warning: x"),
        ("error", "event", "boom"),
    ]
    assert client.get(f"/api/runs/{run.pk}/logs/?after={logs['lines'][0]['seq']}").json()["lines"][0]["message"] == (
        "warning: x"
    )
    metrics = client.get(f"/api/runs/{run.pk}/metrics/").json()
    assert metrics["series"] == {
        "loss": [{"step": 1, "value": 0.9, "t": 1.0}, {"step": 2, "value": 0.7, "t": 2.0}],
        "tokens_per_s": [{"step": 1, "value": 30.5, "t": 1.5}],
    }
    assert list(client.get(f"/api/runs/{run.pk}/metrics/?name=loss").json()["series"]) == ["loss"]


def test_cancel_through_the_api(api, platform_admin, staff, reviewer, project):
    client = api(platform_admin)
    queued = post_run(client).json()
    response = client.post(f"/api/runs/{queued['id']}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"

    running = runs.run_create(kind="generate", config=CONFIG, project=project, created_by=staff)
    run_transition(run_id=running.pk, to=RunState.RUNNING)
    response = api(reviewer).post(f"/api/runs/{running.pk}/cancel/")
    assert response.status_code == 202 and response.json()["state"] == "cancelling"
    assert client.post(f"/api/runs/{running.pk}/cancel/").status_code == 202  # again: still cancelling
    assert api(staff).post(f"/api/runs/{running.pk}/cancel/").status_code == 404  # not a member

    response = client.post(f"/api/runs/{queued['id']}/cancel/")
    assert response.status_code == 409
    assert response.json()["detail"] == f"Run {queued['id']} already cancelled; there is nothing to cancel."
