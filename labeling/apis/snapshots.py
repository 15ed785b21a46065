"""Preference snapshots: create (202, built in the background), list, detail, download (read through the
artifact store, `common.storage`, on local disk or S3)."""

from types import SimpleNamespace

from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from labeling import pairs as conversion
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params
from labeling.models import PreferenceSnapshot, Role, SnapshotStatus
from labeling.services import snapshots as services


class SnapshotOutput(serializers.ModelSerializer):
    downloads = serializers.SerializerMethodField()
    hf_download = serializers.SerializerMethodField()

    class Meta:
        model = PreferenceSnapshot
        fields = (
            "id",
            "project",
            "version",
            "status",
            "options",
            "counts",
            "error",
            "created_by",
            "created_at",
            "finished_at",
            "downloads",
            "hf_download",
        )

    def get_downloads(self, snapshot) -> dict[str, dict[str, str]]:
        """``{split: {format: url}}`` for the splits the snapshot holds, once it is ready."""
        if snapshot.status != SnapshotStatus.READY:
            return {}
        url = reverse("project-snapshot-download", args=[snapshot.project_id, snapshot.pk])
        files = (snapshot.counts or {}).get("files", {})
        return {
            split: {fmt: f"{url}?format={fmt}&split={split}" for fmt in services.FILE_FORMATS}
            for split in conversion.SPLITS
            if f"{split}.jsonl" in files
        }

    def get_hf_download(self, snapshot) -> str | None:
        """The whole snapshot as a Hugging Face DatasetDict folder (a tar; ``&split=`` for one split's
        Dataset), once it is ready; null for a snapshot built before snapshots had that folder."""
        if snapshot.status != SnapshotStatus.READY or not services.has_hf_dataset(snapshot):
            return None
        url = reverse("project-snapshot-download", args=[snapshot.project_id, snapshot.pk])
        return f"{url}?format={services.HF}"


@extend_schema_field(
    {
        "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": [conversion.OVERALL]}],
        "nullable": True,
        "description": "A criterion id, 'overall' (orders made without a criterion), or null for every criterion.",
    }
)
class CriterionOptionField(serializers.Field):
    def to_internal_value(self, data):
        if data is None or data == conversion.OVERALL:
            return data
        if isinstance(data, bool):
            raise serializers.ValidationError(f"Must be a criterion id, {conversion.OVERALL!r} or null.")
        try:
            return int(data)
        except (TypeError, ValueError):
            raise serializers.ValidationError(f"Must be a criterion id, {conversion.OVERALL!r} or null.") from None

    def to_representation(self, value):
        return value


class SnapshotInput(serializers.Serializer):
    reject_unknown_fields = True  # validate() refuses unknown options: additionalProperties: false (common/openapi.py)
    mode = serializers.ChoiceField(choices=conversion.MODES, default=conversion.PER_LABELER)
    criterion = CriterionOptionField(required=False, allow_null=True, default=None)
    min_agreement = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    min_gold_accuracy = serializers.FloatField(min_value=0.0, max_value=1.0, allow_null=True, default=None)
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=conversion.SOURCES),
        allow_empty=False,
        default=list(conversion.SOURCES),
    )
    consensus_threshold = serializers.FloatField(
        min_value=0.0, max_value=1.0, default=0.5, help_text="consensus: least votes(winner) / voters kept."
    )
    include_gold = serializers.BooleanField(default=False, help_text="Export gold comparisons too.")

    def validate(self, attrs):
        unknown = sorted(set(getattr(self, "initial_data", {}) or {}) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: [f"Unknown option; allowed: {', '.join(sorted(self.fields))}."]}
            )
        return attrs


class SnapshotPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SnapshotOutput(many=True)


