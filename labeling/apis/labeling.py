"""The labeler's loop: next -> ranking (or skip).

These are the hot endpoints (every task of every labeler), so they build their JSON directly: DRF
serializers cost more CPU per request than the SQL does. The serializer classes below document the
shapes in the OpenAPI schema, and tests check the responses against them.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.services.assignments import assignment_next, assignment_skip, ranking_submit


class LeaseCompletionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    text = serializers.CharField()


class LeaseOutput(serializers.Serializer):
    """What a labeler sees: no gold flag, no other labelers' work."""

    class LeaseAssignmentOutput(serializers.Serializer):
        id = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        expires_at = serializers.DateTimeField()

    class LeaseComparisonOutput(serializers.Serializer):
        id = serializers.IntegerField()
        prompt = serializers.CharField()

    assignment = LeaseAssignmentOutput()
    comparison = LeaseComparisonOutput()
    completions = LeaseCompletionOutput(many=True)


class NextApi(APIView):
    @extend_schema(
        responses={200: LeaseOutput, 204: OpenApiResponse(description="Nothing is left for you to label.")},
        summary="Your live lease, or a new one on the comparison that most needs a label",
    )
    def get(self, request, project_id: int):
        lease = assignment_next(project_id=project_id, labeler=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(lease_json(lease))


def lease_json(lease) -> dict:
    """LeaseOutput's shape, built by hand (dataclasses.asdict deep-copies: slower on the hot path)."""
    assignment, comparison = lease.assignment, lease.comparison
    return {
        "assignment": {"id": assignment.id, "created_at": assignment.created_at, "expires_at": assignment.expires_at},
        "comparison": {"id": comparison.id, "prompt": comparison.prompt},
        "completions": [{"id": c.id, "position": c.position, "text": c.text} for c in lease.completions],
    }


MAX_COMMENT = 10_000
MAX_TIME_MS = 86_400_000


# The shapes labeling.ranking_rules reads; which completions (the lease's comparison's) and the ranks'
# range (1..K) are the comparison's.
_RANK = {"type": "integer", "minimum": 1}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": _RANK, "description": "{completion_id: rank}"},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"completion": {"type": "integer"}, "rank": _RANK},
                    "required": ["completion", "rank"],
                },
            },
        ]
    }
)
class RanksField(serializers.JSONField):
    pass


class OrderInput(serializers.Serializer):
    ranks = RanksField(help_text="{completion_id: rank} (1 is best; ties allowed) or [{completion, rank}]")
    failed = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class RankingInput(serializers.Serializer):
    reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
    ranks = RanksField(required=False, help_text="{completion_id: rank}; omit when ranking per criterion")
    failed = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    criteria = serializers.DictField(child=OrderInput(), required=False, help_text="{criterion_id: {ranks, failed}}")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_COMMENT)
    time_spent_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_TIME_MS)


class RankingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField()
    comparison = serializers.IntegerField()
    orders = serializers.JSONField(help_text="[{criterion, ranks: {completion_id: rank}, failed: [id]}]")
    comment = serializers.CharField(allow_blank=True)
    time_spent_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RankingSubmitApi(APIView):
    # ranks and criteria are JSON objects and time_spent_ms a JSON integer: a form cannot carry them.
    parser_classes = [JSONParser]

    @extend_schema(
        request=RankingInput,
        responses={201: RankingOutput, 200: OpenApiResponse(RankingOutput, description="A repeated submit")},
        summary="Submit the ranking for your lease (idempotent: a retry returns the first ranking)",
    )
    def post(self, request, assignment_id: int):
        ranking, created = ranking_submit(
            assignment_id=assignment_id, labeler=request.user, payload=submit_payload(request.data)
        )
        body = {
            "id": ranking.id,
            "assignment": ranking.assignment,
            "comparison": ranking.comparison,
            "orders": ranking.orders,
            "comment": ranking.comment,
            "time_spent_ms": ranking.time_spent_ms,
            "created_at": ranking.created_at,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# Built once: a serializer's fields are deep-copied on every instance, a cost the hot path skips.
SUBMIT_FIELDS = tuple(RankingInput().fields)


def submit_payload(data) -> dict:
    """Check the envelope of a submit (the service checks the ranking itself against the comparison)."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Send a JSON object: {ranks, failed, comment, time_spent_ms}."]})
    unknown = sorted(set(data) - set(SUBMIT_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: [f"Unknown field; send {', '.join(SUBMIT_FIELDS)}."]})
    comment = data.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ValidationError({"comment": [f"Expected text of at most {MAX_COMMENT:,} characters."]})
    time_spent_ms = data.get("time_spent_ms")
    if time_spent_ms is not None and (
        isinstance(time_spent_ms, bool) or not isinstance(time_spent_ms, int) or not 0 <= time_spent_ms <= MAX_TIME_MS
    ):
        raise ValidationError({"time_spent_ms": [f"Expected whole milliseconds in 0..{MAX_TIME_MS}, or null."]})
    return {**data, "comment": comment, "time_spent_ms": time_spent_ms}


class SkipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()


class SkipApi(APIView):
    @extend_schema(request=None, responses=SkipOutput, summary="Give the lease back without ranking")
    def post(self, request, assignment_id: int):
        state = assignment_skip(assignment_id=assignment_id, labeler=request.user)
        return Response({"id": assignment_id, "state": state})
