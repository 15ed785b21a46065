"""AI labels: recorded once as the "ai" member, routed to humans at the spot-check rate, counted as AI
in snapshots (margin = the judge's probability) and in the audit beside human-human agreement."""

import pytest

from labeling.models import Comparison, LabelSource, Ranking, Role
from labeling.pairs import ComparisonData, PairOptions, RankingData, build_pairs
from labeling.services.ai_labels import ai_rankings_record, kept_for_spot_check
from labeling.services.projects import project_create

from .factories import add_comparisons

pytestmark = pytest.mark.django_db


@pytest.fixture
def pairs_project(admin_user):
    project = project_create(created_by=admin_user, name="Pairs", completions_per_prompt=2, overlap=2)
    add_comparisons(project, 6, gold=1)
    return project


def ids_of(comparison: Comparison) -> list[int]:
    return list(comparison.completions.order_by("position").values_list("pk", flat=True))


def judgment(comparison: Comparison, *, first_wins: bool = True, principle: str = "harm", p: float = 0.8) -> dict:
    a, b = ids_of(comparison)
    winner, loser = (a, b) if first_wins else (b, a)
    return {
        "comparison_id": comparison.pk,
        "principle": principle,
        "ranks": {str(winner): 1, str(loser): 2},
        "probability": p,
        "pairs": [{"a": a, "b": b, "p_a": p if first_wins else 1 - p}],
    }


def human_rank(comparison: Comparison, user, *, first_wins: bool) -> None:
    a, b = ids_of(comparison)
    ranks = {str(a): 1, str(b): 2} if first_wins else {str(a): 2, str(b): 1}
    Ranking.objects.create(
        comparison=comparison, labeler=user, orders=[{"criterion": None, "ranks": ranks, "failed": []}]
    )
    Comparison.objects.filter(pk=comparison.pk).update(label_count=comparison.label_count + 1)


def test_recorded_once_as_the_ai_member_and_bad_judgments_rejected(pairs_project):
    comparisons = list(Comparison.objects.filter(project=pairs_project, is_gold=False).order_by("id"))
    gold = Comparison.objects.get(project=pairs_project, is_gold=True)
    bad_ranks = {**judgment(comparisons[1]), "ranks": {"999999": 1}}
    counts = ai_rankings_record(
        project=pairs_project, judgments=[judgment(comparisons[0]), bad_ranks, judgment(gold), {"comparison_id": 0}]
    )
    assert (counts["recorded"], counts["rejected"]) == (1, 3)
    again = ai_rankings_record(project=pairs_project, judgments=[judgment(comparisons[0]), judgment(comparisons[1])])
    assert (again["recorded"], again["already"]) == (1, 1)
    rankings = Ranking.objects.filter(comparison__project=pairs_project)
    assert rankings.count() == 2 and set(rankings.values_list("source", flat=True)) == {LabelSource.AI}
    assert {r.labeler.username for r in rankings} == {"rankforge-ai"}
    order = rankings.get(comparison=comparisons[0]).orders[0]
    assert order["ai"]["principle"] == "harm" and order["ai"]["probability"] == 0.8


def test_spot_check_rate_decides_who_stays_in_the_human_queue(api, pairs_project, make_user, add_member):
    pairs_project.ai_spot_check_rate = 0.5
    pairs_project.save()
    comparisons = list(Comparison.objects.filter(project=pairs_project, is_gold=False).order_by("id"))
    labeler = add_member(make_user("human"), Role.LABELER, to=pairs_project)
    human_rank(comparisons[0], labeler, first_wins=True)  # already human-labeled: stays queued whatever
    counts = ai_rankings_record(project=pairs_project, judgments=[judgment(c) for c in comparisons])
    kept = {c.pk for c in comparisons if kept_for_spot_check(c.pk, 0.5)}
    assert counts["spot_checks"] == len(kept)
    queued = set(
        Comparison.objects.filter(project=pairs_project, is_gold=False, human_queue=True).values_list("pk", flat=True)
    )
    assert queued == kept | {comparisons[0].pk}
    assert 0 < len(kept) < len(comparisons)  # the stable draw at 0.5 splits these six
    # A second labeler is served only what stayed in the queue (gold aside).
    other = api(add_member(make_user("other"), Role.LABELER, to=pairs_project))
    served = set()
    for _ in range(len(comparisons) + 2):
        response = other.get(f"/api/projects/{pairs_project.pk}/next/")
        if response.status_code == 204:
            break
        body = response.json()
        served.add(body["comparison"]["id"])
        ranks = {str(c["id"]): c["position"] + 1 for c in body["completions"]}
        other.post(f"/api/assignments/{body['assignment']['id']}/ranking/", {"ranks": ranks}, format="json")
    gold_id = Comparison.objects.get(project=pairs_project, is_gold=True).pk
    assert served - {gold_id} == queued
    progress = api(pairs_project.created_by).get(f"/api/projects/{pairs_project.pk}/stats/").json()["progress"]
    assert progress["ai_only"] == len(comparisons) - len(queued)


