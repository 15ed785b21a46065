"""A training run's page in a real browser: live status, metric curves, the log tail, incremental
polling, Cancel; and, in the labeler workspace, the lease-expiry warning and the help dialog's focus
trap. No worker runs: the tests play its part through the services it uses (run_transition,
run_events_append)."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Assignment, Membership, Role
from labeling.services.assignments import assignment_next
from labeling.services.projects import project_create
from tests.labeling.factories import add_comparisons
from training import tasks
from training.models import RunEventType, RunState, TrainingRun
from training.services.runs import run_create, run_events_append, run_transition

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = {"model_path": "/models/tiny", "prompts_file": "/data/prompts.jsonl"}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """run_create enqueues on commit; these tests have no broker and no worker."""
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: None)


def metric(name: str, value: float, step: int) -> tuple[str, dict]:
    return RunEventType.METRIC, {"name": name, "value": value, "step": step, "t": 1.0}


def log(message: str, level: str = "info") -> tuple[str, dict]:
    return RunEventType.LOG, {"level": level, "message": message, "stream": "event"}


@pytest.fixture
def running_run(make_user):
    admin = make_user("alice", is_staff=True)
    project = project_create(created_by=admin, name="Dialogue summaries", completions_per_prompt=2, overlap=1)
    run = run_create(kind="generate", config=CONFIG, inputs={"dataset": 1}, project=project, created_by=admin)
    run_transition(run_id=run.pk, to=RunState.RUNNING, worker_host="gpu-01", pid=4242)
    run_events_append(
        run_id=run.pk,
        events=[
            log("Loaded 24 prompts from dataset 1"),
            metric("loss", 2.1, 0),
            metric("loss", 1.6, 10),
            metric("tokens_per_second", 310.0, 10),
            metric("loss", 1.2, 20),
            (RunEventType.PROGRESS, {"step": 20, "total": 80}),
        ],
        progress=(20, 80),
    )
    return project, run


def test_run_page_follows_the_run_and_cancels_it(page, running_run):
    project, run = running_run
    event_calls: list[int] = []
    page.on(
        "request",
        lambda request: (
            f"/api/runs/{run.pk}/events/" in request.url
            and event_calls.append(int(parse_qs(urlparse(request.url).query).get("after", ["0"])[0]))
        ),
    )
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.pk}/admin/runs")
    page.get_by_role("link", name=f"Run {run.pk}").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/admin/runs/{run.pk}$"))

    expect(page.get_by_test_id("run-state")).to_have_text("running")
    page.get_by_text("gpu-01 (pid 4242)").wait_for()
    expect(page.get_by_role("progressbar", name="Run progress")).to_have_attribute("aria-valuenow", "25")
    loss = page.locator("figure[data-metric='loss']")
    expect(loss.locator("svg path")).to_have_attribute("d", re.compile(r"^M[\d.]+,[\d.]+L[\d.]+,[\d.]+L"))
    expect(loss.locator("figcaption")).to_contain_text("1.2 at step 20")
    expect(page.locator("figure[data-metric='tokens_per_second']")).to_be_visible()
    run_log = page.get_by_role("log", name="Run log")
    expect(run_log).to_contain_text("Loaded 24 prompts from dataset 1")

    # The worker goes on: the page picks up the new events without refetching the old ones.
    run_events_append(
        run_id=run.pk, events=[metric("loss", 0.9, 30), log("step 30: saved a checkpoint")], progress=(30, 80)
    )
    expect(run_log).to_contain_text("step 30: saved a checkpoint")
    expect(loss.locator("figcaption")).to_contain_text("0.9 at step 30")
    expect(page.get_by_role("progressbar", name="Run progress")).to_have_attribute("aria-valuenow", "38")
    assert event_calls[0] == 0 and all(after > 0 for after in event_calls[1:]), event_calls
    screenshot(page, "run-page")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_test_id("run-state")).to_have_text("cancelling")
    expect(page.get_by_role("button", name=re.compile("Cancelling"))).to_be_disabled()
    assert TrainingRun.objects.get(pk=run.pk).state == RunState.CANCELLING

    # The worker stops the process and confirms: the page shows it and stops polling.
    run_transition(run_id=run.pk, to=RunState.CANCELLED)
    expect(page.get_by_test_id("run-state")).to_have_text("cancelled")
    expect(run_log).to_contain_text("running → cancelling — cancelled by alice")
    expect(page.get_by_role("button", name="Cancelled")).to_be_disabled()
    calls = len(event_calls)
    page.wait_for_timeout(3500)
    assert len(event_calls) == calls, "polling should stop once the run has finished"
    screenshot(page, "run-page-cancelled")
    assert not [e for e in page.console_errors if "401" not in e], page.console_errors


def test_cancelling_a_finished_run_says_why_not(page, running_run):
    _, run = running_run
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/runs/{run.pk}")
    expect(page.get_by_test_id("run-state")).to_have_text("running")
    # It finishes between the last poll and the click (the page polls no more, so it cannot know).
    page.route(re.compile(rf"/api/runs/{run.pk}/(events/)?(\?.*)?$"), lambda route: route.abort())
    page.wait_for_timeout(500)  # for a poll already on its way
    run_transition(run_id=run.pk, to=RunState.SUCCEEDED, outputs={"registered": []})
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("alert").get_by_text(f"Not cancelled: Run {run.pk} already succeeded").wait_for()


def test_the_labeler_is_warned_before_the_lease_ends_and_told_when_it_has(page, make_user):
    admin = make_user("alice", is_staff=True)
    labeler = make_user("lena")
    project = project_create(created_by=admin, name="Summaries", completions_per_prompt=3, overlap=1)
    Membership.objects.create(project=project, user=labeler, role=Role.LABELER)
    add_comparisons(project, 2)
    lease = assignment_next(project_id=project.pk, labeler=labeler)

    sign_in(page, "lena", "pw-lena")
    # A 15-minute lease with 8 seconds left.
    now = timezone.now()
    Assignment.objects.filter(pk=lease.assignment.id).update(
        created_at=now - timedelta(seconds=892), expires_at=now + timedelta(seconds=8)
    )
    page.goto(f"/projects/{project.pk}/label")
    page.get_by_test_id("prompt").wait_for()
    expect(page.get_by_test_id("lease-warning")).to_contain_text("Your lease on this comparison ends in 0:0")
    expired = page.get_by_test_id("lease-expired")
    expect(expired).to_contain_text("Your lease expired — your ranking may not be accepted", timeout=10_000)
    screenshot(page, "labeler-lease-expired")
    before = page.locator(".lw").get_attribute("data-assignment")
    expired.get_by_role("button", name="Get the next item").click()
    page.wait_for_function("previous => document.querySelector('.lw')?.dataset.assignment !== previous", arg=before)
    expect(page.get_by_test_id("lease-expired")).to_have_count(0)
    expect(page.get_by_test_id("lease-warning")).to_have_count(0)


def test_the_help_dialog_keeps_focus_inside_and_gives_it_back(page, make_user):
    admin = make_user("alice", is_staff=True)
    labeler = make_user("lena")
    project = project_create(created_by=admin, name="Summaries", completions_per_prompt=3, overlap=1)
    Membership.objects.create(project=project, user=labeler, role=Role.LABELER)
    add_comparisons(project, 1)
    sign_in(page, "lena", "pw-lena")
    page.goto(f"/projects/{project.pk}/label")
    page.get_by_test_id("prompt").wait_for()
    opener = page.get_by_role("button", name="Keyboard shortcuts")
    opener.focus()
    opener.press("Enter")

    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_have_attribute("aria-modal", "true")
    close = dialog.get_by_role("button", name="Close (Esc)")
    expect(close).to_be_focused()
    for key in ("Tab", "Tab", "Shift+Tab"):
        page.keyboard.press(key)
        expect(close).to_be_focused()  # the only control: focus stays on it
    dialog.get_by_role("heading", name="Keyboard shortcuts").click()  # a click on text inside
    page.keyboard.press("Tab")
    expect(close).to_be_focused()

    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()
