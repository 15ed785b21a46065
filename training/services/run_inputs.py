"""From what a person names (registry versions, a snapshot, a dataset and templates) to what a
training run reads (folders and files on the worker).

``POST /api/runs/`` takes ``inputs`` by id; ``resolve_inputs`` checks each (it exists, it is ready,
it belongs to the run's project, it is the right kind of model), fills the config fields the ML reads
(``model_path``, ``train_file``, ``reward_model_path``, ...) and lists the files to write into the
run's folder (rendered prompts). A config that sets one of those fields itself while the matching
input is given is refused: one source of truth. Errors name the field: ``inputs.snapshot``, ...

Which inputs a kind takes and which resolver below (or in ``training.services.cai``) reads them is
the kind's spec in ``training.kinds``. Inputs by kind (``base_version`` everywhere; ``output_model``
names the registered result):

- ``sft``: ``dataset``, ``target_field`` (the column the model learns to write), ``template``
  (default: the project's) -> ``train.jsonl``/``eval.jsonl`` of ``{prompt, completion}``.
- ``reward_model``, ``dpo``: ``snapshot`` -> its ``train.jsonl``/``eval.jsonl`` pair files.
- ``rlhf``: ``dataset``, ``template``, ``reward_version`` -> prompt files and the reward model.
- ``cai_revise``, ``ai_feedback``: see ``training.services.cai`` (a constitution, prompts or
  comparisons); ``sft``, ``reward_model`` and ``dpo`` may take ``cai_run`` (a cai_revise run's
  revisions or pairs) instead of a dataset or a snapshot.
- ``evaluate``: ``dataset``, ``split`` (default test), ``reference_field``, ``templates`` (ids; the
  prompt sweep's variants, default the project's), ``reward_version``, ``kl_base_version`` (default:
  the evaluated version's base), ``limit`` -> ``data.jsonl`` of ``{id, reference, prompts}``.
"""

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

from common import storage as store
from common.exceptions import ServiceError
from labeling import templating
from labeling.models import Dataset, PreferenceSnapshot, Project, PromptRow, PromptTemplate, SnapshotStatus, Split
from labeling.services.snapshots import SnapshotFilesMissing, snapshot_file
from models_registry import selectors as registry_selectors
from models_registry import storage
from models_registry.models import NAME_RE, ArtifactFormat, ModelVersion, Task
from training.ml.configs import available_configs, worker_path_fields
from training.services.lookups import input_error as _error

MAX_ROWS = 200_000
# Config fields that name files or folders on the workers, of every kind, read off the config classes
# (``training.ml.configs.worker_path``): only platform admins may set them by hand (the API checks);
# everyone else names registry versions, snapshots and datasets in ``inputs`` and the platform fills them.
WORKER_PATH_FIELDS = tuple(sorted(frozenset().union(*map(worker_path_fields, available_configs().values()))))
# The config fields each input fills; a config may not set them itself when the input is given.
FILLS = {
    "base_version": ("model_path", "gguf_file"),
    "snapshot": ("train_file", "eval_file"),
    "dataset": ("train_file", "eval_file", "data_file"),
    "reward_version": ("reward_model_path",),
    "kl_base_version": ("base_model_path",),
    "cai_run": ("train_file", "eval_file"),
    "constitution": ("principles",),
}

# What the version inputs other than base_version (the kind's KindSpec.base_tasks) may be.
REWARD_TASKS = (Task.REWARD_MODEL, Task.CLASSIFIER)
KL_BASE_TASKS = (Task.CAUSAL_LM,)


@dataclass(frozen=True)
class Reader:
    """Who starts the run and where: the registry versions a run may read (``version_usable``)."""

    user: Any
    project_id: int | None


