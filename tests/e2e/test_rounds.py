"""Rounds of the loop and the reward-hacking guard in a real browser, on the real API.

Two rounds of one project: round 1 generated, was labeled, trained a reward model and an RLHF run
whose held-out samples were hacked (the policy writes the user's next turn and refuses helpful
questions), registered the policy and had it evaluated side by side against its base; round 2 starts
from that policy and puts the RLHF run's best- and worst-scored samples back to the labelers, who
prefer the reference. The rounds page shows each round's figures side by side; the RLHF run's page
shows the guard's five flags. A project admin starts a round with the form: the server's refusal at
its field, then a 201 that adds the round. No worker runs: answers are ingested as the worker would.
"""

import json
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from playwright.sync_api import expect

from labeling.models import Completion, Membership, Role
from labeling.principles import DEFAULT_PRINCIPLES
from labeling.services.assignments import assignment_next, ranking_submit
from labeling.services.constitutions import constitution_create
from labeling.services.datasets import dataset_import
from labeling.services.projects import project_create
from labeling.services.templates import template_create
from models_registry.models import ModelAlias, ModelVersion
from tests.labeling.sxs_factories import answer, label_all, make_evaluation, tiny_versions
from tests.training.test_rounds import finished_run, hacked_samples
from training import tasks
from training.models import Round, RunState, TrainingRun
from training.services import runs
from training.services.generation import CompletionsIngest

from .conftest import screenshot, sign_in, sign_out

pytestmark = pytest.mark.django_db(transaction=True)

ARROW = "\u2192"  # before -> after
DASH = "\u2013"  # the en dash of intervals
FIVE_FLAGS = {"writes_user_turn", "refuses", "over_refusal", "heldout_reward_flat", "humans_disagree"}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Rounds and evaluations queue generate runs on commit; these tests have no broker, no worker."""
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: None)


def js_fixed(value: float, digits: int) -> str:
    """JavaScript's value.toFixed(digits) (ties to the larger, on the exact binary value)."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def pct(value: float, digits: int = 0) -> str:
    return js_fixed(value * 100, digits) + "%"


@pytest.fixture
def alice(make_user):
    return make_user("alice")  # a project admin, not staff


@pytest.fixture
def loop(alice, make_user, tmp_path):
    """K = 2, overlap 2, two labelers and a reviewer, 20 questions (helpful and harmless), one
    registered causal LM (policy v1) with the alias candidate."""
    project = project_create(created_by=alice, name="Helpful and harmless", completions_per_prompt=2, overlap=2)
    for name, role in (("lena", Role.LABELER), ("lars", Role.LABELER), ("rita", Role.REVIEWER)):
        Membership.objects.create(project=project, user=make_user(name), role=role)
    rows = [{"question": f"q{i}", "group": "helpful" if i % 2 else "harmless"} for i in range(20)]
    lines = iter([(json.dumps(r) + "\n").encode() for r in rows])
    dataset = dataset_import(project=project, stream=lines, filename="hh.jsonl", created_by=alice)
    template_create(project=project, name="qa", text="Q: {question}\nA:", dataset=dataset, make_default=True)
    project.refresh_from_db()
    [base] = tiny_versions(tmp_path / "tiny", project, n=1)
    return project, dataset, base


def labelers(project):
    return [Membership.objects.get(project=project, user__username=n).user for n in ("lena", "lars")]


def label_queue(project, prefer) -> int:
    """Both labelers take leases until none is left; ``prefer(comparison_id, completions)`` gives
    the completion they rank first."""
    submitted = 0
    for labeler in labelers(project):
        while (lease := assignment_next(project_id=project.pk, labeler=labeler)) is not None:
            ids = [c.id for c in lease.completions]
            best = prefer(lease.comparison.id, ids)
            ranks = {cid: (1 if cid == best else 2) for cid in ids}
            ranking_submit(assignment_id=lease.assignment.id, labeler=labeler, payload={"ranks": ranks})
            submitted += 1
    return submitted


