"""Human side-by-side evaluations on the platform: one call makes the evaluation project and queues
one ``generate`` run per version (one answer per prompt); each run's answers come back through
``SamplesIngest`` (the worker calls it on every ``completions`` artifact event), which stores them
and makes the blind pairs (``labeling.services.side_by_side``)."""

import json
import random
from pathlib import Path
from typing import Any

from django.db import transaction

from common.exceptions import ServiceError
from labeling.models import Dataset, Project, ProjectKind, PromptTemplate, SideBySideEntry, SideBySideEval, Split
from labeling.services import side_by_side as sxs
from models_registry.models import ModelVersion
from training.models import RunKind, TrainingRun
from training.services import generation, runs

INGEST = "side_by_side"
MIN_VERSIONS, MAX_VERSIONS = 2, 8
DEFAULT_LIMIT, MAX_LIMIT = 100, 2000
MAX_SEED = 2**31 - 1


def _error(key: str, message: str) -> ServiceError:
    return ServiceError(f"{key}: {message}", errors={key: [message]})


def _check_versions(versions: Any) -> list[int]:
    if not isinstance(versions, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in versions):
        raise _error("versions", "a list of model version ids")
    if not MIN_VERSIONS <= len(versions) <= MAX_VERSIONS:
        raise _error("versions", f"compare {MIN_VERSIONS} to {MAX_VERSIONS} versions, got {len(versions)}")
    if len(set(versions)) != len(versions):
        raise _error("versions", "each version once")
    return versions


