"""Rounds of the loop (InstructGPT's, run by one tool): generate with a registered version -> label
-> snapshot -> train (reward model, then RLHF or DPO) -> evaluate -> register, and the next round
from the version it made.

``round_start`` numbers the round, queues its generation run (the dataset's rows that have no
comparison yet) and, when the previous round ran RLHF, puts that run's best- and worst-scored
held-out samples back to the labelers: each becomes a comparison of the policy's answer against
the reference's, so people say whether the reward model's favourites are any good (the guard
against reward hacking that DESIGN.md asks for). Runs join a round with ``round`` on
``POST /api/runs/``; evaluations with ``round`` on ``POST /api/projects/{id}/evaluations/``.
"""

import json
import random

from django.db import transaction
from django.db.models import Max

from common.exceptions import ServiceError
from labeling.models import Project, ProjectKind, SideBySideEval
from labeling.services.comparisons import ParsedComparison, comparisons_create
from models_registry.models import ModelAlias
from models_registry.selectors import version_usable
from training.ml import guard
from training.models import Round, RunKind, RunState, TrainingRun
from training.services import generation, lookups

MAX_GUARD_SAMPLES = 100


def _error(key: str, message: str) -> ServiceError:
    return ServiceError(f"{key}: {message}", errors={key: [message]})


def version_by_alias(*, model_id: int, alias: str) -> int | None:
    return ModelAlias.objects.filter(model_id=model_id, name=alias).values_list("version_id", flat=True).first()


def _version(*, project: Project, user, version_id: int | None, model_id: int | None, alias: str | None):
    if (version_id is None) == (alias is None):
        raise _error("version", "name the version that generates: a version id, or a model and one of its aliases")
    if alias is not None:
        if model_id is None:
            raise _error("model", "an alias belongs to a model: give its id")
        version_id = version_by_alias(model_id=model_id, alias=alias)
        if version_id is None:
            raise _error("alias", f"model {model_id} has no alias {alias!r}")
    version = version_usable(user=user, version_id=version_id, project_id=project.pk)
    if version is None:
        raise _error("version", f"there is no model version {version_id} you can use in project {project.pk}")
    return version


def round_for_project(*, project: Project, round_id: int | None, key: str = "round") -> Round | None:
    """The round a new run or evaluation joins: one of the same project."""
    if round_id is None:
        return None
    found = Round.objects.filter(pk=round_id, project=project).first() if project is not None else None
    if found is None:
        where = f"project {project.pk}" if project is not None else "a platform-level run (no project)"
        raise _error(key, f"there is no round {round_id} in {where}")
    return found


@transaction.atomic
def round_start(
    *,
    project: Project,
    created_by,
    dataset_id: int,
    version_id: int | None = None,
    model_id: int | None = None,
    alias: str | None = None,
    split: str | None = None,
    limit: int | None = None,
    params: dict | None = None,
    guard_samples: int = guard.EXTREMES,
    note: str = "",
) -> Round:
    if project.kind != ProjectKind.PREFERENCE:
        raise _error("project", f"project {project.pk} is a side-by-side evaluation; rounds run on a ranking project")
    if not 0 <= guard_samples <= MAX_GUARD_SAMPLES:
        raise _error("guard_samples", f"must be 0..{MAX_GUARD_SAMPLES}, got {guard_samples}")
    version = _version(project=project, user=created_by, version_id=version_id, model_id=model_id, alias=alias)
    Project.objects.select_for_update().filter(pk=project.pk).first()  # rounds of a project are numbered in turn
    previous = Round.objects.filter(project=project).order_by("-number").first()
    number = (Round.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    run = generation.generation_run_create(
        project=project,
        created_by=created_by,
        dataset_id=dataset_id,
        model_version=version.pk,
        split=split,
        limit=limit,
        params=params,
    )
    created = Round.objects.create(
        project=project,
        number=number,
        base_version=version,
        previous=previous,
        generation_run=run,
        note=note[:500],
        created_by=created_by,
    )
    TrainingRun.objects.filter(pk=run.pk).update(round=created)
    if previous is not None and guard_samples:
        created.guard = _guard_comparisons(project=project, round_=created, previous=previous, count=guard_samples)
        created.save(update_fields=["guard"])
    return created


def latest_run(round_: Round, kinds: tuple[str, ...]) -> TrainingRun | None:
    return round_.runs.filter(kind__in=kinds, state=RunState.SUCCEEDED).order_by("-finished_at", "-id").first()


def rlhf_samples(run: TrainingRun) -> list[dict]:
    """The run's held-out samples (the guard's file), through the store: local copy or the bucket's."""
    if not lookups.run_file_exists(run.pk, guard.SAMPLES_FILE):
        return []
    with lookups.run_file_open(run.pk, guard.SAMPLES_FILE) as file:
        text = file.read().decode("utf-8")
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line says nothing
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _guard_comparisons(*, project: Project, round_: Round, previous: Round, count: int) -> dict:
    """The previous round's RLHF extremes as comparisons (policy vs reference) in this round."""
    run = latest_run(previous, (RunKind.RLHF,))
    if run is None:
        return {"skipped": f"round {previous.number} has no succeeded rlhf run"}
    if project.completions_per_prompt != 2:
        return {"run": run.pk, "skipped": "guard comparisons pair two answers; the project compares more (K > 2)"}
    report = guard.report(rlhf_samples(run), extremes=count)
    parsed, kinds = [], []
    for which in ("best", "worst"):
        for sample in report[which]:
            if not sample.get("completion") or not sample.get("completion_before"):
                continue
            answers = [
                {"text": sample["completion"], "model_name": f"run {run.pk} policy", "metadata": {"source": "policy"}},
                {"text": sample["completion_before"], "model_name": "reference", "metadata": {"source": "reference"}},
            ]
            random.Random(f"{run.pk}:{which}:{sample.get('prompt_id')}").shuffle(answers)  # blind
            metadata = {"guard": which, "round": round_.pk, "run": run.pk}
            metadata |= {k: sample.get(k) for k in ("reward", "reward_before", "heldout_reward")}
            parsed.append(
                ParsedComparison(line=0, prompt=sample.get("prompt") or "", completions=answers, metadata=metadata)
            )
            kinds.append(which)
    made = comparisons_create(project=project, parsed=parsed) if parsed else []
    return {
        "run": run.pk,
        "best": [c.pk for c, k in zip(made, kinds, strict=True) if k == "best"],
        "worst": [c.pk for c, k in zip(made, kinds, strict=True) if k == "worst"],
    }


def evaluation_join(*, round_: Round | None, evaluation: SideBySideEval) -> None:
    if round_ is not None:
        round_.evaluations.add(evaluation)


def run_join(*, round_: Round | None, run: TrainingRun) -> None:
    if round_ is not None:
        TrainingRun.objects.filter(pk=run.pk).update(round=round_)
        run.round = round_
