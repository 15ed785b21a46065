"""Writes of the model registry. Every function is keyword-only and typed; database writes run under
``transaction.atomic``; artifact files move only through ``models_registry.storage``."""

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from common.exceptions import Conflict, ServiceError
from models_registry import artifacts, hub, storage
from models_registry.models import (
    AliasAction,
    ArtifactFormat,
    ModelAlias,
    ModelAliasEvent,
    ModelVersion,
    RegisteredModel,
    Task,
    alias_name_validator,
    model_name_validator,
)

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._:+/=-]{0,63}$")
MAX_TAGS = 32


def _validate(validator, value: str, field: str) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise ServiceError(f"{field} {value!r}: {exc.messages[0]}", errors={field: exc.messages}) from None


def clean_tags(tags: Iterable[str] | None) -> list[str]:
    """Lowercase, stripped, unique (first occurrence wins), at most 32, each ``[a-z0-9._:+/=-]``, 1-64 chars."""
    if tags is None:
        return []
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise ServiceError("tags must be a list of strings.", errors={"tags": ["Expected a list of strings."]})
    cleaned: list[str] = []
    for raw in tags:
        tag = raw.strip().lower()
        if not TAG_RE.match(tag):
            raise ServiceError(
                f"Tag {raw!r} is not allowed: use 1-64 characters among a-z 0-9 . _ : + / = -.",
                errors={"tags": [f"Invalid tag {raw!r}."]},
            )
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ServiceError(f"At most {MAX_TAGS} tags per version.", errors={"tags": ["Too many tags."]})
    return cleaned


def _check_task(task: str) -> None:
    if task not in Task.values:
        raise ServiceError(
            f"Unknown task {task!r}; expected one of {', '.join(Task.values)}.", errors={"task": ["Unknown task."]}
        )


@transaction.atomic
def model_create(
    *,
    name: str,
    task: str,
    description: str = "",
    created_by=None,
    project_id: int | None = None,
    shared: bool = False,
) -> RegisteredModel:
    """An empty registered model (its versions come from imports and training runs) of a project,
    or of none; ``shared`` (platform admins decide, the API checks) lets every signed-in user read it."""
    _validate(model_name_validator, name, "name")
    _check_task(task)
    if RegisteredModel.objects.filter(name__iexact=name).exists():
        raise Conflict(f"A model named {name!r} already exists.", errors={"name": ["Taken."]})
    model = RegisteredModel(
        name=name, task=task, description=description, created_by=created_by, project_id=project_id, shared=shared
    )
    model.full_clean()
    model.save()
    return model


