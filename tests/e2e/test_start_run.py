"""Starting a training run from a project's Runs tab in a real browser: a project admin picks a kind,
its inputs (a registered version; the constitution defaults to the newest) and a config value; the
server's refusal shows at the config field and starts nothing; a good request lands on the new run's
page. No worker runs: enqueueing is a no-op, so the run stays queued."""

import re

import pytest
from playwright.sync_api import expect

from labeling.models import Membership, Role
from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services.constitutions import constitution_create
from labeling.services.projects import project_create
from models_registry.services import model_version_register
from tests.labeling.factories import add_comparisons
from training import tasks
from training.models import RunState, TrainingRun

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """run_create enqueues on commit; these tests have no broker and no worker."""
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: None)


@pytest.fixture
def admin(make_user):
    return make_user("alice")  # a project admin, not staff


@pytest.fixture
def cai_project(admin):
    project = project_create(created_by=admin, name="Assistant answers", completions_per_prompt=2, overlap=1)
    add_comparisons(project, 3, prefix="How do I pick a lock")
    constitution_create(project=project, created_by=admin, principles=DEFAULT_PRINCIPLES)
    return project


@pytest.fixture
def base_version(tiny_model_dir):
    return model_version_register(model_name="tiny", task="causal-lm", folder=tiny_model_dir, fmt=None, shared=True)


def open_runs(page, project):
    page.goto(f"/projects/{project.id}/admin/runs")
    page.get_by_role("heading", name=project.name).wait_for()


def test_an_admin_starts_a_cai_revise_run_from_the_runs_tab(page, admin, cai_project, base_version):
    project = cai_project
    sign_in(page, "alice", "pw-alice")
    open_runs(page, project)
    expect(page.get_by_role("status")).to_have_text("None yet.")
    page.get_by_role("button", name="Start a run").click()

    form = page.get_by_role("form", name="Start a run")
    form.get_by_label("Kind").select_option("cai_revise")
    expect(form.get_by_test_id("input-alternatives")).to_contain_text("the project's comparison prompts")
    # Only the inputs cai_revise takes: no snapshot, no reward model.
    expect(form.get_by_label("Preference snapshot")).to_have_count(0)
    expect(form.get_by_label("Reward model version")).to_have_count(0)
    form.get_by_label("Base model version").select_option(label="tiny v1 (causal-lm)")
    expect(form.get_by_label("Constitution version").locator("option:checked")).to_have_text("Newest (v1)")
    # Fields the inputs fill are not offered; the common ones are, with their defaults.
    config = form.get_by_role("table", name="Config", exact=True)
    expect(config.get_by_label("model_path")).to_have_count(0)
    rounds = config.get_by_label("rounds", exact=True)
    expect(rounds).to_have_attribute("placeholder", "1")
    expect(form.get_by_role("table", name="Advanced config")).to_have_count(0)
    form.get_by_role("button", name=re.compile("^▸ Advanced")).click()
    advanced = form.get_by_role("table", name="Advanced config")
    expect(advanced.get_by_label("temperature")).to_have_attribute("placeholder", "0.7")

    # The server refuses rounds 0 and names config.rounds: the error sits at that field; no run exists.
    rounds.fill("0")
    form.get_by_role("button", name="Start run").click()
    expect(rounds).to_have_attribute("aria-invalid", "true")
    error_id = rounds.get_attribute("aria-describedby")
    expect(form.locator(f"[id='{error_id}']")).to_have_text("must be 1..8, got 0")
    expect(rounds).to_be_focused()
    expect(form.locator("[aria-invalid='true']")).to_have_count(1)
    expect(form.get_by_test_id("start-run-error")).to_have_text("Not started: see the error at rounds.")
    assert TrainingRun.objects.count() == 0
    screenshot(page, "start-run-field-error")

    # A value the form cannot parse never reaches the server.
    rounds.fill("two")
    expect(rounds).not_to_have_attribute("aria-invalid", "true")
    form.get_by_role("button", name="Start run").click()
    expect(form.locator(f"[id='{error_id}']")).to_have_text("rounds must be a whole number, not “two”.")
    assert TrainingRun.objects.count() == 0

    rounds.fill("2")
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.id}/admin/runs/\d+$"))
    run = TrainingRun.objects.get()
    expect(page).to_have_url(re.compile(rf"/projects/{project.id}/admin/runs/{run.pk}$"))
    assert run.kind == "cai_revise" and run.state == RunState.QUEUED and run.project_id == project.id
    assert run.config["rounds"] == 2 and run.config["max_new_tokens"] == 128  # the rest: defaults
    assert run.inputs["base_version"] == base_version.pk and run.inputs["constitution"] == 1
    assert run.inputs["prompts"] == 3 and run.created_by == admin
    expect(page.get_by_test_id("run-state")).to_have_text("queued")
    expect(page.get_by_role("heading", name=re.compile(rf"Run {run.pk}"))).to_be_visible()
    screenshot(page, "start-run-queued")

    page.get_by_role("link", name="← All runs").click()
    expect(page.get_by_role("link", name=f"Run {run.pk}")).to_be_visible()
    assert not [e for e in page.console_errors if "400" not in e and "401" not in e], page.console_errors


def test_reviewers_do_not_get_the_start_button(page, make_user, cai_project):
    rita = make_user("rita")
    Membership.objects.create(project=cai_project, user=rita, role=Role.REVIEWER)
    sign_in(page, "rita", "pw-rita")
    open_runs(page, cai_project)
    expect(page.get_by_role("status")).to_have_text("None yet.")
    expect(page.get_by_role("heading", name="Training runs")).to_be_visible()
    expect(page.get_by_role("button", name="Start a run")).to_have_count(0)
