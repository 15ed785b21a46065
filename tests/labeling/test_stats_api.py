"""GET /api/projects/{id}/stats/ over rows made directly with the ORM."""

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import (
    AlignmentCriterion,
    Assignment,
    AssignmentState,
    Comparison,
    Completion,
    LabelSource,
    Ranking,
    Role,
)
from labeling.services.projects import project_create

pytestmark = pytest.mark.django_db

F = "F"


def make_comparison(project, *, gold=None):
    """A comparison with K completions; ``gold`` is a list of ranks (or F) by position."""
    comparison = Comparison.objects.create(project=project, prompt="Say hi", is_gold=gold is not None)
    completions = [
        Completion.objects.create(comparison=comparison, position=i, text=f"answer {i}")
        for i in range(project.completions_per_prompt)
    ]
    if gold is not None:
        comparison.gold = order_json(completions, gold)
        comparison.save(update_fields=["gold"])
    return comparison, completions


def order_json(completions, ranks, criterion=None) -> dict:
    """``ranks`` by position: a rank, or F for an F mark."""
    order = {"ranks": {}, "failed": []}
    if criterion is not None:
        order["criterion"] = criterion
    for completion, rank in zip(completions, ranks, strict=True):
        if rank == F:
            order["failed"].append(completion.id)
        else:
            order["ranks"][str(completion.id)] = rank
    return order


def rank(comparison, completions, labeler, ranks, *, spent_ms=None, lease_seconds=40, source=LabelSource.HUMAN):
    """A submitted assignment and its ranking; ``ranks`` is one order, or {criterion_id: ranks}."""
    now = timezone.now()
    assignment = Assignment.objects.create(
        comparison=comparison,
        project=comparison.project,
        labeler=labeler,
        state=AssignmentState.SUBMITTED,
        created_at=now - timedelta(seconds=lease_seconds),
        expires_at=now + timedelta(minutes=10),
        finished_at=now,
    )
    if isinstance(ranks, dict):
        orders = [order_json(completions, r, criterion=c) for c, r in ranks.items()]
    else:
        orders = [order_json(completions, ranks)]
    Ranking.objects.create(
        comparison=comparison,
        labeler=labeler,
        assignment=assignment,
        source=source,
        orders=orders,
        time_spent_ms=spent_ms,
    )
    if source == LabelSource.HUMAN:
        comparison.label_count += 1
        comparison.save(update_fields=["label_count"])


def lease(comparison, labeler, *, state=AssignmentState.LEASED, expires_in=600):
    now = timezone.now()
    Assignment.objects.create(
        comparison=comparison,
        project=comparison.project,
        labeler=labeler,
        state=state,
        created_at=now - timedelta(seconds=5),
        expires_at=now + timedelta(seconds=expires_in),
    )


@pytest.fixture
def ranked(project, labelers, make_user, add_member):
    """K = 3, overlap 2. l0 and l1 agree on c1; on c2 l1 reverses l0 and l2; c3 is gold.

    Pairwise: c1 (l0,l1) 3/3; c2 (l0,l1) 0/3, (l0,l2) 3/3, (l1,l2) 0/3; c3 (l0,l1) 2/3 -> 8/15.
    Tau-b: c1 1; c2 -1, 1, -1; c3 1/3 -> mean 1/15.
    Consensus: l0 3/3 (c1) + split (c2) + 2/3 (c3) = 5/6; l1 3/3 + 0/3 + 2/3 = 5/9; l2 split only.
    Gold (1, 2, F): l0 ranks 1, 2, 3 -> 3/3; l1 ranks 2, 1, F -> 2/3.
    """
    l0, l1, l2 = labelers
    add_member(make_user("idle"))  # a labeler with no work yet
    c1, k1 = make_comparison(project)
    c2, k2 = make_comparison(project)
    c3, k3 = make_comparison(project, gold=[1, 2, F])
    c4, _ = make_comparison(project)
    c5, _ = make_comparison(project)
    c6, _ = make_comparison(project)
    rank(c1, k1, l0, [1, 2, 3], spent_ms=10_000)
    rank(c1, k1, l1, [1, 2, 3])
    rank(c2, k2, l0, [1, 2, 3], spent_ms=20_000)
    rank(c2, k2, l1, [3, 2, 1])
    rank(c2, k2, l2, [1, 2, 3], spent_ms=5_000)
    rank(c3, k3, l0, [1, 2, 3], spent_ms=30_000)
    rank(c3, k3, l1, [2, 1, F])
    lease(c4, l2)  # live lease: in progress
    lease(c5, l2, state=AssignmentState.SKIPPED)
    lease(c6, l0, expires_in=-60)  # expired: frees the slot
    return {"comparisons": (c1, c2, c3), "completions": (k1, k2, k3)}


