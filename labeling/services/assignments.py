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
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.exceptions import Conflict, ServiceError
from labeling.models import AssignmentState, LabelSource
from labeling.ranking_rules import RankingError, normalize_order
from labeling.services import lease_sql as sql

MAX_ATTEMPTS = 5


class NotAMember(ServiceError):
    status = 404


class NotYourLease(ServiceError):
    status = 403


@dataclass(frozen=True)
class LeaseInfo:
    id: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class PromptInfo:
    id: int
    prompt: str


@dataclass(frozen=True)
class CompletionInfo:
    id: int
    position: int
    text: str


@dataclass(frozen=True)
class Lease:
    """What a labeler sees of a lease: no gold flag, no other labelers' work."""

    assignment: LeaseInfo
    comparison: PromptInfo
    completions: list[CompletionInfo]


@dataclass(frozen=True)
class SubmittedRanking:
    id: int
    assignment: int
    comparison: int
    orders: list[dict]
    comment: str
    time_spent_ms: int | None
    created_at: datetime


def _lease(rows: list[tuple]) -> Lease:
    """A lease from the rows of ``sql.lease_with_completions`` (one per completion)."""
    created_at, expires_at, comparison_id, prompt = rows[0][:4]
    return Lease(
        LeaseInfo(rows[0][7], sql.as_datetime(created_at), sql.as_datetime(expires_at)),
        PromptInfo(comparison_id, prompt),
        [CompletionInfo(row[4], row[5], row[6]) for row in rows],
    )


@transaction.atomic
def assignment_next(*, project_id: int, labeler, rng: random.Random | None = None) -> Lease | None:
    """The labeler's live lease in the project, else a new lease on the comparison that most needs a
    label (gold at the project's rate), else None when nothing is left for this labeler."""
    now = timezone.now()
    draw = (rng or random).random()  # gold first when draw < the project's gold rate
    merged = sql.locks()  # PostgreSQL reads the first candidate with the membership: a round trip fewer
    if merged:
        member = sql.membership_and_candidate(project_id=project_id, user_id=labeler.pk, now=now, draw=draw)
    else:
        member = sql.membership_with_live_lease(project_id=project_id, user_id=labeler.pk, now=now)
    if member is None:
        raise NotAMember(f"Project {project_id} does not exist or you are not a member of it.")
    overlap, lease_seconds, gold_rate, live_lease, *first = member
    first_candidate = first[0] if first else None
    exclude: list[int] = []
    for attempt in range(MAX_ATTEMPTS):
        if live_lease is not None:
            return _lease(sql.lease_with_completions(live_lease))
        gold_first = draw < gold_rate
        if first_candidate is not None:
            candidate, gold, first_candidate = first_candidate, gold_first, None
        else:
            # The merged statement found none of the first kind: only the other kind is left to try.
            kinds = (not gold_first,) if merged and attempt == 0 else (gold_first, not gold_first)
            for gold in kinds:
                candidate = sql.lock_candidate(
                    project_id=project_id, user_id=labeler.pk, now=now, gold=gold, overlap=overlap, exclude=exclude
                )
                if candidate is not None:
                    break
            else:
                return None
        lease_rows = sql.insert_lease(
            comparison_id=candidate,
            project_id=project_id,
            user_id=labeler.pk,
            now=now,
            until=now + timedelta(seconds=lease_seconds),
            overlap=None if gold else overlap,
        )
        if lease_rows:
            return _lease(lease_rows)
        # Lost a race: either our own concurrent call leased something, or the slot filled up.
        exclude.append(candidate)
        live_lease = sql.live_lease_id(project_id=project_id, user_id=labeler.pk, now=now)
        draw = (rng or random).random()
    raise Conflict("Too many labelers are competing for the last comparisons; try again.")


@dataclass(frozen=True)
class LockedAssignment:
    id: int
    state: str
    expires_at: datetime
    comparison_id: int
    label_count: int
    is_gold: bool
    project_id: int
    overlap: int
    rank_per_criterion: bool
    completion_ids: list[int]  # by position


def _lock_own_assignment(*, assignment_id: int, labeler, lock: bool = True) -> LockedAssignment:
    row = sql.lock_assignment(assignment_id, lock=lock)
    if row is None:
        raise ServiceError(f"Assignment {assignment_id} does not exist.", status=404)
    (
        labeler_id,
        state,
        expires_at,
        comparison_id,
        label_count,
        is_gold,
        project_id,
        overlap,
        per_criterion,
        member,
        completion_ids,
    ) = row
    if labeler_id != labeler.pk:
        raise NotYourLease(f"Assignment {assignment_id} is leased to another labeler; you can only submit your own.")
    if not member:
        raise NotYourLease(
            f"You are no longer a member of project {project_id}; your lease on comparison {comparison_id} "
            "was revoked with your membership and takes no ranking or skip."
        )
    if state == AssignmentState.REVOKED:  # also what a submit racing the removal sees, once it gets the row
        raise NotYourLease(
            f"Your lease on comparison {comparison_id} was revoked when you left project {project_id}; "
            "it takes no ranking or skip. Ask for the next comparison."
        )
    return LockedAssignment(
        assignment_id,
        state,
        sql.as_datetime(expires_at),
        comparison_id,
        label_count,
        bool(is_gold),
        project_id,
        overlap,
        bool(per_criterion),
        list(completion_ids),
    )


