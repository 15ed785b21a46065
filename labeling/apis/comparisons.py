from django.conf import settings
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from common.exceptions import ServiceError
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params, upload_request
from labeling.models import Comparison, LabelSource, Ranking, Role
from labeling.services.comparisons import comparisons_import
from labeling.services.preferences import preferences_import


class ComparisonOutput(serializers.ModelSerializer):
    class CompletionOutput(serializers.Serializer):
        id = serializers.IntegerField()
        position = serializers.IntegerField()
        text = serializers.CharField()
        model_name = serializers.CharField()

    completions = CompletionOutput(many=True)

    class Meta:
        model = Comparison
        fields = ("id", "prompt", "split", "is_gold", "gold", "label_count", "metadata", "created_at", "completions")


JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")  # labeling.services.comparisons.iter_jsonl_upload


class ComparisonImportOutput(serializers.Serializer):
    """What labeling.services.comparisons.comparisons_import answers."""

    created = serializers.IntegerField(help_text="Comparisons created (the import is all or nothing).")
    gold = serializers.IntegerField(help_text="How many of them are gold comparisons (with a known ranking).")


class UploadInput(serializers.Serializer):
    file = serializers.FileField()


def checked_size(upload):
    limit = settings.RANKFORGE_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ServiceError(f"{upload.name} is {upload.size:,} bytes; the upload limit is {limit:,} bytes.", status=413)
    return upload


def uploaded(request):
    data = UploadInput(data=request.data)
    data.is_valid(raise_exception=True)
    return checked_size(data.validated_data["file"])


class ComparisonListImportApi(Paginated, ProjectAPIView):
    read_role = Role.REVIEWER
    parser_classes = [MultiPartParser]
    FILTERS = ("split", "is_gold")

    @extend_schema(responses=ComparisonOutput(many=True))
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=self.FILTERS)
        comparisons = Comparison.objects.filter(project=access.project).prefetch_related("completions")
        if split := request.query_params.get("split"):
            comparisons = comparisons.filter(split=split)
        if (is_gold := request.query_params.get("is_gold")) is not None:
            comparisons = comparisons.filter(is_gold=is_gold.lower() in ("1", "true"))
        comparisons = ordered(comparisons, request, allowed=("id", "label_count", "created_at"), default="id")
        return paginate(self, request, comparisons, ComparisonOutput)

    @extend_schema(
        request=upload_request(UploadInput, extensions=JSONL_EXTENSIONS, example="comparisons.jsonl"),
        responses={201: ComparisonImportOutput},
        summary="Import JSONL lines {prompt, completions: [K], split?, metadata?, gold?: {ranks, failed}}",
    )
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        upload = uploaded(request)
        result = comparisons_import(project=access.project, stream=upload, filename=upload.name)
        return Response(result, status=status.HTTP_201_CREATED)


class PreferenceImportInput(UploadInput):
    on_error = serializers.ChoiceField(choices=["fail", "skip"], default="fail")
    eval_fraction = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.1)


class PreferenceImportApi(ProjectAPIView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=upload_request(PreferenceImportInput, extensions=JSONL_EXTENSIONS, example="pairs.jsonl"),
        responses={201: dict},
        summary="Import labelled pairs: HH-RLHF {chosen, rejected} transcripts or {prompt, chosen, rejected}",
    )
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = PreferenceImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = checked_size(data.validated_data.pop("file"))
        result = preferences_import(project=access.project, stream=upload, filename=upload.name, **data.validated_data)
        return Response(result, status=status.HTTP_201_CREATED)


class StoredRankingOutput(serializers.ModelSerializer):
    labeler_username = serializers.CharField(source="labeler.username", read_only=True)

    class Meta:
        model = Ranking
        fields = (
            "id",
            "comparison",
            "assignment",
            "labeler",
            "labeler_username",
            "source",
            "orders",
            "comment",
            "time_spent_ms",
            "created_at",
        )


class RankingListApi(Paginated, ProjectAPIView):
    """Rankings of the project: reviewers and admins see all of them, a labeler only their own."""

    read_role = Role.LABELER
    FILTERS = ("labeler", "source", "comparison", "since")

    @extend_schema(responses=StoredRankingOutput(many=True))
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=self.FILTERS)
        rankings = Ranking.objects.filter(comparison__project=access.project).select_related("labeler")
        if not access.at_least(Role.REVIEWER):
            rankings = rankings.filter(labeler=request.user)
        params = request.query_params
        for name, lookup, cast in (("labeler", "labeler_id", int), ("comparison", "comparison_id", int)):
            if name in params:
                rankings = rankings.filter(**{lookup: _parsed(params[name], cast, name)})
        if "source" in params:
            if params["source"] not in LabelSource.values:
                raise ServiceError(f"source: unknown source {params['source']!r}; use one of {LabelSource.values}.")
            rankings = rankings.filter(source=params["source"])
        if "since" in params:
            since = parse_datetime(params["since"])
            if since is None:
                raise ServiceError(f"since: {params['since']!r} is not an ISO 8601 date-time.")
            rankings = rankings.filter(created_at__gte=since)
        rankings = ordered(rankings, request, allowed=("id", "created_at"), default="-id")
        return paginate(self, request, rankings, StoredRankingOutput)


def _parsed(value: str, cast, name: str):
    try:
        return cast(value)
    except ValueError:
        raise ServiceError(f"{name}: {value!r} is not a valid id.") from None
