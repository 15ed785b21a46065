"""Who may start and read which runs, and who may point a worker at a path.

- A project's runs read its prompts and data: staff who are not members get a 404 on every run
  endpoint and cannot start runs there or generate; platform-level runs (no project) are staff's,
  and may not read a project's data. Platform admins see everything.
- Every config field that names a path on the workers, of every kind, read off the config classes,
  is refused for everyone but platform admins.
"""

import dataclasses

import pytest

from labeling.models import Role
from training.access import PROJECT_INPUTS
from training.ml.configs import PATH_SUFFIXES, WORKER_PATH, available_configs, worker_path_fields
from training.models import RunEventType, RunKind, RunState, TrainingRun
from training.services import run_inputs, runs
from training.services.runs import run_transition

pytestmark = pytest.mark.django_db

CONFIG = {"model_path": "/models/tiny", "prompts_file": "/data/prompts.jsonl"}
RUN_READS = ("", "events/", "logs/", "metrics/", "revisions/")


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Every run this module creates is recorded instead of sent."""


@pytest.fixture
def project_run(project, admin_user):
    run = runs.run_create(kind="generate", config=CONFIG, project=project, created_by=admin_user)
    run_transition(run_id=run.pk, to=RunState.RUNNING)
    runs.run_events_append(run_id=run.pk, events=[(RunEventType.LOG, {"message": "Question: a secret prompt"})])
    return run


def test_staff_who_are_not_members_cannot_read_or_cancel_a_projects_runs(
    api, staff, reviewer, platform_admin, project_run
):
    for path in RUN_READS:
        url = f"/api/runs/{project_run.pk}/{path}"
        response = api(staff).get(url)
        assert response.status_code == 404, (path, response.status_code)
        assert "secret prompt" not in response.content.decode()
        assert api(reviewer).get(url).status_code == 200, path
        assert api(platform_admin).get(url).status_code == 200, path
    assert api(staff).get("/api/runs/").json()["count"] == 0
    assert api(staff).get(f"/api/runs/?project={project_run.project_id}").json()["count"] == 0
    assert api(staff).post(f"/api/runs/{project_run.pk}/cancel/").status_code == 404
    assert TrainingRun.objects.get(pk=project_run.pk).state == RunState.RUNNING


def test_staff_see_platform_level_runs_and_their_projects_runs_as_members(api, staff, project, add_member, project_run):
    loose = runs.run_create(kind="generate", config=CONFIG, created_by=staff)
    assert [r["id"] for r in api(staff).get("/api/runs/").json()["results"]] == [loose.pk]
    assert api(staff).get(f"/api/runs/{loose.pk}/").status_code == 200
    add_member(staff, Role.LABELER)  # a labeler of the project: still not a run reader
    assert api(staff).get(f"/api/runs/{project_run.pk}/").status_code == 404
    staff.memberships.filter(project=project).update(role=Role.REVIEWER)
    assert api(staff).get(f"/api/runs/{project_run.pk}/").status_code == 200
    assert [r["id"] for r in api(staff).get("/api/runs/").json()["results"]] == [loose.pk, project_run.pk]


def test_staff_who_are_not_members_cannot_start_runs_or_generate_there(api, staff, project, dataset):
    response = api(staff).post(
        "/api/runs/", {"kind": "sft", "config": {}, "inputs": {}, "project": project.pk}, format="json"
    )
    assert response.status_code == 404 and "not a member" in response.json()["detail"]
    response = api(staff).post(f"/api/projects/{project.pk}/generate/", {"dataset": dataset.pk}, format="json")
    assert response.status_code == 404
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("name", PROJECT_INPUTS)
def test_a_platform_level_run_may_not_read_a_projects_data(api, staff, platform_admin, project, dataset, name):
    """Without a project, a run's inputs were looked up in every project: staff could read any prompts."""
    inputs = {name: dataset.pk, "base_version": 1}
    response = api(staff).post("/api/runs/", {"kind": "sft", "config": {}, "inputs": inputs}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"inputs.{name} reads a project's data; set project")
    assert f"inputs.{name}" in response.json()["errors"]
    # A platform admin is not refused for that (whatever else the inputs lack).
    response = api(platform_admin).post("/api/runs/", {"kind": "sft", "config": {}, "inputs": inputs}, format="json")
    assert "reads a project's data" not in response.json()["detail"]
    assert not TrainingRun.objects.exists()


