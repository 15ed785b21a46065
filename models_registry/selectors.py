"""Reads of the model registry."""

import json
from typing import NamedTuple

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, QuerySet, TextField
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

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


def model_list(*, task: str | None = None, tag: str | None = None, name: str | None = None) -> QuerySet:
    models = RegisteredModel.objects.select_related("created_by").annotate(
        version_count=Count("versions", distinct=True), latest_version=Max("versions__version")
    )
    if task:
        models = models.filter(task=task)
    if name:
        models = models.filter(name__icontains=name)
    if tag:
        models = models.filter(Exists(_tagged(ModelVersion.objects.filter(model=OuterRef("pk")), tag)))
    return models.prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.select_related("version")))


def model_get(*, model_id: int) -> RegisteredModel:
    return get_object_or_404(model_list(), pk=model_id)


def version_list(*, model: RegisteredModel, tag: str | None = None, fmt: str | None = None) -> QuerySet:
    versions = (
        ModelVersion.objects.filter(model=model)
        .select_related("model", "created_by")
        .prefetch_related(Prefetch("aliases", queryset=ModelAlias.objects.order_by("name")))
    )
    if tag:
        versions = _tagged(versions, tag)
    if fmt:
        versions = versions.filter(format=fmt)
    return versions


def version_get(*, model: RegisteredModel, number: int) -> ModelVersion:
    return get_object_or_404(version_list(model=model), version=number)


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
