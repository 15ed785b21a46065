"""GET /api/projects/{id}/stats/: progress, agreement, per-labeler quality."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from common.api import comma_separated_parameter
from labeling.apis.common import ProjectAPIView, reject_unknown_params
from labeling.models import LabelSource, Role
from labeling.selectors.stats import DEFAULT_SOURCES, QUALITY_BUCKET_PP, QUALITY_WINDOW, project_stats


class StatsProgressOutput(serializers.Serializer):
    overlap = serializers.IntegerField(help_text="Distinct labelers each comparison needs.")
    comparisons_total = serializers.IntegerField(help_text="Comparisons, gold excluded.")
    complete = serializers.IntegerField(help_text="Non-gold comparisons with label_count >= overlap.")
    in_progress = serializers.IntegerField(help_text="Other non-gold comparisons with a ranking or a live lease.")
    not_started = serializers.IntegerField()
    ai_only = serializers.IntegerField(help_text="AI-labeled comparisons taken out of the human queue.")
    gold_total = serializers.IntegerField()
    rankings_total = serializers.IntegerField(help_text="Rankings from the selected sources.")
    skipped = serializers.IntegerField(help_text="Skipped assignments.")
    live_leases = serializers.IntegerField()


class StatsAgreementOutput(serializers.Serializer):
    items = serializers.IntegerField(help_text="(comparison, criterion) orders ranked at least once.")
    shared_items = serializers.IntegerField(help_text="Items ranked by two or more labelers.")
    pairwise_rate = serializers.FloatField(
        allow_null=True,
        help_text="Share of completion pairs, ordered strictly by both labelers of a labeler pair, "
        "that they order the same way.",
    )
    pairwise_agreements = serializers.IntegerField()
    pairwise_pairs = serializers.IntegerField()
    pairwise_one_sided_ties = serializers.IntegerField(help_text="Pairs left out: one labeler tied them.")
    kendall_tau_b = serializers.FloatField(allow_null=True, help_text="Mean over (item, labeler pair).")
    kendall_tau_b_cases = serializers.IntegerField()
    kendall_tau_b_undefined = serializers.IntegerField(help_text="Cases skipped: an order tied everything.")
    krippendorff_alpha_ordinal = serializers.FloatField(allow_null=True)
    krippendorff_units = serializers.IntegerField(help_text="Pairable (item, completion) units.")
    krippendorff_values = serializers.IntegerField()


class StatsLabelerOutput(serializers.Serializer):
    labeler = serializers.IntegerField()
    username = serializers.CharField()
    rankings = serializers.IntegerField()
    skipped = serializers.IntegerField()
    throughput_per_hour = serializers.FloatField(allow_null=True, help_text="Tasks per hour of time spent.")
    median_seconds_per_task = serializers.FloatField(allow_null=True)
    gold_accuracy = serializers.FloatField(
        allow_null=True,
        help_text="Share of gold strict pairs ordered right. Coarse for a labeler's own row: over whole windows of "
        f"{QUALITY_WINDOW} gold comparisons, rounded down to {QUALITY_BUCKET_PP} percentage points.",
    )
    gold_pairs = serializers.IntegerField(help_text="Gold pairs the figure covers.")
    gold_comparisons = serializers.IntegerField(
        allow_null=True, help_text="Coarse figures: the gold comparisons covered (whole windows); null when exact."
    )
    consensus_agreement = serializers.FloatField(
        allow_null=True,
        help_text="Share of pairs agreeing with the other labelers' majority. Coarse for a labeler's own row: over "
        f"whole windows of {QUALITY_WINDOW} of their comparisons once all are complete, rounded down to "
        f"{QUALITY_BUCKET_PP} percentage points.",
    )
    consensus_pairs = serializers.IntegerField(help_text="Pairs the figure covers.")
    consensus_comparisons = serializers.IntegerField(
        allow_null=True, help_text="Coarse figures: the comparisons covered (whole windows); null when exact."
    )


class ProjectStatsOutput(serializers.Serializer):
    project = serializers.IntegerField()
    criterion = serializers.IntegerField(allow_null=True)
    sources = serializers.ListField(child=serializers.ChoiceField(choices=LabelSource.choices))
    progress = StatsProgressOutput()
    agreement = StatsAgreementOutput(allow_null=True, help_text="Reviewers and admins only; null for labelers.")
    figures = serializers.ChoiceField(
        choices=["exact", "coarse"],
        help_text="exact for reviewers and admins; coarse for a labeler, so that no single item's gold answer or "
        "consensus can be read off their own figures.",
    )
    labelers = StatsLabelerOutput(many=True, help_text="Labelers see only their own row.")


class ProjectStatsApi(ProjectAPIView):
    """Progress, inter-labeler agreement and per-labeler quality for one project.

    Reviewers and admins get everything; a labeler gets the progress counts and their own row only,
    with coarse quality figures (``figures: coarse``).
    Human rankings by default (``sources`` adds ai / imported ones); ``criterion`` narrows the
    agreement and per-labeler figures to one criterion's orders.
    """

    read_role = Role.LABELER

    class FilterSerializer(serializers.Serializer):
        criterion = serializers.IntegerField(required=False, min_value=1)
        sources = serializers.CharField(required=False)

        def validate_sources(self, value: str) -> list[str]:
            sources = [s.strip() for s in value.split(",") if s.strip()]
            unknown = [s for s in sources if s not in LabelSource.values]
            if unknown or not sources:
                raise serializers.ValidationError(
                    f"Unknown label source {unknown[0] if unknown else value!r}; "
                    f"allowed: {', '.join(LabelSource.values)}."
                )
            return sources

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "criterion",
                {"type": "integer", "minimum": 1},
                description="Statistics for this criterion's orders only; without it, every order counts.",
            ),
            comma_separated_parameter(
                "sources",
                LabelSource.values,
                description="Comma-separated label sources to include: human (default), ai, imported.",
            ),
        ],
        responses=ProjectStatsOutput,
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("criterion", "sources"))
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        stats = project_stats(
            project=access.project,
            criterion_id=filters.validated_data.get("criterion"),
            sources=filters.validated_data.get("sources", DEFAULT_SOURCES),
            only_labeler=None if access.at_least(Role.REVIEWER) else request.user,
        )
        return Response(ProjectStatsOutput(stats).data)