def first_round(api, alice, project, dataset, base, tmp_path):
    """Round 1, generated and labeled (the labelers agree: the longer answer), with a reward model,
    a hacked RLHF run, the version it registered, and a side-by-side evaluation of it against the
    base in which people prefer the base."""
    client = api(alice)
    response = client.post(
        f"/api/projects/{project.pk}/rounds/",
        {"version": base.pk, "dataset": dataset.pk, "limit": 4, "note": "first pass"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    round_ = Round.objects.get(pk=response.json()["id"])
    folder = runs.run_folder(round_.generation_run_id)
    prompts = [json.loads(line) for line in (folder / "prompts.jsonl").read_text().splitlines()]
    with open(folder / "completions.jsonl", "w") as handle:
        for p in prompts:
            texts = [{"text": f"short {p['prompt_id']}"}, {"text": f"a longer answer {p['prompt_id']}"}]
            handle.write(json.dumps({"prompt_id": p["prompt_id"], "completions": texts}) + "\n")
    CompletionsIngest.for_run(round_.generation_run, folder).finish()
    runs.run_transition(run_id=round_.generation_run_id, to="running")
    runs.run_transition(run_id=round_.generation_run_id, to="succeeded")

    def longer(_comparison_id, ids):
        return max(ids, key=lambda i: len(Completion.objects.get(pk=i).text))

    assert label_queue(project, longer) == 8

    reward = finished_run(project, round_, "reward_model", {"eval_accuracy": 0.71, "eval_mean_margin": 0.4})
    rlhf = finished_run(
        project,
        round_,
        "rlhf",
        {
            "eval_reward_gain_low": 2.0,
            "eval_heldout_reward_before": 0.3,
            "eval_heldout_reward_after": 0.1,
            "eval_kl_after": 0.05,
        },
        samples=hacked_samples(project),
    )
    [policy] = tiny_versions(tmp_path / "policy", project, n=1, name="policy-rlhf")
    ModelVersion.objects.filter(pk=policy.pk).update(source_run_id=rlhf.pk)
    ModelAlias.objects.create(model=policy.model, name="candidate", version=policy)
    evaluation = make_evaluation(project, alice, [base, policy], dataset, limit=3, split=None, name="rlhf vs base")
    round_.evaluations.add(evaluation)
    answer(evaluation)
    base_entry = evaluation.entries.get(version=base).pk
    lena, lars = labelers(project)
    # lena prefers the base, lars calls it a tie: the policy wins (0 + 3/2) / 6 = 25%.
    votes = label_all(
        evaluation,
        [lena, lars],
        lambda pair, labeler: "tie" if labeler == lars else ("a" if pair.entry_a_id == base_entry else "b"),
    )
    assert votes == 6
    return round_, reward, rlhf, policy, evaluation


@pytest.fixture
def two_rounds(api, alice, loop, tmp_path):
    project, dataset, base = loop
    first, reward, rlhf, policy, evaluation = first_round(api, alice, project, dataset, base, tmp_path)
    response = api(alice).post(
        f"/api/projects/{project.pk}/rounds/",
        {"model": policy.model_id, "alias": "candidate", "dataset": dataset.pk, "limit": 2, "guard_samples": 4},
        format="json",
    )
    assert response.status_code == 201, response.json()
    second = Round.objects.get(pk=response.json()["id"])
    assert len(second.guard["best"]) == 4 and len(second.guard["worst"]) == 4
    # People prefer the reference to the policy's answers it put back.
    policy_answers = set(Completion.objects.filter(metadata__source="policy").values_list("pk", flat=True))
    assert label_queue(project, lambda _c, ids: next(i for i in ids if i not in policy_answers)) == 16
    return project, first, second, reward, rlhf, policy, evaluation


def column(table, round_):
    """The cell of a figure row for a round: rows carry data-figure, cells data-round."""
    return lambda figure: table.locator(f"tr[data-figure='{figure}'] td[data-round='{round_.pk}']")


def test_the_rounds_page_shows_each_round_side_by_side(page, api, alice, two_rounds):
    project, first, second, reward, rlhf, _policy, evaluation = two_rounds
    summary = {r["id"]: r for r in api(alice).get(f"/api/projects/{project.pk}/rounds/").json()}
    one, two = summary[first.pk], summary[second.pk]
    win = one["human_win_rate"]
    assert {f["code"] for f in one["guard"]["flags"]} == FIVE_FLAGS

    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.pk}/admin")
    page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Rounds").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/rounds$"))
    table = page.get_by_role("table", name="Rounds side by side")
    expect(table.locator("thead th[data-round]")).to_have_count(2)
    expect(table.locator(f"thead th[data-round='{first.pk}']")).to_contain_text("Round 1")
    expect(table.locator(f"thead th[data-round='{second.pk}']")).to_contain_text("Round 2")

    r1, r2 = column(table, first), column(table, second)
    expect(r1("base")).to_contain_text("policy v1")
    expect(r2("base")).to_contain_text("policy-rlhf v1")
    expect(r1("generation").get_by_role("link", name=f"Run {first.generation_run_id}")).to_have_attribute(
        "href", f"/runs/{first.generation_run_id}"
    )
    expect(r1("generation")).to_contain_text("succeeded")
    expect(r2("generation")).to_contain_text("queued")
    expect(r1("comparisons")).to_have_text("4")
    expect(r1("rankings")).to_have_text("8")
    expect(r1("pairs")).to_have_text("8")
    expect(r1("agreement")).to_contain_text("100%")
    expect(r2("comparisons")).to_have_text("0")
    expect(r1("reward_model")).to_contain_text("71.0%")
    expect(r1("reward_model").get_by_role("link", name=f"Run {reward.pk}")).to_have_attribute(
        "href", f"/runs/{reward.pk}"
    )
    expect(r2("reward_model")).to_have_text("—")
    expect(r1("policy")).to_contain_text("rlhf")
    expect(r1("policy").get_by_role("link", name=f"Run {rlhf.pk}")).to_have_attribute("href", f"/runs/{rlhf.pk}")
    expect(r1("heldout")).to_have_text(f"0.3 {ARROW} 0.1")
    expect(r1("kl")).to_have_text("0.05")
    expect(r1("versions")).to_have_text("policy-rlhf v1")
    expect(r1("win_rate")).to_contain_text(f"{pct(win['win_rate'])} ({pct(win['low'])[:-1]}{DASH}{pct(win['high'])})")
    expect(r1("win_rate")).to_contain_text(f"n = {win['n']}")
    expect(r1("win_rate").get_by_role("link")).to_have_attribute("href", f"/evaluations/{evaluation.pk}")
    expect(r1("flags")).to_contain_text("5")
    expect(r2("flags")).to_have_text("—")  # round 2 has no RLHF run yet
    expect(r1("guard_samples")).to_have_text("—")  # the first round has no previous one
    expect(r2("guard_samples")).to_contain_text("4 best · 4 worst")
    expect(r2("guard_samples").get_by_role("link", name=f"Run {rlhf.pk}")).to_be_visible()
    assert two["guard_samples"]["run"] == rlhf.pk

    plot = page.get_by_role("img", name="Held-out reward by round")
    expect(plot).to_be_visible()
    expect(page.get_by_role("img", name="Human win rate against the base by round")).to_be_visible()
    expect(page.get_by_role("button", name="Start next round")).to_be_visible()  # alice is an admin
    page.wait_for_timeout(300)
    screenshot(page, "rounds-side-by-side")

    # The RLHF run's page: the guard's five flags, the rates before and after, the people's verdict.
    r1("policy").get_by_role("link", name=f"Run {rlhf.pk}").click()
    expect(page).to_have_url(re.compile(rf"/runs/{rlhf.pk}$"))
    guard = page.get_by_role("region", name="Reward-hacking guard")
    flags = guard.get_by_role("list", name="Guard flags").locator("li")
    expect(flags).to_have_count(5)
    for code in FIVE_FLAGS:
        expect(guard.locator(f"li[data-flag='{code}']")).to_be_visible()
    report = api(alice).get(f"/api/runs/{rlhf.pk}/guard/").json()
    for flag in report["flags"]:
        expect(guard.locator(f"li[data-flag='{flag['code']}']")).to_contain_text(flag["message"])
    rates = guard.get_by_role("table", name="Answers before and after")
    expect(rates.locator("tr[data-rate='user_turn_rate'] td").nth(0)).to_have_text("0%")
    expect(rates.locator("tr[data-rate='user_turn_rate'] td").nth(1)).to_have_text("30%")
    groups = guard.get_by_role("table", name="Refusals per prompt group")
    expect(groups.locator("tr[data-group='helpful']")).to_contain_text("70%")
    expect(groups.locator("tr[data-group='helpful']")).to_contain_text("over-refusal")
    people = guard.get_by_role("table", name="People on the extremes")
    expect(people.locator("tr[data-which='best']")).to_contain_text("0%")
    expect(people.locator("tr[data-which='best'] td").last).to_have_text("8")
    page.wait_for_timeout(300)
    screenshot(page, "run-guard-flags")
    assert not [e for e in page.console_errors if "401" not in e], page.console_errors

    # A reviewer reads the same rounds, without the form.
    sign_out(page)
    sign_in(page, "rita", "pw-rita")
    page.goto(f"/projects/{project.pk}/rounds")
    expect(page.get_by_role("table", name="Rounds side by side").locator("thead th[data-round]")).to_have_count(2)
    expect(page.get_by_role("button", name="Start next round")).to_have_count(0)


