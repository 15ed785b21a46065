import random
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import AlignmentCriterion, Assignment, Comparison, Ranking
from labeling.services.assignments import assignment_next

from .factories import add_comparisons, ranks_best_first

pytestmark = pytest.mark.django_db


def next_lease(client, project):
    return client.get(f"/api/projects/{project.id}/next/")


def submit(client, lease, payload=None):
    payload = payload if payload is not None else {"ranks": ranks_best_first(lease), "time_spent_ms": 1200}
    return client.post(f"/api/assignments/{lease['assignment']['id']}/ranking/", payload, format="json")


def test_next_is_idempotent_until_submit(api, project, labelers):
    add_comparisons(project, 2)
    client = api(labelers[0])
    first = next_lease(client, project).json()
    assert next_lease(client, project).json()["assignment"]["id"] == first["assignment"]["id"]
    assert "is_gold" not in first["comparison"] and len(first["completions"]) == 3
    assert submit(client, first).status_code == 201
    second = next_lease(client, project).json()
    assert second["comparison"]["id"] != first["comparison"]["id"]


def test_overlap_counts_distinct_labelers_then_204(api, project, labelers):
    add_comparisons(project, 1)  # overlap is 2
    for labeler in labelers[:2]:
        client = api(labeler)
        assert submit(client, next_lease(client, project).json()).status_code == 201
    assert next_lease(api(labelers[2]), project).status_code == 204
    assert Comparison.objects.get().label_count == 2


def test_a_labeler_never_gets_the_same_comparison_twice(api, project, labelers):
    add_comparisons(project, 1)
    client = api(labelers[0])
    assert submit(client, next_lease(client, project).json()).status_code == 201
    assert next_lease(client, project).status_code == 204


def test_fewest_labels_first(api, project, labelers):
    add_comparisons(project, 3)
    a = api(labelers[0])
    lease = next_lease(a, project).json()
    submit(a, lease)
    # labeler 1 should get a comparison with zero labels, not the one labeler 0 ranked
    other = next_lease(api(labelers[1]), project).json()
    assert other["comparison"]["id"] != lease["comparison"]["id"]


