"""Generation runs for a project: prompts in, comparisons out (DESIGN.md, Jobs and workers).

``generation_run_create`` renders the project's prompt template for the selected dataset rows that
have no comparison yet, writes them to the run folder as ``prompts.jsonl`` (``{prompt_id: row id,
prompt}``) and queues a ``generate`` run. While it runs, every ``completions`` artifact event makes
the worker call ``CompletionsIngest.ingest``, which turns the finished prompts' lines of
``completions.jsonl`` into comparisons (one per prompt row, K completions with model name,
generation params and seed). Ingesting is idempotent: under the project's row lock a row that
already has a comparison is skipped, so a line read twice, or by two runs, creates one comparison.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from common.exceptions import Conflict, ServiceError
from labeling import templating
from labeling.models import Comparison, Dataset, Project, ProjectKind, PromptRow, Split
from labeling.services.comparisons import ParsedComparison, comparisons_create
from models_registry.selectors import version_for_generation, version_usable
from training.models import RunKind, TrainingRun
from training.services import runs

PROMPTS_FILE = "prompts.jsonl"
COMPLETIONS_FILE = "completions.jsonl"
# The GenerateConfig fields a project's generation_config and a request's generation params may set.
GENERATION_PARAMS = (
    "max_new_tokens",
    "temperature",
    "top_k",
    "top_p",
    "greedy",
    "batch_size",
    "max_prompt_tokens",
    "seed",
    "torch_threads",
    "device",
    "dtype",
)
MAX_PROMPTS = 100_000
INGEST_BATCH = 500


def _field_error(key: str, message: str, *, error=ServiceError) -> ServiceError:
    return error(f"{key}: {message}", errors={key: [message]})


def model_name_for(model_path: str, gguf_file: str | None) -> str:
    name = Path(model_path.rstrip("/")).name or model_path
    return (f"{name}/{gguf_file}" if gguf_file else name)[:200]


def generation_params(project: Project, params: dict | None) -> tuple[dict, list[str]]:
    """The project's generation_config overlaid with the request's params (both allow-listed)."""
    params = params or {}
    unknown = sorted(set(params) - set(GENERATION_PARAMS))
    if unknown:
        raise _field_error(f"generation.{unknown[0]}", f"unknown option; allowed: {', '.join(GENERATION_PARAMS)}")
    project_config = project.generation_config or {}
    ignored = sorted(set(project_config) - set(GENERATION_PARAMS))
    merged = {k: v for k, v in project_config.items() if k in GENERATION_PARAMS}
    merged.update(params)
    return merged, ignored


def _selected_rows(*, project: Project, dataset_id: int, split: str | None, limit: int | None):
    dataset = Dataset.objects.filter(pk=dataset_id, project=project).first()
    if dataset is None:
        raise _field_error("dataset", f"project {project.pk} has no dataset {dataset_id}")
    if split is not None and split not in Split.values:
        raise _field_error("split", f"unknown split {split!r}; use one of {', '.join(Split.values)}")
    rows = PromptRow.objects.filter(dataset=dataset)
    if split is not None:
        rows = rows.filter(split=split)
    selected = rows.count()
    done = Comparison.objects.filter(project=project, prompt_row=OuterRef("pk"))
    todo = rows.filter(~Exists(done)).order_by("index")
    cap = min(limit, MAX_PROMPTS) if limit is not None else MAX_PROMPTS
    return dataset, selected, todo[:cap]


def render_all(template, rows: Iterable[PromptRow]) -> list[dict]:
    """Every row rendered with the template; an error names the row that cannot render."""
    prompts = []
    for row in rows:
        try:
            prompt = templating.render_prompt(
                text=template.text,
                row=row.data,
                examples=template.examples,
                example_text=template.example_text,
                example_separator=template.example_separator,
            )
        except templating.TemplateError as exc:
            raise ServiceError(
                f"template {template.name!r} cannot render row {row.index} of the dataset: {exc.message}",
                errors={"dataset": [f"row {row.index}: {exc.message}"]},
            ) from None
        prompts.append({"prompt_id": row.pk, "prompt": prompt, "row_index": row.index, "split": row.split})
    return prompts


def model_source(
    *, project: Project, requester, model_version: int | None, model_path: str | None, gguf_file: str | None
) -> tuple[dict, str, int | None]:
    """(config paths, model name, registry version id) of the model that generates.

    A registered version (the request's, else the project's generation model; a LoRA adapter goes
    over its base) unless the caller names a folder on the workers (``model_path``; the API allows
    that to staff only).
    """
    if model_path:
        paths = {"model_path": model_path, "gguf_file": gguf_file}
        return paths, model_name_for(model_path, gguf_file), None
    version_id = model_version if model_version is not None else project.generation_model_id
    if version_id is None:
        raise _field_error(
            "model_version",
            "choose the model that generates: set the project's generation_model or pass model_version",
        )
    # The project's runs load only shared versions or the project's own (the registry's scoping rule).
    if version_usable(user=requester, version_id=version_id, project_id=project.pk) is None:
        field = "model_version" if model_version is not None else "project.generation_model"
        raise _field_error(field, f"there is no model version {version_id} you can use in project {project.pk}")
    try:
        source = version_for_generation(version_id=version_id)
    except ValueError as exc:
        raise _field_error("model_version", str(exc)) from None
    paths = {"model_path": source.folder, "gguf_file": source.gguf_file}
    if source.adapter_folder:
        paths["adapter_path"] = source.adapter_folder
    version = source.version
    return paths, f"{version.model.name} v{version.version}"[:200], version.pk


@transaction.atomic
def generation_run_create(
    *,
    project: Project,
    created_by,
    dataset_id: int,
    model_version: int | None = None,
    model_path: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    gguf_file: str | None = None,
    k: int | None = None,
    params: dict | None = None,
) -> TrainingRun:
    """A queued generate run over the rows of a dataset that have no comparison yet."""
    if project.kind == ProjectKind.EVALUATION:
        raise Conflict(
            f"Project {project.pk} is a side-by-side evaluation: its comparisons come from the versions it "
            "compares, not from a generation run."
        )
    paths, model_name, version_id = model_source(
        project=project, requester=created_by, model_version=model_version, model_path=model_path, gguf_file=gguf_file
    )
    project_k = project.completions_per_prompt
    if k is not None and k != project_k:
        raise _field_error("k", f"the project compares {project_k} completions per prompt, so k must be {project_k}")
    merged, ignored = generation_params(project, params)
    config = {**paths, "prompts_file": PROMPTS_FILE, "k": project_k, **merged}
    # Validate before reading rows; a project default at fault is named as such.
    try:
        runs.run_validate_config(kind=RunKind.GENERATE, config=config, prefix="generation")
    except ServiceError as exc:
        key = next(iter(exc.errors or {}), "")
        name = key.removeprefix("generation.")
        if name in (project.generation_config or {}) and name not in (params or {}):
            raise _field_error(f"project.generation_config.{name}", exc.errors[key][0]) from None
        if name in ("model_path", "gguf_file"):
            raise _field_error(name, exc.errors[key][0]) from None
        raise

    dataset, selected, rows = _selected_rows(project=project, dataset_id=dataset_id, split=split, limit=limit)
    if project.prompt_template is None:
        raise _field_error(
            "project", f"project {project.pk} has no prompt template; create one and make it the default first"
        )
    prompts = render_all(project.prompt_template, rows.iterator(chunk_size=2000))
    if not prompts:
        raise Conflict(
            f"Every selected row of dataset {dataset.name!r} ({selected} rows"
            f"{f', split {split}' if split else ''}) already has a comparison; there is nothing to generate."
        )

    def write_prompts(run: TrainingRun, folder: Path) -> None:
        with open(folder / PROMPTS_FILE, "w", encoding="utf-8") as handle:
            for prompt in prompts:
                handle.write(json.dumps({"prompt_id": prompt["prompt_id"], "prompt": prompt["prompt"]}) + "\n")

    inputs = {
        "ingest": "comparisons",
        "dataset": dataset.pk,
        "split": split,
        "limit": limit,
        "template": project.prompt_template_id,
        "model_name": model_name,
        "model_version": version_id,
        "prompts": len(prompts),
        "rows_selected": selected,
        "rows_skipped_done": selected - len(prompts) if limit is None else None,
        "prompts_file": PROMPTS_FILE,
        "ignored_project_generation_keys": ignored,
    }
    return runs.run_create(
        kind=RunKind.GENERATE,
        config=config,
        inputs=inputs,
        project=project,
        created_by=created_by,
        prepare=write_prompts,
    )


@dataclass
class CompletionsIngest:
    """Reads new complete lines of a generate run's completions.jsonl and stores them as comparisons."""

    run: TrainingRun
    folder: Path
    offset: int = 0
    created: int = 0
    skipped: int = 0
    prompts: dict[int, str] = field(default_factory=dict)

    @classmethod
    def for_run(cls, run: TrainingRun, folder: Path) -> "CompletionsIngest | None":
        if run.kind != RunKind.GENERATE or run.inputs.get("ingest") != "comparisons" or run.project_id is None:
            return None
        handler = cls(run=run, folder=folder)
        handler.prompts = read_prompts(folder)
        return handler

    def _new_lines(self) -> tuple[list[dict], int]:
        path = self.folder / COMPLETIONS_FILE
        if not path.exists():
            return [], 0
        with open(path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next call
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()], end

    def ingest(self) -> int:
        lines, end = self._new_lines()
        created = 0
        for start in range(0, len(lines), INGEST_BATCH):
            made, skipped = self.store(lines[start : start + INGEST_BATCH])
            created += made
            self.skipped += skipped
        # Only now: lines a database error interrupted are read again (ingesting twice is harmless).
        self.offset += end
        self.created += created
        return created

    def store(self, lines: list[dict]) -> tuple[int, int]:
        return completions_ingest(run=self.run, lines=lines, prompts=self.prompts)

    def on_artifact(self, event: dict) -> int:
        return self.ingest() if event.get("kind") == "completions" else 0

    def finish(self, **_) -> dict[str, Any]:
        self.ingest()  # also after a failure or cancel: what was generated is kept
        return {"comparisons_created": self.created, "comparisons_skipped": self.skipped}