def test_an_rlhf_run_without_samples_has_an_empty_guard(page, alice, loop):
    project, _dataset, _base = loop
    run = TrainingRun.objects.create(kind="rlhf", state="running", config={}, project=project)
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/runs/{run.pk}")
    guard = page.get_by_role("region", name="Reward-hacking guard")
    expect(guard.get_by_test_id("guard-empty")).to_contain_text("no held-out samples yet")
    expect(guard.get_by_role("list", name="Guard flags")).to_have_count(0)


def test_an_admin_starts_the_next_round_with_the_form(page, api, alice, loop, tmp_path):
    project, dataset, base = loop
    _first, _reward, rlhf, policy, _evaluation = first_round(api, alice, project, dataset, base, tmp_path)
    posts: list[str] = []
    page.on("request", lambda r: r.method == "POST" and "/rounds/" in r.url and posts.append(r.url))
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.pk}/rounds")
    table = page.get_by_role("table", name="Rounds side by side")
    expect(table.locator("thead th[data-round]")).to_have_count(1)

    page.get_by_role("button", name="Start next round").click()
    form = page.get_by_role("form", name="Start next round")
    # The loop goes on from what round 1 made; the project's only dataset is chosen.
    expect(form.get_by_label("Version", exact=True)).to_have_value(str(policy.pk))
    expect(form.get_by_label("Dataset")).to_have_value(str(dataset.pk))
    # The form's own check: a limit of 0, nothing sent.
    limit = form.get_by_label("Limit")
    limit.fill("0")
    form.get_by_role("button", name="Start round").click()
    expect(limit).to_have_attribute("aria-invalid", "true")
    expect(form.locator(f"[id='{limit.get_attribute('aria-describedby')}']")).to_have_text("Limit must be 1..100000.")
    assert posts == []

    # A model's alias that does not exist: the server's refusal sits at the Alias field.
    limit.fill("2")
    form.get_by_label("A model and one of its aliases").check()
    form.get_by_label("Model", exact=True).select_option(str(policy.model_id))
    alias = form.get_by_label("Alias", exact=True)
    alias.fill("nope")
    form.get_by_label("Guard samples").fill("3")
    form.get_by_role("button", name="Start round").click()
    expect(alias).to_have_attribute("aria-invalid", "true")
    expect(form.locator(f"[id='{alias.get_attribute('aria-describedby')}']")).to_contain_text("has no alias 'nope'")
    expect(form.get_by_test_id("round-form-error")).to_have_text("Not started: see the error at alias.")
    assert len(posts) == 1 and Round.objects.count() == 1
    screenshot(page, "rounds-start-form-error")

    alias.fill("candidate")
    form.get_by_label("Note").fill("from the rlhf policy")
    form.get_by_role("button", name="Start round").click()
    expect(table.locator("thead th[data-round]")).to_have_count(2)
    second = Round.objects.get(number=2)
    assert second.base_version_id == policy.pk and second.note == "from the rlhf policy"
    assert second.guard["run"] == rlhf.pk and len(second.guard["best"]) == 3 and len(second.guard["worst"]) == 3
    assert TrainingRun.objects.get(pk=second.generation_run_id).inputs["limit"] == 2
    r2 = column(table, second)
    expect(r2("base")).to_contain_text("policy-rlhf v1")
    expect(r2("guard_samples")).to_contain_text("3 best · 3 worst")
    expect(r2("generation").get_by_role("link", name=f"Run {second.generation_run_id}")).to_be_visible()
    expect(page.get_by_role("form", name="Start next round")).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Round 2 started")).to_be_visible()
    page.wait_for_timeout(300)
    screenshot(page, "rounds-started")
    assert not [e for e in page.console_errors if "400" not in e and "401" not in e], page.console_errors


