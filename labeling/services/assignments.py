"""Leasing comparisons to labelers and taking their rankings.

Concurrency rules (PostgreSQL): every change to a comparison's slot count (a new lease, a submit)
happens while that comparison's row is locked. ``next`` locks a candidate with ``FOR UPDATE SKIP
LOCKED`` and then inserts the lease with one ``INSERT ... SELECT ... WHERE`` whose fresh snapshot
re-checks the slot count and the labeler's live leases, so two labelers can never fill one slot
twice. A labeler's own calls are serialized on their membership row. On SQLite every transaction is
IMMEDIATE, which serializes writers outright.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.exceptions import Conflict, ServiceError
from labeling.models import (
    AlignmentCriterion,
    Assignment,
    AssignmentState,
    Comparison,
    Completion,
    LabelSource,
    Membership,
    Project,
    Ranking,
)
from labeling.ranking_rules import RankingError, normalize_order

MAX_ATTEMPTS = 5


class NotAMember(ServiceError):
    status = 404


class NotYourLease(ServiceError):
    status = 403


@dataclass
class Lease:
    assignment: Assignment
    comparison: Comparison
    completions: list[Completion]


def _live(now) -> Q:
    return Q(state=AssignmentState.LEASED, expires_at__gt=now)


def _candidate(*, project: Project, labeler, now, gold: bool, exclude: list[int]) -> Comparison | None:
    mine = Assignment.objects.filter(comparison=OuterRef("pk"), labeler=labeler)
    queue = Comparison.objects.filter(project=project, is_gold=gold).exclude(Exists(mine))
    if exclude:
        queue = queue.exclude(pk__in=exclude)
    if not gold:
        live = (
            Assignment.objects.filter(_live(now), comparison=OuterRef("pk"))
            .order_by()
            .values("comparison")
            .annotate(n=Count("pk"))
            .values("n")
        )
        queue = (
            queue.filter(label_count__lt=project.overlap)
            .annotate(live_leases=Coalesce(Subquery(live), 0))
            .filter(label_count__lt=project.overlap - F("live_leases"))
        )
    return (
        queue.order_by("label_count", "pk")
        .only("id", "prompt", "project_id", "label_count", "is_gold")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def _lease_insert(*, comparison_id: int, project: Project, labeler, now, limit: int | None) -> int | None:
    """Insert the lease only if the slot is still free and the labeler holds no live lease (fresh snapshot)."""
    a, c = Assignment._meta.db_table, Comparison._meta.db_table
    ops = connection.ops
    at, until = (
        ops.adapt_datetimefield_value(now),
        ops.adapt_datetimefield_value(now + timedelta(seconds=project.lease_seconds)),
    )
    # Only table names from the models are formatted in; every value is a parameter.
    slot_free = (
        f"(SELECT label_count FROM {c} WHERE id = %s)"  # noqa: S608
        f" + (SELECT COUNT(*) FROM {a} WHERE comparison_id = %s AND state = 'leased' AND expires_at > %s) < %s"
    )
    sql = (
        f"INSERT INTO {a} (comparison_id, project_id, labeler_id, state, created_at, expires_at, finished_at)"  # noqa: S608
        f" SELECT %s, %s, %s, 'leased', %s, %s, NULL WHERE "
        f"NOT EXISTS (SELECT 1 FROM {a} WHERE labeler_id = %s AND project_id = %s AND state = 'leased'"
        f" AND expires_at > %s)" + (f" AND {slot_free}" if limit is not None else "") + " RETURNING id"
    )
    params = [comparison_id, project.pk, labeler.pk, at, until, labeler.pk, project.pk, at]
    if limit is not None:
        params += [comparison_id, comparison_id, at, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _lease(assignment_id: int, comparison: Comparison, labeler, project: Project, now) -> Lease:
    assignment = Assignment(
        pk=assignment_id,
        comparison=comparison,
        project=project,
        labeler=labeler,
        state=AssignmentState.LEASED,
        created_at=now,
        expires_at=now + timedelta(seconds=project.lease_seconds),
    )
    return Lease(assignment, comparison, list(Completion.objects.filter(comparison_id=comparison.pk)))


@transaction.atomic
def assignment_next(*, project_id: int, labeler, rng: random.Random | None = None) -> Lease | None:
    """The labeler's live lease in the project, else a new lease on the comparison that most needs a
    label (gold at the project's rate), else None when nothing is left for this labeler."""
    now = timezone.now()
    live_mine = Assignment.objects.filter(_live(now), labeler=labeler, project_id=OuterRef("project_id")).order_by("pk")
    membership = (
        Membership.objects.select_related("project")
        .select_for_update(of=("self",))
        .annotate(live_lease=Subquery(live_mine.values("pk")[:1]))
        .filter(project_id=project_id, user=labeler)
        .first()
    )
    if membership is None:
        raise NotAMember(f"Project {project_id} does not exist or you are not a member of it.")
    project = membership.project
    live_lease_id = membership.live_lease
    exclude: list[int] = []
    for _ in range(MAX_ATTEMPTS):
        if live_lease_id is not None:
            assignment = Assignment.objects.select_related("comparison").get(pk=live_lease_id)
            completions = list(Completion.objects.filter(comparison_id=assignment.comparison_id))
            return Lease(assignment, assignment.comparison, completions)
        gold_first = (rng or random).random() < project.gold_rate
        for gold in (gold_first, not gold_first):
            comparison = _candidate(project=project, labeler=labeler, now=now, gold=gold, exclude=exclude)
            if comparison is not None:
                break
        else:
            return None
        limit = None if comparison.is_gold else project.overlap
        assignment_id = _lease_insert(
            comparison_id=comparison.pk, project=project, labeler=labeler, now=now, limit=limit
        )
        if assignment_id is not None:
            return _lease(assignment_id, comparison, labeler, project, now)
        # Lost a race: either our own concurrent call leased something, or the slot filled up.
        exclude.append(comparison.pk)
        live_lease_id = (
            Assignment.objects.filter(_live(now), labeler=labeler, project=project).values_list("pk", flat=True).first()
        )
    raise Conflict("Too many labelers are competing for the last comparisons; try again.")


def _lock_own_assignment(*, assignment_id: int, labeler) -> Assignment:
    assignment = (
        Assignment.objects.select_related("comparison__project")
        .select_for_update(of=("self", "comparison"))
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None:
        raise ServiceError(f"Assignment {assignment_id} does not exist.", status=404)
    if assignment.labeler_id != labeler.pk:
        raise NotYourLease(f"Assignment {assignment_id} is leased to another labeler; you can only submit your own.")
    return assignment


def _check_slot_after_expiry(assignment: Assignment, now) -> None:
    """An expired lease may still be submitted while its slot is free; once taken, it is refused."""
    comparison = assignment.comparison
    if assignment.expires_at > now or comparison.is_gold:
        return
    others_live = Assignment.objects.filter(_live(now), comparison=comparison).exclude(pk=assignment.pk).count()
    if comparison.label_count + others_live >= comparison.project.overlap:
        raise Conflict(
            f"Your lease on comparison {comparison.pk} expired at {assignment.expires_at.isoformat()} and its slot "
            "went to another labeler; this ranking was not stored. Ask for the next comparison."
        )


def _orders(*, payload: dict, project: Project, completion_ids: list[int]) -> list[dict]:
    """Validate the submitted ranking(s) against the comparison and the project's criteria."""
    problems: list[str] = []
    if project.rank_per_criterion:
        criteria = list(AlignmentCriterion.objects.filter(project=project).values_list("pk", "name"))
        given = payload.get("criteria")
        if not isinstance(given, dict):
            raise ServiceError(
                "This project ranks once per criterion: send {criteria: {criterion_id: {ranks, failed}}}.",
                errors={"criteria": [f"Expected one ranking for each of {[name for _, name in criteria]}."]},
            )
        known = {str(pk): name for pk, name in criteria}
        problems += [f"unknown criterion {key!r}" for key in given if str(key) not in known]
        orders = []
        for pk, name in criteria:
            entry = given.get(str(pk), given.get(pk))
            if not isinstance(entry, dict):
                problems.append(f"criterion {name!r} ({pk}): missing its ranking")
                continue
            try:
                order = normalize_order(
                    entry.get("ranks"), entry.get("failed"), completion_ids, label=f"criterion {name!r}"
                )
                orders.append({"criterion": pk, **order})
            except RankingError as exc:
                problems += exc.problems
    else:
        if "criteria" in payload:
            problems.append("this project ranks overall: send {ranks, failed}, not criteria")
            orders = []
        else:
            try:
                orders = [
                    {"criterion": None, **normalize_order(payload.get("ranks"), payload.get("failed"), completion_ids)}
                ]
            except RankingError as exc:
                problems += exc.problems
    if problems:
        raise ServiceError("Ranking refused: " + "; ".join(problems), errors={"ranking": problems})
    return orders


@transaction.atomic
def ranking_submit(*, assignment_id: int, labeler, payload: dict) -> tuple[Ranking, bool]:
    """Store the labeler's ranking for their lease. Returns (ranking, created); a repeated submit of
    the same lease returns the first ranking and ``created=False``, never a second ranking."""
    now = timezone.now()
    assignment = _lock_own_assignment(assignment_id=assignment_id, labeler=labeler)
    if assignment.state == AssignmentState.SUBMITTED:
        return Ranking.objects.get(assignment=assignment), False
    if assignment.state == AssignmentState.SKIPPED:
        raise Conflict(f"You skipped comparison {assignment.comparison_id}; a skipped lease takes no ranking.")
    comparison = assignment.comparison
    completion_ids = list(
        Completion.objects.filter(comparison=comparison).order_by("position").values_list("pk", flat=True)
    )
    orders = _orders(payload=payload, project=comparison.project, completion_ids=completion_ids)
    _check_slot_after_expiry(assignment, now)
    try:
        ranking = Ranking.objects.create(
            comparison=comparison,
            labeler=labeler,
            assignment=assignment,
            source=LabelSource.HUMAN,
            orders=orders,
            comment=str(payload.get("comment") or ""),
            time_spent_ms=payload.get("time_spent_ms"),
        )
    except IntegrityError:
        raise Conflict(f"You already ranked comparison {comparison.pk}.") from None
    Assignment.objects.filter(pk=assignment.pk).update(state=AssignmentState.SUBMITTED, finished_at=now)
    Comparison.objects.filter(pk=comparison.pk).update(label_count=F("label_count") + 1)
    return ranking, True


@transaction.atomic
def assignment_skip(*, assignment_id: int, labeler) -> Assignment:
    """Give the lease back; the labeler will not be offered this comparison again."""
    assignment = _lock_own_assignment(assignment_id=assignment_id, labeler=labeler)
    if assignment.state == AssignmentState.SUBMITTED:
        raise Conflict(f"Comparison {assignment.comparison_id} is already ranked; it cannot be skipped.")
    if assignment.state == AssignmentState.LEASED:
        assignment.state = AssignmentState.SKIPPED
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["state", "finished_at"])
    return assignment