# -- paths on the workers -------------------------------------------------------------------------


def test_every_path_like_config_field_is_marked_as_a_worker_path():
    """A new config field named like a path must be marked with worker_path(); the derived list then
    covers it (and would even unmarked, by the naming rule: this test keeps the marks honest)."""
    unmarked = [
        f"{kind}.{f.name}"
        for kind, config_class in sorted(available_configs().items())
        for f in dataclasses.fields(config_class)
        if f.name.endswith(PATH_SUFFIXES) and not f.metadata.get(WORKER_PATH)
    ]
    assert unmarked == []
    derived = set().union(*(worker_path_fields(c) for c in available_configs().values()))
    assert set(run_inputs.WORKER_PATH_FIELDS) == derived
    assert {"eval_reward_model_path", "gguf_file", "model_path", "train_file"} <= derived


def test_the_kinds_report_flags_every_worker_path(api, staff):
    kinds = api(staff).get("/api/runs/kinds/").json()
    assert kinds
    for kind in kinds:
        flagged = {f["name"] for f in kind["config"] if f["worker_path"]}
        assert flagged == worker_path_fields(available_configs()[kind["kind"]]), kind["kind"]


def path_cases():
    return [
        (kind, name)
        for kind, config_class in sorted(available_configs().items())
        for name in sorted(worker_path_fields(config_class))
    ]


@pytest.mark.parametrize(("kind", "name"), path_cases())
def test_a_worker_path_is_refused_for_staff_and_project_admins(
    api, staff, make_user, add_member, platform_admin, project, kind, name
):
    project_admin = add_member(make_user("pam"), Role.ADMIN)
    config = {name: "/etc/rankforge/secrets"}
    for client, project_id in ((api(staff), None), (api(project_admin), project.pk)):
        response = client.post("/api/runs/", {"kind": kind, "config": config, "project": project_id}, format="json")
        assert response.status_code == 403, response.json()
        assert response.json()["detail"].startswith(f"config.{name} names a path on the workers")
        assert list(response.json()["errors"]) == [f"config.{name}"]
    # A platform admin is not refused for the path (other checks may still want more of the config).
    response = api(platform_admin).post("/api/runs/", {"kind": kind, "config": config}, format="json")
    assert response.status_code != 403 and "names a path" not in response.json().get("detail", ""), response.json()
    assert not TrainingRun.objects.filter(created_by__in=[staff, project_admin]).exists()


def test_a_platform_admin_may_name_paths(api, platform_admin, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(platform_admin).post("/api/runs/", {"kind": RunKind.GENERATE, "config": CONFIG}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["config"]["model_path"] == CONFIG["model_path"] and len(enqueued) == 1


def test_generate_for_a_project_names_a_model_folder_for_platform_admins_only(
    api, admin_user, platform_admin, project, dataset
):
    url = f"/api/projects/{project.pk}/generate/"
    for body in ({"model_path": "/models/smol"}, {"model_path": "/models", "gguf_file": "../x.gguf"}):
        response = api(admin_user).post(url, {"dataset": dataset.pk, **body}, format="json")  # staff + project admin
        assert response.status_code == 403, response.json()
        assert set(response.json()["errors"]) <= set(body) and "only platform admins" in response.json()["detail"]
    response = api(admin_user).post(url, {"dataset": dataset.pk, "gguf_file": "x.gguf"}, format="json")
    assert response.status_code == 403 and list(response.json()["errors"]) == ["gguf_file"]
    response = api(platform_admin).post(url, {"dataset": dataset.pk, "model_path": "/models/smol"}, format="json")
    assert response.status_code == 202, response.json()
