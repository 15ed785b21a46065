"""GET /api/projects/{id}/stats/ai-audit/ and .../disagreements/: how the AI labeler agrees with people."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from labeling.apis.common import Paginated, ProjectAPIView, paginate, reject_unknown_params
from labeling.models import Role
from labeling.selectors.ai_audit import ai_audit, ai_disagreements


class AgreementRate(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True, help_text="agreements / pairs; null when no pair counted.")
    agreements = serializers.IntegerField()
    pairs = serializers.IntegerField()


class AuditRow(serializers.Serializer):
    principle = serializers.CharField(help_text='A principle key, or "all".')
    ai_labels = serializers.IntegerField()
    shared_with_humans = serializers.IntegerField(help_text="AI-labeled comparisons human labelers ranked too.")
    shared_with_imported = serializers.IntegerField(help_text="AI-labeled comparisons with imported labels.")
    ai_human_agreement = AgreementRate()
    human_human_agreement = AgreementRate(help_text="Between human labelers, on the same comparisons.")
    ai_imported_agreement = AgreementRate()
    disagreements = serializers.IntegerField(help_text="Comparisons where a person prefers the other side of a pair.")


class AuditOutput(serializers.Serializer):
    project = serializers.IntegerField()
    spot_check_rate = serializers.FloatField()
    overall = AuditRow()
    principles = AuditRow(many=True)


class PersonOrder(serializers.Serializer):
    source = serializers.CharField()
    labeler = serializers.IntegerField()
    order = serializers.DictField(help_text='{completion_id: score}, lower is better; "F" marks nonsense.')


class DisagreementOutput(serializers.Serializer):
    comparison = serializers.IntegerField()
    prompt = serializers.CharField()
    split = serializers.CharField()
    completions = serializers.ListField(child=serializers.DictField())
    principle = serializers.CharField()
    ai = serializers.DictField(help_text="{order, details: {principle, probability, pairs, constitution, run}}")
    people = PersonOrder(many=True)


class AiAuditApi(ProjectAPIView):
    """AI-human agreement beside human-human agreement, overall and per principle (reviewers, admins)."""

    read_role = Role.REVIEWER

    @extend_schema(responses=AuditOutput)
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=())
        return Response(AuditOutput(ai_audit(project=access.project)).data)


class AiDisagreementsApi(Paginated, ProjectAPIView):
    """The comparisons where the AI labeler and a person disagree, newest first, for review."""

    read_role = Role.REVIEWER

    @extend_schema(
        parameters=[OpenApiParameter("principle", str, description="Only this principle's AI labels.")],
        responses=DisagreementOutput(many=True),
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("principle",))
        rows = ai_disagreements(project=access.project, principle=request.query_params.get("principle") or None)
        return paginate(self, request, rows, DisagreementOutput)
