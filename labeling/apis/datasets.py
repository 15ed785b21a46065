"""Datasets: upload (admins), list, detail and rows (reviewers and admins)."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from common.api import ordering_parameter
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params, upload_request
from labeling.models import Dataset, PromptRow, Role, Split
from labeling.selectors.datasets import dataset_rows, datasets_for_project
from labeling.services import datasets as services

DATASET_ORDERING = ("id", "name", "created_at", "row_count")


class DatasetOutput(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = (
            "id",
            "name",
            "source_filename",
            "fields",
            "row_count",
            "split_counts",
            "created_by",
            "created_at",
        )


class DatasetUploadInput(serializers.Serializer):
    file = serializers.FileField(help_text="A .jsonl (one JSON object per line) or .csv (with a header) file.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    eval_fraction = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, default=0.1)
    test_fraction = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, default=0.0)


class PromptRowOutput(serializers.ModelSerializer):
    class Meta:
        model = PromptRow
        fields = ("id", "index", "split", "data")


class DatasetListCreateApi(Paginated, ProjectAPIView):
    read_role = Role.REVIEWER
    write_role = Role.ADMIN
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        parameters=[ordering_parameter(*DATASET_ORDERING)],
        responses=DatasetOutput(many=True),
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=())
        datasets = ordered(
            datasets_for_project(project=access.project),
            request,
            allowed=DATASET_ORDERING,
            default="id",
        )
        return paginate(self, request, datasets, DatasetOutput)

    @extend_schema(
        request=upload_request(
            DatasetUploadInput, extensions=(".jsonl", ".ndjson", ".json", ".csv"), example="rows.jsonl"
        ),
        responses={201: DatasetOutput},
        description=(
            "Import a JSONL or CSV file, streamed and atomic: a bad file imports nothing and the error names the "
            "line and field. A `split` column (train/eval/test) fixes each row's split; otherwise rows are split "
            "by a stable hash against `eval_fraction` and `test_fraction`. Files over the upload limit get a 413."
        ),
    )
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        # An oversized body never gets here: common.uploads refuses it from its Content-Length, or
        # while its file streams in, before it is spooled (also on the CSRF check's first read).
        max_bytes = settings.RANKFORGE_MAX_UPLOAD_BYTES
        data = DatasetUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        upload.seek(0)
        dataset = services.dataset_import(
            project=access.project,
            stream=upload,
            filename=upload.name or "upload",
            size=upload.size,
            max_bytes=max_bytes,
            name=data.validated_data["name"],
            eval_fraction=data.validated_data["eval_fraction"],
            test_fraction=data.validated_data["test_fraction"],
            created_by=request.user,
        )
        return Response(DatasetOutput(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(ProjectAPIView):
    read_role = Role.REVIEWER

    @extend_schema(responses=DatasetOutput)
    def get(self, request, project_id: int, dataset_id: int):
        access = self.access(request, project_id)
        dataset = get_object_or_404(Dataset, project=access.project, pk=dataset_id)
        return Response(DatasetOutput(dataset).data)


class DatasetRowsApi(Paginated, ProjectAPIView):
    read_role = Role.REVIEWER

    @extend_schema(
        parameters=[
            OpenApiParameter("split", OpenApiTypes.STR, enum=Split.values, description="Only rows of this split."),
            OpenApiParameter("ordering", OpenApiTypes.STR, enum=["index", "-index"], description="Default: index."),
        ],
        responses=PromptRowOutput(many=True),
    )
    def get(self, request, project_id: int, dataset_id: int):
        access = self.access(request, project_id)
        dataset = get_object_or_404(Dataset, project=access.project, pk=dataset_id)
        reject_unknown_params(request, allowed=("split",))
        split = request.query_params.get("split")
        if split is not None and split not in Split.values:
            raise ValidationError({"split": [f"Unknown split {split!r}; allowed: {', '.join(Split.values)}."]})
        rows = ordered(dataset_rows(dataset=dataset, split=split), request, allowed=("index",), default="index")
        return paginate(self, request, rows, PromptRowOutput)
