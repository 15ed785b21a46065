"""The admin console in a real browser: dataset upload errors, the quality dashboard, the template
live preview, snapshots, and what a reviewer may not change."""

import io
import json
import random
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from labeling.models import Dataset, Membership, PreferenceSnapshot, PromptRow, PromptTemplate, Ranking, Role
from labeling.selectors.stats import project_stats
from labeling.services.assignments import assignment_next, ranking_submit
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create
from labeling.services.snapshots import snapshot_build
from labeling.services.templates import template_create
from tests.labeling import external_exports as ex
from tests.labeling.factories import add_comparisons

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

DIALOGUES = [
    {
        "dialogue": "#Person1#: Is the train late?\n#Person2#: Ten minutes, they say.",
        "summary": "The train is 10 minutes late.",
    },
    {"dialogue": "#Person1#: Lunch at noon?\n#Person2#: Make it one.", "summary": "They move lunch to one."},
    {"dialogue": "#Person1#: Did you send the report?\n#Person2#: This morning.", "summary": "The report went out."},
    {
        "dialogue": "#Person1#: It's raining again.\n#Person2#: Take my umbrella.",
        "summary": "#Person2# lends an umbrella.",
    },
    {"dialogue": "#Person1#: Where are my keys?\n#Person2#: On the table.", "summary": "The keys are on the table."},
]


def jsonl(rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


@pytest.fixture
def admin(make_user):
    return make_user("alice", is_staff=True)


@pytest.fixture
def project(admin):
    return project_create(created_by=admin, name="Dialogue summaries", completions_per_prompt=3, overlap=3)


def open_tab(page, project, tab: str):
    page.goto(f"/projects/{project.id}/admin/{tab}")
    page.get_by_role("heading", name=project.name).wait_for()


def test_dataset_upload_names_the_bad_line_and_imports_nothing(page, admin, project):
    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "datasets")
    bad = jsonl([DIALOGUES[0], DIALOGUES[1], {"dialogue": None, "summary": "no dialogue"}, DIALOGUES[3]])
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "bad.jsonl", "mimeType": "application/x-ndjson", "buffer": bad}]
    )
    page.get_by_role("button", name="Upload").click()

    problems = page.locator(".row-errors")
    problems.get_by_text("Problem at line 3, field 'dialogue'.").wait_for()
    row = problems.locator("tbody tr")
    assert row.locator("td").nth(0).inner_text() == "3"
    assert row.locator("td").nth(1).inner_text() == "dialogue"
    assert "null is not allowed" in row.locator("td").nth(2).inner_text()
    problems.get_by_text("Nothing was imported.").wait_for()
    page.get_by_text("No datasets yet.").wait_for()
    screenshot(page, "admin-datasets-error")
    assert Dataset.objects.filter(project=project).count() == 0
    assert PromptRow.objects.filter(dataset__project=project).count() == 0

    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "dialogues.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl(DIALOGUES)}]
    )
    page.get_by_label("Name", exact=True).fill("DialogSum sample")
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("status").get_by_text("Imported 5 rows into “DialogSum sample”").wait_for()
    assert page.locator(".row-errors").count() == 0
    listed = page.locator("tr[data-dataset='DialogSum sample']")
    assert listed.get_by_test_id("row-count").inner_text() == "5"
    dataset = Dataset.objects.get(project=project)
    assert (dataset.name, dataset.row_count, dataset.fields) == ("DialogSum sample", 5, ["dialogue", "summary"])
    assert dataset.rows.count() == 5
    screenshot(page, "admin-datasets")
    assert all("400" in e or "401" in e for e in page.console_errors), page.console_errors


