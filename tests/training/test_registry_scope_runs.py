"""Runs and the scoped registry (issue 11): a run reads only shared versions and versions of its own
project, and adds versions only to a model of its own project; errors are 400s naming the field,
and nothing is queued."""

import shutil

import pytest

from labeling.models import Membership, Role
from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services.constitutions import constitution_create
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.services import model_version_register
from tests.training.conftest import rows_jsonl
from training.models import TrainingRun
from training.services import runs
from training.services.run_outputs import OutputsRegistrar

pytestmark = pytest.mark.django_db


@pytest.fixture
def scoped(tiny_model_dir, make_user, project, add_member, dataset):
    """A reviewer of ``project``; another project with its own causal LM, reward model and trained
    version; a shared base; an unscoped version nobody shared; a causal LM of ``project``."""
    reviewer = add_member(make_user("rev"), Role.REVIEWER)
    other = project_create(created_by=make_user("oscar", is_staff=True), name="Other", completions_per_prompt=2)
    Membership.objects.create(project=other, user=reviewer, role=Role.ADMIN)  # a member of both projects
    folder = tiny_model_dir

    def register(name, task="causal-lm", **kwargs):
        return model_version_register(model_name=name, task=task, folder=folder, fmt=None, **kwargs)

    shared = register("shared-base", shared=True)
    return {
        "reviewer": reviewer,
        "other": other,
        "shared": shared,
        "loose": register("loose"),
        "mine": register("mine", project_id=project.pk),
        "theirs": register("theirs", project_id=other.pk, base_version=shared),
        "their_rm": register("their-rm", task="reward-model", project_id=other.pk),
    }


def start(client, project, kind, inputs, config=None):
    return client.post(
        "/api/runs/", {"kind": kind, "project": project.pk, "config": config or {}, "inputs": inputs}, format="json"
    )


def assert_refused(response, key, enqueued, words="there is no model version"):
    body = response.json()
    assert response.status_code == 400, body
    assert words in body["errors"][key][0], body
    assert not TrainingRun.objects.exists()  # nothing created, so nothing queued


@pytest.mark.parametrize("which", ["theirs", "loose"])
def test_a_base_version_outside_the_runs_scope_is_refused(api, project, dataset, scoped, enqueued, which):
    """Another project's version (even for a member of both projects) or an unshared unscoped one."""
    inputs = {"base_version": scoped[which].pk, "dataset": dataset.pk, "template": None}
    response = start(api(scoped["reviewer"]), project, "rlhf", {**inputs, "reward_version": scoped["their_rm"].pk})
    assert_refused(response, "inputs.base_version", enqueued)
    assert scoped[which].model.name not in response.content.decode()  # not even its name


def test_a_reward_version_of_another_project_is_refused(api, project, dataset, scoped, enqueued):
    inputs = {"base_version": scoped["shared"].pk, "dataset": dataset.pk, "reward_version": scoped["their_rm"].pk}
    assert_refused(start(api(scoped["reviewer"]), project, "rlhf", inputs), "inputs.reward_version", enqueued)


def test_kl_base_versions_of_another_project_are_refused(api, admin_user, project, scoped, enqueued):
    rows = [{"text": f"say {i}", "answer": f"ok {i}", "split": "test"} for i in range(3)]
    data = dataset_import(project=project, stream=rows_jsonl(rows), filename="t.jsonl", created_by=admin_user)
    from labeling.services.templates import template_create

    template = template_create(project=project, name="t", text="{text}", dataset=data)
    client = api(scoped["reviewer"])
    base = {"dataset": data.pk, "reference_field": "answer", "templates": [template.pk]}
    named = {**base, "base_version": scoped["mine"].pk, "kl_base_version": scoped["theirs"].pk}
    assert_refused(start(client, project, "evaluate", named), "inputs.kl_base_version", enqueued)
    # The evaluated version's own base is the default KL reference: it must be one the run may read.
    ModelVersion.objects.filter(pk=scoped["mine"].pk).update(base_version=scoped["loose"])
    response = start(client, project, "evaluate", {**base, "base_version": scoped["mine"].pk})
    assert_refused(response, "inputs.kl_base_version", enqueued, words="not one this run can read")
    ok = start(client, project, "evaluate", {**base, "base_version": scoped["mine"].pk, "kl_base_version": None})
    assert ok.status_code == 400  # still the default base: naming none does not bypass the check


