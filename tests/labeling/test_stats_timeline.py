"""GET /api/projects/{id}/stats/timeline/ over rankings made directly with the ORM, at chosen times."""

from datetime import UTC, datetime, timedelta

import pytest

from labeling import agreement
from labeling.models import AlignmentCriterion, Comparison, Completion, LabelSource, Ranking, Role
from labeling.selectors.stats_timeline import alpha_points, dense_levels, project_stats_timeline
from labeling.services.projects import project_create

pytestmark = pytest.mark.django_db

F = "F"
T0 = datetime(2025, 3, 1, 9, 15, tzinfo=UTC)


def make_comparison(project, *, gold=False):
    comparison = Comparison.objects.create(project=project, prompt="Say hi", is_gold=gold)
    completions = [
        Completion.objects.create(comparison=comparison, position=i, text=f"answer {i}")
        for i in range(project.completions_per_prompt)
    ]
    return comparison, completions


def rank_at(when, comparison, completions, labeler, ranks, *, source=LabelSource.HUMAN, criterion=None):
    """A ranking submitted at ``when``; ``ranks`` by position, F for an F mark."""
    order = {"criterion": criterion, "ranks": {}, "failed": []}
    for completion, value in zip(completions, ranks, strict=True):
        if value == F:
            order["failed"].append(completion.id)
        else:
            order["ranks"][str(completion.id)] = value
    ranking = Ranking.objects.create(comparison=comparison, labeler=labeler, source=source, orders=[order])
    Ranking.objects.filter(pk=ranking.pk).update(created_at=when)  # created_at is auto_now_add
    if source == LabelSource.HUMAN:
        comparison.label_count += 1
        comparison.save(update_fields=["label_count"])
    return ranking


def timeline(client, project, **params):
    return client.get(f"/api/projects/{project.id}/stats/timeline/", params)


@pytest.fixture
def ranked(project, labelers):
    """K = 3, overlap 2, over three hours of one day and one hour the next day.

    09:xx  c1 by l0 (1,2,3) and l1 (1,2,3): c1 complete; pairwise 3/3.
    10:xx  nothing.
    11:xx  c2 by l0 (1,2,3) and l1 (3,2,1): c2 complete; pairwise 3/6.  c3 by l2 (1,2,F).
    +1 day 09:xx  c3 by l0 (2,1,3): c3 complete; pairwise (c3: 2 agree, 1 disagrees) 5/9.
    """
    l0, l1, l2 = labelers
    c1, k1 = make_comparison(project)
    c2, k2 = make_comparison(project)
    c3, k3 = make_comparison(project)
    rank_at(T0, c1, k1, l0, [1, 2, 3])
    rank_at(T0 + timedelta(minutes=30), c1, k1, l1, [1, 2, 3])
    rank_at(T0 + timedelta(hours=2), c2, k2, l0, [1, 2, 3])
    rank_at(T0 + timedelta(hours=2, minutes=10), c2, k2, l1, [3, 2, 1])
    rank_at(T0 + timedelta(hours=2, minutes=20), c3, k3, l2, [1, 2, F])
    rank_at(T0 + timedelta(days=1), c3, k3, l0, [2, 1, 3])
    return {"comparisons": (c1, c2, c3), "completions": (k1, k2, k3)}


