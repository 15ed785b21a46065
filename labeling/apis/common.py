"""Small pieces every labeling API shares: project access (and, from config.api, allow-listed
filters and orderings, pagination)."""

from rest_framework.views import APIView

from config.api import Paginated, ordered, paginate, reject_unknown_params
from labeling.access import Access, project_access
from labeling.models import Role


class ProjectAPIView(APIView):
    """An API under /api/projects/{project_id}/ that checks the caller's role first.

    ``read_role`` applies to safe methods, ``write_role`` to the rest.
    """

    read_role = Role.LABELER
    write_role = Role.ADMIN

    def access(self, request, project_id: int) -> Access:
        role = self.read_role if request.method in ("GET", "HEAD", "OPTIONS") else self.write_role
        return project_access(user=request.user, project_id=project_id, at_least=role)


__all__ = ["Paginated", "ProjectAPIView", "ordered", "paginate", "reject_unknown_params"]
