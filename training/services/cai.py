"""Constitutional AI on the platform (DESIGN.md, The ML): what ``cai_revise`` and ``ai_feedback`` runs
read, and what their results become.

- ``cai_revise`` inputs: ``base_version``, ``constitution`` (a version number of the project's
  constitution; default the newest), prompts from ``dataset`` (+ ``template``, ``split``, default
  train) or else the project's comparison prompts (``split``), ``limit``, and ``then_sft`` (an sft
  config, plus ``output_model``) to chain a LoRA SFT run on the revisions when it succeeds. Its
  steps become ``CritiqueRevision`` rows (browsable per principle).
- ``ai_feedback`` inputs: ``base_version`` (the AI labeler), ``constitution``, ``split``, ``limit``:
  the project's non-gold comparisons that have no AI label yet. Its judgments become AI rankings
  (``labeling.services.ai_labels``).
- ``sft`` may learn a finished ``cai_revise`` run's revisions, and ``reward_model``/``dpo`` its pairs
  (revision over first answer): ``inputs.cai_run`` instead of a dataset or a snapshot.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from labeling.models import Comparison, Constitution, LabelSource, Project, Ranking, Split
from labeling.services.ai_labels import ai_rankings_record
from labeling.services.comparisons import storable
from labeling.splits import stable_split
from training.ml.configs import ConfigError, config_for
from training.models import LIVE_STATES, CritiqueRevision, RunKind, RunState, TrainingRun
from training.services import run_inputs, runs
from training.services.lookups import input_error, run_file_exists, run_file_open

logger = logging.getLogger(__name__)

MAX_PROMPTS = 50_000
CAI_EVAL_FRACTION = 0.1


_error = input_error


def _split(inputs: dict, default: str | None) -> str | None:
    split = inputs.get("split") or default
    if split is not None and split not in Split.values:
        raise _error("inputs.split", f"unknown split {split!r}; use one of {', '.join(Split.values)}")
    return split


def constitution_input(resolved, inputs: dict, project: Project | None) -> Constitution:
    if project is None:
        raise _error("project", "a constitutional-AI run belongs to a project (its constitution)")
    version = inputs.get("constitution")
    query = Constitution.objects.filter(project=project)
    if version is None:
        constitution = query.order_by("-version").first()
        if constitution is None:
            raise _error("inputs.constitution", f"project {project.pk} has no constitution yet; save one first")
    else:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _error("inputs.constitution", f"expected a version number, got {version!r:.40}")
        constitution = query.filter(version=version).first()
        if constitution is None:
            raise _error("inputs.constitution", f"project {project.pk} has no constitution version {version}")
    resolved.config["principles"] = constitution.principles
    resolved.inputs.update(constitution=constitution.version, constitution_id=constitution.pk)
    return constitution


def revise_prompts(resolved, inputs: dict, project: Project) -> None:
    """``prompts.jsonl``: dataset rows rendered by the template, or the project's comparison prompts."""
    limit = min(inputs.get("limit") or MAX_PROMPTS, MAX_PROMPTS)
    prompts = []
    if inputs.get("dataset") is not None:
        split = _split(inputs, Split.TRAIN)
        dataset, template, rows = run_inputs.dataset_rows(inputs, project, split)
        for row in rows.iterator(chunk_size=2000):  # rows are cut at inputs.limit already
            prompts.append({"prompt_id": row.pk, "prompt": run_inputs.render(template, row, "inputs.template")})
        resolved.inputs.update(dataset=dataset.pk, template=template.pk, split=split)
    else:
        if inputs.get("template") is not None:
            raise _error("inputs.template", "goes with inputs.dataset (comparison prompts are already rendered)")
        split = _split(inputs, None)
        comparisons = Comparison.objects.filter(project=project, is_gold=False)
        if split is not None:
            comparisons = comparisons.filter(split=split)
        seen: set[str] = set()
        for pk, prompt in comparisons.order_by("id").values_list("pk", "prompt").iterator(chunk_size=2000):
            if prompt not in seen:  # K completions share a prompt; imported pairs may repeat one
                seen.add(prompt)
                prompts.append({"prompt_id": f"comparison-{pk}", "prompt": prompt})
            if len(prompts) >= limit:
                break
        resolved.inputs["split"] = split
    if not prompts:
        raise _error("inputs.dataset" if inputs.get("dataset") else "inputs.split", "no prompts to revise")
    resolved.files["prompts.jsonl"] = prompts
    resolved.config["prompts_file"] = "prompts.jsonl"
    resolved.inputs["prompts"] = len(prompts)


