"""AI labels (constitutional AI, RL stage): an AI labeler's judgments become rankings by the
project's "ai" member, so they flow through snapshots and stats like anyone's.

Recording is idempotent: a comparison keeps its first AI ranking, so a judgments file read twice
(a resumed run, a retried task) counts each comparison once. A share ``ai_spot_check_rate`` of the
newly AI-labeled comparisons stays in the human queue for audit; the rest that no human has ranked
leave it.
"""

from collections.abc import Iterable

from django.db import transaction

from contracts.orders import make_order
from labeling.models import Comparison, Completion, LabelSource, Project, ProjectKind, Ranking
from labeling.services.system_members import system_member
from labeling.splits import stable_point

BATCH = 500


def kept_for_spot_check(comparison_id: int, rate: float) -> bool:
    return stable_point(f"spot-check:{comparison_id}") < rate


def _ranks_or_none(judgment: dict, completion_ids: set[int]) -> dict[str, int] | None:
    ranks = judgment.get("ranks")
    if not isinstance(ranks, dict):
        return None
    try:
        parsed = {int(cid): int(rank) for cid, rank in ranks.items()}
    except (TypeError, ValueError):
        return None
    if set(parsed) != completion_ids or any(rank < 1 for rank in parsed.values()):
        return None
    return {str(cid): rank for cid, rank in sorted(parsed.items())}


def _ai_details(judgment: dict, *, constitution: int | None, run_id: int | None) -> dict:
    details = {"principle": judgment.get("principle"), "constitution": constitution, "run": run_id}
    if isinstance(judgment.get("probability"), int | float):
        details["probability"] = float(judgment["probability"])
    if isinstance(judgment.get("pairs"), list):
        details["pairs"] = judgment["pairs"]
    return details


@transaction.atomic
def ai_rankings_record(
    *, project: Project, judgments: Iterable[dict], constitution: int | None = None, run_id: int | None = None
) -> dict:
    """Store AI judgments ``{comparison_id, principle, ranks, probability, pairs}`` as AI rankings.

    Returns counts: ``recorded``, ``already`` (the comparison had an AI ranking), ``rejected``
    (not a comparison of this project, gold, or ranks that do not cover its completions),
    ``spot_checks`` (kept in the human queue) and ``left_queue``.
    """
    member = system_member(project=project, source=LabelSource.AI)
    counts = {"recorded": 0, "already": 0, "rejected": 0, "spot_checks": 0, "left_queue": 0}
    judgments = [j for j in judgments if isinstance(j, dict)]
    for start in range(0, len(judgments), BATCH):
        _record_batch(project, member, judgments[start : start + BATCH], counts, constitution, run_id)
    return counts


def _record_batch(project, member, batch, counts, constitution, run_id) -> None:
    ids = {j.get("comparison_id") for j in batch if isinstance(j.get("comparison_id"), int)}
    comparisons = {
        # Locked (in id order): two ingests of the same judgments cannot both pass the check below.
        c.pk: c
        for c in Comparison.objects.select_for_update()
        .filter(project=project, pk__in=ids, is_gold=False)
        .only("pk", "label_count")
        .order_by("pk")
    }
    completions: dict[int, set[int]] = {}
    for comparison_id, completion_id in Completion.objects.filter(comparison_id__in=comparisons).values_list(
        "comparison_id", "pk"
    ):
        completions.setdefault(comparison_id, set()).add(completion_id)
    labeled = set(
        Ranking.objects.filter(comparison_id__in=comparisons, labeler=member).values_list("comparison_id", flat=True)
    )
    rankings, new_ids = [], []
    for judgment in batch:
        comparison = comparisons.get(judgment.get("comparison_id"))
        ranks = comparison and _ranks_or_none(judgment, completions.get(comparison.pk, set()))
        if not ranks:
            counts["rejected"] += 1
            continue
        if comparison.pk in labeled:
            counts["already"] += 1
            continue
        labeled.add(comparison.pk)
        order = make_order(None, ranks, ai=_ai_details(judgment, constitution=constitution, run_id=run_id))
        rankings.append(Ranking(comparison=comparison, labeler=member, source=LabelSource.AI, orders=[order]))
        new_ids.append(comparison.pk)
    Ranking.objects.bulk_create(rankings)
    counts["recorded"] += len(rankings)
    if project.kind == ProjectKind.EVALUATION:
        return  # an AI judge of an evaluation works beside the humans, never instead of them
    spot = {cid for cid in new_ids if kept_for_spot_check(cid, project.ai_spot_check_rate)}
    counts["spot_checks"] += len(spot)
    leaving = [cid for cid in new_ids if cid not in spot and comparisons[cid].label_count == 0]
    # label_count=0 re-checked in the UPDATE: a human ranking that landed meanwhile keeps it queued.
    counts["left_queue"] += Comparison.objects.filter(pk__in=leaving, label_count=0).update(human_queue=False)
