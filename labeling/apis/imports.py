"""POST /api/projects/{id}/imports/: rankings made in Label Studio or Argilla (project admins)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from common.exceptions import ServiceError
from labeling.apis.common import ProjectAPIView, upload_request
from labeling.apis.comparisons import UploadInput, checked_size
from labeling.external_formats import FORMATS
from labeling.services.external_imports import ON_ERROR, external_import, parse_annotators

EXTENSIONS = (".json", ".jsonl", ".ndjson", ".zip", ".tar.gz", ".tgz")


class ExternalImportInput(UploadInput):
    format = serializers.ChoiceField(
        choices=FORMATS, help_text="label_studio: a JSON export; argilla: ranking records or a packed dataset folder."
    )
    on_error = serializers.ChoiceField(
        choices=ON_ERROR, default="fail", help_text="fail: a bad task imports nothing; skip: bad tasks are listed."
    )
    eval_fraction = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.1)
    create_members = serializers.BooleanField(
        default=False,
        help_text="Make annotators who are not members labelers of the project, creating accounts (no password) "
        "for the unknown ones. Without it such an import is refused, naming them.",
    )
    annotators = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='A JSON object {"their id or email": "username or email"}: who each annotator is here.',
    )
    prompt_field = serializers.CharField(required=False, allow_blank=True, max_length=200)
    completion_fields = serializers.CharField(
        required=False, allow_blank=True, help_text="Label Studio pairwise: the left and right data fields, a,b."
    )
    items_field = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Label Studio ranker: the data field of the items."
    )
    bucket_order = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Label Studio ranker buckets, best first, comma-separated (_ is the items left unsorted).",
    )
    failed_buckets = serializers.CharField(
        required=False, allow_blank=True, help_text="Label Studio ranker buckets whose items are marked F."
    )
    question = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Argilla: the RankingQuestion's name."
    )

    def validate_annotators(self, value):
        try:
            parse_annotators(value)
        except ServiceError as exc:
            raise serializers.ValidationError(exc.errors["annotators"]) from None
        return value


class ExternalImportOutput(serializers.Serializer):
    class Members(serializers.Serializer):
        matched = serializers.ListField(child=serializers.CharField())
        added = serializers.ListField(child=serializers.CharField(), help_text="Users made labelers.")
        created = serializers.ListField(child=serializers.CharField(), help_text="New accounts, no password yet.")

    format = serializers.CharField()
    items = serializers.IntegerField(help_text="Tasks or records read.")
    comparisons_created = serializers.IntegerField()
    comparisons_existing = serializers.IntegerField(help_text="Imported before: found by their task or record id.")
    rankings_created = serializers.IntegerField()
    rankings_existing = serializers.IntegerField(help_text="Already there (one per comparison and person).")
    rankings_existing_differ = serializers.IntegerField(help_text="Of those, how many the file orders otherwise.")
    unlabeled = serializers.IntegerField(help_text="Items with no ranking to import.")
    left_out = serializers.DictField(
        child=serializers.IntegerField(), help_text="Annotations not imported, by reason (cancelled, draft, ...)."
    )
    skipped = serializers.IntegerField()
    skipped_items = serializers.ListField(child=serializers.DictField(), help_text="The first 100 skipped.")
    members = Members()


class ExternalImportApi(ProjectAPIView):
    """Rankings made elsewhere become comparisons ranked by the annotators they name (project admins).

    A Label Studio JSON export (Ranker or Pairwise configs), or Argilla RankingQuestion records (1.x
    or 2.x, JSON or JSONL, or a .zip / .tar.gz of a saved dataset folder). Annotators are matched to
    members by username or email; with create_members the others become labelers (new accounts have
    no password). Importing the same tasks again adds nothing. A bad task is a 400 naming it, its
    field and value, and imports nothing (on_error=skip lists it instead).
    """

    parser_classes = [MultiPartParser]

    @extend_schema(
        request=upload_request(ExternalImportInput, extensions=EXTENSIONS, example="export.json"),
        responses={201: ExternalImportOutput},
        summary="Import rankings from a Label Studio JSON export or Argilla ranking records",
    )
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = ExternalImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        upload = checked_size(fields.pop("file"))
        result = external_import(project=access.project, stream=upload, filename=upload.name, **fields)
        return Response(ExternalImportOutput(result).data, status=status.HTTP_201_CREATED)