def then_sft_input(resolved, inputs: dict) -> None:
    """Check the chained SFT's config now (a 400 today, not a failed run after the revisions)."""
    chain = inputs.get("then_sft")
    if chain is None:
        return
    if not isinstance(chain, dict):
        raise _error("inputs.then_sft", "expected an object: {config: {...}, output_model}")
    unknown = sorted(set(chain) - {"config", "output_model"})
    if unknown:
        raise _error(f"inputs.then_sft.{unknown[0]}", "unknown; then_sft takes config and output_model")
    config = chain.get("config") or {}
    if not isinstance(config, dict):
        raise _error("inputs.then_sft.config", "expected an object")
    filled = [k for k in ("model_path", "train_file", "eval_file") if k in config]
    if filled:
        raise _error(f"inputs.then_sft.config.{filled[0]}", "set by the platform from the revisions")
    try:
        config_for(RunKind.SFT, {**config, "model_path": "-", "train_file": "-"})
    except ConfigError as exc:
        raise _error(f"inputs.then_sft.config.{exc.field}", exc.message) from None
    name = run_inputs.output_model_name(RunKind.SFT, {"output_model": chain.get("output_model")}, None)
    resolved.inputs["then_sft"] = {"config": config, "output_model": name}


def feedback_comparisons(resolved, inputs: dict, project: Project) -> None:
    """``comparisons.jsonl``: non-gold comparisons of the project with no AI ranking yet."""
    split = _split(inputs, None)
    limit = min(inputs.get("limit") or MAX_PROMPTS, MAX_PROMPTS)
    labeled = Ranking.objects.filter(comparison__project=project, source=LabelSource.AI).values("comparison_id")
    comparisons = Comparison.objects.filter(project=project, is_gold=False).exclude(pk__in=labeled)
    if split is not None:
        comparisons = comparisons.filter(split=split)
    rows = [
        {
            "comparison_id": c.pk,
            "prompt": c.prompt,
            "completions": [{"id": k.pk, "text": k.text} for k in c.completions.all()],
        }
        for c in comparisons.order_by("id").prefetch_related("completions")[:limit]
    ]
    if not rows:
        where = f" in split {split!r}" if split else ""
        raise _error("inputs.split", f"every comparison{where} of project {project.pk} already has an AI label")
    resolved.files["comparisons.jsonl"] = rows
    resolved.config["comparisons_file"] = "comparisons.jsonl"
    resolved.inputs.update(split=split, comparisons=len(rows))


