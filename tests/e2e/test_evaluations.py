"""Human side-by-side evaluations in a real browser, on the real API: a project admin starts one
from the Evaluations page (the form's own checks, then the server's refusal at its field, then a
201 that opens the new evaluation while it generates); the leaderboard of a labeled evaluation
shows what GET .../results/ says (ranks, scores, the win-rate matrix, length bias, an AI judge and
its agreement) and publishes to the registry; a per-criterion evaluation has a criterion selector.
No worker runs: the generate runs' answers are ingested as the worker would (sxs_factories)."""

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from playwright.sync_api import expect

from labeling.models import Completion, Membership, Role, SideBySideEval, SideBySidePair
from labeling.services.ai_labels import ai_rankings_record
from labeling.services.assignments import assignment_next, ranking_submit
from labeling.services.projects import criterion_create, project_create
from models_registry.models import ModelVersion
from tests.labeling.sxs_factories import answer, label_all, make_evaluation, questions_dataset, tiny_versions
from training import tasks
from training.models import TrainingRun

from .conftest import screenshot, sign_in, sign_out

pytestmark = pytest.mark.django_db(transaction=True)

DASH = "\u2013"  # the en dash the page writes in ranges (5-14 words, 48-67%)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Evaluations queue generate runs on commit; these tests have no broker and no worker."""
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: None)


@pytest.fixture
def alice(make_user):
    return make_user("alice")  # a project admin, not staff


@pytest.fixture
def source(alice, make_user):
    project = project_create(created_by=alice, name="Assistant answers", completions_per_prompt=2, overlap=2)
    for name, role in (("lena", Role.LABELER), ("lars", Role.LABELER), ("rita", Role.REVIEWER)):
        Membership.objects.create(project=project, user=make_user(name), role=role)
    return project


@pytest.fixture
def versions(source, tmp_path):
    return tiny_versions(tmp_path / "tiny", source, n=3)


