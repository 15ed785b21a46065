"""One project with a member of each role and one of everything a route can name: the seed that the
endpoint x role matrix (tests/test_endpoint_matrix.py) and the API fuzzer (tests/test_api_fuzz.py)
walk every route over."""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from labeling.models import Membership, Role
from labeling.services.assignments import assignment_next
from labeling.services.constitutions import constitution_ensure_default
from labeling.services.datasets import dataset_import
from labeling.services.projects import criterion_create, project_create
from labeling.services.snapshots import snapshot_create
from labeling.services.templates import template_create
from models_registry.models import ModelAlias, ModelVersion, RegisteredModel
from tests.labeling.factories import add_comparisons
from tests.labeling.sxs_factories import make_evaluation
from tests.training.conftest import rows_jsonl
from training.models import Round, Sweep, TrainingRun

ROLES = ("anonymous", "outsider", "staff", "labeler", "reviewer", "project_admin", "platform_admin")


@dataclass
class World:
    users: dict  # role -> user (no "anonymous")
    ids: dict  # URL parameter name -> the seeded object's id
    constitution_version: int
    model_version: int

    def path_value(self, path: str, name: str):
        """The value of path parameter ``name`` in ``path`` (``version`` is a constitution's under
        /constitutions/, a model version's elsewhere)."""
        if name == "version":
            return self.constitution_version if "constitutions/" in path else self.model_version
        return self.ids[name]


def world_create(make_user) -> World:
    users = {
        "outsider": make_user("outsider"),
        "staff": make_user("staffer", is_staff=True),
        "labeler": make_user("lab"),
        "reviewer": make_user("rev"),
        "project_admin": make_user("padmin"),
        "platform_admin": get_user_model().objects.create_superuser(username="root", password="pw-root"),
    }
    make_user("newcomer")  # a user an admin can add as a member
    admin = users["project_admin"]
    project = project_create(created_by=admin, name="World", completions_per_prompt=2, overlap=2)
    # The outsider administers a project of their own: a member elsewhere is still an outsider here.
    other = project_create(created_by=users["outsider"], name="Elsewhere", completions_per_prompt=2, overlap=1)
    assert Membership.objects.filter(project=other, user=users["outsider"], role=Role.ADMIN).exists()
    Membership.objects.update_or_create(project=project, user=admin, defaults={"role": Role.ADMIN})
    Membership.objects.create(project=project, user=users["reviewer"], role=Role.REVIEWER)
    labeler_membership = Membership.objects.create(project=project, user=users["labeler"], role=Role.LABELER)

    criterion = criterion_create(project=project, name="helpful")
    dataset = dataset_import(
        project=project,
        stream=rows_jsonl([{"question": f"q{i}"} for i in range(4)]),
        filename="q.jsonl",
        created_by=admin,
    )
    template = template_create(project=project, name="qa", text="Q: {question}\nA:", dataset=dataset)
    add_comparisons(project, 4)
    constitution = constitution_ensure_default(project=project, created_by=admin)
    with transaction.atomic():
        snapshot = snapshot_create(project=project, created_by=admin)
    run = TrainingRun.objects.create(kind="rlhf", config={}, project=project, created_by=admin)
    lease = assignment_next(project_id=project.pk, labeler=users["labeler"])
    assert lease is not None

    model = RegisteredModel.objects.create(name="world-policy", task="causal-lm", created_by=admin, project=project)
    version = ModelVersion.objects.create(
        model=model,
        version=1,
        artifact_path="models/world-policy/1",
        format="hf-folder",
        source_run_id=run.pk,
        project=project,
    )
    ModelAlias.objects.create(model=model, name="candidate", version=version)
    folder = settings.ARTIFACT_ROOT / version.artifact_path
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    # A side-by-side evaluation of v1 against v2: its project copies the members (and their roles).
    second = ModelVersion.objects.create(
        model=model, version=2, artifact_path="models/world-policy/2", format="hf-folder", project=project
    )
    (settings.ARTIFACT_ROOT / second.artifact_path).mkdir(parents=True)
    (settings.ARTIFACT_ROOT / second.artifact_path / "config.json").write_text("{}")
    project.prompt_template = template
    project.save(update_fields=["prompt_template"])
    evaluation = make_evaluation(project, admin, [version, second], dataset, split=None, limit=2)
    round_ = Round.objects.create(project=project, number=1, base_version=version, created_by=admin)
    TrainingRun.objects.filter(pk=run.pk).update(round=round_)
    # A running sweep of the project (no trial yet), for the sweep routes.
    sweep = Sweep.objects.create(
        project=project,
        kind="sft",
        search_space={"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": False, "step": None}},
        metric="eval_loss",
        direction="minimize",
        budget=2,
        parallelism=1,
        alias="best",
        study_name=f"world-sweep-{uuid.uuid4().hex}",
        created_by=admin,
    )

    ids = {
        "project_id": project.pk,
        "membership_id": labeler_membership.pk,
        "criterion_id": criterion.pk,
        "dataset_id": dataset.pk,
        "template_id": template.pk,
        "snapshot_id": snapshot.pk,
        "assignment_id": lease.assignment.id,
        "run_id": run.pk,
        "model_id": model.pk,
        "alias": "candidate",
        "user_id": users["labeler"].pk,
        "evaluation_id": evaluation.pk,
        "round_id": round_.pk,
        "sweep_id": sweep.pk,
    }
    return World(users=users, ids=ids, constitution_version=constitution.version, model_version=version.version)