def test_live_leases_hold_slots_and_expiry_frees_them(api, project, labelers):
    add_comparisons(project, 1)
    project.overlap = 1
    project.save()
    first = next_lease(api(labelers[0]), project).json()
    assert next_lease(api(labelers[1]), project).status_code == 204
    Assignment.objects.filter(pk=first["assignment"]["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = next_lease(api(labelers[1]), project)
    assert taken.status_code == 200
    # the first labeler's late submit is refused: the slot went to someone else
    late = submit(api(labelers[0]), first)
    assert late.status_code == 409
    assert "expired" in late.json()["detail"] and "not stored" in late.json()["detail"]
    assert not Ranking.objects.exists()


def test_expired_lease_can_still_submit_while_slot_is_free(api, project, labelers):
    add_comparisons(project, 1)
    lease = next_lease(api(labelers[0]), project).json()
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert submit(api(labelers[0]), lease).status_code == 201


def test_retry_returns_first_ranking(api, project, labelers):
    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    first = submit(client, lease)
    again = submit(client, lease, {"ranks": {str(c["id"]): 1 for c in lease["completions"]}})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert Ranking.objects.count() == 1
    assert Comparison.objects.get().label_count == 1


def test_submit_on_someone_elses_lease(api, project, labelers):
    add_comparisons(project, 1)
    lease = next_lease(api(labelers[0]), project).json()
    response = submit(api(labelers[1]), lease)
    assert response.status_code == 403
    assert "another labeler" in response.json()["detail"]
    assert not Ranking.objects.exists()


@pytest.mark.parametrize(
    ("make_payload", "expected"),
    [
        (lambda ids: {"ranks": {ids[0]: 1, ids[1]: 2}}, "has no rank and is not marked F"),
        (lambda ids: {"ranks": {ids[0]: 1, ids[1]: 2, ids[2]: 4}}, "out of range 1..3"),
        (lambda ids: {"ranks": {ids[0]: 1, ids[1]: 2, ids[2]: 0}}, "out of range 1..3"),
        (lambda ids: {"ranks": {ids[0]: 1, ids[1]: 2, "999999": 3}, "failed": [ids[2]]}, "unknown completion 999999"),
        (lambda ids: {"ranks": {ids[0]: 1, ids[1]: 2, ids[2]: 3}, "failed": [ids[2]]}, "marked F and must not"),
        (
            lambda ids: {
                "ranks": [{"completion": ids[0], "rank": 1}, {"completion": ids[0], "rank": 2}],
                "failed": [ids[1], ids[2]],
            },
            "ranked twice",
        ),
        (lambda ids: {"ranks": {ids[0]: "first", ids[1]: 2, ids[2]: 3}}, "is not a whole number"),
        (lambda ids: {"criteria": {}}, "ranks overall"),
    ],
)
def test_bad_rankings_are_refused_and_nothing_changes(api, project, labelers, make_payload, expected):
    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    ids = [str(c["id"]) for c in lease["completions"]]
    response = submit(client, lease, make_payload(ids))
    assert response.status_code == 400
    assert expected in response.json()["detail"], response.json()
    assert not Ranking.objects.exists()
    assert Assignment.objects.get().state == "leased"
    assert submit(client, lease).status_code == 201  # the lease is still usable


def test_ties_gaps_and_f_marks(api, project, labelers):
    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    ids = [str(c["id"]) for c in lease["completions"]]
    response = submit(client, lease, {"ranks": {ids[0]: 2, ids[1]: 2}, "failed": [int(ids[2])], "comment": "meh"})
    assert response.status_code == 201, response.json()
    ranking = Ranking.objects.get()
    assert ranking.orders == [{"criterion": None, "ranks": {ids[0]: 2, ids[1]: 2}, "failed": [int(ids[2])]}]
    assert ranking.comment == "meh"


def test_per_criterion_ranking(api, project, labelers):
    project.rank_per_criterion = True
    project.save()
    helpful = AlignmentCriterion.objects.create(project=project, name="helpful")
    harmless = AlignmentCriterion.objects.create(project=project, name="harmless", position=1)
    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    ranks = ranks_best_first(lease)
    missing = submit(client, lease, {"criteria": {str(helpful.id): {"ranks": ranks}}})
    assert missing.status_code == 400 and "'harmless'" in missing.json()["detail"]
    overall = submit(client, lease, {"ranks": ranks})
    assert overall.status_code == 400 and "once per criterion" in overall.json()["detail"]
    ok = submit(client, lease, {"criteria": {str(helpful.id): {"ranks": ranks}, str(harmless.id): {"ranks": ranks}}})
    assert ok.status_code == 201, ok.json()
    assert [o["criterion"] for o in Ranking.objects.get().orders] == [helpful.id, harmless.id]
    assert Comparison.objects.get().label_count == 1  # overlap counts comparisons, not criteria


def test_skip_frees_the_slot_and_is_not_offered_again(api, project, labelers):
    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    response = client.post(f"/api/assignments/{lease['assignment']['id']}/skip/")
    assert response.status_code == 200 and response.json()["state"] == "skipped"
    assert next_lease(client, project).status_code == 204
    assert next_lease(api(labelers[1]), project).status_code == 200
    assert submit(client, lease).status_code == 409


def test_gold_rate(project, labelers):
    add_comparisons(project, 3, gold=2)
    project.gold_rate = 1.0
    project.save()
    lease = assignment_next(project_id=project.id, labeler=labelers[0])
    assert Comparison.objects.get(pk=lease.comparison.id).is_gold
    project.gold_rate = 0.0
    project.save()
    lease = assignment_next(project_id=project.id, labeler=labelers[1], rng=random.Random(0))
    assert not Comparison.objects.get(pk=lease.comparison.id).is_gold


def test_gold_items_ignore_overlap(project, labelers):
    add_comparisons(project, 0, gold=1)
    project.gold_rate = 1.0
    project.overlap = 1
    project.save()
    leases = [assignment_next(project_id=project.id, labeler=labeler) for labeler in labelers]
    assert all(Comparison.objects.get(pk=lease.comparison.id).is_gold for lease in leases)


def test_outsider_gets_404_on_next(api, project, make_user):
    add_comparisons(project, 1)
    response = next_lease(api(make_user("mallory")), project)
    assert response.status_code == 404
    assert not Assignment.objects.exists()


def test_hot_path_responses_match_their_documented_shapes(api, project, labelers):
    from labeling.apis.labeling import LeaseOutput, RankingOutput

    def same_shape(serializer_class, body):
        serializer = serializer_class(data=body)
        assert serializer.is_valid(), serializer.errors
        assert set(body) == set(serializer.fields)

    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    same_shape(LeaseOutput, lease)
    assert (
        set(lease["assignment"]) == {"id", "created_at", "expires_at"} and lease["assignment"]["expires_at"][-1] == "Z"
    )
    assert set(lease["completions"][0]) == {"id", "position", "text"}
    ranking = submit(client, lease).json()
    same_shape(RankingOutput, ranking)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"comment": 5}, "comment"),
        ({"time_spent_ms": -1}, "time_spent_ms"),
        ({"time_spent_ms": True}, "time_spent_ms"),
        ({"rnaks": {}}, "rnaks"),
    ],
)
def test_submit_envelope_errors_name_the_field(api, project, labelers, extra, field):
    add_comparisons(project, 1)
    client = api(labelers[0])
    lease = next_lease(client, project).json()
    response = submit(client, lease, {"ranks": ranks_best_first(lease), **extra})
    assert response.status_code == 400 and response.json()["detail"].startswith(field)
    assert not Ranking.objects.exists()
