"""Datasets: upload (admins), list, detail and rows (reviewers and admins)."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from config.exceptions import ServiceError
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params
from labeling.models import Dataset, PromptRow, Role, Split
from labeling.selectors.datasets import dataset_rows, datasets_for_project
from labeling.services import datasets as services

# Room for the multipart envelope (boundaries, part headers, the small form fields) around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


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


def _check_declared_size(request, max_bytes: int) -> None:
    """Refuse an oversized upload from its Content-Length, before the body is read and spooled."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if declared > max_bytes + MULTIPART_OVERHEAD_BYTES:
        message = f"The upload is {declared:,} bytes; the upload limit is {max_bytes:,} bytes."
        raise ServiceError(message, errors=[{"line": None, "field": None, "message": message}], status=413)


class DatasetListCreateApi(Paginated, ProjectAPIView):
    read_role = Role.REVIEWER
    write_role = Role.ADMIN
    parser_classes = [MultiPartParser, FormParser]
    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ordering", OpenApiTypes.STR, description="id, name, created_at or row_count; prefix - to reverse."
            )
        ],
        responses=DatasetOutput(many=True),
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=())
        datasets = ordered(
            datasets_for_project(project=access.project),
            request,
            allowed=("id", "name", "created_at", "row_count"),
            default="id",
        )
        return paginate(self, request, datasets, DatasetOutput)

    @extend_schema(
        request={"multipart/form-data": DatasetUploadInput},
        responses={201: DatasetOutput},
        description=(
            "Import a JSONL or CSV file, streamed and atomic: a bad file imports nothing and the error names the "
            "line and field. A `split` column (train/eval/test) fixes each row's split; otherwise rows are split "
            "by a stable hash against `eval_fraction` and `test_fraction`. Files over the upload limit get a 413."
        ),
    )
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        max_bytes = settings.RANKFORGE_MAX_UPLOAD_BYTES
        _check_declared_size(request, max_bytes)
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
    pagination_class = LimitOffsetPagination

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