def label_everything(project, labelers, *, careless: set[int], seed: int = 7) -> None:
    """Every labeler ranks until nothing is left for them, through the real assignment services.

    Careful labelers rank position 0 first with an occasional swap of two neighbours; the careless
    ones rank at random, fast. Submit times are then spread over the last ten hours.
    """
    rng = random.Random(seed)
    done: set[int] = set()
    while len(done) < len(labelers):
        for i, labeler in enumerate(labelers):
            if i in done:
                continue
            lease = assignment_next(project_id=project.id, labeler=labeler, rng=rng)
            if lease is None:
                done.add(i)
                continue
            order = [c.id for c in sorted(lease.completions, key=lambda c: c.position)]
            if i in careless:
                rng.shuffle(order)
            elif rng.random() < 0.3:
                j = rng.randrange(len(order) - 1)
                order[j], order[j + 1] = order[j + 1], order[j]
            ranks = {str(cid): rank for rank, cid in enumerate(order, start=1)}
            seconds = rng.uniform(20, 60) if i not in careless else rng.uniform(5, 9)
            ranking_submit(
                assignment_id=lease.assignment.id,
                labeler=labeler,
                payload={"ranks": ranks, "time_spent_ms": int(seconds * 1000)},
            )
    rankings = list(Ranking.objects.filter(comparison__project=project).order_by("id"))
    start = timezone.now() - timedelta(hours=10)
    for n, ranking in enumerate(rankings):
        ranking.created_at = start + timedelta(hours=10) * n / len(rankings)
    Ranking.objects.bulk_update(rankings, ["created_at"])


@pytest.fixture
def labelled(project, make_user):
    """12 comparisons and 2 gold ones (gold order: position 0 first), ranked by four labelers at overlap 3."""
    project.gold_rate = 0.2
    project.save(update_fields=["gold_rate"])
    add_comparisons(project, 12, gold=2)
    names = ["bea", "carl", "dina", "ed"]
    labelers = [make_user(name) for name in names]
    for labeler in labelers:
        Membership.objects.create(project=project, user=labeler, role=Role.LABELER)
    label_everything(project, labelers, careless={3})
    return labelers


def test_quality_dashboard_shows_the_agreement_of_the_api(page, admin, project, labelled):
    stats = project_stats(project=project)
    agreement = stats["agreement"]
    assert agreement["shared_items"] >= 12 and agreement["pairwise_pairs"] > 0

    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "quality")
    figure = page.get_by_test_id("pairwise-rate")
    figure.wait_for()
    shown = figure.inner_text()
    match = re.fullmatch(r"(\d+\.\d)%", shown)
    assert match, shown
    assert float(match.group(1)) == pytest.approx(agreement["pairwise_rate"] * 100, abs=0.051)
    detail = page.get_by_text(f"{agreement['pairwise_agreements']} of {agreement['pairwise_pairs']} shared pairs")
    detail.wait_for()
    alpha = page.get_by_test_id("krippendorff-alpha").inner_text()
    assert float(alpha) == pytest.approx(agreement["krippendorff_alpha_ordinal"], abs=0.0006)

    # The plots and the labeler table are drawn; the careless labeler stands out.
    page.get_by_role("img", name="Agreement over every ranking up to each point").wait_for()
    page.get_by_role("img", name="Rank by completion position").wait_for()
    table = page.get_by_role("table", name="Labeler quality")
    ed = table.locator("tr", has_text="ed").last
    assert ed.locator("td.low").count() >= 1
    assert table.locator("tr", has_text="bea").locator("td.low").count() == 0
    page.wait_for_timeout(300)  # let the SVGs settle before the picture
    screenshot(page, "admin-quality")


def test_template_live_preview_renders_a_real_row(page, admin, project):
    dataset = dataset_import(
        project=project, stream=io.BytesIO(jsonl(DIALOGUES)), filename="dialogues.jsonl", name="DialogSum sample"
    )
    template = template_create(
        project=project, name="Zero-shot", text="Summarize this dialogue:\n\n{dialogue}\n\nSummary:", dataset=dataset
    )
    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "templates")
    prompt = page.get_by_test_id("rendered-prompt")
    prompt.get_by_text("Is the train late?", exact=False).wait_for()
    assert prompt.inner_text().startswith("Summarize this dialogue:")

    # The next row, then an edit: the preview follows the unsaved draft; Save stores it.
    page.get_by_role("button", name="Next row").click()
    prompt.get_by_text("Lunch at noon?", exact=False).wait_for()
    page.get_by_label("Template text").fill("Briefly summarize:\n\n{dialogue}\n\nSummary:")
    prompt.get_by_text("Briefly summarize:", exact=False).wait_for()
    page.get_by_text("Unsaved changes").wait_for()
    template.refresh_from_db()
    assert template.text.startswith("Summarize this dialogue:")  # a preview stores nothing

    # One-shot: an example goes before the query.
    example = {"dialogue": "#Person1#: Hi!\n#Person2#: Hello.", "summary": "They greet."}
    page.get_by_label("Few-shot examples (JSON list of objects)").fill(json.dumps([example]))
    page.get_by_label("Example text").fill("Briefly summarize:\n\n{dialogue}\n\nSummary: {summary}")
    prompt.get_by_text("Summary: They greet.", exact=False).wait_for()
    assert prompt.inner_text().index("They greet.") < prompt.inner_text().index("Lunch at noon?")

    # An unknown field is refused by the server and named next to the field; Save keeps nothing bad.
    page.get_by_label("Template text").fill("Summarize {dialog}")
    page.locator(".field.invalid").get_by_text("dialog").first.wait_for()
    page.get_by_label("Template text").fill("Briefly summarize:\n\n{dialogue}\n\nSummary:")
    page.locator(".field.invalid").wait_for(state="detached")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("All changes saved").wait_for()
    template.refresh_from_db()
    assert template.text == "Briefly summarize:\n\n{dialogue}\n\nSummary:"

    # Over the context window: the estimate and the warning show.
    page.get_by_label("Context window (tokens)").fill("20")
    page.get_by_role("alert").get_by_text("more than the context window of 20").wait_for()
    assert "tokens" in page.get_by_test_id("token-estimate").inner_text()
    screenshot(page, "admin-templates")
    assert PromptTemplate.objects.get(pk=template.pk).examples == [example]