@dataclass
class Resolved:
    kind: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # fields the platform fills
    files: dict[str, list[dict]] = field(default_factory=dict)  # run-folder file name -> JSONL rows
    inputs: dict[str, Any] = field(default_factory=dict)  # what the run records (ids, names, counts)
    reader: Reader = field(default_factory=lambda: Reader(user=None, project_id=None))

    def add_train_eval(self, files: dict[str, list[dict]]) -> None:
        """``train.jsonl`` and, when it has rows, ``eval.jsonl`` as the run's train_file/eval_file."""
        for name, key in (("train.jsonl", "train_file"), ("eval.jsonl", "eval_file")):
            if files.get(name):
                self.files[name] = files[name]
                self.config[key] = name


def _int_input(inputs: dict, name: str, *, required: bool = False) -> int | None:
    value = inputs.get(name)
    if value is None:
        if required:
            raise _error(f"inputs.{name}", "required")
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _error(f"inputs.{name}", f"expected an id (a positive integer), got {value!r:.40}")
    return value


def _str_input(inputs: dict, name: str, *, required: bool = False) -> str | None:
    value = inputs.get(name)
    if value is None or value == "":
        if required:
            raise _error(f"inputs.{name}", "required")
        return None
    if not isinstance(value, str):
        raise _error(f"inputs.{name}", f"expected a string, got {type(value).__name__}")
    return value


REGISTRY_PREFIX = "registry:"
STORE_FILE_PREFIX = "store-file:"


def version_folder(version: ModelVersion) -> str:
    """The version's folder as the run's config names it. With artifacts on S3 the worker downloads
    it when the run starts (``registry:<path>``, see ``training.runner.materialize_config``), never the
    web process."""
    if storage.on_s3():
        return f"{REGISTRY_PREFIX}{version.artifact_path}"
    return str(storage.local_path(version.artifact_path))


def store_file(relpath: str, name: str) -> str:
    """A file of a folder in the artifact store (a snapshot's ``train.jsonl``) as the run's config names
    it: on local disk its path; with S3 ``store-file:<folder>/<name>``, which the worker turns into a
    path in its download of the folder when the run starts (``training.runner.materialize_config``)."""
    if "/" in name or not name:
        raise ValueError(f"{name!r}: a file at the top of the folder")
    if store.on_s3():
        return f"{STORE_FILE_PREFIX}{relpath}/{name}"
    return str(store.local_path(f"{relpath}/{name}"))


def _version(
    inputs: dict, name: str, *, tasks: tuple[str, ...], reader: Reader, required: bool = False
) -> ModelVersion | None:
    version_id = _int_input(inputs, name, required=required)
    if version_id is None:
        return None
    # Only a shared version or one of the run's project (platform admins: any); any other answers as
    # if it did not exist, so a run cannot read, or reveal, another project's weights.
    version = registry_selectors.version_usable(user=reader.user, version_id=version_id, project_id=reader.project_id)
    if version is None:
        where = f" you can use in project {reader.project_id}" if reader.project_id else " shared with every project"
        raise _error(f"inputs.{name}", f"there is no model version {version_id}{where}")
    if version.model.task not in tasks:
        raise _error(
            f"inputs.{name}",
            f"{version.model.name} v{version.version} is a {version.model.task} model; "
            f"this input takes {' or '.join(tasks)}",
        )
    if version.format == ArtifactFormat.GGUF:
        raise _error(
            f"inputs.{name}",
            f"{version.model.name} v{version.version} is a GGUF file; training and scoring read Hugging Face "
            "folders (import_pip_models registers SmolLM2 as one)",
        )
    return version


def _base_model(resolved: Resolved, inputs: dict, *, tasks: tuple[str, ...], adapter_ok: bool) -> ModelVersion | None:
    version = _version(inputs, "base_version", tasks=tasks, reader=resolved.reader)
    if version is None:
        return None
    if version.is_adapter:
        if not adapter_ok or version.base_version is None:
            raise _error(
                "inputs.base_version",
                f"{version.model.name} v{version.version} is an adapter; use its merged version",
            )
        resolved.config["model_path"] = version_folder(version.base_version)
        resolved.config["adapter_path"] = version_folder(version)
    else:
        resolved.config["model_path"] = version_folder(version)
    resolved.inputs["base_version"] = version.pk
    resolved.inputs["base_model"] = f"{version.model.name} v{version.version}"
    return version


