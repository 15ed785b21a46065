from django.contrib.auth import get_user_model
from django.db import transaction

from config.exceptions import ServiceError
from labeling.models import AlignmentCriterion, Membership, Project, Ranking, Role

User = get_user_model()

PROJECT_FIELDS = (
    "name",
    "instructions",
    "completions_per_prompt",
    "overlap",
    "lease_seconds",
    "gold_rate",
    "ai_spot_check_rate",
    "rank_per_criterion",
    "generation_config",
    "generation_model",
)


@transaction.atomic
def project_create(*, created_by, **fields) -> Project:
    project = Project(created_by=created_by, **{k: v for k, v in fields.items() if k in PROJECT_FIELDS})
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    return project


@transaction.atomic
def project_update(*, project: Project, **fields) -> Project:
    project = Project.objects.select_for_update().get(pk=project.pk)
    new_k = fields.get("completions_per_prompt", project.completions_per_prompt)
    if new_k != project.completions_per_prompt and project.comparisons.exists():
        raise ServiceError(
            "completions_per_prompt cannot change once the project has comparisons.",
            errors={"completions_per_prompt": ["The project already has comparisons with K completions."]},
        )
    for key, value in fields.items():
        if key in PROJECT_FIELDS:
            setattr(project, key, value)
    project.full_clean()
    project.save()
    return project


@transaction.atomic
def membership_set(*, project: Project, username: str, role: str) -> Membership:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ServiceError(f"No user named {username!r}.", errors={"username": [f"Unknown user {username!r}."]})
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    project = membership.project
    if membership.role == Role.ADMIN and project.memberships.filter(role=Role.ADMIN).count() == 1:
        raise ServiceError("A project keeps at least one admin; make someone else admin first.")
    membership.delete()


@transaction.atomic
def criterion_create(*, project: Project, name: str, instructions: str = "", position: int | None = None):
    if project.criteria.filter(name=name).exists():
        raise ServiceError(f"Criterion {name!r} already exists.", errors={"name": [f"{name!r} is taken."]})
    if position is None:
        position = project.criteria.count()
    criterion = AlignmentCriterion(project=project, name=name, instructions=instructions, position=position)
    criterion.full_clean()
    criterion.save()
    return criterion


@transaction.atomic
def criterion_update(*, criterion: AlignmentCriterion, **fields) -> AlignmentCriterion:
    for key in ("name", "instructions", "position"):
        if key in fields:
            setattr(criterion, key, fields[key])
    criterion.full_clean()
    criterion.save()
    return criterion


@transaction.atomic
def criterion_delete(*, criterion: AlignmentCriterion) -> None:
    if Ranking.objects.filter(comparison__project_id=criterion.project_id).exists():
        raise ServiceError(
            f"Criterion {criterion.name!r} cannot be deleted: the project already has rankings that may use it."
        )
    criterion.delete()


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False):
    if User.objects.filter(username=username).exists():
        raise ServiceError(f"User {username!r} already exists.", errors={"username": ["Taken."]})
    user = User(username=username, email=email, is_staff=is_staff)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user