def test_hourly_buckets_progress_agreement_and_throughput(api, project, admin_user, labelers, ranked):
    response = timeline(api(admin_user), project, bucket="hour")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["bucket"], body["timezone"], body["criterion"], body["sources"]) == ("hour", "UTC", None, ["human"])
    assert (body["overlap"], body["comparisons_total"], body["complete"]) == (2, 3, 3)
    buckets = body["buckets"]
    assert len(buckets) == 25  # 09:00 on day one through 09:00 on day two, empty hours included
    assert buckets[0]["start"] == "2025-03-01T09:00:00Z" and buckets[0]["end"] == "2025-03-01T10:00:00Z"
    assert buckets[-1]["start"] == "2025-03-02T09:00:00Z"
    assert [b["rankings"] for b in buckets[:3]] == [2, 0, 3] and buckets[-1]["rankings"] == 1
    assert sum(b["rankings"] for b in buckets) == 6
    assert [b["completed"] for b in buckets[:3]] == [1, 1, 2] and buckets[-1]["completed"] == 3
    assert [(b["pairwise_pairs"], b["pairwise_rate"]) for b in buckets[:3]] == [(3, 1.0), (3, 1.0), (6, 0.5)]
    assert buckets[-1]["pairwise_pairs"] == 9 and buckets[-1]["pairwise_rate"] == pytest.approx(5 / 9)
    assert [b["shared_items"] for b in (buckets[0], buckets[2], buckets[-1])] == [1, 2, 3]
    # Every bucket with new rankings gets alpha here (few rankings); the empty ones do not.
    assert [b["alpha_computed"] for b in buckets[:3]] == [True, False, True]
    assert buckets[0]["krippendorff_alpha_ordinal"] == 1.0 and buckets[1]["krippendorff_alpha_ordinal"] is None

    by_name = {row["username"]: row for row in body["labelers"]}
    assert list(by_name) == ["labeler0", "labeler1", "labeler2"]
    assert by_name["labeler0"]["rankings"] == 3
    assert by_name["labeler0"]["per_bucket"][:3] == [1, 0, 1] and by_name["labeler0"]["per_bucket"][-1] == 1
    assert by_name["labeler2"]["per_bucket"] == [0, 0, 1] + [0] * 22
    assert all(len(row["per_bucket"]) == 25 for row in body["labelers"])


def test_last_bucket_matches_the_stats_endpoint(api, project, admin_user, ranked):
    client = api(admin_user)
    stats = client.get(f"/api/projects/{project.id}/stats/").json()["agreement"]
    for bucket in ("hour", "day"):
        last = timeline(client, project, bucket=bucket).json()["buckets"][-1]
        assert last["pairwise_rate"] == pytest.approx(stats["pairwise_rate"])
        assert last["pairwise_pairs"] == stats["pairwise_pairs"]
        assert last["krippendorff_alpha_ordinal"] == pytest.approx(stats["krippendorff_alpha_ordinal"])
        assert last["krippendorff_units"] == stats["krippendorff_units"]


def test_daily_buckets_and_alpha_up_to_each_end(api, project, admin_user, ranked):
    body = timeline(api(admin_user), project, bucket="day").json()
    buckets = body["buckets"]
    assert [b["start"] for b in buckets] == ["2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z"]
    assert [(b["rankings"], b["completed"]) for b in buckets] == [(5, 2), (1, 3)]
    # Day one's alpha is the alpha of day one's rankings alone, computed by labeling.agreement.
    k1, k2, _ = ranked["completions"]

    def order(completions, positions):
        return {c.id: p for c, p in zip(completions, positions, strict=True)}

    day_one = {
        ("c1", None): {"l0": order(k1, [1.0, 2.0, 3.0]), "l1": order(k1, [1.0, 2.0, 3.0])},
        ("c2", None): {"l0": order(k2, [1.0, 2.0, 3.0]), "l1": order(k2, [3.0, 2.0, 1.0])},
    }
    expected = agreement.ranking_alpha(day_one)
    assert buckets[0]["krippendorff_alpha_ordinal"] == pytest.approx(expected.alpha)
    assert buckets[0]["krippendorff_units"] == expected.units == 6


def test_rank_distribution_per_position(api, project, admin_user, ranked, make_user):
    body = timeline(api(admin_user), project).json()
    distribution = body["rank_distribution"]
    assert distribution["levels"] == ["1", "2", "3", "F"]
    # Orders by position: (1,2,3) x3, (3,2,1), (1,2,F), (2,1,3).
    assert distribution["positions"] == [
        {"position": 0, "orders": 6, "counts": [4, 1, 1, 0]},
        {"position": 1, "orders": 6, "counts": [1, 5, 0, 0]},
        {"position": 2, "orders": 6, "counts": [1, 0, 4, 1]},
    ]


