"""Reads of the model registry.

Who reads what (see ``models_registry.models``): platform admins everything; every other signed-in
user the shared models and the models of the projects they are a reviewer or admin of (staff is no
exception). Labelers are not told a project's models exist: a labeler account may go to a stranger,
and a project's trained weights are what the project's data bought. A version is read with its
model, except a version that a run of another project added to it before models were scoped (the
migration keeps those with their own project). Whatever a user may not read answers 404, as if it
did not exist.
"""

import json
from typing import NamedTuple

from django.db.models import Count, Exists, F, Max, OuterRef, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from common.api import is_platform_admin
from models_registry import storage
from models_registry.models import ArtifactFormat, ModelAlias, ModelAliasEvent, ModelVersion, RegisteredModel, Task

MAX_LINEAGE = 100


def _tagged(versions: QuerySet, tag: str) -> QuerySet:
    """Versions whose tags hold ``tag``, on every database.

    Tags are stored lowercase and limited to ``[a-z0-9._:+/=-]``, so the JSON text of the list holds
    ``"tag"`` (quotes included) exactly when the list holds the tag; that works where JSONField's
    ``contains`` lookup does not (SQLite).
    """
    needle = json.dumps(tag.strip().lower())
    return versions.alias(tags_text=Cast("tags", TextField())).filter(tags_text__contains=needle)


# labeling.models.Role values, by value: the registry may not import labeling (a test checks they match).
READER_ROLES = ("admin", "reviewer")  # read a project's models (and start runs with them)
WRITER_ROLES = ("admin",)  # move their aliases, edit tags; staff also create and import into the project


def member_project_ids(user, roles: tuple[str, ...] = READER_ROLES) -> QuerySet:
    """The ids of the projects where ``user`` has one of ``roles``, as a subquery.

    The registry may not import labeling (it sits below it), so it reaches the membership table
    through the model of its own ``project`` foreign key (declared by name, ``"labeling.Project"``)
    and that model's ``memberships`` relation.
    """
    project_model = RegisteredModel._meta.get_field("project").related_model
    return project_model.objects.filter(memberships__user=user, memberships__role__in=roles).values("pk")


def project_exists(*, project_id: int) -> bool:
    return RegisteredModel._meta.get_field("project").related_model.objects.filter(pk=project_id).exists()


def _sees_all(user) -> bool:
    return is_platform_admin(user)


def visible_models_q(user, prefix: str = "") -> Q:
    """The models ``user`` reads, as a filter (``prefix`` e.g. ``"model__"`` from a version)."""
    if _sees_all(user):
        return Q()
    if user is None or not user.is_authenticated:
        return Q(pk__in=[])
    return Q(**{f"{prefix}shared": True}) | Q(**{f"{prefix}project__in": member_project_ids(user)})


def visible_versions_q(user, prefix: str = "") -> Q:
    """The versions ``user`` reads: those of a model they read, that are in that model's scope (no
    project, or the model's) or of one of their projects."""
    if _sees_all(user):
        return Q()
    own_scope = (
        Q(**{f"{prefix}project__isnull": True})
        | Q(**{f"{prefix}project": F(f"{prefix}model__project")})
        | Q(**{f"{prefix}project__in": member_project_ids(user)})
    )
    return visible_models_q(user, prefix=f"{prefix}model__") & own_scope


def model_list(
    *,
    user,
    task: str | None = None,
    tag: str | None = None,
    name: str | None = None,
    usable_in: int | None = None,
) -> QuerySet:
    """The models ``user`` reads; ``usable_in``: only those a run of that project may read (its own
    and the shared ones), e.g. for a picker of base versions."""
    seen = visible_versions_q(user, prefix="versions__")
    models = (
        RegisteredModel.objects.filter(visible_models_q(user))
        .select_related("created_by")
        .annotate(
            version_count=Count("versions", filter=seen, distinct=True),
            latest_version=Max("versions__version", filter=seen),
        )
    )
    if usable_in is not None:
        models = models.filter(Q(project_id=usable_in) | Q(shared=True))
    if task:
        models = models.filter(task=task)
    if name:
        models = models.filter(name__icontains=name)
    if tag:
        versions = ModelVersion.objects.filter(visible_versions_q(user), model=OuterRef("pk"))
        models = models.filter(Exists(_tagged(versions, tag)))
    return models.prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.select_related("version")))


def model_get(*, user, model_id: int) -> RegisteredModel:
    """The model, or 404 when it does not exist or ``user`` may not read it."""
    return get_object_or_404(model_list(user=user), pk=model_id)


def version_list(*, user, model: RegisteredModel, tag: str | None = None, fmt: str | None = None) -> QuerySet:
    versions = (
        ModelVersion.objects.filter(visible_versions_q(user), model=model)
        .select_related("model", "created_by")
        .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("name")))
    )
    if tag:
        versions = _tagged(versions, tag)
    if fmt:
        versions = versions.filter(format=fmt)
    return versions


