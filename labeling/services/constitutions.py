"""A project's constitution: versioned principles that an admin edits (each save adds a version)."""

from django.db import transaction
from django.db.models import Max

from common.exceptions import ServiceError
from labeling.models import Constitution, Project
from labeling.principles import DEFAULT_PRINCIPLES, FIELDS, PrincipleError, validate_principles


def _validated(principles) -> list[dict]:
    try:
        validate_principles(principles)
    except PrincipleError as exc:
        raise ServiceError(str(exc), errors={exc.field: [exc.message]}) from None
    # Stored trimmed, fields in a fixed order: versions compare and diff cleanly.
    return [{name: p[name].strip() for name in FIELDS} for p in principles]


@transaction.atomic
def constitution_create(*, project: Project, created_by, principles, note: str = "") -> Constitution:
    """Save ``principles`` as the project's next constitution version (refused whole if one is bad)."""
    cleaned = _validated(principles)
    # The project row lock serializes concurrent saves, so two never take the same version number.
    Project.objects.select_for_update().filter(pk=project.pk).first()
    latest = Constitution.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0
    return Constitution.objects.create(
        project=project, version=latest + 1, principles=cleaned, note=note[:500], created_by=created_by
    )


def constitution_ensure_default(*, project: Project, created_by=None) -> Constitution:
    """The project's newest constitution, creating version 1 from the shipped default if it has none."""
    current = Constitution.objects.filter(project=project).order_by("-version").first()
    if current is not None:
        return current
    return constitution_create(
        project=project, created_by=created_by, principles=DEFAULT_PRINCIPLES, note="The shipped default."
    )
