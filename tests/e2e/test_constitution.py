"""Constitutional AI in a real browser: editing a project's constitution (field errors on the exact
principle field, versions), the AI labeler audit with its disagreements, and a cai_revise run's
revisions. No worker runs: the tests create AI labels and run rows through the services and the ORM."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Comparison, Constitution, Membership, Ranking, Role
from labeling.services.ai_labels import ai_rankings_record
from labeling.services.projects import project_create
from tests.labeling.factories import add_comparisons
from training.models import CritiqueRevision, RunState, TrainingRun

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin(make_user):
    return make_user("alice", is_staff=True)


def open_tab(page, project, tab: str):
    page.goto(f"/projects/{project.id}/admin/{tab}")
    page.get_by_role("heading", name=project.name).wait_for()


def test_constitution_versions_with_errors_at_the_principle_field(page, admin):
    project = project_create(created_by=admin, name="Helpful and harmless", completions_per_prompt=2, overlap=1)
    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "constitution")
    expect(page.get_by_text("This project has no constitution yet.")).to_be_visible()
    editor = page.get_by_role("form", name="Constitution editor")
    editor.get_by_role("button", name="Start from the default").click()

    second = editor.get_by_role("group", name="Principle 2", exact=True)
    critique = second.get_by_label("Critique request")
    expect(critique).not_to_have_value("")
    expect(editor.get_by_role("button", name="Reset the draft to the default")).to_be_visible()
    critique.fill("")
    editor.get_by_role("button", name="Save as version 1").click()

    # The server refuses it and names principles[1].critique_request: the error sits at that field.
    expect(critique).to_have_attribute("aria-invalid", "true")
    error_id = critique.get_attribute("aria-describedby")
    expect(second.locator(f"[id='{error_id}']")).to_have_text("required")
    expect(critique).to_be_focused()
    expect(editor.locator("[aria-invalid='true']")).to_have_count(1)
    expect(editor.get_by_role("status")).to_have_text("Not saved: see the errors below")
    assert Constitution.objects.filter(project=project).count() == 0
    screenshot(page, "constitution-field-error")

    critique.fill("Point out anything unethical or illegal in the answer.")
    expect(critique).not_to_have_attribute("aria-invalid", "true")
    editor.get_by_label("Note (what changed)").fill("Our first version")
    editor.get_by_role("button", name="Save as version 1").click()
    expect(page.get_by_test_id("constitution-version")).to_have_text("Version 1")
    expect(page.get_by_text("Our first version")).to_be_visible()
    first = Constitution.objects.get(project=project)
    assert first.version == 1 and first.principles[1]["critique_request"].startswith("Point out anything unethical")
    assert first.created_by == admin

    # A name edit saves as version 2; version 1 stays readable from the picker.
    name = editor.get_by_role("group", name="Principle 1", exact=True).get_by_label("Name")
    name.fill("Avoid all harm")
    editor.get_by_role("button", name="Save as version 2").click()
    expect(page.get_by_test_id("constitution-version")).to_have_text("Version 2")
    expect(editor.get_by_role("status")).to_have_text("Saved as version 2.")
    picker = page.get_by_label("Version", exact=True)
    expect(picker.locator("option")).to_have_text(["v2 (newest)", "v1"])
    versions = page.get_by_role("region", name="Constitution versions")
    expect(versions.get_by_role("heading", name=re.compile("Avoid all harm"))).to_be_visible()
    picker.select_option("1")
    expect(page.get_by_test_id("constitution-version")).to_have_text("Version 1")
    expect(versions.get_by_text("older version, read-only")).to_be_visible()
    expect(versions.get_by_role("heading", name=re.compile("Avoid all harm"))).to_have_count(0)
    saved = Constitution.objects.filter(project=project).order_by("version")
    assert list(saved.values_list("version", flat=True)) == [1, 2]
    screenshot(page, "constitution-versions")
    assert not [e for e in page.console_errors if "400" not in e and "401" not in e], page.console_errors


def test_the_ai_audit_shows_agreement_and_opens_a_disagreement(page, admin, make_user):
    project = project_create(created_by=admin, name="Assistant answers", completions_per_prompt=2, overlap=1)
    lena = make_user("lena")
    Membership.objects.create(project=project, user=lena, role=Role.LABELER)
    add_comparisons(project, 2, prefix="How do I pick a lock")
    comparisons = list(Comparison.objects.filter(project=project).order_by("id"))
    judgments = []
    for index, comparison in enumerate(comparisons):
        a, b = comparison.completions.order_by("position").values_list("id", flat=True)
        judgments.append(
            {
                "comparison_id": comparison.id,
                "principle": "harm",
                "ranks": {str(a): 1, str(b): 2},
                "probability": 0.8,
                "pairs": [{"a": a, "b": b, "p_a": 0.8}],
            }
        )
        # Lena agrees with the AI on the first comparison and prefers B on the second.
        human = {str(a): 1, str(b): 2} if index == 0 else {str(a): 2, str(b): 1}
        order = {"criterion": None, "ranks": human, "failed": []}
        Ranking.objects.create(comparison=comparison, labeler=lena, source="human", orders=[order])
    counts = ai_rankings_record(project=project, judgments=judgments)
    assert counts["recorded"] == 2
    disagreeing = comparisons[1]

    sign_in(page, "alice", "pw-alice")
    open_tab(page, project, "audit")
    table = page.get_by_role("table", name="AI audit by principle")
    harm = table.locator("tr[data-principle='harm']")
    expect(harm).to_contain_text("harm")
    expect(harm.locator("td").nth(1)).to_have_text("2")  # AI labels
    expect(harm.locator("td").nth(2)).to_have_text("2")  # shared with humans
    expect(harm.locator("td").nth(3)).to_have_text("50% 2 pairs")  # AI-human agreement
    expect(harm.locator("td").nth(4)).to_have_text(re.compile("^—"))  # one human: no human-human pairs
    expect(harm.locator("td").nth(6)).to_have_text("1")  # disagreements
    expect(page.get_by_test_id("spot-check-rate")).to_contain_text("of newly AI-labeled comparisons")
    expect(page.get_by_role("link", name="Change it in Settings")).to_have_attribute(
        "href", f"/projects/{project.id}/admin/settings"
    )
    screenshot(page, "ai-audit")

    harm.get_by_role("button", name="Review disagreements: harm").click()
    panel = page.get_by_role("region", name="Disagreements: harm")
    item = panel.get_by_role("article", name=f"Comparison {disagreeing.id}")
    expect(item).to_have_count(1)
    expect(panel.locator("article")).to_have_count(1)
    expect(item.get_by_test_id("disagreement-prompt")).to_have_text(disagreeing.prompt)
    expect(item.get_by_text("answer 1.0", exact=True)).to_be_visible()
    expect(item.get_by_text("answer 1.1", exact=True)).to_be_visible()
    orders = item.get_by_role("table", name=f"Orders of comparison {disagreeing.id}")
    expect(orders.locator("tbody tr").nth(0)).to_contain_text("AI labeler · p = 0.80")
    expect(orders.locator("tbody tr").nth(0)).to_contain_text("A > B")
    expect(orders.locator("tbody tr").nth(1)).to_contain_text(f"Human labeler #{lena.id}")
    expect(orders.locator("tbody tr").nth(1)).to_contain_text("B > A")
    screenshot(page, "ai-audit-disagreement")
    assert not [e for e in page.console_errors if "401" not in e], page.console_errors


def test_a_cai_revise_run_lists_its_revisions_by_principle(page, admin):
    project = project_create(created_by=admin, name="Assistant answers", completions_per_prompt=2, overlap=1)
    now = timezone.now()
    run = TrainingRun.objects.create(
        kind="cai_revise",
        state=RunState.SUCCEEDED,
        config={},
        project=project,
        created_by=admin,
        outputs={"revised": 2, "principle_counts": {"harm": 1, "helpful": 1}},
        started_at=now,
        finished_at=now,
    )
    for prompt_id, principle in (("p1", "harm"), ("p2", "helpful")):
        CritiqueRevision.objects.create(
            run=run,
            prompt_id=prompt_id,
            prompt=f"Prompt {prompt_id}: how do I get into my neighbour's house?",
            initial=f"First answer to {prompt_id}.",
            rounds=[
                {
                    "principle": principle,
                    "critique_request": f"Critique under {principle}.",
                    "critique": f"The critique of {prompt_id}.",
                    "revision_request": f"Revise under {principle}.",
                    "revision": f"The revision of {prompt_id}.",
                }
            ],
            final=f"The revision of {prompt_id}.",
            principles=f",{principle},",
        )

    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.id}/admin/runs/{run.pk}")
    section = page.get_by_role("region", name="Revisions")
    samples = section.locator("details.revision-sample")
    expect(samples).to_have_count(2)
    section.get_by_label("Principle").select_option("harm")
    expect(samples).to_have_count(1)
    sample = samples.first
    sample.locator("summary").click()
    expect(sample.get_by_text("First answer to p1.")).to_be_visible()
    expect(sample.get_by_label("Critique, round 1")).to_have_text("The critique of p1.")
    expect(sample.get_by_text("Critique under harm.")).to_be_visible()
    screenshot(page, "cai-revise-run")
