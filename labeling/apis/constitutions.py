"""A project's constitution: list versions (members), save a new version (admins), the shipped default."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from common.api import NUL_MESSAGE, _has_nul
from common.openapi import NOT_BLANK_PATTERN
from labeling import principles as principle_rules
from labeling.apis.common import Paginated, ProjectAPIView, paginate, reject_unknown_params
from labeling.models import Constitution, Role
from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services import constitutions as services


class PrincipleSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="A slug, unique in the constitution (lowercase, digits, - and _).")
    name = serializers.CharField()
    critique_request = serializers.CharField(help_text="Asks the model to critique its answer under the principle.")
    revision_request = serializers.CharField(help_text="Asks the model to revise its answer after the critique.")
    choice_question = serializers.CharField(help_text="The AI labeler's question when it compares two answers.")


class ConstitutionOutput(serializers.ModelSerializer):
    principles = PrincipleSerializer(many=True)
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)

    class Meta:
        model = Constitution
        fields = ("id", "project", "version", "principles", "note", "created_by", "created_at")


# What labeling.principles.validate_principles accepts, for the schema: 1..MAX_PRINCIPLES objects with
# exactly the five fields, each a string of at most MAX_TEXT characters that is not only whitespace, the
# key a slug; no NUL (jsonb). (That keys are unique across principles is beyond a JSON Schema.)
_TEXT = {"type": "string", "pattern": NOT_BLANK_PATTERN, "maxLength": principle_rules.MAX_TEXT}
PRINCIPLES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": principle_rules.MAX_PRINCIPLES,
    "items": {
        "type": "object",
        "properties": {
            name: {**_TEXT, "pattern": principle_rules.KEY_PATTERN.pattern} if name == "key" else _TEXT
            for name in principle_rules.FIELDS
        },
        "required": list(principle_rules.FIELDS),
        "additionalProperties": False,
    },
}


@extend_schema_field(PRINCIPLES_SCHEMA)
class PrinciplesField(serializers.JSONField):
    """Any JSON here; the service validates it (one validator for the API and training/ml), and its
    errors name the principle field. A NUL is a 400 here: jsonb cannot store one."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _has_nul(value):
            raise serializers.ValidationError(f"A key or string {NUL_MESSAGE}")
        return value


class ConstitutionInput(serializers.Serializer):
    principles = PrinciplesField(help_text="[{key, name, critique_request, revision_request, choice_question}]")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, help_text="What changed.")


class DefaultConstitutionOutput(serializers.Serializer):
    principles = PrincipleSerializer(many=True)


class ConstitutionListCreateApi(Paginated, ProjectAPIView):
    """Versions newest first; a POST saves the principles as the next version (versions never change)."""

    read_role = Role.LABELER
    write_role = Role.ADMIN
    parser_classes = [JSONParser]

    @extend_schema(responses=ConstitutionOutput(many=True))
    def get(self, request, project_id: int):
        access = self.access(request, project_id)
        reject_unknown_params(request, allowed=())
        versions = Constitution.objects.filter(project=access.project).select_related("created_by")
        return paginate(self, request, versions.order_by("-version"), ConstitutionOutput)

    @extend_schema(request=ConstitutionInput, responses={201: ConstitutionOutput})
    def post(self, request, project_id: int):
        access = self.access(request, project_id)
        data = ConstitutionInput(data=request.data)
        data.is_valid(raise_exception=True)
        constitution = services.constitution_create(
            project=access.project,
            created_by=request.user,
            principles=data.validated_data["principles"],
            note=data.validated_data.get("note", ""),
        )
        return Response(ConstitutionOutput(constitution).data, status=status.HTTP_201_CREATED)


class ConstitutionDetailApi(ProjectAPIView):
    read_role = Role.LABELER

    @extend_schema(responses=ConstitutionOutput)
    def get(self, request, project_id: int, version: int):
        access = self.access(request, project_id)
        constitution = get_object_or_404(Constitution, project=access.project, version=version)
        return Response(ConstitutionOutput(constitution).data)


class DefaultConstitutionApi(ProjectAPIView):
    """The constitution RankForge ships (harmlessness and helpfulness), to start a project's from."""

    read_role = Role.LABELER

    @extend_schema(responses=DefaultConstitutionOutput)
    def get(self, request, project_id: int):
        self.access(request, project_id)
        return Response({"principles": DEFAULT_PRINCIPLES})
