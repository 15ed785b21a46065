"""Membership changes that must hold against hostile or careless members.

- A removed member's leases die with the membership: submit and skip answer 403, the slot frees up.
- A project keeps at least one admin: the last one cannot be demoted or removed, by themself or anyone.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from labeling.models import Assignment, AssignmentState, Comparison, Membership, Ranking, Role
from labeling.services.projects import project_create

from .factories import add_comparisons, ranks_best_first

pytestmark = pytest.mark.django_db


@pytest.fixture
def solo(admin_user):
    """Overlap 1: one comparison has one slot, so a revoked lease must free it for someone else."""
    project = project_create(created_by=admin_user, name="Solo", completions_per_prompt=3, overlap=1)
    add_comparisons(project, 1)
    return project


def member_id(project, user) -> int:
    return Membership.objects.get(project=project, user=user).pk


def test_a_removed_members_lease_dies_with_the_membership(api, solo, admin_user, make_user, add_member):
    mallory = add_member(make_user("mallory"), to=solo)
    lease = api(mallory).get(f"/api/projects/{solo.id}/next/").json()
    assignment_id = lease["assignment"]["id"]

    response = api(admin_user).delete(f"/api/projects/{solo.id}/members/{member_id(solo, mallory)}/")
    assert response.status_code == 204
    assert Assignment.objects.get(pk=assignment_id).state == AssignmentState.REVOKED

    submit = api(mallory).post(
        f"/api/assignments/{assignment_id}/ranking/", {"ranks": ranks_best_first(lease)}, format="json"
    )
    assert submit.status_code == 403, submit.json()
    assert f"no longer a member of project {solo.id}" in submit.json()["detail"]
    skip = api(mallory).post(f"/api/assignments/{assignment_id}/skip/")
    assert skip.status_code == 403 and "no longer a member" in skip.json()["detail"]
    assert api(mallory).get(f"/api/projects/{solo.id}/next/").status_code == 404
    # Nothing changed: no ranking, no label, the lease still revoked (not skipped).
    assert not Ranking.objects.exists() and Comparison.objects.get().label_count == 0
    assert Assignment.objects.get(pk=assignment_id).state == AssignmentState.REVOKED

    # The only slot is free again: the next labeler gets the comparison at once, not after the lease time.
    nina = add_member(make_user("nina"), to=solo)
    again = api(nina).get(f"/api/projects/{solo.id}/next/")
    assert again.status_code == 200 and again.json()["comparison"]["id"] == lease["comparison"]["id"]


def test_an_expired_lease_of_a_removed_member_is_revoked_too(api, solo, admin_user, make_user, add_member):
    """An expired lease may be submitted while its slot is free; a removed member's may not, even once re-added."""
    mallory = add_member(make_user("mallory"), to=solo)
    lease = api(mallory).get(f"/api/projects/{solo.id}/next/").json()
    assignment_id = lease["assignment"]["id"]
    Assignment.objects.filter(pk=assignment_id).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert api(admin_user).delete(f"/api/projects/{solo.id}/members/{member_id(solo, mallory)}/").status_code == 204

    payload = {"ranks": ranks_best_first(lease)}
    response = api(mallory).post(f"/api/assignments/{assignment_id}/ranking/", payload, format="json")
    assert response.status_code == 403
    add_member(mallory, to=solo)  # back in the project: the old lease still takes nothing
    response = api(mallory).post(f"/api/assignments/{assignment_id}/ranking/", payload, format="json")
    assert response.status_code == 403 and "was revoked" in response.json()["detail"]
    assert api(mallory).post(f"/api/assignments/{assignment_id}/skip/").status_code == 403
    assert not Ranking.objects.exists()


def test_removal_leaves_other_members_and_finished_work_alone(api, project, admin_user, labelers):
    add_comparisons(project, 3)
    first, second = labelers[0], labelers[1]
    done = api(first).get(f"/api/projects/{project.id}/next/").json()
    response = api(first).post(
        f"/api/assignments/{done['assignment']['id']}/ranking/", {"ranks": ranks_best_first(done)}, format="json"
    )
    assert response.status_code == 201
    live = api(first).get(f"/api/projects/{project.id}/next/").json()
    theirs = api(second).get(f"/api/projects/{project.id}/next/").json()

    assert api(admin_user).delete(f"/api/projects/{project.id}/members/{member_id(project, first)}/").status_code == 204
    states = dict(Assignment.objects.values_list("pk", "state"))
    assert states[done["assignment"]["id"]] == AssignmentState.SUBMITTED  # the ranking stays
    assert states[live["assignment"]["id"]] == AssignmentState.REVOKED
    assert states[theirs["assignment"]["id"]] == AssignmentState.LEASED
    response = api(second).post(
        f"/api/assignments/{theirs['assignment']['id']}/ranking/", {"ranks": ranks_best_first(theirs)}, format="json"
    )
    assert response.status_code == 201