def test_a_run_started_from_the_runs_tab_joins_the_round_chosen(page, alice, loop):
    """The start-run form lists the project's rounds, newest first and none chosen, and sends
    ``round`` only when one is: the server's refusal of a round sits at the Round field; a good one
    puts the run in that round. The rounds page then refreshes itself while the run is queued and
    stops asking once it has finished."""
    project, dataset, base = loop
    constitution_create(project=project, created_by=alice, principles=DEFAULT_PRINCIPLES)
    first = Round.objects.create(project=project, number=1, base_version=base, note="first pass", created_by=alice)
    gone = Round.objects.create(project=project, number=2, previous=first, base_version=base, created_by=alice)
    gone_id = gone.pk
    bodies: list[dict] = []
    started = "/api/runs/"
    page.on("request", lambda r: r.method == "POST" and r.url.endswith(started) and bodies.append(r.post_data_json))
    sign_in(page, "alice", "pw-alice")
    page.goto(f"/projects/{project.pk}/admin/runs")
    page.get_by_role("button", name="Start a run").click()
    form = page.get_by_role("form", name="Start a run")
    round_field = form.get_by_label("Round", exact=True)
    expect(round_field).to_have_value("")
    expect(round_field.locator("option")).to_have_text(
        ["None", "Round 2 · from policy v1", "Round 1 · from policy v1 · first pass"]
    )
    form.get_by_label("Kind").select_option("cai_revise")
    form.get_by_label("Base model version").select_option(label="policy v1 (causal-lm)")
    form.get_by_label("Dataset", exact=True).select_option(str(dataset.pk))
    form.get_by_label("Limit", exact=True).fill("4")

    # Round 2 is gone by the time the form is sent: the server refuses it at the Round field.
    round_field.select_option(str(gone_id))
    gone.delete()
    form.get_by_role("button", name="Start run").click()
    expect(round_field).to_have_attribute("aria-invalid", "true")
    note = form.locator(f"[id='{round_field.get_attribute('aria-describedby')}']")
    expect(note).to_have_text(f"there is no round {gone_id} in project {project.pk}")
    expect(form.get_by_test_id("start-run-error")).to_have_text("Not started: see the error at round.")
    assert bodies[0]["round"] == gone_id and TrainingRun.objects.count() == 0

    round_field.select_option(str(first.pk))
    expect(round_field).not_to_have_attribute("aria-invalid", "true")
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/admin/runs/\d+$"))
    run = TrainingRun.objects.get()
    assert run.kind == "cai_revise" and run.state == RunState.QUEUED
    assert run.round_id == first.pk and bodies[-1]["round"] == first.pk and len(bodies) == 2

    # The rounds page follows the queued run and stops once it has finished.
    asked: list[str] = []
    listed = f"/api/projects/{project.pk}/rounds/"
    page.on("request", lambda r: r.method == "GET" and listed in r.url and asked.append(r.url))
    page.goto(f"/projects/{project.pk}/rounds")
    live = page.get_by_test_id("rounds-live")
    expect(live).to_contain_text("1 run is queued or running")
    runs.run_transition(run_id=run.pk, to="running")
    runs.run_transition(run_id=run.pk, to="succeeded")
    expect(live).to_have_count(0, timeout=15_000)
    seen = len(asked)
    assert seen >= 2  # the first answer and at least one it asked again for
    page.wait_for_timeout(6_500)  # longer than ROUNDS_POLL_MS: nothing in flight, nothing asked
    assert len(asked) == seen
    assert not [e for e in page.console_errors if "400" not in e and "401" not in e], page.console_errors