def from_cai_run(resolved, inputs: dict, project: Project | None, *, kind: str) -> None:
    """A run's ``train.jsonl``/``eval.jsonl`` from a cai_revise run: ``sft`` learns the revisions
    (``sft.jsonl``), ``reward_model`` and ``dpo`` prefer each revision over its first answer
    (``pairs.jsonl``). A stable 10% of the prompts is the eval split."""
    run_id = inputs.get("cai_run")
    run = TrainingRun.objects.filter(pk=run_id, kind=RunKind.CAI_REVISE).first() if isinstance(run_id, int) else None
    if run is None or (project is not None and run.project_id != project.pk):
        raise _error("inputs.cai_run", f"there is no cai_revise run {run_id!r} in this project")
    name = "sft.jsonl" if kind == RunKind.SFT else "pairs.jsonl"
    # Through the store: the local work folder's copy, or (S3, the run ended elsewhere) the bucket's.
    present = run_file_exists(run.pk, name)
    # A live run with its files has finished its ML and is being wrapped up: that is when it chains.
    if run.state != RunState.SUCCEEDED and not (run.state in LIVE_STATES and present):
        raise _error("inputs.cai_run", f"run {run.pk} is {run.state}, not succeeded")
    if not present:
        raise _error("inputs.cai_run", f"run {run.pk} left no {name}")
    with run_file_open(run.pk, name) as file:
        text = file.read().decode("utf-8")
    files: dict[str, list[dict]] = {"train.jsonl": [], "eval.jsonl": []}
    for row in _jsonl_rows(text, name):
        split = stable_split(json.dumps(row["prompt_id"]), eval_fraction=CAI_EVAL_FRACTION)
        if kind == RunKind.SFT:
            out = {"prompt": row["prompt"], "completion": " " + row["completion"].strip()}
        else:
            out = {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
        files["eval.jsonl" if split == "eval" else "train.jsonl"].append(out)
    if not files["train.jsonl"]:
        raise _error("inputs.cai_run", f"run {run.pk} produced nothing to train on in {name}")
    resolved.add_train_eval(files)
    resolved.inputs.update(
        cai_run=run.pk,
        constitution=run.inputs.get("constitution"),
        constitution_id=run.inputs.get("constitution_id"),
        rows={k.removesuffix(".jsonl"): len(v) for k, v in files.items()},
    )


# -- each kind's resolver (``KindSpec.resolve`` in training.kinds) --------------------------------


def _no_principles(config: dict) -> None:
    if config.get("principles") is not None:
        raise _error("config.principles", "set from the project's constitution (inputs.constitution)")


def revise(resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
    """cai_revise: the constitution, the prompts to revise, and the chained SFT if asked for."""
    _no_principles(config)
    constitution_input(resolved, inputs, project)
    revise_prompts(resolved, inputs, project)
    then_sft_input(resolved, inputs)


def feedback(resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
    """ai_feedback: the constitution and the comparisons to label."""
    _no_principles(config)
    constitution_input(resolved, inputs, project)
    feedback_comparisons(resolved, inputs, project)


def cai_run_or(resolver):
    """A kind's resolver that takes ``inputs.cai_run`` (a cai_revise run's revisions or pairs) instead
    of its own training data (``dataset`` or ``snapshot``, whichever the kind names)."""

    def resolve(resolved, inputs: dict, config: dict, project: Project | None, base) -> None:
        if inputs.get("cai_run") is None:
            return resolver(resolved, inputs, config, project, base)
        kind = resolved.kind
        other = "dataset" if kind == RunKind.SFT else "snapshot"
        if inputs.get(other) is not None:
            raise _error("inputs.cai_run", f"give a {other} or a cai_run, not both")
        from_cai_run(resolved, inputs, project, kind=kind)

    return resolve


# -- results --------------------------------------------------------------------------------------


def _storable(value):
    """PostgreSQL text and jsonb cannot hold NUL characters, and a model can emit one: drop them."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    return value


def _jsonl(path: Path) -> list[dict]:
    """The rows of a run's JSONL output. A torn last line (a process killed mid-write) is left out;
    a bad line anywhere else is corruption and fails the run, naming the line."""
    return _jsonl_rows(path.read_text(encoding="utf-8"), path.name) if path.exists() else []


def _jsonl_rows(text: str, name: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(_storable(json.loads(line)))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{name}, line {number}: not JSON ({exc.msg})") from None
    return rows


def _prompt_key(value) -> str:
    return value[:200] if isinstance(value, str) else json.dumps(value)[:200]


@transaction.atomic
def revisions_store(*, run: TrainingRun, folder: Path) -> int:
    """``steps.jsonl`` into CritiqueRevision rows (idempotent: a prompt already stored is kept)."""
    have = set(CritiqueRevision.objects.filter(run=run).values_list("prompt_id", flat=True))
    rows = []
    for step in _jsonl(folder / "steps.jsonl"):
        prompt_id = _prompt_key(step.get("prompt_id"))
        if prompt_id in have:
            continue
        have.add(prompt_id)
        rounds = step.get("rounds") or []
        keys = sorted({str(r.get("principle")) for r in rounds if isinstance(r, dict)})
        rows.append(
            CritiqueRevision(
                run=run,
                prompt_id=prompt_id,
                prompt=str(step.get("prompt", "")),
                initial=str(step.get("initial", "")),
                rounds=rounds,
                final=str(step.get("final", "")),
                principles=("," + ",".join(keys) + ",")[:1000] if keys else "",
            )
        )
    CritiqueRevision.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def chain_sft(*, run: TrainingRun) -> int | None:
    """Queue the SFT run a cai_revise run asked for (``inputs.then_sft``), once; returns its id.

    The chained run's id goes into the parent's ``outputs.sft_run`` in the transaction that creates
    it, under the parent's row lock: a resumed parent that finishes again (or a second supervisor)
    finds it there and queues nothing.
    """
    chain = run.inputs.get("then_sft")
    if not chain:
        return None
    with transaction.atomic():
        parent = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if parent.outputs.get("sft_run") is not None:
            return parent.outputs["sft_run"]
        sft = runs.run_start(
            kind=RunKind.SFT,
            config=dict(chain.get("config") or {}),
            inputs={
                "base_version": run.inputs["base_version"],
                "cai_run": run.pk,
                "output_model": chain["output_model"],
            },
            project=run.project,
            created_by=run.created_by,
        )
        parent.outputs = {**parent.outputs, "sft_run": sft.pk}
        parent.save(update_fields=["outputs"])
    return sft.pk


@dataclass
class CaiResults:
    """The runner's handler for constitutional-AI runs (``KindSpec.handler`` in ``training.kinds``)."""

    run: TrainingRun
    folder: Path

    @classmethod
    def for_run(cls, run: TrainingRun, folder: Path) -> "CaiResults":
        return cls(run=run, folder=folder)

    def on_artifact(self, event: dict) -> int:
        return 0

    def finish(self, *, result: dict, succeeded: bool) -> dict[str, Any]:
        if not succeeded:
            return {}
        result = result or {}
        if self.run.kind == RunKind.CAI_REVISE:
            stored = revisions_store(run=self.run, folder=self.folder)
            outputs: dict[str, Any] = {
                "revisions_stored": stored,
                "principle_counts": result.get("principle_counts") or {},
                "files": result.get("files") or {},
            }
            sft_run = chain_sft(run=self.run)
            if sft_run is not None:
                outputs["sft_run"] = sft_run
            return outputs
        counts = ai_rankings_record(
            project=self.run.project,
            judgments=_jsonl(self.folder / "judgments.jsonl"),
            constitution=self.run.inputs.get("constitution"),
            run_id=self.run.pk,
        )
        return {**counts, "principle_counts": result.get("principle_counts") or {}}
