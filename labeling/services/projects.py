from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from common.exceptions import Conflict, ServiceError
from labeling.models import (
    AlignmentCriterion,
    Assignment,
    AssignmentState,
    Membership,
    Project,
    ProjectKind,
    Ranking,
    Role,
)
from labeling.services.accounts import password_check

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
    if new_k != project.completions_per_prompt and project.kind == ProjectKind.EVALUATION:
        raise ServiceError(
            "completions_per_prompt: an evaluation project compares two answers at a time.",
            errors={"completions_per_prompt": ["An evaluation project's K is 2."]},
        )
    if new_k != project.completions_per_prompt and project.comparisons.exists():
        raise Conflict(  # a well-formed request the project's state refuses: 409, not 400
            "completions_per_prompt cannot change once the project has comparisons.",
            errors={"completions_per_prompt": ["The project already has comparisons with K completions."]},
        )
    for key, value in fields.items():
        if key in PROJECT_FIELDS:
            setattr(project, key, value)
    project.full_clean()
    project.save()
    return project


def _lock_project(project: Project) -> Project:
    """The project row, locked: membership changes of one project run one after the other, so two
    admins demoting each other at once cannot leave it without an admin. FOR NO KEY UPDATE: a
    labeler's `next` (holding its membership row) inserts a lease whose foreign key takes KEY SHARE on
    this row; FOR UPDATE would wait on it while it waits on us for the membership row, a deadlock."""
    return Project.objects.select_for_update(no_key=True).get(pk=project.pk)


def _keep_an_admin(*, project: Project, membership: Membership, action: str) -> None:
    if membership.role != Role.ADMIN:
        return
    if project.memberships.filter(role=Role.ADMIN).exclude(pk=membership.pk).exists():
        return
    raise Conflict(
        f"{membership.user.get_username()} is the last admin of project {project.pk}; they cannot be {action}. "
        "Make another member admin first.",
        errors={"role": [f"Project {project.pk} must keep at least one admin."]},
    )


@transaction.atomic
def membership_set(*, project: Project, username: str, role: str) -> Membership:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ServiceError(f"No user named {username!r}.", errors={"username": [f"Unknown user {username!r}."]})
    project = _lock_project(project)
    membership = Membership.objects.select_for_update().select_related("user").filter(project=project, user=user)
    membership = membership.first()
    if membership is None:
        return Membership.objects.create(project=project, user=user, role=role)
    if membership.role != role:
        _keep_an_admin(project=project, membership=membership, action=f"made {role}")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> int:
    """Remove a member; their unfinished leases in the project die with the membership (their slots
    free up at once, a submit or skip on them is a 403). Returns how many leases were revoked."""
    project = _lock_project(membership.project)
    # The membership row before the leases: the member's own `next` holds it while it leases, so a
    # lease taken concurrently is committed (and seen, and revoked) before this goes on.
    membership = Membership.objects.select_for_update().select_related("user").filter(pk=membership.pk).first()
    if membership is None:
        raise ServiceError("This membership was removed already.", status=404)
    _keep_an_admin(project=project, membership=membership, action="removed")
    # Expired leases too: one may still be submitted while its slot is free.
    revoked = Assignment.objects.filter(
        project=project, labeler_id=membership.user_id, state=AssignmentState.LEASED
    ).update(state=AssignmentState.REVOKED, finished_at=timezone.now())
    membership.delete()
    return revoked


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
    password_check(password, user=user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user