class SnapshotListCreateApi(Paginated, ProjectAPIView):
    """Preference snapshots of a project (reviewers and admins).

    POST answers 202 with the pending snapshot; the build runs on a worker. Poll the detail until
    ``status`` is ``ready`` (or ``failed``, with ``error``), then download its files.
    """

    read_role = Role.REVIEWER  # snapshots carry every labeler's work
    write_role = Role.REVIEWER

    @extend_schema(
        operation_id="projects_snapshots_list",
        parameters=[OpenApiParameter("status", enum=SnapshotStatus.values)],
        responses=SnapshotPage,
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("status",))
        snapshots = PreferenceSnapshot.objects.filter(project=access.project)
        if (value := request.query_params.get("status")) is not None:
            if value not in SnapshotStatus.values:
                raise ValidationError(
                    {"status": [f"Unknown status {value!r:.40}; use one of {', '.join(SnapshotStatus.values)}."]}
                )
            snapshots = snapshots.filter(status=value)
        snapshots = ordered(snapshots, request, allowed=("id", "version", "created_at", "status"), default="-version")
        return paginate(self, request, snapshots, SnapshotOutput)

    @extend_schema(operation_id="projects_snapshots_create", request=SnapshotInput, responses={202: SnapshotOutput})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = SnapshotInput(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = services.snapshot_create(
            project=access.project, created_by=request.user, options=data.validated_data
        )
        return Response(SnapshotOutput(snapshot).data, status=status.HTTP_202_ACCEPTED)


class SnapshotDetailApi(ProjectAPIView):
    """One snapshot: status, options, counts (pairs per split, what the filters dropped), downloads."""

    read_role = Role.REVIEWER

    @extend_schema(operation_id="projects_snapshots_retrieve", responses=SnapshotOutput)
    def get(self, request, project_id: int, snapshot_id: int):
        access = self.access(request, project_id)
        snapshot = get_object_or_404(PreferenceSnapshot, project=access.project, pk=snapshot_id)
        return Response(SnapshotOutput(snapshot).data)


class _FormatIsAFileFormat(DefaultContentNegotiation):
    """Here ``?format=`` names the file to download (jsonl, parquet, hf), not a DRF renderer."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class SnapshotDownloadApi(ProjectAPIView):
    """A ready snapshot's pairs: one split as JSONL or Parquet (columns prompt, chosen, rejected, margin,
    weight, ...), or ``format=hf``: the Hugging Face DatasetDict folder as a tar (with ``split``, that
    split's Dataset folder), for ``datasets.load_from_disk`` once extracted.

    409 while the snapshot is pending or building (or after it failed).
    """

    read_role = Role.REVIEWER
    content_negotiation_class = _FormatIsAFileFormat

    @extend_schema(
        operation_id="projects_snapshots_download",
        parameters=[
            OpenApiParameter(
                "format",
                enum=list(services.FORMATS),
                default="jsonl",
                description="jsonl or parquet: one split's file; hf: a Hugging Face dataset folder as a tar.",
            ),
            OpenApiParameter(
                "split",
                enum=list(conversion.SPLITS),
                description="The split (train when absent); with format=hf, absent means every split (a DatasetDict).",
            ),
        ],
        responses={
            (200, media_type): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=(
                    "jsonl, parquet: the split's pairs, one row each. hf: an uncompressed tar of one folder, "
                    "project{P}-snapshot-v{V}-hf (with split: -{split}-hf), as datasets' save_to_disk saves "
                    "a DatasetDict (with split: a Dataset); datasets.load_from_disk reads it once extracted."
                ),
            )
            for media_type in services.FORMATS.values()
        }
        | {
            400: OpenApiResponse(description="Unknown format or split."),
            404: OpenApiResponse(
                description="No such snapshot, no pairs in that split, or (format=hf) a snapshot built before "
                "snapshots had a Hugging Face dataset folder."
            ),
            409: OpenApiResponse(description="The snapshot is still pending or building, or it failed."),
        },
    )
    def get(self, request, project_id: int, snapshot_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("format", "split"))
        snapshot = get_object_or_404(PreferenceSnapshot, project=access.project, pk=snapshot_id)
        file_format = request.query_params.get("format", "jsonl")
        split = request.query_params.get("split")
        if file_format == services.HF:
            tar = services.snapshot_dataset_tar(snapshot=snapshot, split=split)
            response = StreamingHttpResponse(tar.chunks(), content_type=services.FORMATS[services.HF])
            response["Content-Length"] = str(tar.size)
            response["Content-Disposition"] = content_disposition_header(
                True, f"{services.hf_download_name(snapshot, split)}.tar"
            )
            return response
        split = "train" if split is None else split
        stored = services.snapshot_file(snapshot=snapshot, split=split, file_format=file_format)
        response = FileResponse(
            stored.open(),  # through the artifact store (a file, or an S3 object's stream); FileResponse closes it
            as_attachment=True,
            filename=f"project{snapshot.project_id}-snapshot-v{snapshot.version}-{split}.{file_format}",
            content_type=services.FORMATS[file_format],
        )
        response["Content-Length"] = str(stored.size)
        return response