def js_fixed(value: float, digits: int) -> str:
    """JavaScript's value.toFixed(digits): the nearest, ties to the larger (exact binary value)."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def one_decimal(value: float) -> str:
    """How the page writes a score: formatNumber(v, 1), String(Number(v.toFixed(1)))."""
    text = js_fixed(value, 1)
    return text[:-2] if text.endswith(".0") else text


def pct(value: float) -> str:
    """formatPercent(v, 0) without its "%"."""
    return js_fixed(value * 100, 0)


def test_an_admin_starts_an_evaluation_from_the_evaluations_page(page, alice, source, versions):
    dataset = questions_dataset(source, alice, n=4)  # every row in the test split
    posts: list[str] = []
    page.on("request", lambda r: r.method == "POST" and "/evaluations/" in r.url and posts.append(r.url))
    sign_in(page, "alice", "pw-alice")
    page.get_by_role("navigation").get_by_role("link", name="Evaluations").click()
    expect(page).to_have_url(re.compile(r"/evaluations$"))
    expect(page.get_by_role("status")).to_contain_text("No evaluations yet.")

    page.get_by_role("button", name="New evaluation").click()
    form = page.get_by_role("form", name="New evaluation")
    expect(form.get_by_label("Source project")).to_have_value(str(source.pk))  # the only project alice administers
    form.get_by_label("Dataset").select_option(str(dataset.pk))
    form.get_by_label("policy v1 (causal-lm)").check()

    # One version: the form says so and sends nothing.
    form.get_by_role("button", name="Create evaluation").click()
    picker = form.get_by_role("group", name="Versions to compare")
    expect(picker).to_have_attribute("aria-invalid", "true")
    expect(picker.get_by_role("alert")).to_have_text("Choose at least 2 versions to compare.")
    assert posts == []

    # No train rows: the server refuses, its message sits at the Split field, nothing is created.
    form.get_by_label("policy v2 (causal-lm)").check()
    split = form.get_by_label("Split")
    split.select_option("train")
    form.get_by_role("button", name="Create evaluation").click()
    expect(split).to_have_attribute("aria-invalid", "true")
    expect(form.locator(f"[id='{split.get_attribute('aria-describedby')}']")).to_contain_text(
        "has no rows in split 'train'"
    )
    expect(form.get_by_test_id("new-eval-error")).to_have_text("Not created: see the error at split.")
    assert len(posts) == 1 and not SideBySideEval.objects.exists() and not TrainingRun.objects.exists()
    screenshot(page, "evaluations-new-form-error")

    split.select_option("test")
    form.get_by_label("Name").fill("v1 vs v2")
    form.get_by_label("Limit").fill("3")
    form.get_by_role("button", name="Create evaluation").click()
    expect(page).to_have_url(re.compile(r"/evaluations/\d+$"))
    evaluation = SideBySideEval.objects.get()
    expect(page).to_have_url(re.compile(rf"/evaluations/{evaluation.pk}$"))
    assert evaluation.source_project_id == source.pk and evaluation.name == "v1 vs v2" and evaluation.split == "test"
    assert [e.version_id for e in evaluation.entries.order_by("position")] == [versions[0].pk, versions[1].pk]

    expect(page.get_by_role("heading", name="v1 vs v2")).to_be_visible()
    expect(page.get_by_test_id("eval-status")).to_have_text("generating")
    runs = page.get_by_role("table", name="Versions and their generation runs")
    for entry in evaluation.entries.all():
        row = runs.locator(f"tr[data-entry='{entry.pk}']")
        expect(row.get_by_role("link", name=f"Run {entry.run_id}")).to_be_visible()
        expect(row).to_contain_text("queued")
        expect(row).to_contain_text("0 / 3")
    # 3 prompts, 1 pair of versions, overlap 2.
    expect(page.get_by_test_id("labels")).to_have_text("0 of 6 labels")
    expect(page.get_by_role("progressbar", name="Labels")).to_have_attribute("aria-valuenow", "0")
    expect(page.get_by_test_id("no-labels")).to_be_visible()
    expect(page.get_by_test_id("no-ai-judge")).to_be_visible()
    expect(page.get_by_role("link", name="Label this evaluation")).to_have_attribute(
        "href", f"/projects/{evaluation.project_id}/label"
    )
    expect(page.get_by_role("button", name="Publish to registry")).to_be_disabled()  # no labels to publish
    screenshot(page, "evaluation-generating")

    page.get_by_role("link", name="← All evaluations").click()
    expect(page).to_have_url(re.compile(rf"/evaluations\?project={source.pk}$"))
    listed = page.get_by_role("table", name="Evaluations").locator(f"tr[data-evaluation='{evaluation.pk}']")
    expect(listed.get_by_role("link", name="v1 vs v2")).to_be_visible()
    expect(listed).to_contain_text("generating")
    assert not [e for e in page.console_errors if "400" not in e and "401" not in e], page.console_errors


def test_the_leaderboard_shows_humans_and_the_ai_judge_and_publishes(page, api, alice, source, versions):
    dataset = questions_dataset(source, alice, n=6)
    evaluation = make_evaluation(source, alice, versions, dataset, limit=6, seed=3, name="Three policies")
    entries = list(evaluation.entries.order_by("position"))
    words = {entries[0].pk: 3, entries[1].pk: 10, entries[2].pk: 30}  # differences 7, 20 and 27 words
    answer(evaluation, text_for=lambda entry, prompt: " ".join(["word"] * words[entry.pk]))
    lena, lars = (Membership.objects.get(project=source, user__username=n).user for n in ("lena", "lars"))

    def prefer(pair, labeler):
        # Later versions win; lars calls v1 against v2 a tie.
        if labeler == lars and {pair.entry_a_id, pair.entry_b_id} == {entries[0].pk, entries[1].pk}:
            return "tie"
        return "b"

    assert label_all(evaluation, [lena, lars], prefer) == 6 * 3 * 2
    # The AI judge agrees with the humans except on v1 against v3.
    judgments = []
    for pair in SideBySidePair.objects.filter(evaluation=evaluation):
        by_entry = {c.metadata["entry"]: c.pk for c in Completion.objects.filter(comparison=pair.comparison)}
        v1_v3 = (pair.entry_a_id, pair.entry_b_id) == (entries[0].pk, entries[2].pk)
        winner, loser = (pair.entry_a_id, pair.entry_b_id) if v1_v3 else (pair.entry_b_id, pair.entry_a_id)
        ranks = {str(by_entry[winner]): 1, str(by_entry[loser]): 2}
        judgments.append({"comparison_id": pair.comparison_id, "ranks": ranks})
    assert ai_rankings_record(project=evaluation.project, judgments=judgments)["recorded"] == 18
    results = api(alice).get(f"/api/evaluations/{evaluation.pk}/results/").json()
    [human], [judge], [agreement] = results["human"], results["ai"], results["agreement"]
    assert [s["entry"] for s in human["scores"]] == [entries[2].pk, entries[1].pk, entries[0].pk]

    sign_in(page, "alice", "pw-alice")
    page.goto(f"/evaluations/{evaluation.pk}")
    expect(page.get_by_test_id("eval-status")).to_have_text("complete")
    expect(page.get_by_test_id("labels")).to_have_text("36 of 36 labels")
    expect(page.get_by_role("progressbar", name="Labels")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_label("Criterion")).to_have_count(0)  # one order: no selector

    table = page.get_by_role("table", name="Versions by score")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    judge_scores = {s["entry"]: s for s in judge["scores"]}
    for i, score in enumerate(human["scores"]):
        row = rows.nth(i)
        expect(row).to_have_attribute("data-entry", str(score["entry"]))
        expect(row.get_by_test_id("score")).to_have_text(one_decimal(score["score"]))
        expect(row.locator("td").nth(0)).to_have_text(str(score["rank"]))
        expect(row.locator("td").nth(5)).to_have_text(one_decimal(judge_scores[score["entry"]]["score"]))
    expect(rows.nth(0)).to_contain_text("policy v3")

    plot = page.get_by_role("img", name="Bradley-Terry scores with 95% intervals (overall)")
    expect(plot.locator("circle")).to_have_count(6)  # humans and the AI judge, per version

    matrix = page.get_by_role("table", name="Win rates (overall)")
    v1_v2 = next(p for p in human["pairs"] if {p["a"], p["b"]} == {entries[0].pk, entries[1].pk})
    cell = matrix.locator(f"td[data-row='{entries[1].pk}'][data-col='{entries[0].pk}']")
    rate = v1_v2["win_rate"] if v1_v2["a"] == entries[1].pk else 1 - v1_v2["win_rate"]
    expect(cell).to_contain_text(f"{pct(rate)}%")
    expect(cell).to_contain_text(f"n={v1_v2['n']}")
    title = (
        rf"^policy v2 beats policy v1 {pct(rate)}% \(95% interval \d+{DASH}\d+%\), n = 12: 6 wins, 0 losses, 6 ties$"
    )
    expect(cell).to_have_attribute("title", re.compile(title))
    expect(matrix.locator(f"td[data-row='{entries[0].pk}'][data-col='{entries[2].pk}']")).to_contain_text("0%")

    bias = human["length_bias"]
    chart = page.get_by_role("img", name="Longer answer's win share by length difference in words (overall)")
    expect(chart.locator("[data-bin]")).to_have_count(len(bias["bins"]))
    expect(chart.locator(f"[data-bin='5{DASH}14']")).to_contain_text("n=12")
    expect(chart.locator(f"[data-bin='15{DASH}39']")).to_contain_text("n=24")
    expect(page.get_by_test_id("length-bias-overall")).to_contain_text(f"n = {bias['n']}")

    expect(page.get_by_test_id("ai-agreement")).to_contain_text(
        f"{pct(agreement['rate'])}% ({pct(agreement['low'])}{DASH}{pct(agreement['high'])}%)"
        f" of {agreement['n']} comparisons"
    )
    page.wait_for_timeout(300)  # let the SVGs settle before the picture
    screenshot(page, "evaluation-leaderboard")

    page.get_by_role("button", name="Publish to registry").click()
    expect(page.get_by_test_id("published-at")).not_to_have_text("not yet")
    expect(page.get_by_role("button", name="Publish again")).to_be_visible()
    assert SideBySideEval.objects.get(pk=evaluation.pk).published_at is not None
    winner = ModelVersion.objects.get(pk=versions[2].pk)
    assert winner.metrics["human_evals"][0]["evaluation"] == evaluation.pk
    assert not [e for e in page.console_errors if "401" not in e], page.console_errors

    # A reviewer reads the same page, without the publish button.
    sign_out(page)
    sign_in(page, "rita", "pw-rita")
    page.goto(f"/evaluations/{evaluation.pk}")
    expect(page.get_by_role("table", name="Versions by score")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Publish"))).to_have_count(0)


def test_a_per_criterion_evaluation_has_a_leaderboard_per_criterion(page, alice, source, versions):
    source.rank_per_criterion = True
    source.save()
    criterion_create(project=source, name="helpful")
    criterion_create(project=source, name="harmless")
    dataset = questions_dataset(source, alice, n=3)
    evaluation = make_evaluation(source, alice, versions[:2], dataset, limit=3)
    answer(evaluation)
    first, second = evaluation.entries.order_by("position")
    helpful, harmless = evaluation.project.criteria.order_by("position")
    for username in ("lena", "lars"):
        labeler = Membership.objects.get(project=source, user__username=username).user
        while (lease := assignment_next(project_id=evaluation.project_id, labeler=labeler)) is not None:
            pair = SideBySidePair.objects.get(comparison_id=lease.comparison.id)
            ids = {c.position: c.id for c in lease.completions}
            a, b = ids[pair.a_position], ids[1 - pair.a_position]
            # The first version is more helpful, the second more harmless.
            criteria = {str(helpful.pk): {"ranks": {a: 1, b: 2}}, str(harmless.pk): {"ranks": {a: 2, b: 1}}}
            ranking_submit(assignment_id=lease.assignment.id, labeler=labeler, payload={"criteria": criteria})

    sign_in(page, "alice", "pw-alice")
    page.goto(f"/evaluations/{evaluation.pk}")
    selector = page.get_by_label("Criterion")
    expect(selector.locator("option")).to_have_text(["helpful", "harmless"])
    top = page.get_by_role("table", name="Versions by score").locator("tbody tr").first
    expect(top).to_have_attribute("data-entry", str(first.pk))
    selector.select_option(label="harmless")
    expect(top).to_have_attribute("data-entry", str(second.pk))
    expect(page.get_by_role("table", name="Win rates (harmless)")).to_be_visible()
    expect(page.get_by_test_id("no-ai-judge")).to_be_visible()
    screenshot(page, "evaluation-per-criterion")


def test_the_models_tab_shows_the_human_evaluation_published_on_each_version(page, api, alice, source, versions):
    """The registry tab of the source project lists its model; its versions show the evaluation
    published on them: the Bradley-Terry score with its interval, the rank, and the win rate against
    the other version with its 95% interval, as metrics.human_evals has them."""
    v1, v2, v3 = versions
    dataset = questions_dataset(source, alice, n=4)
    evaluation = make_evaluation(source, alice, [v1, v2], dataset, limit=4, name="v2 against v1")
    answer(evaluation)
    v2_entry = evaluation.entries.get(version=v2).pk
    lena, lars = (Membership.objects.get(project=source, user__username=n).user for n in ("lena", "lars"))
    # lena prefers v2, lars calls it a tie: v2 wins (4 + 4/2) / 8 = 75%.
    votes = label_all(
        evaluation,
        [lena, lars],
        lambda pair, labeler: "tie" if labeler == lars else ("a" if pair.entry_a_id == v2_entry else "b"),
    )
    assert votes == 8
    assert api(alice).post(f"/api/evaluations/{evaluation.pk}/publish/").status_code == 200
    [published] = ModelVersion.objects.get(pk=v2.pk).metrics["human_evals"]
    [overall] = published["criteria"]
    [against] = overall["against"]
    assert against["version"] == v1.pk and against["win_rate"] == pytest.approx(0.75) and against["n"] == 8
    [[loser]] = [c["against"] for c in ModelVersion.objects.get(pk=v1.pk).metrics["human_evals"][0]["criteria"]]

    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{source.pk}/admin")
    page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Models").click()
    expect(page).to_have_url(re.compile(rf"/projects/{source.pk}/admin/models$"))
    models = page.get_by_role("table", name="Models")
    expect(models.locator("tbody tr")).to_have_count(1)
    expect(models.locator("tbody tr")).to_contain_text("causal-lm")
    expect(models.locator("tbody tr")).to_contain_text("3 (latest v3)")
    # The project's only model is open at once.
    expect(models.get_by_role("button", name=re.compile("policy"))).to_have_attribute("aria-expanded", "true")

    table = page.get_by_role("table", name="Versions of policy")
    expect(table.locator("tr[data-version]")).to_have_count(3)
    block = table.locator(f"tr[data-version-evals='{v2.pk}'] [data-evaluation='{evaluation.pk}']")
    expect(block.get_by_role("link", name="v2 against v1")).to_have_attribute("href", f"/evaluations/{evaluation.pk}")
    row = block.get_by_role("table", name="v2 against v1: policy v2").locator("tr[data-criterion='overall']")
    score = f"{one_decimal(overall['score'])} [{one_decimal(overall['low'])}, {one_decimal(overall['high'])}]"
    expect(row.locator("[data-cell='score']")).to_have_text(score)
    expect(row.locator("[data-cell='rank']")).to_have_text("#1")
    expect(row.locator(f"[data-against='{v1.pk}']")).to_have_text(
        f"75% ({pct(against['low'])}{DASH}{pct(against['high'])}%) vs policy v1, n = 8"
    )
    # The other side of the same evaluation on v1, and nothing on v3, which it did not compare.
    v1_row = table.locator(f"tr[data-version-evals='{v1.pk}'] tr[data-criterion='overall']")
    expect(v1_row.locator("[data-cell='rank']")).to_have_text("#2")
    expect(v1_row.locator(f"[data-against='{v2.pk}']")).to_have_text(
        f"25% ({pct(loser['low'])}{DASH}{pct(loser['high'])}%) vs policy v2, n = 8"
    )
    expect(table.locator(f"tr[data-version-evals='{v3.pk}']")).to_have_count(0)
    screenshot(page, "registry-human-evaluations")

    block.get_by_role("link", name="v2 against v1").click()
    expect(page).to_have_url(re.compile(rf"/evaluations/{evaluation.pk}$"))
    expect(page.get_by_role("table", name="Versions by score")).to_be_visible()
    assert not [e for e in page.console_errors if "401" not in e], page.console_errors
