"""A labeler cannot learn a gold answer, or the consensus, by submitting one item and re-reading their stats.

Their own gold accuracy and consensus agreement cover whole windows of QUALITY_WINDOW comparisons
(consensus: once every comparison of the window is complete) and are rounded down to
QUALITY_BUCKET_PP points; reviewers and admins still see the exact figures.
"""

import pytest

from labeling.models import Comparison, Ranking, Role
from labeling.selectors.stats import QUALITY_WINDOW, coarse_rate
from labeling.services.projects import project_create

from .factories import add_comparisons

pytestmark = pytest.mark.django_db

QUALITY = ("gold_accuracy", "gold_pairs", "gold_comparisons", "consensus_agreement", "consensus_pairs")


def submit(client, lease: dict, *, right: bool) -> None:
    """Rank the lease as its gold says (position 0 best) or exactly the other way round."""
    ranks = {str(c["id"]): (c["position"] + 1 if right else 3 - c["position"]) for c in lease["completions"]}
    response = client.post(f"/api/assignments/{lease['assignment']['id']}/ranking/", {"ranks": ranks}, format="json")
    assert response.status_code == 201, response.json()


def next_lease(client, project) -> dict:
    response = client.get(f"/api/projects/{project.id}/next/")
    assert response.status_code == 200, response.status_code
    return response.json()


def own_row(client, project) -> dict:
    body = client.get(f"/api/projects/{project.id}/stats/").json()
    assert body["figures"] == "coarse"
    (row,) = body["labelers"]
    return {key: row[key] for key in QUALITY}


@pytest.fixture
def gold_project(admin_user):
    project = project_create(created_by=admin_user, name="Gold", completions_per_prompt=3, overlap=1, gold_rate=1.0)
    add_comparisons(project, 0, gold=QUALITY_WINDOW + 1)
    return project


@pytest.mark.parametrize("right", [True, False])
def test_one_more_gold_item_does_not_move_the_labelers_figure(api, gold_project, admin_user, make_user, right):
    eve = make_user("eve")
    gold_project.memberships.create(user=eve, role=Role.LABELER)
    client = api(eve)
    assert own_row(client, gold_project)["gold_accuracy"] is None
    # 14 of the first window right, 6 wrong: 42 of 60 gold pairs, exactly 70%.
    for i in range(QUALITY_WINDOW):
        submit(client, next_lease(client, gold_project), right=i < 14)
    before = own_row(client, gold_project)
    assert before == {
        "gold_accuracy": 0.7,
        "gold_pairs": 60,
        "gold_comparisons": QUALITY_WINDOW,
        "consensus_agreement": None,
        "consensus_pairs": 0,
    }

    # One more gold item, ranked right or wrong: the labeler's figures are the same either way, so they
    # learn nothing about its answer. (Unwindowed, a wrong answer here would drop 70% to 66.7%, a bucket down.)
    submit(client, next_lease(client, gold_project), right=right)
    assert own_row(client, gold_project) == before

    # A reviewer sees the exact figure, which does tell the two apart.
    reviewer = make_user("rex")
    gold_project.memberships.create(user=reviewer, role=Role.REVIEWER)
    body = api(reviewer).get(f"/api/projects/{gold_project.id}/stats/").json()
    assert body["figures"] == "exact"
    (row,) = [r for r in body["labelers"] if r["username"] == "eve"]
    assert row["gold_accuracy"] == pytest.approx((45 if right else 42) / 63) and row["gold_pairs"] == 63


def test_consensus_shows_only_for_whole_windows_of_complete_comparisons(api, admin_user, make_user):
    project = project_create(created_by=admin_user, name="Consensus", completions_per_prompt=3, overlap=2)
    add_comparisons(project, QUALITY_WINDOW)
    eve, ann, bo = make_user("eve"), make_user("ann"), make_user("bo")
    for user in (eve, ann, bo):
        project.memberships.create(user=user, role=Role.LABELER)
    mine, theirs, third = api(eve), api(ann), api(bo)
    # eve ranks every comparison best-first; ann agrees on all but the window's last one.
    for _ in range(QUALITY_WINDOW):
        submit(mine, next_lease(mine, project), right=True)
    order = list(Ranking.objects.filter(labeler=eve).order_by("pk").values_list("comparison_id", flat=True))
    assert own_row(mine, project)["consensus_agreement"] is None
    for comparison_id in order[:-1]:
        lease = next_lease(theirs, project)
        assert lease["comparison"]["id"] == comparison_id  # fewest labels, then id: eve's order
        submit(theirs, lease, right=True)
    # 19 of eve's 20 comparisons are complete: the window does not count yet, whatever ann did.
    assert own_row(mine, project)["consensus_agreement"] is None
    last = next_lease(theirs, project)
    submit(theirs, last, right=False)
    row = own_row(mine, project)
    # 19 comparisons x 3 agreeing pairs, 1 x 3 disagreeing: 57/60 = 95%, shown as 90%.
    assert row["consensus_agreement"] == coarse_rate_of(57, 60) == 0.9 and row["consensus_pairs"] == 60

    # eve's 21st comparison, and its second label agreeing or not, change nothing she can see.
    add_comparisons(project, 1, prefix="Late")
    extra = next_lease(mine, project)
    submit(mine, extra, right=True)
    assert own_row(mine, project) == row
    lease = next_lease(third, project)
    assert lease["comparison"]["id"] == extra["comparison"]["id"]
    submit(third, lease, right=False)
    assert Comparison.objects.get(pk=extra["comparison"]["id"]).label_count == 2
    assert own_row(mine, project) == row


def coarse_rate_of(agreements: int, pairs: int) -> float | None:
    from labeling.agreement import PairCount

    return coarse_rate(PairCount(agreements=agreements, pairs=pairs))


def test_coarse_rate_rounds_down_to_whole_buckets():
    assert [coarse_rate_of(a, 60) for a in (0, 5, 6, 41, 42, 59, 60)] == [0.0, 0.0, 0.1, 0.6, 0.7, 0.9, 1.0]
    assert coarse_rate_of(0, 0) is None
