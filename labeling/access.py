"""Who may do what in a project. One query per check; errors say what is missing."""

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery
from rest_framework.exceptions import NotFound, PermissionDenied

from common.api import is_platform_admin, is_staff_or_admin
from labeling.models import Membership, Project, Role

ROLE_RANK = {Role.LABELER: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


def can_create_projects(user) -> bool:
    return is_staff_or_admin(user)


@dataclass(frozen=True)
class Access:
    project: Project
    role: str  # the member's role; platform admins act as project admins

    def at_least(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def project_access(*, user, project_id: int, at_least: str = Role.LABELER) -> Access:
    """The project and the user's role in it, or 404 for outsiders and 403 for a too-low role."""
    role_of_user = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    project = Project.objects.annotate(member_role=Subquery(role_of_user)).filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"Project {project_id} does not exist or you are not a member of it.")
    role = Role.ADMIN if is_platform_admin(user) else project.member_role
    if role is None:
        raise NotFound(f"Project {project_id} does not exist or you are not a member of it.")
    access = Access(project=project, role=role)
    if not access.at_least(at_least):
        raise PermissionDenied(f"This needs the {at_least} role in project {project_id}; you are a {role}.")
    return access
