"""Prompt templates: list/read (labelers), create/edit/delete (admins), preview (reviewers)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from common.api import NUL_MESSAGE, _has_nul, ordering_parameter
from labeling.apis.common import Paginated, ProjectAPIView, ordered, paginate, reject_unknown_params
from labeling.models import Project, PromptTemplate, Role
from labeling.selectors.datasets import (
    dataset_in_project,
    prompt_row_at,
    prompt_row_in_project,
    templates_for_project,
)
from labeling.services import templates as services

TEMPLATE_ORDERING = ("id", "name", "created_at")


class PromptTemplateOutput(serializers.ModelSerializer):
    is_default = serializers.SerializerMethodField()

    class Meta:
        model = PromptTemplate
        fields = (
            "id",
            "name",
            "dataset",
            "text",
            "example_text",
            "examples",
            "example_separator",
            "is_default",
            "created_at",
        )

    def get_is_default(self, template) -> bool:
        return template.pk is not None and template.pk == self.context.get("default_template_id")


# A field value of a few-shot example or a literal row, as the service checks it: a string, a (finite)
# number, a boolean or null -- never an object or a list.
FIELD_VALUE_SCHEMA = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True}


EXAMPLES_SCHEMA = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": FIELD_VALUE_SCHEMA},
    "maxItems": services.MAX_EXAMPLES,
}


@extend_schema_field(EXAMPLES_SCHEMA)
class ExamplesField(serializers.ListField):
    """Stored as jsonb, which cannot hold a NUL: one is a 400 here, not a DataError on save."""

    child = serializers.DictField()

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _has_nul(value):
            raise serializers.ValidationError(f"A key or string {NUL_MESSAGE}")
        return value


@extend_schema_field(EXAMPLES_SCHEMA)
class DraftExamplesField(serializers.JSONField):
    """Any JSON here; the service checks it as it checks a template's examples."""


class PromptTemplateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    text = serializers.CharField(
        trim_whitespace=False, help_text="The prompt with {field} placeholders; {{ and }} are literal braces."
    )
    example_text = serializers.CharField(
        trim_whitespace=False,
        allow_blank=True,
        required=False,
        help_text="How each few-shot example renders; empty means `text`.",
    )
    examples = ExamplesField(required=False, help_text="Few-shot examples: objects of field values.")
    example_separator = serializers.CharField(
        max_length=64, trim_whitespace=False, allow_blank=True, required=False, help_text='Default "\\n\\n\\n".'
    )
    dataset = serializers.IntegerField(
        allow_null=True, required=False, help_text="A dataset of this project; the text is checked against its fields."
    )
    make_default = serializers.BooleanField(required=False, help_text="Make (or, with false, unmake) it the default.")


class TemplateDraftInput(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
    example_text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    examples = DraftExamplesField(required=False)
    example_separator = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=64)


class TemplatePreviewInput(serializers.Serializer):
    # validate()'s rule, in the schema (common/openapi.py): exactly one of row_id, index, row; dataset
    # only with index.
    schema_rules = {
        "oneOf": [{"required": ["row_id"]}, {"required": ["index"]}, {"required": ["row"]}],
        "anyOf": [{"required": ["index"]}, {"not": {"required": ["dataset"]}}],
    }

    row_id = serializers.IntegerField(required=False, help_text="A stored prompt row of this project.")
    index = serializers.IntegerField(min_value=0, required=False, help_text="Row index in `dataset`.")
    dataset = serializers.IntegerField(required=False, help_text="With `index`; defaults to the template's dataset.")
    row = serializers.DictField(required=False, help_text="A literal row: an object of field values.")
    context_window = serializers.IntegerField(min_value=1, required=False, default=services.DEFAULT_CONTEXT_WINDOW)
    draft = TemplateDraftInput(required=False, help_text="Unsaved edits to preview instead of the stored template.")

    def validate(self, attrs):
        given = [key for key in ("row_id", "index", "row") if key in attrs]
        if len(given) != 1:
            raise serializers.ValidationError("Give exactly one of `row_id`, `index` (with `dataset`) or `row`.")
        if "dataset" in attrs and "index" not in attrs:
            raise serializers.ValidationError({"dataset": ["`dataset` goes with `index`."]})
        return attrs


class TemplatePreviewOutput(serializers.Serializer):
    prompt = serializers.CharField()
    token_estimate = serializers.IntegerField(help_text="A rough, tokenizer-free estimate.")
    fields_used = serializers.ListField(child=serializers.CharField())
    context_window = serializers.IntegerField()
    warning = serializers.CharField(allow_null=True, help_text="Set when the estimate exceeds the context window.")
    row_id = serializers.IntegerField(allow_null=True)


def _resolve_dataset(project: Project, validated: dict) -> dict:
    """Turn the `dataset` id into a Dataset of this project (or a 400 naming it)."""
    fields = dict(validated)
    if fields.get("dataset") is not None:
        dataset = dataset_in_project(project=project, dataset_id=fields["dataset"])
        if dataset is None:
            raise ValidationError({"dataset": [f"No dataset {fields['dataset']} in project {project.id}."]})
        fields["dataset"] = dataset
    return fields