def _check_slot_after_expiry(assignment: LockedAssignment, now) -> None:
    """An expired lease may still be submitted while its slot is free; once taken, it is refused."""
    if assignment.expires_at > now or assignment.is_gold:
        return
    others = sql.other_live_leases(comparison_id=assignment.comparison_id, assignment_id=assignment.id, now=now)
    if assignment.label_count + others >= assignment.overlap:
        raise Conflict(
            f"Your lease on comparison {assignment.comparison_id} expired at {assignment.expires_at.isoformat()} and "
            "its slot went to another labeler; this ranking was not stored. Ask for the next comparison."
        )


def _orders(*, payload: dict, assignment: LockedAssignment, completion_ids: list[int]) -> list[dict]:
    """Validate the submitted ranking(s) against the comparison and the project's criteria."""
    problems: list[str] = []
    if assignment.rank_per_criterion:
        criteria = sql.criteria(assignment.project_id)
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


def ranking_submit(*, assignment_id: int, labeler, payload: dict) -> tuple[SubmittedRanking, bool]:
    """Store the labeler's ranking for their lease. Returns (ranking, created); a repeated submit of
    the same lease returns the first ranking and ``created=False``, never a second ranking.

    On PostgreSQL a live lease is read without a lock, the ranking checked, and then stored by one
    statement that locks the lease and re-checks it (no transaction round trips); everything else
    (SQLite, an expired lease whose slot must be counted under the lock, a lease that changed in
    between, a refusal to explain) takes the locked path."""
    now = timezone.now()
    if sql.locks():
        assignment = _lock_own_assignment(assignment_id=assignment_id, labeler=labeler, lock=False)
        if assignment.state == AssignmentState.LEASED and assignment.expires_at > now:
            orders = _orders(payload=payload, assignment=assignment, completion_ids=assignment.completion_ids)
            comment, time_spent_ms = str(payload.get("comment") or ""), payload.get("time_spent_ms")
            ranking_id = sql.store_ranking_if_leased(
                assignment_id=assignment_id,
                user_id=labeler.pk,
                source=LabelSource.HUMAN,
                orders=orders,
                comment=comment,
                time_spent_ms=time_spent_ms,
                now=now,
            )
            if ranking_id is not None:
                ranking = (ranking_id, assignment_id, assignment.comparison_id, orders, comment, time_spent_ms, now)
                return SubmittedRanking(*ranking), True
    return _ranking_submit_locked(assignment_id=assignment_id, labeler=labeler, payload=payload, now=now)


@transaction.atomic
def _ranking_submit_locked(*, assignment_id: int, labeler, payload: dict, now) -> tuple[SubmittedRanking, bool]:
    assignment = _lock_own_assignment(assignment_id=assignment_id, labeler=labeler)
    if assignment.state == AssignmentState.SUBMITTED:
        return SubmittedRanking(*_stored(assignment_id)), False
    if assignment.state == AssignmentState.SKIPPED:
        raise Conflict(f"You skipped comparison {assignment.comparison_id}; a skipped lease takes no ranking.")
    orders = _orders(payload=payload, assignment=assignment, completion_ids=assignment.completion_ids)
    _check_slot_after_expiry(assignment, now)
    comment = str(payload.get("comment") or "")
    time_spent_ms = payload.get("time_spent_ms")
    try:
        ranking_id = sql.insert_ranking(
            comparison_id=assignment.comparison_id,
            user_id=labeler.pk,
            assignment_id=assignment_id,
            source=LabelSource.HUMAN,
            orders=orders,
            comment=comment,
            time_spent_ms=time_spent_ms,
            now=now,
        )
    except IntegrityError:
        raise Conflict(f"You already ranked comparison {assignment.comparison_id}.") from None
    ranking = SubmittedRanking(ranking_id, assignment_id, assignment.comparison_id, orders, comment, time_spent_ms, now)
    return ranking, True


def _stored(assignment_id: int) -> tuple:
    ranking_id, comparison_id, orders, comment, time_spent_ms, created_at = sql.ranking_of_assignment(assignment_id)
    return ranking_id, assignment_id, comparison_id, orders, comment, time_spent_ms, sql.as_datetime(created_at)


@transaction.atomic
def assignment_skip(*, assignment_id: int, labeler) -> str:
    """Give the lease back; the labeler will not be offered this comparison again. Returns the state."""
    assignment = _lock_own_assignment(assignment_id=assignment_id, labeler=labeler)
    if assignment.state == AssignmentState.SUBMITTED:
        raise Conflict(f"Comparison {assignment.comparison_id} is already ranked; it cannot be skipped.")
    if assignment.state == AssignmentState.LEASED:
        sql.skip(assignment_id=assignment_id, now=timezone.now())
    return AssignmentState.SKIPPED