@transaction.atomic
def model_share(*, model: RegisteredModel, shared: bool) -> RegisteredModel:
    """Mark a model shared (every signed-in user reads it) or not; the API lets platform admins only."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.shared != shared:
        model.shared = shared
        model.save(update_fields=["shared"])
    return model


def _scope_error(model: RegisteredModel, project_id: int | None) -> ServiceError:
    whose = "no project" if project_id is None else f"project {project_id}"
    if model.shared and model.project_id == project_id:
        message = (
            f"{model.name!r} is a shared model (every signed-in user reads it); a version joins it only "
            "when a platform admin shares it too. Choose another name."
        )
    else:
        message = (
            f"A model named {model.name!r} already exists and is not a model of {whose}; a version made for "
            f"{whose} cannot join it. Choose another name."
        )
    return ServiceError(message, errors={"model_name": [message]})


def _model_for_update(
    *, model_name: str, task: str, description: str, created_by, project_id: int | None, shared: bool
) -> RegisteredModel:
    """The model row, created if new, locked until the transaction ends (version numbers come from it).

    A version joins a model of its own project only (``project_id``, None for unscoped), and a
    shared model only when the caller publishes (``shared``): checked under the lock, so a model
    created or shared since a run was started cannot take the run's weights.
    """
    model = RegisteredModel.objects.filter(name__iexact=model_name).first()
    if model is None:
        model, _ = RegisteredModel.objects.get_or_create(
            name=model_name,
            defaults={
                "task": task,
                "description": description,
                "created_by": created_by,
                "project_id": project_id,
                "shared": shared,
            },
        )
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if model.task != task:
        raise ServiceError(
            f"{model.name} is a {model.task} model; a {task} version cannot join it. Register it under another name.",
            errors={"task": [f"The model's task is {model.task}."]},
        )
    if model.project_id != project_id or (model.shared and not shared):
        raise _scope_error(model, project_id)
    if shared and not model.shared:
        model.shared = True
        model.save(update_fields=["shared"])
    return model


def _made_by(run_id: int | None, run_role: str | None) -> ModelVersion | None:
    if run_id is None or not run_role:
        return None
    return ModelVersion.objects.select_related("model").filter(source_run_id=run_id, source_role=run_role).first()


def model_version_register(
    *,
    model_name: str,
    task: str,
    folder: str | Path,
    fmt: str | None,
    base_version: ModelVersion | None = None,
    run_id: int | None = None,
    run_role: str | None = None,
    snapshot_id: int | None = None,
    metrics: dict | None = None,
    tags: Iterable[str] | None = None,
    created_by=None,
    copy: bool = True,
    merged: bool = False,
    tokenizer: str | None = None,
    description: str = "",
    project_id: int | None = None,
    shared: bool = False,
) -> ModelVersion:
    """Store a prepared folder as the model's next version; the model is created on its first version.

    The version (and a new model) belongs to ``project_id`` (None: unscoped, platform admins read
    it); it may join only a model of that same project, and a shared model only with ``shared``
    (which shares a new model too). ``run_id`` + ``run_role`` register once: when the run already
    registered that output (a resumed run finishing again), that version comes back and the folder
    is left where it is.

    The folder is checked (``artifacts.inspect_folder``; ``fmt=None`` detects the format), copied
    (``copy=True``) or moved into a hidden folder beside the versions, hashed and measured there, then
    renamed to ``models/<name>/<version>/`` under the model's row lock, in the transaction that
    writes the row. If anything fails, the copy is deleted (a moved folder is moved back). The copy
    runs before the transaction, so no lock is held while gigabytes are copied.
    """
    folder = Path(folder)
    _validate(model_name_validator, model_name, "model_name")
    _check_task(task)
    for name, value in (("run_id", run_id), ("snapshot_id", snapshot_id)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ServiceError(f"{name} must be a positive integer.", errors={name: ["Expected an id."]})
    if metrics is not None and not isinstance(metrics, dict):
        raise ServiceError("metrics must be a JSON object.", errors={"metrics": ["Expected an object."]})
    tags = clean_tags(tags)
    if run_role is not None and (run_id is None or not isinstance(run_role, str) or not 1 <= len(run_role) <= 16):
        raise ServiceError("run_role names one output of run_id (1-16 characters).", errors={"run_role": ["Bad."]})
    done = _made_by(run_id, run_role)
    if done is not None:
        return done
    info = artifacts.inspect_folder(folder, fmt)
    is_adapter = info.fmt == ArtifactFormat.PEFT_ADAPTER
    if merged and (is_adapter or base_version is None):
        raise ServiceError(
            "A merged version is a full model made from an adapter and its base: it names base_version "
            "and is not itself an adapter.",
            errors={"merged": ["Needs base_version and full weights."]},
        )
    existing = RegisteredModel.objects.filter(name__iexact=model_name).first()
    if existing is not None and existing.task != task:
        raise ServiceError(
            f"{existing.name} is a {existing.task} model; a {task} version cannot join it.",
            errors={"task": [f"The model's task is {existing.task}."]},
        )
    if existing is not None and (existing.project_id != project_id or (existing.shared and not shared)):
        raise _scope_error(existing, project_id)  # before the copy; checked again under the lock
    folder_name = existing.name if existing is not None else model_name

    staged = storage.stage(folder, model_name=folder_name, move=not copy, skip=info.skip)
    published: list[str] = []
    try:
        size = artifacts.folder_size(staged)
        digest = artifacts.config_hash(staged)
        with transaction.atomic():
            model = _model_for_update(
                model_name=folder_name,
                task=task,
                description=description,
                created_by=created_by,
                project_id=project_id,
                shared=shared,
            )
            done = _made_by(run_id, run_role)  # another attempt of the run registered it meanwhile
            if done is not None:
                raise _AlreadyRegistered(done)
            number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
            relpath = storage.version_relpath(model.name, number)
            if tokenizer is None:
                if info.has_tokenizer:
                    tokenizer = relpath
                elif base_version is not None:
                    tokenizer = base_version.tokenizer
                else:
                    tokenizer = info.adapter_base
            version = ModelVersion(
                model=model,
                version=number,
                artifact_path=relpath,
                format=info.fmt,
                base_version=base_version,
                is_adapter=is_adapter,
                merged=merged,
                tokenizer=tokenizer,
                size_bytes=size,
                config_hash=digest,
                source_run_id=run_id,
                source_role=run_role or "",
                project_id=project_id,
                source_snapshot_id=snapshot_id,
                metrics=metrics or {},
                tags=tags,
                created_by=created_by,
            )
            version.full_clean()
            storage.publish(staged, relpath)
            published.append(relpath)
            version.save()
    except BaseException as exc:
        for relpath in published:
            storage.unpublish(relpath, staged)
        storage.unstage(staged, restore_to=None if copy else folder)
        if isinstance(exc, _AlreadyRegistered):
            return exc.version
        if isinstance(exc, IntegrityError) and (done := _made_by(run_id, run_role)) is not None:
            return done  # two attempts raced past the lock on different model rows: the first one won
        raise
    return version


class _AlreadyRegistered(Exception):
    def __init__(self, version: ModelVersion):
        super().__init__(f"already registered as {version.pk}")
        self.version = version


def model_import_dir(
    *,
    name: str,
    task: str,
    path: str | Path,
    created_by=None,
    description: str = "",
    tags: Iterable[str] | None = None,
    base_version: ModelVersion | None = None,
    project_id: int | None = None,
    shared: bool = False,
) -> ModelVersion:
    """Copy a Hugging Face folder (or PEFT adapter) that is already on the server into the registry."""
    info = artifacts.inspect_folder(Path(path))
    if info.fmt == ArtifactFormat.GGUF:
        raise ServiceError(artifacts.GGUF_HINT, errors={"path": ["A GGUF file; convert it first."]})
    return model_version_register(
        model_name=name,
        task=task,
        folder=path,
        fmt=info.fmt,
        base_version=base_version,
        tags=tags,
        created_by=created_by,
        description=description,
        project_id=project_id,
        shared=shared,
    )


def model_import_hub(
    *,
    name: str,
    task: str,
    hub_id: str,
    revision: str | None = None,
    created_by=None,
    description: str = "",
    tags: Iterable[str] | None = None,
    project_id: int | None = None,
    shared: bool = False,
) -> ModelVersion:
    """Download ``hub_id`` (safetensors only) and register it; offline, a clear error comes back fast."""
    _validate(model_name_validator, name, "name")
    _check_task(task)
    hub.validate_hub_id(hub_id)
    with tempfile.TemporaryDirectory(prefix="hub-", dir=storage.scratch_dir()) as scratch:
        folder = hub.download(hub_id, Path(scratch) / "model", revision=revision)
        return model_version_register(
            model_name=name,
            task=task,
            folder=folder,
            fmt=None,
            tags=[*(tags or []), f"hub:{hub_id.lower()}"],
            created_by=created_by,
            copy=False,
            tokenizer=None,
            description=description,
            project_id=project_id,
            shared=shared,
        )


@transaction.atomic
def alias_set(*, model: RegisteredModel, alias: str, version: ModelVersion, actor=None) -> ModelAlias:
    """Point ``alias`` at ``version`` (creating or moving it) and append the move to the history.

    Setting an alias to the version it already names changes nothing and writes no history.
    """
    _validate(alias_name_validator, alias, "alias")
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if version.model_id != model.pk:
        raise ServiceError(
            f"Version {version.pk} belongs to another model; an alias of {model.name} names one of its own versions.",
            errors={"version": ["Not a version of this model."]},
        )
    current = ModelAlias.objects.filter(model=model, name=alias).first()
    if current is not None and current.version_id == version.pk:
        return current
    previous = current.version if current is not None else None
    if current is None:
        current = ModelAlias(model=model, name=alias)
    current.version = version
    current.updated_by = actor
    current.full_clean()
    current.save()
    ModelAliasEvent.objects.create(
        model=model, alias=alias, action=AliasAction.SET, from_version=previous, to_version=version, actor=actor
    )
    return current


@transaction.atomic
def alias_remove(*, model: RegisteredModel, alias: str, actor=None) -> None:
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    current = ModelAlias.objects.filter(model=model, name=alias).select_related("version").first()
    if current is None:
        raise ServiceError(f"{model.name} has no alias {alias!r}.", status=404)
    ModelAliasEvent.objects.create(
        model=model, alias=alias, action=AliasAction.REMOVE, from_version=current.version, to_version=None, actor=actor
    )
    current.delete()


@transaction.atomic
def tags_set(*, version: ModelVersion, tags: Iterable[str]) -> ModelVersion:
    """Replace a version's tags (the only thing about a version that changes after registration)."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    version.tags = clean_tags(tags)
    version.save(update_fields=["tags"])
    return version


MAX_HUMAN_EVALS_KEPT = 50


@transaction.atomic
def version_human_eval_record(*, version_id: int, evaluation_id: int, summary: dict) -> ModelVersion:
    """Put a side-by-side evaluation's summary in ``metrics["human_evals"]`` (one entry per
    evaluation: publishing again replaces it), newest last."""
    version = ModelVersion.objects.select_for_update().get(pk=version_id)
    kept = [e for e in (version.metrics or {}).get("human_evals", []) if e.get("evaluation") != evaluation_id]
    version.metrics = {**(version.metrics or {}), "human_evals": [*kept, summary][-MAX_HUMAN_EVALS_KEPT:]}
    version.save(update_fields=["metrics"])
    return version
