"""API habits every app shares (labeling, training, models_registry): platform roles, allow-listed
filters and orderings, and pages. Lives in config because models_registry may not import labeling."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


def is_platform_admin(user) -> bool:
    """`createsuperuser` accounts: they see and manage everything."""
    return bool(user and user.is_active and user.is_superuser)


def is_staff_or_admin(user) -> bool:
    """Staff accounts and platform admins create projects and manage models."""
    return bool(user and user.is_active and (user.is_superuser or user.is_staff))


def reject_unknown_params(request, *, allowed: tuple[str, ...]) -> None:
    """Filters are allow-listed: an unknown query parameter is a 400, never silently ignored
    (Label Studio's CVE-2023-47117 came from filters that walked `...__password`)."""
    known = set(allowed) | {"limit", "offset", "ordering", "format"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationError(
            {"filters": [f"Unknown filter {unknown[0]!r}; allowed: {', '.join(sorted(set(allowed))) or 'none'}."]}
        )


def ordered(queryset, request, *, allowed: tuple[str, ...], default: str):
    """Apply ``?ordering=`` only when it names allow-listed fields; anything else is a 400. The
    primary key breaks ties, so pages never repeat or skip rows."""
    fields = [f.strip() for f in request.query_params.get("ordering", default).split(",") if f.strip()]
    for field in fields:
        if field.lstrip("-") not in allowed:
            raise ValidationError(
                {"ordering": [f"Unknown ordering field {field!r}; allowed: {', '.join(sorted(allowed))}."]}
            )
    return queryset.order_by(*fields, "pk")


class Paginated:
    """Mixin for views whose GET returns a page: ``{count, next, previous, results}``.

    Setting ``pagination_class`` also tells drf-spectacular to document the page envelope.
    """

    pagination_class = LimitOffsetPagination

    def paginate(self, request, queryset, serializer_class, context: dict | None = None):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)


def paginate(view: Paginated, request, queryset, serializer_class, context: dict | None = None):
    return view.paginate(request, queryset, serializer_class, context)
