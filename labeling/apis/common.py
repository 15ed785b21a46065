"""Small pieces every labeling API shares: project access, allow-listed ordering, pagination."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import APIView

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


def ordered(queryset, request, *, allowed: tuple[str, ...], default: str):
    """Apply ``?ordering=`` only when it names an allow-listed field; anything else is a 400."""
    ordering = request.query_params.get("ordering", default)
    fields = [f.strip() for f in ordering.split(",") if f.strip()]
    for field in fields:
        if field.lstrip("-") not in allowed:
            raise ValidationError(
                {"ordering": [f"Unknown ordering field {field!r}; allowed: {', '.join(sorted(allowed))}."]}
            )
    return queryset.order_by(*fields)


def reject_unknown_params(request, *, allowed: tuple[str, ...]) -> None:
    """Filters are allow-listed: an unknown query parameter is an error, never silently ignored."""
    known = set(allowed) | {"limit", "offset", "ordering", "format"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationError(
            {"filters": [f"Unknown filter {unknown[0]!r}; allowed: {', '.join(sorted(set(allowed)))}."]}
        )


class Paginated:
    """Mixin for views whose GET returns a page: ``{count, next, previous, results}``.

    Setting ``pagination_class`` also tells drf-spectacular to document the page envelope.
    """

    pagination_class = LimitOffsetPagination


def paginate(view: APIView, request, queryset, serializer_class, context: dict | None = None):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)