def read_prompts(folder: Path) -> dict[int, str]:
    """``{prompt_id: prompt}`` of the prompts file a generate run was given."""
    prompts = {}
    with open(folder / PROMPTS_FILE, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                prompts[row["prompt_id"]] = row["prompt"]
    return prompts


@transaction.atomic
def completions_ingest(*, run: TrainingRun, lines: list[dict], prompts: dict[int, str]) -> tuple[int, int]:
    """Comparisons for completions lines whose prompt row has none yet: (created, skipped)."""
    project = Project.objects.select_for_update().get(pk=run.project_id)  # serializes ingests per project
    k = project.completions_per_prompt
    row_ids = [line["prompt_id"] for line in lines]
    rows = PromptRow.objects.filter(pk__in=row_ids, dataset__project=project).in_bulk()
    taken = set(
        Comparison.objects.filter(project=project, prompt_row_id__in=row_ids).values_list("prompt_row_id", flat=True)
    )
    model_name = run.inputs.get("model_name") or model_name_for(run.config["model_path"], run.config.get("gguf_file"))
    parsed, parsed_rows = [], []
    for line in lines:
        row_id = line["prompt_id"]
        if row_id in taken or row_id not in rows or row_id not in prompts:
            continue  # done already (this or another run), or the row was deleted meanwhile
        if len(line["completions"]) != k:
            raise ServiceError(
                f"prompt row {row_id} has {len(line['completions'])} completions; the project compares {k}"
            )
        taken.add(row_id)
        parsed.append(
            ParsedComparison(
                line=0,
                prompt=prompts[row_id],
                completions=[
                    {
                        "text": c["text"],
                        "model_name": model_name,
                        "generation_params": c.get("params") or {},
                        "seed": c.get("seed"),
                        "metadata": {
                            "run_id": run.pk,
                            **{key: c[key] for key in ("tokens", "finish_reason") if key in c},
                        },
                    }
                    for c in line["completions"]
                ],
                split=rows[row_id].split,
                metadata={
                    "run_id": run.pk,
                    "dataset_id": rows[row_id].dataset_id,
                    "row_index": rows[row_id].index,
                    "prompt_truncated": bool(line.get("truncated")),
                },
            )
        )
        parsed_rows.append(row_id)
    if not parsed:
        return 0, len(lines)
    comparisons = comparisons_create(project=project, parsed=parsed)
    for comparison, row_id in zip(comparisons, parsed_rows, strict=True):
        comparison.prompt_row_id = row_id
    Comparison.objects.bulk_update(comparisons, ["prompt_row"])
    return len(comparisons), len(lines) - len(comparisons)