def test_ai_pairs_carry_the_judge_probability_as_margin():
    comparison = ComparisonData(id=1, prompt="p", split="train", completions={10: "a", 11: "b"})
    ai_order = {
        "criterion": None,
        "ranks": {"11": 1, "10": 2},
        "failed": [],
        "ai": {"pairs": [{"a": 10, "b": 11, "p_a": 0.1}]},
    }
    human_order = {"criterion": None, "ranks": {"10": 1, "11": 2}, "failed": []}
    rankings = [RankingData(1, 5, "ai", [ai_order]), RankingData(1, 6, "human", [human_order])]
    only_ai = build_pairs([comparison], rankings, PairOptions(sources=("ai",))).pairs
    assert len(only_ai) == 1 and only_ai[0].chosen == "b" and only_ai[0].margin == pytest.approx(0.9)
    both = build_pairs([comparison], rankings, PairOptions(sources=("human", "ai"))).pairs
    assert sorted((p.source, p.margin) for p in both) == [("ai", pytest.approx(0.9)), ("human", 1.0)]


def test_audit_shows_ai_human_beside_human_human_per_principle(api, pairs_project, make_user, add_member):
    comparisons = list(Comparison.objects.filter(project=pairs_project, is_gold=False).order_by("id"))
    h1 = add_member(make_user("h1"), Role.LABELER, to=pairs_project)
    h2 = add_member(make_user("h2"), Role.LABELER, to=pairs_project)
    # c0: everyone agrees; c1: AI against both humans; c2: humans split, AI with h1 (other principle).
    for comparison, h1_first, h2_first in (
        (comparisons[0], True, True),
        (comparisons[1], True, True),
        (comparisons[2], True, False),
    ):
        human_rank(comparison, h1, first_wins=h1_first)
        human_rank(comparison, h2, first_wins=h2_first)
    ai_rankings_record(
        project=pairs_project,
        judgments=[
            judgment(comparisons[0]),
            judgment(comparisons[1], first_wins=False),
            judgment(comparisons[2], principle="honesty"),
            judgment(comparisons[3]),  # no human saw it
        ],
    )
    reviewer = api(pairs_project.created_by)
    audit = reviewer.get(f"/api/projects/{pairs_project.pk}/stats/ai-audit/").json()
    rows = {row["principle"]: row for row in audit["principles"]}
    assert (rows["harm"]["ai_labels"], rows["harm"]["shared_with_humans"]) == (3, 2)
    assert rows["harm"]["ai_human_agreement"] == {"rate": 0.5, "agreements": 2, "pairs": 4}
    assert rows["harm"]["human_human_agreement"]["rate"] == 1.0
    assert rows["honesty"]["ai_human_agreement"]["rate"] == 0.5
    assert rows["honesty"]["human_human_agreement"]["rate"] == 0.0
    assert audit["overall"]["disagreements"] == 2
    page = reviewer.get(f"/api/projects/{pairs_project.pk}/stats/ai-audit/disagreements/?principle=harm").json()
    assert [d["comparison"] for d in page["results"]] == [comparisons[1].pk]
    shown = page["results"][0]
    assert shown["prompt"] == comparisons[1].prompt and len(shown["completions"]) == 2
    assert {p["labeler"] for p in shown["people"]} == {h1.pk, h2.pk}
    stats = f"/api/projects/{pairs_project.pk}/stats/"
    assert reviewer.get(stats).json()["progress"]["rankings_total"] == 6  # human only, by default
    ai_only = reviewer.get(stats + "?sources=ai").json()
    assert ai_only["progress"]["rankings_total"] == 4
    assert [row["rankings"] for row in ai_only["labelers"] if row["username"] == "rankforge-ai"] == [4]
    labeler_client = api(h1)
    assert labeler_client.get(f"/api/projects/{pairs_project.pk}/stats/ai-audit/").status_code == 403


def test_audit_against_imported_labels(admin_user, api):
    from labeling.services.preferences import preferences_import

    from .factories import jsonl

    project = project_create(created_by=admin_user, name="HH", completions_per_prompt=2)
    rows = [{"prompt": f"Q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(4)]
    preferences_import(project=project, stream=jsonl(rows), filename="hh.jsonl")
    judgments = []
    for i, comparison in enumerate(Comparison.objects.filter(project=project).order_by("id")):
        texts = dict(comparison.completions.values_list("pk", "text"))
        good = next(pk for pk, text in texts.items() if text.startswith("good"))
        bad = next(pk for pk in texts if pk != good)
        winner, loser = (good, bad) if i < 3 else (bad, good)
        judgments.append(
            {"comparison_id": comparison.pk, "principle": "harm", "ranks": {str(winner): 1, str(loser): 2}}
        )
    ai_rankings_record(project=project, judgments=judgments)
    audit = api(admin_user).get(f"/api/projects/{project.pk}/stats/ai-audit/").json()
    assert audit["overall"]["ai_imported_agreement"] == {"rate": 0.75, "agreements": 3, "pairs": 4}
    assert audit["overall"]["shared_with_imported"] == 4