def _snapshot(resolved: Resolved, inputs: dict, project: Project | None) -> None:
    snapshot_id = _int_input(inputs, "snapshot", required=True)
    snapshot = PreferenceSnapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None or (project is not None and snapshot.project_id != project.pk):
        where = f" in project {project.pk}" if project is not None else ""
        raise _error("inputs.snapshot", f"there is no snapshot {snapshot_id}{where}")
    if snapshot.status != SnapshotStatus.READY:
        raise _error("inputs.snapshot", f"snapshot v{snapshot.version} is {snapshot.status}, not ready")
    try:
        train = snapshot_file(snapshot=snapshot, split=Split.TRAIN, file_format="jsonl")
    except SnapshotFilesMissing as exc:
        raise _error("inputs.snapshot", exc.message) from None
    except ServiceError:
        raise _error("inputs.snapshot", f"snapshot v{snapshot.version} has no train pairs") from None
    resolved.config["train_file"] = store_file(train.relpath, train.name)
    with contextlib.suppress(ServiceError):  # no eval pairs: the run trains without an eval split
        evals = snapshot_file(snapshot=snapshot, split=Split.EVAL, file_format="jsonl")
        resolved.config["eval_file"] = store_file(evals.relpath, evals.name)
    resolved.inputs["snapshot"] = snapshot.pk
    resolved.inputs["snapshot_counts"] = snapshot.counts


def _dataset(inputs: dict, project: Project | None) -> Dataset:
    dataset_id = _int_input(inputs, "dataset", required=True)
    query = Dataset.objects.filter(pk=dataset_id)
    if project is not None:
        query = query.filter(project=project)
    dataset = query.first()
    if dataset is None:
        raise _error(
            "inputs.dataset", f"there is no dataset {dataset_id}{f' in project {project.pk}' if project else ''}"
        )
    return dataset


def _template(inputs: dict, project: Project | None, name: str = "template") -> PromptTemplate:
    template_id = _int_input(inputs, name)
    if template_id is None:
        if project is None or project.prompt_template is None:
            raise _error(f"inputs.{name}", "required (the run's project has no default template)")
        return project.prompt_template
    query = PromptTemplate.objects.filter(pk=template_id)
    if project is not None:
        query = query.filter(project=project)
    template = query.first()
    if template is None:
        raise _error(f"inputs.{name}", f"there is no template {template_id}")
    return template


def render(template: PromptTemplate, row: PromptRow, key: str) -> str:
    try:
        return templating.render_prompt(
            text=template.text,
            row=row.data,
            examples=template.examples,
            example_text=template.example_text,
            example_separator=template.example_separator,
        )
    except templating.TemplateError as exc:
        raise _error(key, f"template {template.name!r} cannot render row {row.index}: {exc.message}") from None


def _rows(dataset: Dataset, inputs: dict, *, splits: tuple[str, ...] | None = None):
    limit = _int_input(inputs, "limit")
    rows = PromptRow.objects.filter(dataset=dataset).order_by("index")
    if splits is not None:
        rows = rows.filter(split__in=splits)
    return rows[: min(limit or MAX_ROWS, MAX_ROWS)]


def dataset_rows(inputs: dict, project: Project | None, split: str):
    """(dataset, template, its rows of ``split``) for kinds that render one prompt per row (cai_revise)."""
    dataset = _dataset(inputs, project)
    return dataset, _template(inputs, project), _rows(dataset, inputs, splits=(split,))


def _field_text(row: PromptRow, name: str, key: str) -> str:
    value = row.data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _error(key, f"row {row.index} of the dataset has no text in field {name!r}")
    return value