def test_levels_are_dense_and_ties_share_one():
    a, b, c, d = 1, 2, 3, 4
    assert dense_levels({a: 1.0, b: 5.0, c: 5.0, d: agreement.F_SCORE}) == {a: 1, b: 2, c: 2, d: "F"}
    assert dense_levels({a: 3.0, b: 7.0}) == {a: 1, b: 2}


def test_sources_and_gold(api, project, admin_user, labelers, ranked, make_user):
    """AI rankings count only when asked; completion counts human rankings of non-gold comparisons only."""
    l0, l1, _ = labelers
    ai = make_user("ai-judge")
    c1, k1 = ranked["comparisons"][0], ranked["completions"][0]
    rank_at(T0 + timedelta(minutes=35), c1, k1, ai, [3, 2, 1], source=LabelSource.AI)
    gold, gk = make_comparison(project, gold=True)
    rank_at(T0 + timedelta(minutes=36), gold, gk, l0, [1, 2, 3])
    rank_at(T0 + timedelta(minutes=37), gold, gk, l1, [1, 2, 3])
    client = api(admin_user)

    human = timeline(client, project, bucket="hour").json()
    assert human["buckets"][0]["rankings"] == 4  # two on c1, two on the gold item
    assert human["buckets"][0]["completed"] == 1  # the gold item never counts as completed
    assert "ai-judge" not in {row["username"] for row in human["labelers"]}

    both = timeline(client, project, bucket="hour", sources="human,ai").json()
    assert both["sources"] == ["ai", "human"]
    first = both["buckets"][0]
    assert first["rankings"] == 5 and first["completed"] == 1
    # c1: l0, l1 agree, the AI reverses both: 3/9; the gold item: 3/3.
    assert (first["pairwise_pairs"], first["pairwise_rate"]) == (12, pytest.approx(6 / 12))


def test_per_criterion(api, admin_user, labelers, add_member):
    project = project_create(created_by=admin_user, name="HHH", completions_per_prompt=2, rank_per_criterion=True)
    l0, l1, _ = labelers
    add_member(l0, to=project)
    add_member(l1, to=project)
    helpful = AlignmentCriterion.objects.create(project=project, name="helpful")
    harmless = AlignmentCriterion.objects.create(project=project, name="harmless", position=1)
    comparison, completions = make_comparison(project)
    for labeler, harmless_ranks in ((l0, [1, 2]), (l1, [2, 1])):
        orders = [
            {"criterion": helpful.id, "ranks": {str(completions[0].id): 1, str(completions[1].id): 2}, "failed": []},
            {
                "criterion": harmless.id,
                "ranks": {str(c.id): r for c, r in zip(completions, harmless_ranks, strict=True)},
                "failed": [],
            },
        ]
        ranking = Ranking.objects.create(comparison=comparison, labeler=labeler, orders=orders)
        Ranking.objects.filter(pk=ranking.pk).update(created_at=T0)
    client = api(admin_user)

    on_helpful = timeline(client, project, criterion=helpful.id).json()
    assert on_helpful["criterion"] == helpful.id
    assert on_helpful["buckets"][0]["pairwise_rate"] == 1.0
    assert on_helpful["rank_distribution"]["positions"][0]["counts"] == [2, 0, 0]
    assert timeline(client, project, criterion=harmless.id).json()["buckets"][0]["pairwise_rate"] == 0.0
    pooled = timeline(client, project).json()
    assert pooled["buckets"][0]["rankings"] == 2 and pooled["buckets"][0]["pairwise_pairs"] == 2


