"""PostgreSQL's labeling hot path, where it takes shortcuts.

Submit: a live lease is read without a lock, then stored by one statement that locks and re-checks it.
A lease that changed in between, or a comparison the labeler already ranked, writes nothing there and
is answered by the locked path. Next: the first candidate is locked in the statement that locks the
membership, so a labeler's two concurrent calls must still end with one lease."""

import threading

import pytest
from django.db import connections
from django.utils import timezone

from common.exceptions import Conflict
from labeling.models import Assignment, AssignmentState, Comparison, LabelSource, Ranking
from labeling.services import lease_sql
from labeling.services.assignments import NotYourLease, assignment_next, ranking_submit

from .factories import add_comparisons

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _ranks(lease) -> dict:
    return {str(c.id): c.position + 1 for c in lease.completions}


def _store(lease, labeler):
    return lease_sql.store_ranking_if_leased(
        assignment_id=lease.assignment.id,
        user_id=labeler.pk,
        source=LabelSource.HUMAN,
        orders=[{"criterion": None, "ranks": _ranks(lease), "failed": []}],
        comment="",
        time_spent_ms=None,
        now=timezone.now(),
    )


def test_one_statement_stores_the_ranking_marks_the_lease_and_counts_it(project, labelers):
    add_comparisons(project, 1)
    lease = assignment_next(project_id=project.id, labeler=labelers[0])
    ranking_id = _store(lease, labelers[0])
    assert Ranking.objects.get(pk=ranking_id).assignment_id == lease.assignment.id
    assert Assignment.objects.get(pk=lease.assignment.id).state == AssignmentState.SUBMITTED
    assert Comparison.objects.get(pk=lease.comparison.id).label_count == 1
    assert _store(lease, labelers[0]) is None  # no longer live: nothing more is written
    assert Ranking.objects.count() == 1 and Comparison.objects.get(pk=lease.comparison.id).label_count == 1


def test_a_lease_revoked_after_the_read_writes_nothing_and_the_submit_is_refused(project, labelers):
    add_comparisons(project, 1)
    lease = assignment_next(project_id=project.id, labeler=labelers[0])
    Assignment.objects.filter(pk=lease.assignment.id).update(state=AssignmentState.REVOKED)
    assert _store(lease, labelers[0]) is None
    with pytest.raises(NotYourLease, match="revoked"):
        ranking_submit(assignment_id=lease.assignment.id, labeler=labelers[0], payload={"ranks": _ranks(lease)})
    assert Ranking.objects.count() == 0
    assert Comparison.objects.get(pk=lease.comparison.id).label_count == 0


def test_a_comparison_the_labeler_ranked_already_writes_nothing_and_is_a_conflict(project, labelers):
    add_comparisons(project, 1)
    lease = assignment_next(project_id=project.id, labeler=labelers[0])
    Ranking.objects.create(  # e.g. their Label Studio work, imported while the lease was out
        comparison_id=lease.comparison.id,
        labeler=labelers[0],
        source=LabelSource.IMPORTED,
        orders=[{"criterion": None, "ranks": _ranks(lease), "failed": []}],
    )
    assert _store(lease, labelers[0]) is None
    with pytest.raises(Conflict, match="already ranked"):
        ranking_submit(assignment_id=lease.assignment.id, labeler=labelers[0], payload={"ranks": _ranks(lease)})
    assert Assignment.objects.get(pk=lease.assignment.id).state == AssignmentState.LEASED
    assert Comparison.objects.get(pk=lease.comparison.id).label_count == 0


def _at_once(n: int, call) -> tuple[list, list]:
    """Run ``call`` in ``n`` threads released together: (results, errors)."""
    results, errors = [], []
    start = threading.Barrier(n)

    def run():
        try:
            start.wait()
            results.append(call())
        except Exception as exc:  # returned to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def test_two_submits_of_one_lease_at_once_store_one_ranking(project, labelers):
    add_comparisons(project, 1)
    lease = assignment_next(project_id=project.id, labeler=labelers[0])
    payload = {"ranks": _ranks(lease)}
    results, errors = _at_once(
        2, lambda: ranking_submit(assignment_id=lease.assignment.id, labeler=labelers[0], payload=payload)
    )
    assert errors == []
    assert sorted(created for _, created in results) == [False, True]
    assert len({ranking.id for ranking, _ in results}) == 1
    assert Ranking.objects.count() == 1 and Comparison.objects.get(pk=lease.comparison.id).label_count == 1


def test_one_labeler_s_concurrent_next_calls_share_one_lease(project, labelers):
    add_comparisons(project, 12)
    for _ in range(5):
        leases, errors = _at_once(3, lambda: assignment_next(project_id=project.id, labeler=labelers[0]))
        assert errors == []
        assert len({lease.assignment.id for lease in leases}) == 1
        assert Assignment.objects.filter(labeler=labelers[0], state=AssignmentState.LEASED).count() == 1
        ranking_submit(assignment_id=leases[0].assignment.id, labeler=labelers[0], payload={"ranks": _ranks(leases[0])})