def version_get(*, user, model: RegisteredModel, number: int) -> ModelVersion:
    return get_object_or_404(version_list(user=user, model=model), version=number)


def version_lineage(*, version: ModelVersion) -> list[ModelVersion]:
    """The chain of base versions, nearest first: what this version was trained or converted from."""
    chain: list[ModelVersion] = []
    seen = {version.pk}
    base_id = version.base_version_id
    while base_id is not None and len(chain) < MAX_LINEAGE:
        base = ModelVersion.objects.select_related("model").get(pk=base_id)
        if base.pk in seen:  # impossible by construction (a base exists before its children); be safe
            break
        seen.add(base.pk)
        chain.append(base)
        base_id = base.base_version_id
    return chain


def readable_version_ids(*, user, ids: list[int]) -> set[int]:
    """Which of these versions ``user`` reads (one query)."""
    if not ids:
        return set()
    return set(ModelVersion.objects.filter(visible_versions_q(user), pk__in=ids).values_list("pk", flat=True))


def version_usable(*, user, version_id: int, project_id: int | None) -> ModelVersion | None:
    """The version, when a run of ``project_id`` started by ``user`` may read it; else None.

    A run reads a shared model's version or a version of its own project that ``user`` reads as a
    member; platform admins any version. (Stricter than "what the user reads": a member of two
    projects cannot carry one project's weights into the other's runs.)
    """
    versions = ModelVersion.objects.select_related("model", "base_version").filter(pk=version_id)
    if _sees_all(user):
        return versions.first()
    in_scope = Q(model__shared=True)
    if project_id is not None:
        in_scope |= Q(project_id=project_id, model__project_id=project_id)
    return versions.filter(visible_versions_q(user), in_scope).first()


def model_named(*, name: str) -> RegisteredModel | None:
    """The model of this name (case-insensitive), readable or not: names are unique across projects."""
    return RegisteredModel.objects.filter(name__iexact=name).first()


def version_find(*, model_name: str, config_hash: str | None = None, tag: str | None = None) -> ModelVersion | None:
    """The newest version of ``model_name`` with this config hash (and/or tag), if any: how imports
    stay idempotent."""
    versions = ModelVersion.objects.filter(model__name__iexact=model_name)
    if config_hash is not None:
        versions = versions.filter(config_hash=config_hash)
    if tag is not None:
        versions = _tagged(versions, tag)
    return versions.select_related("model").order_by("-version").first()


def alias_list(*, model: RegisteredModel) -> QuerySet:
    return ModelAlias.objects.filter(model=model).select_related("version", "updated_by").order_by("name")


def alias_get(*, model: RegisteredModel, name: str) -> ModelAlias:
    return get_object_or_404(alias_list(model=model), name=name)


def alias_history(*, model: RegisteredModel, alias: str | None = None) -> QuerySet:
    events = ModelAliasEvent.objects.filter(model=model).select_related("from_version", "to_version", "actor")
    if alias:
        events = events.filter(alias=alias)
    return events


class GenerationSource(NamedTuple):
    version: ModelVersion
    folder: str  # the model's folder (an adapter's base)
    gguf_file: str | None
    adapter_folder: str | None  # a LoRA adapter version's own folder, loaded over ``folder``


def _local_folder(version: ModelVersion):
    try:
        return storage.materialize(version.artifact_path)  # S3: downloaded into the local cache once
    except FileNotFoundError:
        raise ValueError(f"{version.model.name} v{version.version} is missing from the artifact store") from None


def version_for_generation(*, version_id: int) -> GenerationSource:
    """A causal-LM version by id with what a generate run loads: its folder and gguf file name, or for
    a LoRA adapter, its base's folder and its own.

    Raises ValueError with a sentence for a person when the version cannot generate.
    """
    version = ModelVersion.objects.select_related("model", "base_version__model").filter(pk=version_id).first()
    if version is None:
        raise ValueError(f"there is no model version {version_id}")
    if version.model.task != Task.CAUSAL_LM:
        raise ValueError(f"{version.model.name} v{version.version} is a {version.model.task} model, not a causal-lm")
    if version.format == ArtifactFormat.PEFT_ADAPTER and not version.merged:
        base = version.base_version
        if base is None:
            raise ValueError(f"{version.model.name} v{version.version} is a LoRA adapter with no base version")
        if base.format != ArtifactFormat.HF_FOLDER:
            raise ValueError(f"the base of {version.model.name} v{version.version} is not a Hugging Face folder")
        return GenerationSource(version, str(_local_folder(base)), None, str(_local_folder(version)))
    folder = _local_folder(version)
    if version.format == ArtifactFormat.GGUF:
        files = sorted(p.name for p in folder.glob("*.gguf"))
        if not files:
            raise ValueError(f"{version.model.name} v{version.version} has no .gguf file")
        return GenerationSource(version, str(folder), files[0], None)
    return GenerationSource(version, str(folder), None, None)
