"""Reads of side-by-side evaluations: who may see one, its progress, and its results."""

import logging
from collections import defaultdict

from django.db.models import Count, Q, QuerySet
from rest_framework.exceptions import NotFound, PermissionDenied

from common.api import is_platform_admin
from contracts.orders import read_orders
from labeling import side_by_side
from labeling.access import ROLE_RANK
from labeling.models import (
    Completion,
    LabelSource,
    Membership,
    Ranking,
    Role,
    SideBySideEntry,
    SideBySideEval,
    SideBySidePair,
    SideBySideSample,
)

logger = logging.getLogger(__name__)

READER_ROLES = (Role.REVIEWER, Role.ADMIN)
OVERALL = "overall"


def evaluations_for_user(*, user, project_id: int | None = None) -> QuerySet[SideBySideEval]:
    """The evaluations whose evaluation project the user reviews or administers (all, for platform
    admins); ``project_id`` names the evaluation project or the project it was made from."""
    evaluations = SideBySideEval.objects.select_related("project")
    if not is_platform_admin(user):
        readable = Membership.objects.filter(user=user, role__in=READER_ROLES).values("project_id")
        evaluations = evaluations.filter(project_id__in=readable)
    if project_id is not None:
        evaluations = evaluations.filter(Q(project_id=project_id) | Q(source_project_id=project_id))
    return evaluations.order_by("-id")


def evaluation_for_user(*, user, evaluation_id: int, at_least: str = Role.REVIEWER) -> SideBySideEval:
    """The evaluation, or 404 for anyone who is not a reviewer or admin of its project (labelers
    label it blind: they may not learn which model wrote what), 403 for a reviewer who wants more."""
    evaluation = SideBySideEval.objects.select_related("project").filter(pk=evaluation_id).first()
    role = None
    if evaluation is not None:
        role = Role.ADMIN if is_platform_admin(user) else _role(user, evaluation.project_id)
    if role not in READER_ROLES:
        raise NotFound(f"Evaluation {evaluation_id} does not exist or you do not review its project.")
    if ROLE_RANK[role] < ROLE_RANK[at_least]:
        raise PermissionDenied(f"This needs the {at_least} role in project {evaluation.project_id}; you are a {role}.")
    return evaluation


def _role(user, project_id: int) -> str | None:
    return Membership.objects.filter(user=user, project_id=project_id).values_list("role", flat=True).first()


def entries_with_counts(evaluation: SideBySideEval) -> list[SideBySideEntry]:
    return list(
        evaluation.entries.select_related("version__model").annotate(sample_count=Count("samples")).order_by("position")
    )


def evaluation_progress(evaluation: SideBySideEval, entries: list[SideBySideEntry]) -> dict:
    project = evaluation.project
    prompts = project.datasets.aggregate(rows=Count("rows"))["rows"] or 0
    pairs = SideBySidePair.objects.filter(evaluation=evaluation)
    counted = pairs.aggregate(
        comparisons=Count("id", distinct=True),
        labels=Count("comparison__rankings", filter=Q(comparison__rankings__source=LabelSource.HUMAN)),
    )
    complete = pairs.filter(comparison__label_count__gte=project.overlap).count()
    expected = prompts * len(entries) * (len(entries) - 1) // 2
    return {
        "prompts": prompts,
        "pairs_expected": expected,
        "comparisons": counted["comparisons"],
        "labels": counted["labels"],
        "labels_needed": expected * project.overlap,
        "complete": complete,
        "overlap": project.overlap,
    }


def _words(text: str) -> int:
    return len(text.split())


def evaluation_votes(evaluation: SideBySideEval) -> dict[str, dict[int | None, list[side_by_side.Vote]]]:
    """Every vote on the evaluation's pairs: ``{source: {criterion: [Vote]}}`` (source human or ai;
    imported rankings have no place in an evaluation). Malformed stored orders cast no vote (and are
    logged)."""
    pairs = {
        pair.comparison_id: pair
        for pair in SideBySidePair.objects.filter(evaluation=evaluation).only(
            "comparison_id", "entry_a_id", "entry_b_id", "a_position"
        )
    }
    completions: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for comparison_id, completion_id, position, text in Completion.objects.filter(comparison_id__in=pairs).values_list(
        "comparison_id", "id", "position", "text"
    ):
        completions[comparison_id][position] = (completion_id, _words(text))
    votes: dict[str, dict[int | None, list]] = {LabelSource.HUMAN: defaultdict(list), LabelSource.AI: defaultdict(list)}
    rankings = Ranking.objects.filter(
        comparison_id__in=pairs, source__in=(LabelSource.HUMAN, LabelSource.AI)
    ).values_list("comparison_id", "source", "orders")
    malformed = 0
    for comparison_id, source, orders in rankings.iterator(chunk_size=2000):
        pair, answers = pairs[comparison_id], completions[comparison_id]
        if len(answers) != 2:
            continue
        (a_id, a_words), (b_id, b_words) = answers[pair.a_position], answers[1 - pair.a_position]
        read = read_orders(orders)
        malformed += read.malformed
        for order in read.orders:
            outcome = side_by_side.outcome_of_scores(order.scores, a_id, b_id)
            if outcome is None:
                continue
            votes[source][order.criterion].append(
                side_by_side.Vote(comparison_id, pair.entry_a_id, pair.entry_b_id, outcome, a_words, b_words)
            )
    if malformed:
        logger.warning("evaluation %s: %d malformed stored orders cast no vote", evaluation.pk, malformed)
    return votes


def _criteria(evaluation: SideBySideEval) -> list[dict]:
    project = evaluation.project
    if not project.rank_per_criterion:
        return [{"id": None, "name": OVERALL}]
    return [{"id": c.pk, "name": c.name} for c in project.criteria.all()]


def evaluation_results(evaluation: SideBySideEval, *, rounds: int = side_by_side.BOOTSTRAP_ROUNDS) -> dict:
    entries = entries_with_counts(evaluation)
    ids = [entry.pk for entry in entries]
    votes = evaluation_votes(evaluation)
    criteria = _criteria(evaluation)
    human, ai, agreement = [], [], []
    for criterion in criteria:
        key = criterion["id"]
        head = {"criterion": key, "name": criterion["name"]}
        humans = votes[LabelSource.HUMAN].get(key, [])
        human.append({**head, **side_by_side.verdict(ids, humans, seed=evaluation.seed, rounds=rounds)})
        judged = votes[LabelSource.AI].get(key, [])
        if judged:
            ai.append({**head, **side_by_side.verdict(ids, judged, seed=evaluation.seed, rounds=rounds)})
            agreement.append({**head, **side_by_side.judge_agreement(humans, judged)})
    return {
        "evaluation": evaluation.pk,
        "entries": [entry_row(entry) for entry in entries],
        "criteria": criteria,
        "human": human,
        "ai": ai,
        "agreement": agreement,
    }


def entry_row(entry: SideBySideEntry, run_state: str | None = None) -> dict:
    return {
        "id": entry.pk,
        "version": entry.version_id,
        "label": entry.label,
        "model": entry.version.model.name,
        "number": entry.version.version,
        "run": entry.run_id,
        "run_state": run_state,
        "samples": getattr(entry, "sample_count", None),
    }


def samples_of(evaluation: SideBySideEval) -> QuerySet[SideBySideSample]:
    return SideBySideSample.objects.filter(entry__evaluation=evaluation)