def test_snapshot_becomes_ready_and_offers_downloads(page, admin, project, labelled, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "snapshots")
    page.get_by_text("No snapshots yet.").wait_for()
    page.get_by_label("Mode").select_option("consensus")
    page.get_by_label("Consensus threshold").fill("0.6")
    page.get_by_role("button", name="Create snapshot").click()

    card = page.get_by_role("article", name="Snapshot v1")
    card.wait_for()
    snapshot = PreferenceSnapshot.objects.get(project=project)
    if snapshot.status == "pending":  # the build was not eager here: run it as the worker would
        snapshot_build(snapshot_id=snapshot.pk)
    page.locator("article[aria-label='Snapshot v1'][data-status='ready']").wait_for()  # the page polls
    snapshot.refresh_from_db()
    assert snapshot.status == "ready"
    assert snapshot.options["mode"] == "consensus" and snapshot.options["consensus_threshold"] == 0.6
    pairs = card.get_by_test_id("snapshot-pairs")
    assert pairs.inner_text() == f"{snapshot.counts['pairs']} pairs"

    links = card.get_by_role("link")
    hrefs = {links.nth(i).inner_text(): links.nth(i).get_attribute("href") for i in range(links.count())}
    assert {"train.jsonl", "train.parquet"} <= set(hrefs)
    response = page.request.get(hrefs["train.jsonl"])
    assert response.status == 200
    first = json.loads(response.text().splitlines()[0])
    assert {"prompt", "chosen", "rejected", "margin"} <= set(first)
    assert page.request.get(hrefs["train.parquet"]).body()[:4] == b"PAR1"
    screenshot(page, "admin-snapshots")


def test_reviewer_gets_read_only_screens(page, project, make_user):
    reviewer = make_user("rita")
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    sign_in(page, "rita", "pw-rita")
    open_tab(page, project, "settings")
    page.get_by_text("Read-only: only project admins change this.").wait_for()
    assert page.get_by_label("Name", exact=True).is_disabled()
    assert page.get_by_role("button", name="Save settings").count() == 0

    page.get_by_role("link", name="Datasets").click()
    page.get_by_role("heading", name="Datasets").wait_for()
    assert page.get_by_role("form", name="Upload a dataset").count() == 0
    page.get_by_role("link", name="Members").click()
    page.get_by_role("cell", name="alice", exact=True).wait_for()
    assert page.get_by_role("button", name="Remove alice").count() == 0


def test_runs_and_models_say_plainly_when_the_api_is_missing_and_list_when_it_answers(page, admin, project):
    """The runs and models APIs come from other apps: the console copes with either answer."""
    not_found = {"status": 404, "content_type": "application/json", "body": json.dumps({"detail": "Not found."})}
    page.route("**/api/runs/**", lambda route: route.fulfill(**not_found))
    page.route("**/api/models/**", lambda route: route.fulfill(**not_found))
    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "runs")
    page.get_by_role("status").get_by_text("Training runs are not available yet").wait_for()
    page.get_by_role("link", name="Models").click()
    page.get_by_role("status").get_by_text("Models are not available yet").wait_for()

    page.unroute("**/api/runs/**")
    runs = {"count": 1, "next": None, "previous": None, "results": [{"id": 41, "kind": "sft", "state": "running"}]}
    page.route("**/api/runs/**", lambda route: route.fulfill(status=200, json=runs))
    page.get_by_role("link", name="Runs").click()
    table = page.get_by_role("table", name="Training runs")
    table.get_by_role("cell", name="sft").wait_for()
    assert table.get_by_role("cell", name="running").count() == 1