def test_versions_of_the_project_and_shared_ones_are_used(api, project, dataset, scoped, enqueued):
    client = api(scoped["reviewer"])
    for version in ("mine", "shared"):
        response = start(
            client,
            project,
            "rlhf",
            {"base_version": scoped[version].pk, "dataset": dataset.pk},
            config={"reward_function": "length:20"},
        )
        assert response.status_code == 202, response.json()
    assert TrainingRun.objects.count() == 2


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("theirs", "is not a model of project"),
        ("THEIRS", "is not a model of project"),  # names are case-insensitive
        ("loose", "is not a model of project"),
        ("shared-base", "is a shared model"),
    ],
)
def test_output_model_of_another_project_or_shared_is_refused(api, project, dataset, scoped, enqueued, name, words):
    inputs = {"base_version": scoped["shared"].pk, "dataset": dataset.pk, "output_model": name}
    response = start(api(scoped["reviewer"]), project, "rlhf", inputs, config={"reward_function": "length:20"})
    assert_refused(response, "inputs.output_model", enqueued, words=words)


def test_output_model_of_the_project_or_a_new_name_is_accepted(api, project, dataset, scoped, enqueued):
    client = api(scoped["reviewer"])
    for name in ("mine", "brand-new"):
        inputs = {"base_version": scoped["shared"].pk, "dataset": dataset.pk, "output_model": name}
        response = start(client, project, "rlhf", inputs, config={"reward_function": "length:20"})
        assert response.status_code == 202, response.json()


def test_then_sft_output_model_of_another_project_is_refused(api, project, dataset, scoped, enqueued, admin_user):
    constitution_create(project=project, created_by=admin_user, principles=DEFAULT_PRINCIPLES)
    inputs = {
        "base_version": scoped["shared"].pk,
        "dataset": dataset.pk,
        "then_sft": {"config": {"max_steps": 1}, "output_model": "theirs"},
    }
    response = start(api(scoped["reviewer"]), project, "cai_revise", inputs)
    assert_refused(response, "inputs.then_sft.output_model", enqueued, words="is not a model of project")


def test_registered_outputs_belong_to_the_runs_project(project, scoped, tiny_model_dir, enqueued):
    run = runs.run_create(
        kind="generate",  # any kind's row: the registrar reads the inputs and the result
        config={"model_path": str(tiny_model_dir), "prompts_file": "p.jsonl"},
        inputs={"base_version": scoped["shared"].pk, "output_model": "mine"},
        project=project,
        created_by=scoped["reviewer"],
    )
    run.kind = "sft"
    folder = runs.run_folder(run.pk)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_model_dir, folder / "model")
    result = {"outputs": [{"dir": "model", "task": "causal-lm", "role": "full"}]}
    registered = OutputsRegistrar.for_run(run, folder).finish(result=result, succeeded=True)["registered"]
    version = ModelVersion.objects.get(pk=registered[0]["id"])
    assert (version.model.name, version.version, version.project_id) == ("mine", 2, project.pk)
    assert version.model.project_id == project.pk and not version.model.shared

    # A model that went to another project after the run started: the registration fails the run
    # with the reason, and the folder stays in the run folder.
    RegisteredModel.objects.filter(name="mine").update(project=scoped["other"])
    other_run = runs.run_create(
        kind="generate",
        config={"model_path": str(tiny_model_dir), "prompts_file": "p.jsonl"},
        inputs={"base_version": scoped["shared"].pk, "output_model": "mine"},
        project=project,
        created_by=scoped["reviewer"],
    )
    other_run.kind = "sft"
    other_folder = runs.run_folder(other_run.pk)
    other_folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_model_dir, other_folder / "model")
    from common.exceptions import ServiceError

    with pytest.raises(ServiceError, match="is not a model of project"):
        OutputsRegistrar.for_run(other_run, other_folder).finish(result=result, succeeded=True)
    assert (other_folder / "model" / "config.json").exists()