def _rows(*, project: Project, dataset_id: int, split: str | None, limit: int):
    dataset = Dataset.objects.filter(pk=dataset_id, project=project).first()
    if dataset is None:
        raise _error("dataset", f"project {project.pk} has no dataset {dataset_id}")
    if split is not None and split not in Split.values:
        raise _error("split", f"unknown split {split!r}; use one of {', '.join(Split.values)} or null for all rows")
    if not 1 <= limit <= MAX_LIMIT:
        raise _error("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    rows = dataset.rows.all() if split is None else dataset.rows.filter(split=split)
    rows = list(rows.order_by("index")[:limit])
    if not rows:
        where = f" in split {split!r}" if split else ""
        raise _error("split" if split else "dataset", f"dataset {dataset.name!r} has no rows{where}")
    return dataset, rows


def _template(project: Project, template_id: int | None) -> PromptTemplate:
    if template_id is None:
        if project.prompt_template is None:
            raise _error("template", f"project {project.pk} has no default prompt template; name one")
        return project.prompt_template
    template = PromptTemplate.objects.filter(pk=template_id, project=project).first()
    if template is None:
        raise _error("template", f"project {project.pk} has no template {template_id}")
    return template


def _entry_configs(*, project: Project, created_by, versions: list[int], params: dict | None) -> list[tuple]:
    """(config, model name, version id) per version, validated as a generate config."""
    merged, _ = generation.generation_params(project, params)
    configs = []
    for i, version_id in enumerate(versions):
        try:
            paths, model_name, version = generation.model_source(
                project=project, requester=created_by, model_version=version_id, model_path=None, gguf_file=None
            )
        except ServiceError as exc:
            message = next(iter((exc.errors or {}).values()), [str(exc)])[0]
            raise _error(f"versions[{i}]", message) from None
        config = {**paths, "prompts_file": generation.PROMPTS_FILE, "k": 1, **merged}
        runs.run_validate_config(kind=RunKind.GENERATE, config=config, prefix="generation")
        configs.append((config, model_name, version))
    return configs


@transaction.atomic
def evaluation_create(
    *,
    project: Project,
    created_by,
    versions: Any,
    dataset_id: int,
    split: str | None = Split.TEST,
    limit: int = DEFAULT_LIMIT,
    name: str | None = None,
    params: dict | None = None,
    seed: int | None = None,
    template_id: int | None = None,
) -> SideBySideEval:
    """An evaluation of ``versions`` on the first ``limit`` rows (by index) of a dataset split of
    ``project``, rendered with its template; one generate run per version, all queued."""
    if project.kind == ProjectKind.EVALUATION:
        raise _error("project", f"project {project.pk} is an evaluation; evaluate from the project it was made from")
    split = None if split is None else str(split)  # Split.TEST -> "test", in messages too
    versions = _check_versions(versions)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise _error("seed", f"must be 0..{MAX_SEED}, got {seed}")
    configs = _entry_configs(project=project, created_by=created_by, versions=versions, params=params)
    dataset, rows = _rows(project=project, dataset_id=dataset_id, split=split, limit=limit)
    template = _template(project, template_id)
    prompts = generation.render_all(template, rows)
    version_rows = [entry_version for _, _, entry_version in configs]
    by_id = ModelVersion.objects.select_related("model").in_bulk(version_rows)
    label = name or f"{project.name}: " + " vs ".join(f"{by_id[v].model.name} v{by_id[v].version}" for v in versions)
    evaluation, row_map = sxs.evaluation_project_create(
        source=project,
        created_by=created_by,
        name=label,
        dataset=dataset,
        rows=rows,
        versions=[by_id[v] for v in versions],
        template=template,
        split=split,
        seed=random.SystemRandom().randrange(MAX_SEED) if seed is None else seed,
    )
    lines = [json.dumps({"prompt_id": row_map[p["prompt_id"]], "prompt": p["prompt"]}) + "\n" for p in prompts]

    def write_prompts(run: TrainingRun, folder: Path) -> None:
        (folder / generation.PROMPTS_FILE).write_text("".join(lines), encoding="utf-8")

    for entry, (config, model_name, version_id) in zip(evaluation.entries.order_by("position"), configs, strict=True):
        inputs = {
            "ingest": INGEST,
            "evaluation": evaluation.pk,
            "entry": entry.pk,
            "model_version": version_id,
            "model_name": model_name,
            "dataset": evaluation.dataset_id,
            "source_dataset": dataset.pk,
            "split": split,
            "prompts": len(lines),
            "prompts_file": generation.PROMPTS_FILE,
        }
        run = runs.run_create(
            kind=RunKind.GENERATE,
            config=config,
            inputs=inputs,
            project=evaluation.project,
            created_by=created_by,
            prepare=write_prompts,
        )
        sxs.entry_run_set(entry=entry, run_id=run.pk)
    return evaluation


class SamplesIngest(generation.CompletionsIngest):
    """Reads a side-by-side generate run's completions.jsonl as it grows and stores the answers."""

    @classmethod
    def for_run(cls, run: TrainingRun, folder: Path) -> "SamplesIngest | None":
        if run.kind != RunKind.GENERATE or run.inputs.get("ingest") != INGEST:
            return None
        handler = cls(run=run, folder=folder)
        handler.prompts = generation.read_prompts(folder)
        handler.entry = SideBySideEntry.objects.get(pk=run.inputs["entry"])
        return handler

    def store(self, lines: list[dict]) -> tuple[int, int]:
        answers = []
        for line in lines:
            first = (line.get("completions") or [None])[0]
            if not isinstance(first, dict) or not isinstance(first.get("text"), str):
                continue
            answers.append(
                sxs.Answer(
                    row_id=line["prompt_id"],
                    text=first["text"],
                    generation_params=first.get("params") or {},
                    seed=first.get("seed"),
                    metadata={
                        "run_id": self.run.pk,
                        "prompt_truncated": bool(line.get("truncated")),
                        **{key: first[key] for key in ("tokens", "finish_reason") if key in first},
                    },
                )
            )
        made = sxs.samples_store(entry=self.entry, answers=answers, prompts=self.prompts)
        return made, len(lines) - len(answers)

    def finish(self, **_) -> dict[str, Any]:
        self.ingest()
        return {"pairs_created": self.created, "answers_unreadable": self.skipped}