def test_roles_and_bad_parameters(api, project, admin_user, labelers, make_user, add_member):
    reviewer = add_member(make_user("rita"), role=Role.REVIEWER)
    assert timeline(api(reviewer), project).status_code == 200
    response = timeline(api(labelers[0]), project)
    assert response.status_code == 403 and "reviewer" in response.json()["detail"]
    other = project_create(created_by=admin_user, name="Other")
    stranger = add_member(make_user("stranger"), to=other)
    assert timeline(api(stranger), project).status_code == 404
    assert api().get(f"/api/projects/{project.id}/stats/timeline/").status_code in (401, 403)

    client = api(admin_user)
    for params, word in (
        ({"bucket": "week"}, "bucket"),
        ({"buckets": "day"}, "buckets"),
        ({"criterion": "abc"}, "criterion"),
        ({"sources": "human,robot"}, "robot"),
    ):
        response = timeline(client, project, **params)
        assert response.status_code == 400, params
        assert word in response.json()["detail"], response.json()
    foreign = AlignmentCriterion.objects.create(project=other, name="helpful")
    response = timeline(client, project, criterion=foreign.id)
    assert response.status_code == 400 and "not a criterion" in response.json()["detail"]


def test_empty_project(api, project, admin_user):
    body = timeline(api(admin_user), project).json()
    assert body["buckets"] == [] and body["labelers"] == []
    assert body["comparisons_total"] == 0
    assert body["rank_distribution"] == {
        "levels": ["1", "2", "3", "F"],
        "positions": [{"position": p, "orders": 0, "counts": [0, 0, 0, 0]} for p in range(3)],
    }


def test_too_many_buckets_is_a_400_that_says_what_to_do(api, project, admin_user, labelers):
    comparison, completions = make_comparison(project)
    rank_at(T0, comparison, completions, labelers[0], [1, 2, 3])
    rank_at(T0 + timedelta(days=200), comparison, completions, labelers[1], [1, 2, 3])
    client = api(admin_user)
    response = timeline(client, project, bucket="hour")
    assert response.status_code == 400 and "bucket=day" in response.json()["detail"]
    assert len(timeline(client, project, bucket="day").json()["buckets"]) == 201


def test_alpha_points_are_bounded_and_always_include_the_last_bucket():
    cumulative = [10 * (i + 1) for i in range(100)]
    assert alpha_points(cumulative, max_points=200, budget=10**9) == set(range(100))
    chosen = alpha_points(cumulative, max_points=10, budget=10**9)
    assert len(chosen) == 10 and 99 in chosen
    # A tight budget: about 2 * budget / total recomputations.
    assert len(alpha_points(cumulative, max_points=200, budget=2000)) == 4
    # Buckets without new orders are never chosen.
    assert alpha_points([0, 5, 5, 5, 9], max_points=10, budget=10**9) == {1, 4}
    assert alpha_points([0, 0], max_points=10, budget=10) == set()


def test_many_rankings_get_a_bounded_number_of_alpha_points(project, labelers, monkeypatch):
    from labeling.selectors import stats_timeline

    monkeypatch.setattr(stats_timeline, "MAX_ALPHA_POINTS", 3)
    for hour in range(6):
        comparison, completions = make_comparison(project)
        for labeler in labelers[:2]:
            rank_at(T0 + timedelta(hours=hour), comparison, completions, labeler, [1, 2, 3])
    buckets = project_stats_timeline(project=project, bucket="hour")["buckets"]
    assert [b["alpha_computed"] for b in buckets].count(True) == 3 and buckets[-1]["alpha_computed"]
    assert all(b["pairwise_rate"] == 1.0 for b in buckets)  # the pairwise rate is exact in every bucket


def test_query_count_does_not_grow_with_rows(api, project, admin_user, labelers, ranked, django_assert_max_num_queries):
    client = api(admin_user)
    with django_assert_max_num_queries(8):
        assert timeline(client, project, bucket="hour").status_code == 200
    for i in range(5):
        comparison, completions = make_comparison(project)
        for labeler in labelers:
            rank_at(T0 + timedelta(hours=3 + i), comparison, completions, labeler, [1, 2, 3])
    with django_assert_max_num_queries(8):
        body = timeline(client, project, bucket="hour").json()
    assert sum(b["rankings"] for b in body["buckets"]) == 21