# -- the last admin ---------------------------------------------------------------------------------


def test_the_last_admin_cannot_demote_or_remove_themself(api, project, admin_user):
    client = api(admin_user)
    response = client.post(f"/api/projects/{project.id}/members/", {"username": "alice", "role": "reviewer"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"alice is the last admin of project {project.id}")
    assert "role" in response.json()["errors"]
    response = client.delete(f"/api/projects/{project.id}/members/{member_id(project, admin_user)}/")
    assert response.status_code == 409 and "last admin" in response.json()["detail"]
    assert Membership.objects.get(project=project, user=admin_user).role == Role.ADMIN


def test_a_platform_admin_cannot_take_away_the_last_admin_either(api, project, admin_user, platform_admin):
    """Platform admins act as admins but are not members: the project would be left with no admin."""
    client = api(platform_admin)
    response = client.post(f"/api/projects/{project.id}/members/", {"username": "alice", "role": "labeler"})
    assert response.status_code == 409
    response = client.delete(f"/api/projects/{project.id}/members/{member_id(project, admin_user)}/")
    assert response.status_code == 409
    assert Membership.objects.get(project=project, user=admin_user).role == Role.ADMIN


def test_with_a_second_admin_either_may_step_down(api, project, admin_user, make_user, add_member):
    bob = add_member(make_user("bob"), Role.ADMIN)
    client = api(admin_user)

    def set_role(username, role):
        return client.post(f"/api/projects/{project.id}/members/", {"username": username, "role": role})

    # alice demotes bob: allowed (she stays), then bob is not an admin and she is the last one again.
    assert set_role("bob", "labeler").status_code == 201
    assert set_role("alice", "labeler").status_code == 409
    assert set_role("bob", "admin").status_code == 201
    response = set_role("alice", "reviewer")
    assert response.status_code == 201 and response.json()["role"] == "reviewer"
    # bob, now the last admin, may not leave; removing alice (a reviewer now) is fine.
    response = api(bob).delete(f"/api/projects/{project.id}/members/{member_id(project, bob)}/")
    assert response.status_code == 409
    assert api(bob).delete(f"/api/projects/{project.id}/members/{member_id(project, admin_user)}/").status_code == 204
    assert list(Membership.objects.filter(project=project).values_list("user__username", "role")) == [("bob", "admin")]


# -- concurrency (PostgreSQL row locks) -------------------------------------------------------------


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_for(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _in_thread(results: dict, key: str, call):
    def run():
        try:
            results[key] = call()
        except BaseException as exc:  # reported by the test
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lease_taken_while_the_member_is_being_removed_is_revoked_too(api, make_user):
    """`next` leases while the admin removes the labeler: the removal waits for it and revokes that lease."""
    admin = make_user("boss", is_staff=True)
    project = project_create(created_by=admin, name="Race", completions_per_prompt=3, overlap=1)
    add_comparisons(project, 2)
    mallory = make_user("mallory")
    Membership.objects.create(project=project, user=mallory, role=Role.LABELER)
    membership = member_id(project, mallory)
    results: dict = {}
    locked, release = threading.Event(), threading.Event()

    def hold_completions():
        # `next` reads the leased comparison's completions last, inside its transaction: holding that
        # table stops it after it locked the membership row and inserted the lease.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE labeling_completion IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)

    holder = _in_thread(results, "holder", hold_completions)
    assert locked.wait(30)
    leasing = _in_thread(results, "next", lambda: api(mallory).get(f"/api/projects/{project.id}/next/"))
    _wait_for(lambda: _waiting_on_locks() >= 1, "next to block")
    removing = _in_thread(
        results, "remove", lambda: api(admin).delete(f"/api/projects/{project.id}/members/{membership}/")
    )
    _wait_for(lambda: _waiting_on_locks() >= 2, "the removal to wait for the member's row")
    release.set()
    for thread in (holder, leasing, removing):
        thread.join(60)
    assert results["next"].status_code == 200, results
    assert results["remove"].status_code == 204, results
    lease = Assignment.objects.get(labeler=mallory)
    assert lease.state == AssignmentState.REVOKED
    assert not Membership.objects.filter(pk=membership).exists()
