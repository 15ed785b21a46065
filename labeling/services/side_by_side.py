"""Writes of side-by-side evaluations: the evaluation project, the answers, the blind pairs, publishing.

``evaluation_project_create`` makes the project labelers work in (kind ``evaluation``, K = 2) as a
copy of the source project's members, criteria, instructions and newest constitution, with a copy of
the chosen prompt rows. ``samples_store`` keeps one entry's answers and makes every pair of that
entry with the entries that already answered the same row: one comparison per (row, pair), its two
answers in a seeded random position, created in position order so that not even the completion
ids follow the entries' order. A line stored twice (a redelivered event, a resumed run) changes
nothing.
"""

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from labeling.models import (
    AlignmentCriterion,
    Comparison,
    Constitution,
    Dataset,
    Membership,
    Project,
    ProjectKind,
    PromptRow,
    PromptTemplate,
    Role,
    SideBySideEntry,
    SideBySideEval,
    SideBySidePair,
    SideBySideSample,
)
from labeling.services.comparisons import ParsedComparison, comparisons_create, storable
from models_registry.services import version_human_eval_record

COPIED_PROJECT_FIELDS = ("instructions", "overlap", "lease_seconds", "gold_rate", "rank_per_criterion")


@dataclass(frozen=True)
class Answer:
    row_id: int
    text: str
    generation_params: dict
    seed: int | None
    metadata: dict


def _copy_dataset(*, source: Dataset, project: Project, rows: Sequence[PromptRow], created_by) -> dict[int, int]:
    """A dataset of ``project`` holding ``rows`` (same index, data and split): {source row id: copy id}."""
    split_counts: dict[str, int] = {}
    for row in rows:
        split_counts[row.split] = split_counts.get(row.split, 0) + 1
    copy = Dataset.objects.create(
        project=project,
        name=f"{source.name} (evaluation prompts)"[:200],
        source_filename=source.source_filename,
        fields=source.fields,
        row_count=len(rows),
        split_counts=split_counts,
        created_by=created_by,
    )
    copies = PromptRow.objects.bulk_create(
        [PromptRow(dataset=copy, index=row.index, data=row.data, split=row.split) for row in rows]
    )
    return {row.pk: made.pk for row, made in zip(rows, copies, strict=True)}


def _copy_setup(*, source: Project, project: Project, template: PromptTemplate | None, created_by) -> None:
    members = [
        Membership(project=project, user_id=m.user_id, role=m.role) for m in source.memberships.exclude(user=created_by)
    ]
    Membership.objects.bulk_create(members)
    AlignmentCriterion.objects.bulk_create(
        [
            AlignmentCriterion(project=project, name=c.name, instructions=c.instructions, position=c.position)
            for c in source.criteria.all()
        ]
    )
    constitution = source.constitutions.order_by("-version").first()
    if constitution is not None:  # what an AI judge of the evaluation compares by
        Constitution.objects.create(
            project=project,
            version=1,
            principles=constitution.principles,
            note=f"copied from project {source.pk} v{constitution.version}",
            created_by=created_by,
        )
    if template is not None:
        project.prompt_template = PromptTemplate.objects.create(
            project=project,
            name=template.name,
            text=template.text,
            example_text=template.example_text,
            examples=template.examples,
            example_separator=template.example_separator,
        )
        project.save(update_fields=["prompt_template"])


@transaction.atomic
def evaluation_project_create(
    *,
    source: Project,
    created_by,
    name: str,
    dataset: Dataset,
    rows: Sequence[PromptRow],
    versions: Sequence,
    template: PromptTemplate | None,
    split: str | None,
    seed: int,
) -> tuple[SideBySideEval, dict[int, int]]:
    """The evaluation, its project and entries; returns it with {source row id: evaluation row id}."""
    project = Project(
        name=name[:200],
        kind=ProjectKind.EVALUATION,
        completions_per_prompt=2,
        created_by=created_by,
        **{field: getattr(source, field) for field in COPIED_PROJECT_FIELDS},
    )
    project.full_clean()
    project.save()
    Membership.objects.create(project=project, user=created_by, role=Role.ADMIN)
    _copy_setup(source=source, project=project, template=template, created_by=created_by)
    row_map = _copy_dataset(source=dataset, project=project, rows=rows, created_by=created_by)
    evaluation = SideBySideEval.objects.create(
        project=project,
        source_project=source,
        name=name[:200],
        dataset=project.datasets.get(),
        split=split or "",
        seed=seed,
        created_by=created_by,
    )
    SideBySideEntry.objects.bulk_create(
        [
            SideBySideEntry(evaluation=evaluation, version=v, label=f"{v.model.name} v{v.version}"[:200], position=i)
            for i, v in enumerate(versions)
        ]
    )
    return evaluation, row_map


def entry_run_set(*, entry: SideBySideEntry, run_id: int) -> None:
    SideBySideEntry.objects.filter(pk=entry.pk).update(run_id=run_id)


def a_position(seed: int, row_index: int, a_position_in_eval: int, b_position_in_eval: int) -> int:
    """Where entry a's answer goes (0 or 1): a fair coin per (row, pair), fixed by the seed (and by
    nothing a database assigns, so the same seed on the same rows lays the pairs out the same)."""
    return random.Random(f"{seed}:{row_index}:{a_position_in_eval}:{b_position_in_eval}").randrange(2)