def _sft(resolved: Resolved, inputs: dict, project: Project | None) -> None:
    dataset = _dataset(inputs, project)
    template = _template(inputs, project)
    target = _str_input(inputs, "target_field", required=True)
    by_split: dict[str, list[dict]] = {"train.jsonl": [], "eval.jsonl": []}
    for row in _rows(dataset, inputs, splits=(Split.TRAIN, Split.EVAL)).iterator(chunk_size=2000):
        prompt = render(template, row, "inputs.template")
        completion = _field_text(row, target, "inputs.target_field")
        name = "train.jsonl" if row.split == Split.TRAIN else "eval.jsonl"
        by_split[name].append({"prompt": prompt, "completion": " " + completion.strip(), "row_index": row.index})
    if not by_split["train.jsonl"]:
        raise _error("inputs.dataset", f"dataset {dataset.name!r} has no train rows")
    resolved.add_train_eval(by_split)
    resolved.inputs.update(
        dataset=dataset.pk,
        template=template.pk,
        target_field=target,
        rows={k.removesuffix(".jsonl"): len(v) for k, v in by_split.items()},
    )


def _prompt_files(resolved: Resolved, inputs: dict, project: Project | None) -> None:
    dataset = _dataset(inputs, project)
    template = _template(inputs, project)
    files: dict[str, list[dict]] = {"train.jsonl": [], "eval.jsonl": []}
    for row in _rows(dataset, inputs, splits=(Split.TRAIN, Split.EVAL)).iterator(chunk_size=2000):
        name = "train.jsonl" if row.split == Split.TRAIN else "eval.jsonl"
        files[name].append({"prompt_id": row.pk, "prompt": render(template, row, "inputs.template")})
    if not files["train.jsonl"]:
        raise _error("inputs.dataset", f"dataset {dataset.name!r} has no train rows")
    resolved.add_train_eval(files)
    resolved.inputs.update(dataset=dataset.pk, template=template.pk, prompts={k: len(v) for k, v in files.items()})


def _reward(resolved: Resolved, inputs: dict, *, required: bool) -> None:
    version = _version(inputs, "reward_version", tasks=REWARD_TASKS, reader=resolved.reader, required=required)
    if version is not None:
        resolved.config["reward_model_path"] = version_folder(version)
        resolved.inputs["reward_version"] = version.pk


def _evaluate(resolved: Resolved, inputs: dict, project: Project | None, evaluated: ModelVersion | None) -> None:
    dataset = _dataset(inputs, project)
    split = _str_input(inputs, "split") or Split.TEST
    if split not in Split.values:
        raise _error("inputs.split", f"unknown split {split!r}; use one of {', '.join(Split.values)}")
    reference = _str_input(inputs, "reference_field", required=True)
    template_ids = inputs.get("templates")
    if template_ids is None:
        templates = [_template({}, project)]
    else:
        if not isinstance(template_ids, list) or not template_ids:
            raise _error("inputs.templates", "expected a non-empty list of template ids")
        templates = [_template({"template": t}, project, "template") for t in template_ids]
    names = [re.sub(r"[^A-Za-z0-9_.-]+", "_", t.name) or f"template_{t.pk}" for t in templates]
    if len(set(names)) != len(names):
        raise _error("inputs.templates", "two templates have the same name; variants are named after templates")
    rows = []
    for row in _rows(dataset, inputs, splits=(split,)).iterator(chunk_size=2000):
        prompts = {name: render(t, row, "inputs.templates") for name, t in zip(names, templates, strict=True)}
        rows.append(
            {"id": row.index, "reference": _field_text(row, reference, "inputs.reference_field"), "prompts": prompts}
        )
    if not rows:
        raise _error("inputs.split", f"dataset {dataset.name!r} has no {split} rows")
    resolved.files["data.jsonl"] = rows
    resolved.config["data_file"] = "data.jsonl"
    kl_base = _version(inputs, "kl_base_version", tasks=KL_BASE_TASKS, reader=resolved.reader)
    if kl_base is None and evaluated is not None and evaluated.base_version is not None:
        kl_base = evaluated.base_version
        if kl_base.is_adapter:
            kl_base = None
        reader = resolved.reader
        if kl_base is not None and not registry_selectors.version_usable(
            user=reader.user, version_id=kl_base.pk, project_id=reader.project_id
        ):
            raise _error(
                "inputs.kl_base_version",
                f"the evaluated version's base (version {kl_base.pk}) is not one this run can read; name one",
            )
    if kl_base is not None:
        resolved.config["base_model_path"] = version_folder(kl_base)
        resolved.inputs["kl_base_version"] = kl_base.pk
    resolved.inputs.update(
        dataset=dataset.pk, split=split, reference_field=reference, templates=[t.pk for t in templates], rows=len(rows)
    )


