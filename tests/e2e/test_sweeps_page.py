"""Hyperparameter sweeps in a real browser, on the real API and a real Optuna study: a project admin
finds a running sweep in the console's Sweeps tab, reads its trials table (the best trial marked),
the plots of the metric against each searched parameter (a log axis for the learning rate, a
category per lora_r choice) and the best so far by trial; the page refreshes itself when a trial
ends, and Cancel stops the sweep. A labeler of the project is not shown it. A project admin starts a
sweep with the form: a mistake caught before sending, the server's refusal at its search-space row,
then a 202 that opens the new sweep. No worker runs and nothing trains: the trials' runs are moved
through their states and report metrics as a worker would (training.services.runs)."""

import json
import re

import pytest
from playwright.sync_api import expect

from contracts import events
from labeling.models import Dataset, Membership, Role
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create
from labeling.services.templates import template_create
from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from training import tasks
from training.models import RunState, Sweep, SweepState, TrainingRun
from training.services import sweeps
from training.services.runs import run_events_append, run_transition

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "lora_r": {"type": "choice", "values": [4, 8]},
}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Runs and sweep advances are sent on commit; these tests have no broker and no worker: the
    test advances the sweep itself."""
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: None)
    monkeypatch.setattr(tasks, "enqueue_sweep_advance", lambda sweep_id: None)


@pytest.fixture
def alice(make_user):
    return make_user("alice")  # a project admin, not staff


@pytest.fixture
def project(alice, make_user, tiny_model_dir):
    """A project with a labeler, a registered causal LM and a question-answer dataset."""
    project = project_create(created_by=alice, name="Colour answers", completions_per_prompt=2, overlap=1)
    Membership.objects.create(project=project, user=make_user("lars"), role=Role.LABELER)
    model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=tiny_model_dir, fmt=None, project_id=project.pk
    )
    rows = [
        {"question": f"Name colour {i}.", "answer": f"The colour is {c}.", "split": "eval" if i % 4 == 0 else "train"}
        for i, c in enumerate(["red", "blue", "green", "black"] * 2, start=1)
    ]
    lines = iter([(json.dumps(r) + "\n").encode() for r in rows])
    dataset_import(project=project, stream=lines, filename="colours.jsonl", created_by=alice)
    template_create(project=project, name="qa", text="Q: {question}\nA:", make_default=True)
    project.refresh_from_db()
    return project


def trial_runs(sweep) -> dict[int, TrainingRun]:
    return {run.sweep_trial: run for run in TrainingRun.objects.filter(sweep=sweep)}


def report(run, *points):
    """What a worker stores while the run trains: eval_loss events by step."""
    run_events_append(
        run_id=run.pk, events=[(events.METRIC, {"name": "eval_loss", "value": v, "step": s}) for s, v in points]
    )


def finish(run, value):
    if TrainingRun.objects.get(pk=run.pk).state == RunState.QUEUED:
        run_transition(run_id=run.pk, to=RunState.RUNNING)
    run_transition(run_id=run.pk, to=RunState.SUCCEEDED, outputs={"result": {"metrics": {"eval_loss": value}}})


@pytest.fixture
def running_sweep(project, alice):
    """Budget 4, two at a time: trials 0 and 1 completed (0.9, then 0.4: the best), trial 2 running
    with an intermediate value, trial 3 queued."""
    sweep = sweeps.sweep_create(
        kind="sft",
        config={"max_steps": 2, "eval_steps": 1},
        inputs={
            "base_version": ModelVersion.objects.get().pk,
            "dataset": Dataset.objects.get(project=project).pk,
            "target_field": "answer",
        },
        search_space=SPACE,
        metric="eval_loss",
        direction="minimize",
        budget=4,
        parallelism=2,
        seed=7,
        project=project,
        created_by=alice,
    )
    sweeps.sweep_advance(sweep_id=sweep.pk)
    runs = trial_runs(sweep)
    report(runs[0], (1, 1.1), (2, 0.95))
    finish(runs[0], 0.9)
    report(runs[1], (1, 0.7))
    finish(runs[1], 0.4)
    sweeps.sweep_advance(sweep_id=sweep.pk)  # trials 2 and 3 start
    runs = trial_runs(sweep)
    assert sorted(runs) == [0, 1, 2, 3]
    run_transition(run_id=runs[2].pk, to=RunState.RUNNING)
    report(runs[2], (1, 0.8))
    sweeps.sweep_advance(sweep_id=sweep.pk)  # trial 2's intermediate value goes to the study
    return sweep


def test_an_admin_follows_a_sweep_its_trials_and_plots_and_cancels_it(page, project, running_sweep):
    sweep = running_sweep
    runs = trial_runs(sweep)
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.pk}/admin/runs")
    page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Sweeps").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/admin/sweeps$"))
    listed = page.get_by_role("table", name="Sweeps").locator(f"tr[data-sweep='{sweep.pk}']")
    expect(listed).to_contain_text("running")
    expect(listed).to_contain_text("eval_loss ↓")
    expect(listed).to_contain_text("0.4 · trial 1")
    expect(listed.get_by_test_id("sweep-progress")).to_contain_text("2 / 4 · 2 running")
    listed.get_by_role("link", name=f"Sweep {sweep.pk}").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/admin/sweeps/{sweep.pk}$"))

    expect(page.get_by_test_id("sweep-state")).to_have_text("running")
    expect(page.get_by_test_id("sweep-live")).to_be_visible()
    expect(page.get_by_test_id("sweep-trials")).to_have_text("2 of 4 done")
    expect(page.get_by_test_id("sweep-best-value")).to_have_text("0.4")

    # The trials table: a row per trial, a column per searched field, the best one marked.
    table = page.get_by_role("table", name="Trials")
    expect(table.locator("tbody tr")).to_have_count(4)
    headers = table.locator("thead th")
    expect(headers).to_have_text(["#", "State", "learning_rate", "lora_r", "eval_loss", "Run", "Duration"])
    best = table.locator("tr[data-best]")
    expect(best).to_have_count(1)
    expect(best).to_have_attribute("data-trial", "1")
    expect(best).to_contain_text("best")
    expect(best).to_contain_text("0.4")
    expect(table.locator("tr[data-trial='0']")).to_contain_text("complete")
    expect(table.locator("tr[data-trial='2']")).to_contain_text("0.8 at step 1")  # running: its last value
    expect(table.locator("tr[data-trial='3']")).to_contain_text("queued")
    trials = {t.number: t for t in sweeps.study_trials(sweep)}
    lora_r = trials[1].params["lora_r"]
    expect(best.locator("td").nth(3)).to_have_text(str(json.loads(lora_r)))
    best.get_by_role("link", name=f"Run {runs[1].pk}").wait_for()

    # The plots: the best so far by trial, and the metric against each searched field.
    progress = page.locator("figure[data-chart='best-so-far']")
    expect(progress.locator("path.best-line")).to_have_attribute("d", re.compile(r"^M[\d.]+,[\d.]+L"))
    expect(progress.locator("circle.trial-point")).to_have_count(3)  # 0, 1 and running 2 (hollow)
    lr = page.locator("figure[data-param='learning_rate']")
    expect(lr).to_have_attribute("data-axis", "log")
    expect(lr.locator("svg")).to_contain_text("learning_rate (log scale)")
    expect(lr.locator("svg text.tick").filter(has_text=re.compile(r"^1e-4$"))).to_have_count(1)
    expect(lr.locator("circle.trial-point")).to_have_count(3)
    expect(lr.locator("circle[data-best]")).to_have_attribute("data-trial", "1")
    choice = page.locator("figure[data-param='lora_r']")
    expect(choice).to_have_attribute("data-axis", "category")
    expect(choice.locator("svg text.tick").filter(has_text=re.compile(r"^(4|8)$"))).to_have_count(2)
    expect(choice.locator("figcaption")).to_contain_text("1 trial without a value yet")
    screenshot(page, "sweep-page")

    # Trial 2 ends better than trial 1: the page picks it up by itself.
    finish(runs[2], 0.2)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    expect(page.get_by_test_id("sweep-best-value")).to_have_text("0.2", timeout=15_000)
    expect(table.locator("tr[data-best]")).to_have_attribute("data-trial", "2")
    expect(page.get_by_test_id("sweep-trials")).to_have_text("3 of 4 done")

    # Cancel: trial 3's queued run is cancelled and nothing is asked any more.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel sweep").click()
    expect(page.get_by_test_id("sweep-state")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel sweep")).to_have_count(0)
    expect(page.get_by_test_id("sweep-live")).to_have_count(0)
    expect(page.get_by_text("cancelled by alice")).to_be_visible()
    assert Sweep.objects.get(pk=sweep.pk).state == SweepState.CANCELLED
    assert TrainingRun.objects.get(pk=runs[3].pk).state == RunState.CANCELLED
    screenshot(page, "sweep-page-cancelled")
    assert not [e for e in page.console_errors if "401" not in e], page.console_errors


def test_a_labeler_is_not_shown_the_sweep(page, project, running_sweep):
    sweep = running_sweep
    sign_in(page, "lars", "pw-lars")
    page.goto(f"/sweeps/{sweep.pk}")
    expect(page.get_by_test_id("sweep-not-allowed")).to_contain_text(
        f"Sweep {sweep.pk} does not exist or you may not see it"
    )
    expect(page.get_by_role("table", name="Trials")).to_have_count(0)
    expect(page.locator("figure.chart")).to_have_count(0)
    page.goto(f"/projects/{project.pk}/admin/sweeps/{sweep.pk}")
    expect(page.get_by_role("alert")).to_contain_text(
        "The admin console is for project admins and reviewers; you are a labeler here."
    )
    expect(page.get_by_role("table", name="Trials")).to_have_count(0)
    page.get_by_role("navigation").get_by_role("link", name="Sweeps").click()
    expect(page.get_by_test_id("no-sweeps")).to_contain_text("No sweeps you can see yet.")
    screenshot(page, "sweep-labeler")


def test_an_admin_starts_a_sweep_with_the_form(page, project, alice):
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.pk}/admin/sweeps")
    expect(page.get_by_test_id("no-sweeps")).to_be_visible()
    page.get_by_role("button", name="Start a sweep").click()
    form = page.get_by_role("form", name="Start a sweep")
    form.get_by_label("Kind").select_option("sft")
    form.get_by_label("Base model version").select_option(label="tiny-causal v1 (causal-lm)")
    form.get_by_label("Dataset").select_option(label="colours (8 rows)")
    form.get_by_label("Target field").fill("answer")

    # Rows of the search space: a choice of lora_r values and a peft_method choice the server refuses.
    add = form.get_by_label("Add a field to search")
    add.select_option("lora_r")
    form.get_by_label("lora_r range").select_option("choice")
    form.get_by_label("lora_r values").fill("4, 8")
    add.select_option("peft_method")
    form.get_by_label("peft_method values").fill("lora, bogus")
    # A searched field leaves the base config.
    expect(form.get_by_role("table", name="Base config").get_by_label("lora_r", exact=True)).to_have_count(0)

    # No metric yet: caught before sending.
    form.get_by_role("button", name="Start sweep").click()
    metric = form.get_by_label("Metric")
    expect(metric).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_test_id("start-sweep-error")).to_have_text("Not started: see the error at metric.")
    metric.select_option("eval_loss")
    expect(form.get_by_label("Direction")).to_have_value("minimize")  # a loss: smaller is better

    # The server checks each value against sft's config and names the field: the error is at its row.
    form.get_by_role("button", name="Start sweep").click()
    values = form.get_by_label("peft_method values")
    expect(values).to_have_attribute("aria-invalid", "true")
    error_id = values.get_attribute("aria-describedby")
    expect(form.locator(f"[id='{error_id}']")).to_contain_text("'bogus' is refused by sft's config")
    expect(form.get_by_test_id("start-sweep-error")).to_have_text(
        "Not started: see the error at peft_method (search space)."
    )
    assert Sweep.objects.count() == 0
    screenshot(page, "start-sweep-row-error")

    form.get_by_role("button", name="Remove peft_method").click()
    form.get_by_label("Budget").fill("3")
    form.get_by_role("button", name="Start sweep").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/admin/sweeps/\d+$"))
    sweep = Sweep.objects.get()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/admin/sweeps/{sweep.pk}$"))
    assert sweep.search_space == {"lora_r": {"type": "choice", "values": [4, 8]}}
    assert (sweep.metric, sweep.direction, sweep.budget, sweep.parallelism) == ("eval_loss", "minimize", 3, 2)
    assert sweep.inputs["target_field"] == "answer" and sweep.created_by == alice
    expect(page.get_by_test_id("sweep-state")).to_have_text("running")
    expect(page.get_by_text("No trials yet: the first ones are being queued.")).to_be_visible()
    screenshot(page, "start-sweep-started")
    assert not [e for e in page.console_errors if "400" not in e and "401" not in e], page.console_errors