@transaction.atomic
def samples_store(*, entry: SideBySideEntry, answers: Iterable[Answer], prompts: dict[int, str]) -> int:
    """Keep the answers of one entry and make its pairs on those rows; returns comparisons made."""
    # One evaluation's stores run one after the other: the pairs of a row are made exactly once.
    evaluation = SideBySideEval.objects.select_for_update().select_related("project").get(pk=entry.evaluation_id)
    answers = [a for a in answers if a.row_id in prompts]
    valid_rows = set(
        PromptRow.objects.filter(pk__in=[a.row_id for a in answers], dataset__project=evaluation.project).values_list(
            "pk", flat=True
        )
    )
    SideBySideSample.objects.bulk_create(
        [
            SideBySideSample(
                entry=entry,
                prompt_row_id=a.row_id,
                text=storable(a.text),
                generation_params=a.generation_params,
                seed=a.seed,
                metadata=a.metadata,
            )
            for a in answers
            if a.row_id in valid_rows
        ],
        ignore_conflicts=True,
    )
    return _pairs_make(evaluation=evaluation, row_ids=sorted(valid_rows), prompts=prompts)


def _pairs_make(*, evaluation: SideBySideEval, row_ids: list[int], prompts: dict[int, str]) -> int:
    entries = {e.pk: e for e in evaluation.entries.all()}
    samples: dict[int, dict[int, SideBySideSample]] = {}
    for sample in SideBySideSample.objects.filter(entry__evaluation=evaluation, prompt_row_id__in=row_ids):
        samples.setdefault(sample.prompt_row_id, {})[sample.entry_id] = sample
    made = set(
        SideBySidePair.objects.filter(evaluation=evaluation, prompt_row_id__in=row_ids).values_list(
            "prompt_row_id", "entry_a_id", "entry_b_id"
        )
    )
    rows = {
        pk: (index, split)
        for pk, index, split in PromptRow.objects.filter(pk__in=row_ids).values_list("pk", "index", "split")
    }
    planned, parsed = [], []
    for row_id in row_ids:
        answered = sorted(samples.get(row_id, {}).values(), key=lambda s: entries[s.entry_id].position)
        for i, first in enumerate(answered):
            for second in answered[i + 1 :]:
                if (row_id, first.entry_id, second.entry_id) in made:
                    continue
                position = a_position(
                    evaluation.seed,
                    rows[row_id][0],
                    entries[first.entry_id].position,
                    entries[second.entry_id].position,
                )
                ordered = (first, second) if position == 0 else (second, first)
                planned.append((row_id, first.entry_id, second.entry_id, position))
                parsed.append(
                    ParsedComparison(
                        line=0,
                        prompt=prompts[row_id],
                        completions=[_completion(s, entries[s.entry_id]) for s in ordered],
                        split=rows[row_id][1],
                        metadata={"evaluation": evaluation.pk},
                    )
                )
    if not parsed:
        return 0
    comparisons = comparisons_create(project=evaluation.project, parsed=parsed)
    for comparison, (row_id, *_) in zip(comparisons, planned, strict=True):
        comparison.prompt_row_id = row_id
    Comparison.objects.bulk_update(comparisons, ["prompt_row"])
    SideBySidePair.objects.bulk_create(
        [
            SideBySidePair(
                evaluation=evaluation, prompt_row_id=row, entry_a_id=a, entry_b_id=b, a_position=pos, comparison=c
            )
            for c, (row, a, b, pos) in zip(comparisons, planned, strict=True)
        ]
    )
    return len(comparisons)


def _completion(sample: SideBySideSample, entry: SideBySideEntry) -> dict:
    return {
        "text": sample.text,
        "model_name": entry.label,
        "generation_params": sample.generation_params,
        "seed": sample.seed,
        "metadata": {**sample.metadata, "entry": entry.pk, "version": entry.version_id},
    }


@transaction.atomic
def evaluation_publish(*, evaluation: SideBySideEval, results: dict) -> SideBySideEval:
    """Store the results on the evaluation and a summary on every version it compared."""
    evaluation = SideBySideEval.objects.select_for_update().get(pk=evaluation.pk)
    evaluation.results = results
    evaluation.published_at = timezone.now()
    evaluation.save(update_fields=["results", "published_at"])
    labels = {entry["id"]: entry for entry in results["entries"]}
    for entry in results["entries"]:
        summary = {
            "evaluation": evaluation.pk,
            "name": evaluation.name,
            "project": evaluation.project_id,
            "published_at": evaluation.published_at.isoformat(),
            "criteria": [_version_summary(verdict, entry["id"], labels) for verdict in results["human"]],
        }
        version_human_eval_record(version_id=entry["version"], evaluation_id=evaluation.pk, summary=summary)
    return evaluation


def _version_summary(verdict: dict, entry_id: int, labels: dict) -> dict:
    score = next((row for row in verdict["scores"] if row["entry"] == entry_id), None) or {}
    against = []
    for pair in verdict["pairs"]:
        if entry_id not in (pair["a"], pair["b"]):
            continue
        mine = pair["a"] == entry_id
        other = labels[pair["b"] if mine else pair["a"]]
        rate = pair["win_rate"] if mine else 1 - pair["win_rate"]
        low, high = (pair["low"], pair["high"]) if mine else (1 - pair["high"], 1 - pair["low"])
        against.append(
            {"version": other["version"], "label": other["label"], "win_rate": rate, "low": low, "high": high}
            | {"n": pair["n"]}
        )
    return {
        "criterion": verdict["name"],
        "score": score.get("score"),
        "low": score.get("low"),
        "high": score.get("high"),
        "rank": score.get("rank"),
        "votes": verdict["votes"],
        "against": against,
    }
