from django.db.models import OuterRef, QuerySet, Subquery

from labeling.access import is_platform_admin
from labeling.models import Membership, Project


def projects_for_user(*, user) -> QuerySet[Project]:
    """Projects the user belongs to (all of them for platform admins), annotated with ``member_role``."""
    role_of_user = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    projects = Project.objects.annotate(member_role=Subquery(role_of_user))
    if is_platform_admin(user):
        return projects
    return projects.filter(memberships__user=user)