class TemplateListCreateApi(Paginated, ProjectAPIView):
    read_role = Role.LABELER
    write_role = Role.ADMIN
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "dataset", {"type": "integer", "minimum": 1}, description="Only templates checked against this dataset."
            ),
            ordering_parameter(*TEMPLATE_ORDERING),
        ],
        responses=PromptTemplateOutput(many=True),
    )
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=("dataset",))
        dataset_id = request.query_params.get("dataset")
        if dataset_id is not None and not dataset_id.isdigit():
            raise ValidationError({"dataset": [f"Expected a dataset id, got {dataset_id!r}."]})
        templates = templates_for_project(
            project=access.project, dataset_id=int(dataset_id) if dataset_id is not None else None
        )
        templates = ordered(templates, request, allowed=TEMPLATE_ORDERING, default="id")
        context = {"default_template_id": access.project.prompt_template_id}
        return paginate(self, request, templates, PromptTemplateOutput, context=context)

    @extend_schema(request=PromptTemplateInput, responses={201: PromptTemplateOutput})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = PromptTemplateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = _resolve_dataset(access.project, data.validated_data)
        template = services.template_create(project=access.project, **fields)
        access.project.refresh_from_db(fields=["prompt_template"])
        context = {"default_template_id": access.project.prompt_template_id}
        return Response(PromptTemplateOutput(template, context=context).data, status=status.HTTP_201_CREATED)


class TemplateDetailApi(ProjectAPIView):
    read_role = Role.LABELER
    write_role = Role.ADMIN
    parser_classes = [JSONParser]

    @extend_schema(responses=PromptTemplateOutput)
    def get(self, request, project_id: int, template_id: int):
        access = self.access(request, project_id)
        template = get_object_or_404(PromptTemplate, project=access.project, pk=template_id)
        context = {"default_template_id": access.project.prompt_template_id}
        return Response(PromptTemplateOutput(template, context=context).data)

    @extend_schema(request=PromptTemplateInput(partial=True), responses=PromptTemplateOutput)
    def patch(self, request, project_id: int, template_id: int):
        access = self.access(request, project_id)
        template = get_object_or_404(PromptTemplate, project=access.project, pk=template_id)
        data = PromptTemplateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = _resolve_dataset(access.project, data.validated_data)
        template = services.template_update(template=template, **fields)
        access.project.refresh_from_db(fields=["prompt_template"])
        context = {"default_template_id": access.project.prompt_template_id}
        return Response(PromptTemplateOutput(template, context=context).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, template_id: int):
        access = self.access(request, project_id)
        template = get_object_or_404(PromptTemplate, project=access.project, pk=template_id)
        services.template_delete(template=template)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TemplatePreviewApi(ProjectAPIView):
    # A preview can show any stored row, and rows are for reviewers and admins.
    write_role = Role.REVIEWER
    parser_classes = [JSONParser]

    @extend_schema(
        request=TemplatePreviewInput,
        responses=TemplatePreviewOutput,
        description=(
            "Render the template for one row: `{row_id}`, `{index, dataset}` (dataset defaults to the "
            "template's) or a literal `{row: {...}}`. Warns when the token estimate exceeds `context_window`."
        ),
        examples=[OpenApiExample("The first row of the template's dataset", value={"index": 0}, request_only=True)],
    )
    def post(self, request, project_id: int, template_id: int):
        access = self.access(request, project_id)
        template = get_object_or_404(PromptTemplate, project=access.project, pk=template_id)
        data = TemplatePreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        prompt_row = None
        if "row_id" in attrs:
            prompt_row = prompt_row_in_project(project=access.project, row_id=attrs["row_id"])
            if prompt_row is None:
                raise ValidationError({"row_id": [f"No prompt row {attrs['row_id']} in project {project_id}."]})
        elif "index" in attrs:
            dataset_id = attrs.get("dataset", template.dataset_id)
            if dataset_id is None:
                raise ValidationError({"dataset": ["The template has no dataset: give `dataset` with `index`."]})
            dataset = dataset_in_project(project=access.project, dataset_id=dataset_id)
            if dataset is None:
                raise ValidationError({"dataset": [f"No dataset {dataset_id} in project {project_id}."]})
            prompt_row = prompt_row_at(dataset=dataset, index=attrs["index"])
            if prompt_row is None:
                raise ValidationError(
                    {"index": [f"Dataset {dataset.id} has rows 0..{dataset.row_count - 1}, not {attrs['index']}."]}
                )
        preview = services.template_preview(
            template=template,
            row=attrs.get("row"),
            prompt_row=prompt_row,
            context_window=attrs["context_window"],
            draft=attrs.get("draft"),
        )
        return Response(TemplatePreviewOutput(preview).data)
