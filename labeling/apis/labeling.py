"""The labeler's loop: next -> ranking (or skip). Kept lean: these are the hot endpoints."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
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
        return Response(LeaseOutput(lease).data)


class OrderInput(serializers.Serializer):
    ranks = serializers.JSONField(help_text="{completion_id: rank} (1 is best; ties allowed) or [{completion, rank}]")
    failed = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class RankingInput(serializers.Serializer):
    ranks = serializers.JSONField(required=False, help_text="{completion_id: rank}; omit when ranking per criterion")
    failed = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    criteria = serializers.DictField(child=OrderInput(), required=False, help_text="{criterion_id: {ranks, failed}}")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    time_spent_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=86_400_000)


class RankingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField()
    comparison = serializers.IntegerField()
    orders = serializers.JSONField(help_text="[{criterion, ranks: {completion_id: rank}, failed: [id]}]")
    comment = serializers.CharField()
    time_spent_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RankingSubmitApi(APIView):
    @extend_schema(
        request=RankingInput,
        responses={201: RankingOutput, 200: OpenApiResponse(RankingOutput, description="A repeated submit")},
        summary="Submit the ranking for your lease (idempotent: a retry returns the first ranking)",
    )
    def post(self, request, assignment_id: int):
        data = RankingInput(data=request.data)
        data.is_valid(raise_exception=True)
        payload = {key: value for key, value in data.validated_data.items() if key in request.data or key == "failed"}
        ranking, created = ranking_submit(assignment_id=assignment_id, labeler=request.user, payload=payload)
        return Response(RankingOutput(ranking).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()


class SkipApi(APIView):
    @extend_schema(request=None, responses=SkipOutput, summary="Give the lease back without ranking")
    def post(self, request, assignment_id: int):
        state = assignment_skip(assignment_id=assignment_id, labeler=request.user)
        return Response({"id": assignment_id, "state": state})
