"""GET /api/projects/{id}/stats/timeline/: progress, agreement and throughput per hour or day."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from common.api import comma_separated_parameter
from labeling.apis.common import ProjectAPIView, reject_unknown_params
from labeling.apis.stats import ProjectStatsApi
from labeling.models import LabelSource, Role
from labeling.selectors.stats import DEFAULT_SOURCES
from labeling.selectors.stats_timeline import BUCKETS, project_stats_timeline


class TimelineBucketOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive.")
    rankings = serializers.IntegerField(help_text="Rankings submitted in this bucket (with an order that counts).")
    completed = serializers.IntegerField(
        help_text="Non-gold comparisons with `overlap` human rankings by the bucket's end (cumulative)."
    )
    shared_items = serializers.IntegerField(help_text="Items ranked by two or more labelers by the bucket's end.")
    pairwise_rate = serializers.FloatField(
        allow_null=True, help_text="Pairwise agreement rate over every ranking up to the bucket's end."
    )
    pairwise_pairs = serializers.IntegerField()
    alpha_computed = serializers.BooleanField(
        help_text="Whether alpha was computed at this bucket's end (a bounded number of buckets are, the last always)."
    )
    krippendorff_alpha_ordinal = serializers.FloatField(
        allow_null=True, help_text="Over every ranking up to the bucket's end; null when not computed or undefined."
    )
    krippendorff_units = serializers.IntegerField(allow_null=True)


class TimelineLabelerOutput(serializers.Serializer):
    labeler = serializers.IntegerField()
    username = serializers.CharField()
    rankings = serializers.IntegerField(help_text="Rankings over the whole timeline.")
    per_bucket = serializers.ListField(
        child=serializers.IntegerField(), help_text="Rankings per bucket, aligned with `buckets`."
    )


class RankPositionOutput(serializers.Serializer):
    position = serializers.IntegerField(help_text="Completion position in the comparison, 0-based.")
    orders = serializers.IntegerField(help_text="Orders that placed this position.")
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="Aligned with `levels`.")


class RankDistributionOutput(serializers.Serializer):
    levels = serializers.ListField(
        child=serializers.CharField(), help_text='"1".."K" (dense ranks: ties share a level, gaps vanish), then "F".'
    )
    positions = RankPositionOutput(many=True)


class ProjectStatsTimelineOutput(serializers.Serializer):
    project = serializers.IntegerField()
    bucket = serializers.ChoiceField(choices=list(BUCKETS))
    timezone = serializers.CharField(help_text="Buckets start on whole hours / days of this time zone.")
    criterion = serializers.IntegerField(allow_null=True)
    sources = serializers.ListField(child=serializers.ChoiceField(choices=LabelSource.choices))
    overlap = serializers.IntegerField()
    comparisons_total = serializers.IntegerField(help_text="Non-gold comparisons now.")
    complete = serializers.IntegerField(help_text="Non-gold comparisons complete now (label_count >= overlap).")
    buckets = TimelineBucketOutput(many=True, help_text="From the first ranking's bucket to the last's.")
    labelers = TimelineLabelerOutput(many=True, help_text="Throughput: rankings per bucket per labeler.")
    rank_distribution = RankDistributionOutput(help_text="How often each completion position got each level.")


class ProjectStatsTimelineApi(ProjectAPIView):
    """Progress, agreement and throughput over time, and the rank distribution per completion position.

    For the reviewers' and admins' quality dashboard. Agreement at a bucket is computed over every
    ranking up to its end, as ``GET .../stats/`` computes it now.
    """

    read_role = Role.REVIEWER

    class FilterSerializer(ProjectStatsApi.FilterSerializer):
        bucket = serializers.ChoiceField(choices=list(BUCKETS), required=False, default="day")

    @extend_schema(
        parameters=[
            OpenApiParameter("bucket", OpenApiTypes.STR, enum=list(BUCKETS), default="day", description="UTC buckets."),
            OpenApiParameter(
                "criterion", {"type": "integer", "minimum": 1}, description="This criterion's orders only."
            ),
            comma_separated_parameter(
                "sources",
                LabelSource.values,
                description="Comma-separated label sources: human (default), ai, imported.",
            ),
        ],
        responses=ProjectStatsTimelineOutput,
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("bucket", "criterion", "sources"))
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        timeline = project_stats_timeline(
            project=access.project,
            bucket=filters.validated_data["bucket"],
            criterion_id=filters.validated_data.get("criterion"),
            sources=filters.validated_data.get("sources", DEFAULT_SOURCES),
        )
        return Response(ProjectStatsTimelineOutput(timeline).data)
