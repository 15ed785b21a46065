"""API habits every app shares (labeling, training, models_registry): platform roles, allow-listed
filters and orderings, and pages. Lives in common because models_registry may not import labeling."""

import re

from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_PAGE_LIMIT = 500


class Pagination(LimitOffsetPagination):
    """``?limit=`` above ``max_limit`` is clamped to it (DRF's rule): one request never pulls a whole
    table; the ``next`` link walks the rest. A ``limit`` that is not a positive integer, or an
    ``offset`` that is not a non-negative one, is a 400 (DRF would quietly use the default)."""

    max_limit = MAX_PAGE_LIMIT

    @staticmethod
    def _int(request, name: str, *, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        value = (
            int(raw) if raw.isascii() and raw.isdigit() else None
        )  # int() would take " 5", "5_0" and non-ASCII digits
        if value is None or value < minimum:
            raise ValidationError({name: [f"Must be an integer >= {minimum}, got {raw!r:.40}."]})
        return value

    def get_limit(self, request):
        limit = self._int(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return self._int(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            minimum = {self.limit_query_param: 1, self.offset_query_param: 0}.get(parameter["name"])
            if minimum is not None:
                parameter["schema"] = {**parameter["schema"], "minimum": minimum}
        return parameters


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


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


NUL_MESSAGE = "contains a NUL character (\\u0000), which PostgreSQL cannot store or compare."


class NulCharacterMiddleware:
    """A NUL in a query parameter is a 400 naming the parameter, for every API view: PostgreSQL
    refuses NUL in text, so a filter such as ``?name=a%00`` would otherwise end as a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            for name, values in request.GET.lists():
                if _has_nul(name) or any(_has_nul(v) for v in values):
                    shown = name.replace("\x00", "\\u0000")
                    message = f"Query parameter '{shown}' {NUL_MESSAGE}"
                    return JsonResponse({"detail": message, "errors": {shown: [message]}}, status=400)
        return self.get_response(request)


def ordering_parameter(*allowed: str) -> OpenApiParameter:
    """The ``?ordering=`` that ``ordered(..., allowed=...)`` accepts, as a schema pattern (comma-separated
    fields, ``-`` to reverse), so the schema refuses what the view refuses."""
    field = "-?(" + "|".join(re.escape(f) for f in allowed) + ")"
    return OpenApiParameter(
        "ordering",
        OpenApiTypes.STR,
        pattern=f"^{field}(,{field})*$",
        description=f"{', '.join(allowed)}; comma-separated, prefix - to reverse.",
    )


def comma_separated_parameter(name: str, values, *, description: str) -> OpenApiParameter:
    """A ``?name=a,b`` filter of known values, as a schema pattern: the schema refuses what the view
    refuses (an unknown value is a 400 there)."""
    value = "(" + "|".join(re.escape(str(v)) for v in values) + ")"
    return OpenApiParameter(name, OpenApiTypes.STR, pattern=f"^{value}(,{value})*$", description=description)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object, documented as one: any other JSON value is a 400 that names the field."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        if _has_nul(value):  # jsonb refuses \u0000 too: a 400 here, not a DataError on save
            raise serializers.ValidationError(f"A key or string {NUL_MESSAGE}")
        return value


class Paginated:
    """Mixin for views whose GET returns a page: ``{count, next, previous, results}``.

    Setting ``pagination_class`` also tells drf-spectacular to document the page envelope.
    """

    pagination_class = Pagination

    def paginate(self, request, queryset, serializer_class, context: dict | None = None):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)


def paginate(view: Paginated, request, queryset, serializer_class, context: dict | None = None):
    return view.paginate(request, queryset, serializer_class, context)