def test_settings_members_and_criteria_show_server_errors_by_field(page, admin, project, make_user):
    make_user("bob")
    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "settings")
    page.get_by_label("Overlap (labelers per comparison)").fill("0")
    page.get_by_label("Gold rate").fill("0.1")
    page.get_by_role("button", name="Save settings").click()
    error = page.locator(".field.invalid").get_by_role("alert")
    error.get_by_text("greater than or equal to 1").wait_for()
    assert page.get_by_label("Overlap (labelers per comparison)").get_attribute("aria-invalid") == "true"
    screenshot(page, "admin-settings-error")
    project.refresh_from_db()
    assert (project.overlap, project.gold_rate) == (3, 0.0)
    page.get_by_label("Overlap (labelers per comparison)").fill("2")
    page.get_by_label("Instructions for labelers (markdown)").fill("Rank the summaries: **faithful** first.")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Saved.").wait_for()
    project.refresh_from_db()
    assert (project.overlap, project.gold_rate) == (2, 0.1)
    assert project.instructions.startswith("Rank the summaries")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Username").fill("nobody")
    page.get_by_role("button", name="Add member").click()
    page.get_by_role("alert").get_by_text("Unknown user 'nobody'.").wait_for()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Role").select_option("reviewer")
    page.get_by_role("button", name="Add member").click()
    page.get_by_role("cell", name="bob", exact=True).wait_for()
    assert Membership.objects.get(project=project, user__username="bob").role == Role.REVIEWER
    screenshot(page, "admin-members")

    page.get_by_role("link", name="Criteria").click()
    form = page.get_by_role("form", name="Add a criterion")
    form.get_by_label("Name").fill("helpfulness")
    form.get_by_label("Instructions for labelers").fill("Which answer helps the user most?")
    form.get_by_role("button", name="Add criterion").click()
    page.get_by_role("form", name="Criterion helpfulness").wait_for()
    form.get_by_label("Name").fill("helpfulness")
    form.get_by_role("button", name="Add criterion").click()
    form.get_by_text("'helpfulness' is taken.").wait_for()
    assert list(project.criteria.values_list("name", "instructions")) == [
        ("helpfulness", "Which answer helps the user most?")
    ]
    screenshot(page, "admin-criteria")

    page.get_by_role("link", name="Imports").click()
    comparisons = page.get_by_role("form", name="Import comparisons")
    bad = jsonl([{"prompt": "Say hi", "completions": ["a", "b", "c"]}, {"prompt": "Say bye", "completions": ["a"]}])
    comparisons.get_by_label("JSONL file").set_input_files(
        files=[{"name": "c.jsonl", "mimeType": "application/x-ndjson", "buffer": bad}]
    )
    comparisons.get_by_role("button", name="Import").click()
    comparisons.locator(".row-errors").get_by_text("line 2").first.wait_for()
    assert project.comparisons.count() == 0
    good = jsonl([{"prompt": f"Say hi {i}", "completions": ["a", "b", "c"]} for i in range(4)])
    comparisons.get_by_label("JSONL file").set_input_files(
        files=[{"name": "c.jsonl", "mimeType": "application/x-ndjson", "buffer": good}]
    )
    comparisons.get_by_role("button", name="Import").click()
    comparisons.get_by_role("status").get_by_text("Imported 4 comparisons (0 gold).").wait_for()
    assert project.comparisons.count() == 4
    screenshot(page, "admin-imports")