def get_stats(client, project, **params):
    return client.get(f"/api/projects/{project.id}/stats/", params)


def rows_by_name(body):
    return {row["username"]: row for row in body["labelers"]}


def test_admin_sees_progress_agreement_and_every_labeler(api, project, admin_user, ranked):
    response = get_stats(api(admin_user), project)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["criterion"] is None and body["sources"] == ["human"]
    assert body["progress"] == {
        "overlap": 2,
        "comparisons_total": 5,
        "complete": 2,
        "in_progress": 1,
        "not_started": 2,
        "ai_only": 0,
        "gold_total": 1,
        "rankings_total": 7,
        "skipped": 1,
        "live_leases": 1,
    }
    agreement = body["agreement"]
    assert (agreement["items"], agreement["shared_items"]) == (3, 3)
    assert (agreement["pairwise_agreements"], agreement["pairwise_pairs"]) == (8, 15)
    assert agreement["pairwise_rate"] == pytest.approx(8 / 15)
    assert agreement["pairwise_one_sided_ties"] == 0
    assert agreement["kendall_tau_b"] == pytest.approx(1 / 15)
    assert agreement["kendall_tau_b_cases"] == 5
    assert agreement["krippendorff_units"] == 9 and agreement["krippendorff_values"] == 21
    # Positions l0 (1,2,3)x3; l1 (1,2,3), (3,2,1), (2,1,3); l2 (1,2,3) on c2: D_o = 140/3, D_e = 68.6.
    # The same figure as the `krippendorff` package (0.3197278911564625) on that reliability matrix.
    assert agreement["krippendorff_alpha_ordinal"] == pytest.approx(47 / 147)

    rows = rows_by_name(body)
    assert list(rows) == ["idle", "labeler0", "labeler1", "labeler2"]
    l0, l1, l2, idle = rows["labeler0"], rows["labeler1"], rows["labeler2"], rows["idle"]
    assert l0["rankings"] == 3 and l0["skipped"] == 0
    assert l0["median_seconds_per_task"] == 20.0
    assert l0["throughput_per_hour"] == pytest.approx(180.0)  # 3 tasks in 60 s of work
    assert (l0["gold_accuracy"], l0["gold_pairs"]) == (1.0, 3)
    assert l0["consensus_agreement"] == pytest.approx(5 / 6) and l0["consensus_pairs"] == 6
    # No time_spent_ms: the lease's 40 s from start to submit is the task time.
    assert l1["median_seconds_per_task"] == pytest.approx(40.0, abs=0.5)
    assert l1["throughput_per_hour"] == pytest.approx(90.0, rel=0.02)
    assert l1["gold_accuracy"] == pytest.approx(2 / 3)
    assert l1["consensus_agreement"] == pytest.approx(5 / 9) and l1["consensus_pairs"] == 9
    assert (l2["rankings"], l2["skipped"], l2["consensus_agreement"], l2["consensus_pairs"]) == (1, 1, None, 0)
    assert (l2["gold_accuracy"], l2["gold_pairs"], l2["median_seconds_per_task"]) == (None, 0, 5.0)
    assert idle["rankings"] == 0 and idle["throughput_per_hour"] is None and idle["labeler"] > 0


def test_reviewer_sees_everything_too(api, project, make_user, add_member, ranked):
    reviewer = add_member(make_user("rita"), role=Role.REVIEWER)
    body = get_stats(api(reviewer), project).json()
    assert body["agreement"] is not None
    assert len(body["labelers"]) == 4


def test_labeler_sees_progress_and_only_their_own_row(api, project, labelers, ranked):
    response = get_stats(api(labelers[1]), project)
    assert response.status_code == 200
    body = response.json()
    assert body["agreement"] is None
    assert body["progress"]["rankings_total"] == 7
    assert [row["username"] for row in body["labelers"]] == ["labeler1"]
    # A labeler's own quality figures are coarse: fewer than a window of comparisons shows none.
    assert body["figures"] == "coarse"
    assert body["labelers"][0]["consensus_agreement"] is None and body["labelers"][0]["consensus_comparisons"] == 0
    assert "labeler0" not in response.content.decode() and "labeler2" not in response.content.decode()


def test_labeler_without_rankings_gets_an_empty_row(api, project, make_user, add_member, ranked):
    newbie = add_member(make_user("newbie"))
    body = get_stats(api(newbie), project).json()
    assert body["labelers"] == [
        {
            "labeler": newbie.id,
            "username": "newbie",
            "rankings": 0,
            "skipped": 0,
            "throughput_per_hour": None,
            "median_seconds_per_task": None,
            "gold_accuracy": None,
            "gold_pairs": 0,
            "gold_comparisons": 0,
            "consensus_agreement": None,
            "consensus_pairs": 0,
            "consensus_comparisons": 0,
        }
    ]