# -- each kind's resolver (``KindSpec.resolve`` in training.kinds): fills ``resolved`` from the inputs --


def sft_files(resolved: Resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
    _sft(resolved, inputs, project)


def snapshot_pairs(resolved: Resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
    _snapshot(resolved, inputs, project)


def rlhf_prompts(resolved: Resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
    _prompt_files(resolved, inputs, project)
    _reward(resolved, inputs, required="reward_function" not in config)


def evaluation_rows(resolved: Resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
    _evaluate(resolved, inputs, project, base)
    _reward(resolved, inputs, required=False)


def resolve_inputs(*, spec, inputs: dict, config: dict, project: Project | None, requester=None) -> Resolved:
    """The config fields and files a run of ``spec``'s kind (a ``training.kinds.KindSpec``) needs from
    its ``inputs``; 400s name the field.

    ``requester`` starts the run: registry versions are those it may use in ``project`` (without
    one, shared versions only)."""
    reader = Reader(user=requester, project_id=project.pk if project is not None else None)
    resolved = Resolved(kind=spec.kind, reader=reader)
    if spec.resolve is None:  # no inputs (generate): its service fills the config itself
        return resolved
    kind, known = spec.kind, spec.inputs
    unknown = sorted(set(inputs) - set(known))
    if unknown:
        raise _error(f"inputs.{unknown[0]}", f"unknown input for {kind}; known: {', '.join(known)}")
    for name, fields in FILLS.items():
        if inputs.get(name) is not None:
            clash = [f for f in fields if config.get(f) is not None]
            if clash:
                raise _error(f"config.{clash[0]}", f"set by inputs.{name}; give one or the other")
    if inputs.get("base_version") is None and not config.get("model_path"):
        raise _error("inputs.base_version", "required: the registered model version to start from")
    base = _base_model(resolved, inputs, tasks=spec.base_tasks, adapter_ok=spec.base_adapter_ok)
    spec.resolve(resolved, inputs, config, project, base)
    if spec.output_task is not None:
        resolved.inputs["output_model"] = output_model_name(kind, inputs, base)
        _output_model_in_scope(resolved.inputs["output_model"], project, "inputs.output_model")
    if isinstance(resolved.inputs.get("then_sft"), dict):
        _output_model_in_scope(resolved.inputs["then_sft"]["output_model"], project, "inputs.then_sft.output_model")
    return resolved


def _output_model_in_scope(name: str, project: Project | None, key: str) -> None:
    """A run's versions join a model of its own project (or a new one); never another project's model
    nor a shared one (every signed-in user reads those: sharing is a platform admin's separate act)."""
    model = registry_selectors.model_named(name=name)
    if model is None:
        return
    project_id = project.pk if project is not None else None
    if model.shared:
        raise _error(key, f"{model.name!r} is a shared model; a run's versions go to a model of its project")
    if model.project_id != project_id:
        where = f"project {project_id}" if project_id is not None else "no project (a platform-level run)"
        raise _error(key, f"a model named {model.name!r} exists and is not a model of {where}; choose another name")


def output_model_name(kind: str, inputs: dict, base: ModelVersion | None) -> str:
    name = _str_input(inputs, "output_model")
    if name is None:
        stem = base.model.name if base is not None else "model"
        name = f"{stem}-{kind.replace('_', '-')}"[:100]
    if not re.fullmatch(NAME_RE, name):
        raise _error("inputs.output_model", f"{name!r}: use 1-100 letters, digits, '.', '_' or '-'")
    return name