def test_preference_import_skips_bad_rows_when_asked(page, admin):
    pairs = project_create(created_by=admin, name="HH pairs", completions_per_prompt=2)
    good = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Go away.",
    }
    bad = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hey\n\nAssistant: No."}
    sign_in(page, "alice", "pw-alice")
    open_tab(page, pairs, "imports")
    form = page.get_by_role("form", name="Import preference pairs")
    upload = [{"name": "hh.jsonl", "mimeType": "application/x-ndjson", "buffer": jsonl([good, bad, good])}]
    form.get_by_label("JSONL file").set_input_files(files=upload)
    form.get_by_role("button", name="Import").click()
    form.locator(".row-errors").get_by_text("Problem at line 2, field 'rejected'.").wait_for()
    assert pairs.comparisons.count() == 0

    form.get_by_label("On a bad row").select_option("skip")
    form.get_by_label("JSONL file").set_input_files(files=upload)
    form.get_by_role("button", name="Import").click()
    result = form.get_by_role("status")
    result.get_by_text("Imported 2 pairs, skipped 1.").wait_for()
    assert result.locator("tbody td").first.inner_text() == "2"
    assert pairs.comparisons.count() == 2
    assert Ranking.objects.filter(comparison__project=pairs, source="imported").count() == 2


def test_label_studio_import_creates_members_when_asked_and_shows_the_counts(page, admin):
    pairs = project_create(created_by=admin, name="Label Studio pairs", completions_per_prompt=2)
    tasks = ex.dumps(ex.label_studio_pairwise_export())
    export = [{"name": "project-7-at-2024-05-02.json", "mimeType": "application/json", "buffer": tasks}]
    sign_in(page, "alice", "pw-alice")
    open_tab(page, pairs, "imports")
    form = page.get_by_role("form", name="Import Label Studio or Argilla work")
    form.get_by_label("Export file").set_input_files(files=export)

    # A 400 on an optional field lands at that field.
    form.get_by_text("Advanced", exact=True).click()
    form.get_by_label("Annotators (JSON)").fill("[1, 2]")
    form.get_by_role("button", name="Import").click()
    form.locator(".field.invalid").get_by_role("alert").get_by_text("Expected a JSON object").wait_for()
    assert form.get_by_label("Annotators (JSON)").get_attribute("aria-invalid") == "true"

    # Annotators who are not members: refused, each named, until create_members is checked.
    form.get_by_label("Annotators (JSON)").fill("")
    form.get_by_role("button", name="Import").click()
    refused = form.get_by_role("table", name="Refused items")
    refused.get_by_role("cell", name="annotator label_studio:1").wait_for()
    assert refused.get_by_role("cell", name="no such user").count() == 2
    form.get_by_role("alert").get_by_text("2 annotator(s) cannot be matched").wait_for()
    assert pairs.comparisons.count() == 0 and not get_user_model().objects.filter(username="ann@example.org").exists()

    form.get_by_label("Create members for annotators who are not members").check()
    form.get_by_role("button", name="Import").click()
    result = form.get_by_role("status")
    result.get_by_text("Imported 2 comparisons and 3 rankings from 3 tasks.").wait_for()
    counts = result.get_by_role("table", name="Import result")
    shown = {
        row.get_by_role("rowheader").text_content(): row.get_by_role("cell").text_content()
        for row in counts.get_by_role("row").all()
    }
    assert shown == {
        "Comparisons created": "2",
        "Comparisons imported before": "0",
        "Rankings created": "3",
        "Rankings already here": "0",
        "Unlabeled tasks": "1",
        "Annotations left out": "cancelled: 1",
        "Skipped tasks": "0",
        "Members created (no password yet)": "ann@example.org, bo@example.org",
        "Users made labelers": "none",
        "Members matched": "none",
    }
    assert form.get_by_role("alert").count() == 0
    screenshot(page, "admin-imports-label-studio")

    assert pairs.comparisons.count() == 2
    assert set(pairs.comparisons.values_list("metadata__import_key", flat=True)) == {
        "label_studio:301",
        "label_studio:302",
    }
    assert Ranking.objects.filter(comparison__project=pairs, source="imported").count() == 3
    ann = get_user_model().objects.get(username="ann@example.org")
    assert not ann.has_usable_password() and not ann.is_staff
    roles = dict(Membership.objects.filter(project=pairs).values_list("user__username", "role"))
    assert roles == {"alice": Role.ADMIN, "ann@example.org": Role.LABELER, "bo@example.org": Role.LABELER}
    assert Ranking.objects.filter(comparison__project=pairs, labeler=ann).count() == 2
    assert all("400" in e or "401" in e for e in page.console_errors), page.console_errors
