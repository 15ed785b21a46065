"""Small pieces every labeling API shares: project access (and, from common.api, allow-listed
filters and orderings, pagination)."""

import re

from drf_spectacular.utils import OpenApiRequest
from rest_framework.views import APIView

from common.api import Paginated, ordered, paginate, reject_unknown_params
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


def upload_request(serializer, *, extensions: tuple[str, ...], example: str) -> dict:
    """The multipart body of an import whose reader is picked by the ``file`` part's extension (any
    case): the part's Content-Disposition says which names it takes (a pattern) and gives one that
    works (an example, which is also the name Schemathesis sends)."""
    spelled = (
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in e.removeprefix("."))
        for e in extensions
    )
    disposition = {
        "description": f"The file's name ends in {' or '.join(extensions)}: the import reads it by its extension.",
        "schema": {"type": "string", "pattern": f'^form-data; name="file"; filename="[^"]*\\.({"|".join(spelled)})"$'},
        "example": f'form-data; name="file"; filename="{example}"',
    }
    return {
        "multipart/form-data": OpenApiRequest(
            serializer, encoding={"file": {"headers": {"Content-Disposition": disposition}}}
        )
    }


__all__ = ["Paginated", "ProjectAPIView", "ordered", "paginate", "reject_unknown_params", "upload_request"]