def test_labeler_of_another_project_gets_404(api, project, admin_user, make_user, add_member, ranked):
    other = project_create(created_by=admin_user, name="Other")
    stranger = add_member(make_user("stranger"), to=other)
    response = get_stats(api(stranger), project)
    assert response.status_code == 404
    assert "labeler" not in response.content.decode()
    assert api().get(f"/api/projects/{project.id}/stats/").status_code in (401, 403)


def test_ai_rankings_only_when_asked(api, project, admin_user, make_user, ranked):
    ai = make_user("ai-judge")
    c1, k1 = ranked["comparisons"][0], ranked["completions"][0]
    rank(c1, k1, ai, [3, 2, 1], spent_ms=100, source=LabelSource.AI)
    client = api(admin_user)

    human = get_stats(client, project).json()
    assert human["progress"]["rankings_total"] == 7
    assert "ai-judge" not in rows_by_name(human)

    both = get_stats(client, project, sources="human,ai").json()
    assert both["sources"] == ["ai", "human"]
    assert both["progress"]["rankings_total"] == 8
    # c1 now has l0, l1 (agree) and the AI (reversed): 3/9 instead of 3/3.
    assert (both["agreement"]["pairwise_agreements"], both["agreement"]["pairwise_pairs"]) == (8, 21)
    ai_row = rows_by_name(both)["ai-judge"]
    assert (ai_row["rankings"], ai_row["consensus_agreement"], ai_row["consensus_pairs"]) == (1, 0.0, 3)


def test_per_criterion_stats(api, admin_user, labelers, add_member):
    project = project_create(created_by=admin_user, name="HHH", completions_per_prompt=2, rank_per_criterion=True)
    l0, l1, _ = labelers
    add_member(l0, to=project)
    add_member(l1, to=project)
    helpful = AlignmentCriterion.objects.create(project=project, name="helpful")
    harmless = AlignmentCriterion.objects.create(project=project, name="harmless", position=1)
    comparison, completions = make_comparison(project)
    rank(comparison, completions, l0, {helpful.id: [1, 2], harmless.id: [1, 2]}, spent_ms=1000)
    rank(comparison, completions, l1, {helpful.id: [1, 2], harmless.id: [2, 1]}, spent_ms=1000)
    client = api(admin_user)

    on_helpful = get_stats(client, project, criterion=helpful.id).json()
    assert on_helpful["criterion"] == helpful.id
    assert on_helpful["agreement"]["pairwise_rate"] == 1.0
    assert on_helpful["agreement"]["krippendorff_alpha_ordinal"] == 1.0
    assert get_stats(client, project, criterion=harmless.id).json()["agreement"]["pairwise_rate"] == 0.0
    pooled = get_stats(client, project).json()["agreement"]
    assert (pooled["items"], pooled["pairwise_agreements"], pooled["pairwise_pairs"]) == (2, 1, 2)
    assert rows_by_name(get_stats(client, project).json())["labeler0"]["rankings"] == 1


def test_bad_parameters_are_400(api, project, admin_user, labelers):
    other = project_create(created_by=admin_user, name="Other")
    foreign = AlignmentCriterion.objects.create(project=other, name="helpful")
    client = api(admin_user)
    response = get_stats(client, project, criteria=1)
    assert response.status_code == 400 and "criteria" in response.json()["detail"]
    response = get_stats(client, project, criterion="abc")
    assert response.status_code == 400 and "criterion" in response.json()["detail"]
    response = get_stats(client, project, criterion=foreign.id)
    assert response.status_code == 400 and "not a criterion" in response.json()["detail"]
    response = get_stats(client, project, sources="human,robot")
    assert response.status_code == 400 and "robot" in response.json()["detail"]
    # Unknown parameters are a 400 for labelers too, but only after the access check.
    assert get_stats(api(labelers[0]), project, foo=1).status_code == 400


def test_empty_project(api, project, admin_user):
    body = get_stats(api(admin_user), project).json()
    assert body["progress"]["comparisons_total"] == 0
    assert body["agreement"]["pairwise_rate"] is None
    assert body["agreement"]["kendall_tau_b"] is None
    assert body["agreement"]["krippendorff_alpha_ordinal"] is None
    assert body["labelers"] == []


def test_query_count_does_not_grow_with_rows(api, project, admin_user, labelers, ranked, django_assert_max_num_queries):
    client = api(admin_user)
    with django_assert_max_num_queries(8):
        assert get_stats(client, project).status_code == 200
    for _ in range(5):
        comparison, completions = make_comparison(project)
        for labeler in labelers:
            rank(comparison, completions, labeler, [1, 2, 3], spent_ms=1000)
    with django_assert_max_num_queries(8):
        body = get_stats(client, project).json()
    assert body["progress"]["rankings_total"] == 22
