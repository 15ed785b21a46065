"""Hyperparameter sweeps without a worker: POST /api/sweeps/ (each bad body a 4xx that names the field
and creates nothing; who may sweep), and ``sweep_advance`` driven by hand (the trials' runs moved
through their states as a worker would): trials up to the parallelism and the budget, the end with the
best version aliased, pruning, a crash between ask and start, a lost trigger that beat covers, cancel."""

import pytest
from django.db import transaction
from optuna.trial import TrialState

from contracts import events
from labeling.services.datasets import dataset_import
from labeling.services.templates import template_create
from models_registry.models import ModelAlias
from models_registry.services import model_version_register
from training import tasks
from training.kinds import KINDS
from training.models import RunState, Sweep, SweepState, TrainingRun
from training.services import runs as run_services
from training.services import sweep_study, sweeps
from training.services.runs import run_events_append, run_transition

from .conftest import rows_jsonl

pytestmark = pytest.mark.django_db

S = RunState
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "lora_r": {"type": "choice", "values": [4, 8]},
}


@pytest.fixture(autouse=True)
def advances(monkeypatch):
    """Runs and sweep advances are recorded instead of sent to a broker."""
    sent = {"runs": [], "sweeps": []}
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: sent["runs"].append((run_id, queue)))
    monkeypatch.setattr(tasks, "enqueue_sweep_advance", lambda sweep_id: sent["sweeps"].append(sweep_id))
    return sent


@pytest.fixture
def base_version(tiny_model_dir, project):
    return model_version_register(
        model_name="tiny-causal", task="causal-lm", folder=tiny_model_dir, fmt=None, project_id=project.pk
    )


@pytest.fixture
def qa(project, admin_user):
    rows = [
        {"question": f"Name colour {i}.", "answer": f"The colour is {c}.", "split": "eval" if i % 4 == 0 else "train"}
        for i, c in enumerate(["red", "blue", "green", "black"] * 2, start=1)
    ]
    dataset = dataset_import(project=project, stream=rows_jsonl(rows), filename="c.jsonl", created_by=admin_user)
    template_create(project=project, name="qa", text="Q: {question}\nA:", make_default=True)
    project.refresh_from_db()
    return dataset


def body(in_project, base_version, qa, **over):
    return {
        "kind": "sft",
        "project": in_project.pk,
        "config": {"max_steps": 2, "eval_steps": 1},
        "inputs": {"base_version": base_version.pk, "dataset": qa.pk, "target_field": "answer"},
        "search_space": SPACE,
        "metric": "eval_loss",
        "direction": "minimize",
        "budget": 3,
        "parallelism": 2,
        "seed": 7,
        **over,
    }


def make_sweep(project, base_version, qa, user, **over) -> Sweep:
    values = body(project, base_version, qa, **over)
    values.pop("project")
    return sweeps.sweep_create(project=project, created_by=user, **values)


def trial_runs(sweep) -> dict[int, TrainingRun]:
    return {run.sweep_trial: run for run in TrainingRun.objects.filter(sweep=sweep)}


def study_states(sweep) -> list[str]:
    return [t.state.name for t in sweep_study.study_trials(sweep)]


def report(run, *points, metric="eval_loss"):
    """What a worker stores while the run trains: metric events by step."""
    run_events_append(
        run_id=run.pk, events=[(events.METRIC, {"name": metric, "value": v, "step": s}) for s, v in points]
    )


def finish(run, value, *, metric="eval_loss", state=S.SUCCEEDED, register=None):
    """Run it to its end as a worker would (and register its merged version like OutputsRegistrar)."""
    if TrainingRun.objects.get(pk=run.pk).state == S.QUEUED:
        run_transition(run_id=run.pk, to=S.RUNNING)
    outputs = {"result": {"metrics": {metric: value, "train_loss": 1.0}}} if value is not None else {}
    run_transition(run_id=run.pk, to=state, outputs=outputs, error=None if state == S.SUCCEEDED else "it broke")
    if register is not None:
        model_version_register(
            model_name=run.inputs["output_model"],
            task="causal-lm",
            folder=register,
            fmt=None,
            run_id=run.pk,
            run_role="merged",
            project_id=run.project_id,
        )


# -- POST /api/sweeps/: what it refuses, who may ---------------------------------------------------


BAD = [
    ({"kind": "nope"}, "kind"),
    ({"kind": "generate"}, "kind"),  # started by its project's generate endpoint, not a sweep
    ({"search_space": {"no_such_field": {"type": "int", "low": 1, "high": 2}}}, "search_space.no_such_field"),
    ({"search_space": {"model_path": {"type": "choice", "values": ["/a"]}}}, "search_space.model_path"),
    ({"search_space": {"train_file": {"type": "choice", "values": ["x"]}}}, "search_space.train_file"),
    ({"search_space": {"eval_file": {"type": "choice", "values": ["x"]}}}, "search_space.eval_file"),
    ({"search_space": {}}, "search_space"),
    ({"search_space": {"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-3}}}, "search_space.learning_rate"),
    ({"search_space": {"lora_r": {"type": "int", "low": 16, "high": 4}}}, "search_space.lora_r"),
    ({"search_space": {"lora_r": {"type": "choice", "values": []}}}, "search_space.lora_r.values"),
    ({"search_space": {"lora_r": {"type": "choice", "values": [4, 4]}}}, "search_space.lora_r.values"),
    ({"search_space": {"lora_r": {"type": "float", "low": 1, "high": 8}}}, "search_space.lora_r.type"),
    ({"search_space": {"lora_r": {"type": "int", "low": 1, "high": 8, "size": 2}}}, "search_space.lora_r.size"),
    ({"search_space": {"lora_r": {"type": "range", "low": 1, "high": 8}}}, "search_space.lora_r.type"),
    (
        {"search_space": {"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}}},
        "search_space.learning_rate.low",
    ),
    ({"search_space": {"lora_r": {"type": "int", "low": 1, "high": 8, "step": 3}}}, "search_space.lora_r.step"),
    # values the config class refuses, found by checking sample points with it
    ({"search_space": {"peft_method": {"type": "choice", "values": ["lora", "bogus"]}}}, "search_space.peft_method"),
    ({"search_space": {"lora_dropout": {"type": "float", "low": 0.0, "high": 3.0}}}, "search_space.lora_dropout"),
    ({"search_space": {"save_steps": {"type": "choice", "values": [2, "many"]}}}, "search_space.save_steps"),
    ({"config": {"max_steps": 2, "learning_rate": 1e-3}}, "search_space.learning_rate"),  # fixed and searched
    ({"config": {"max_steps": 0}}, "config.max_steps"),
    ({"budget": 0}, "budget"),
    ({"budget": 101}, "budget"),
    ({"parallelism": 4}, "parallelism"),  # over the budget of 3
    ({"budget": 40, "parallelism": 17}, "parallelism"),
    ({"metric": "rouge1"}, "metric"),  # sft reports no ROUGE
    ({"direction": "up"}, "direction"),
    ({"sampler": "grid"}, "sampler"),
    ({"pruner": "hyperband"}, "pruner"),
    ({"alias": "Best!"}, "alias"),
    ({"surprise": 1}, "surprise"),
    ({"inputs": {"base_version": 999_999, "target_field": "answer"}}, "inputs.base_version"),
    ({"inputs": {"dataset": 1}}, "inputs.base_version"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
def test_a_bad_sweep_is_a_400_naming_the_field_and_creates_nothing(
    api, admin_user, project, base_version, qa, advances, change, field
):
    response = api(admin_user).post("/api/sweeps/", body(project, base_version, qa, **change), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"], response.json()
    assert response.json()["detail"].startswith(field) or field in response.json()["detail"]
    assert Sweep.objects.count() == 0 and TrainingRun.objects.count() == 0 and advances["sweeps"] == []


def test_the_settings_bound_the_budget_and_the_parallelism(api, admin_user, project, base_version, qa, settings):
    settings.RANKFORGE_SWEEP_MAX_TRIALS = 5
    settings.RANKFORGE_SWEEP_MAX_PARALLELISM = 2
    client = api(admin_user)
    for change, field in (({"budget": 6}, "budget"), ({"budget": 5, "parallelism": 3}, "parallelism")):
        response = client.post("/api/sweeps/", body(project, base_version, qa, **change), format="json")
        assert response.status_code == 400 and field in response.json()["errors"], response.json()
    assert Sweep.objects.count() == 0


def test_who_may_sweep(
    api, admin_user, make_user, add_member, staff, reviewer, labeler, platform_admin, project, base_version, qa
):
    from labeling.models import Role

    outsider = make_user("olga")
    statuses = {}
    for name, user in (("labeler", labeler), ("outsider", outsider), ("staff", staff), ("anonymous", None)):
        response = api(user).post("/api/sweeps/", body(project, base_version, qa), format="json")
        statuses[name] = response.status_code
    assert statuses == {"labeler": 403, "outsider": 404, "staff": 404, "anonymous": 401}
    assert Sweep.objects.count() == 0
    # Reviewers start runs in their project, so they sweep; a platform-level sweep is staff's only.
    response = api(reviewer).post("/api/sweeps/", body(project, base_version, qa), format="json")
    assert response.status_code == 202, response.json()
    assert (
        api(reviewer).post("/api/sweeps/", body(project, base_version, qa, project=None), format="json").status_code
        == 403
    )
    # Paths on the workers are platform admins' only, as for runs.
    add_member(staff, Role.ADMIN)
    response = api(staff).post(
        "/api/sweeps/", body(project, base_version, qa, config={"max_steps": 2, "model_path": "/x"}), format="json"
    )
    assert response.status_code == 403 and "config.model_path" in response.json()["errors"]
    # Sweeps of other projects are 404 to read and to cancel; labelers are not told they exist.
    sweep_id = Sweep.objects.get().pk
    for user in (outsider, labeler, make_user("nobody")):
        assert api(user).get(f"/api/sweeps/{sweep_id}/").status_code == 404
        assert api(user).post(f"/api/sweeps/{sweep_id}/cancel/").status_code == 404
        assert api(user).get("/api/sweeps/").json()["count"] == 0
    assert api(platform_admin).get("/api/sweeps/").json()["count"] == 1


def test_a_sweep_starts_on_its_first_advance_and_defaults_its_model(
    api, reviewer, project, base_version, qa, advances, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(reviewer).post("/api/sweeps/", body(project, base_version, qa), format="json")
    assert response.status_code == 202, response.json()
    answer = response.json()
    assert answer["state"] == "running" and answer["trials_started"] == 0 and answer["sampler"] == "tpe"
    assert answer["inputs"]["output_model"] == f"sweep-{answer['id']}-sft" and answer["alias"] == "best"
    assert answer["search_space"]["learning_rate"] == {**SPACE["learning_rate"], "step": None}
    assert advances["sweeps"] == [answer["id"]] and TrainingRun.objects.count() == 0
    detail = api(reviewer).get(f"/api/sweeps/{answer['id']}/").json()
    assert detail["trials"] == [] and detail["best"] is None


# -- advance ---------------------------------------------------------------------------------------


def test_trials_up_to_the_parallelism_and_the_budget_then_the_best_version_is_aliased(
    api, reviewer, project, base_version, qa, tiny_model_dir, advances, django_capture_on_commit_callbacks
):
    sweep = make_sweep(project, base_version, qa, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        sweeps.sweep_advance(sweep_id=sweep.pk)
    runs = trial_runs(sweep)
    assert sorted(runs) == [0, 1] and study_states(sweep) == ["RUNNING", "RUNNING"]
    # Each trial is an ordinary run of the kind: the base config with the trial's values, on its queue.
    trials = {t.number: t for t in sweep_study.study_trials(sweep)}
    for number, run in runs.items():
        params = sweep_study.decode_params(sweep.search_space, trials[number].params)
        assert run.kind == "sft" and run.state == S.QUEUED and run.created_by == reviewer
        assert run.config["learning_rate"] == params["learning_rate"] and run.config["lora_r"] == params["lora_r"]
        assert run.config["max_steps"] == 2 and run.config["train_file"] == "train.jsonl"
        assert run.inputs["output_model"] == f"sweep-{sweep.pk}-sft" and run.project == project
        assert 1e-4 <= params["learning_rate"] <= 1e-2 and params["lora_r"] in (4, 8)
    assert sorted(run_id for run_id, _ in advances["runs"]) == sorted(r.pk for r in runs.values())
    assert {queue for _, queue in advances["runs"]} == {"gpu"}

    sweeps.sweep_advance(sweep_id=sweep.pk)  # idempotent: nothing new while both run
    assert len(trial_runs(sweep)) == 2 and len(sweep_study.study_trials(sweep)) == 2

    # A trial's end advances its sweep (on commit), which starts the last trial.
    with django_capture_on_commit_callbacks(execute=True):
        finish(runs[0], 0.9, register=tiny_model_dir)
    assert advances["sweeps"] == [sweep.pk]
    sweeps.sweep_advance(sweep_id=sweep.pk)
    runs = trial_runs(sweep)
    assert sorted(runs) == [0, 1, 2] and study_states(sweep) == ["COMPLETE", "RUNNING", "RUNNING"]
    finish(runs[1], 0.4, register=tiny_model_dir)
    finish(runs[2], None, state=S.FAILED)
    sweep = sweeps.sweep_advance(sweep_id=sweep.pk)

    assert sweep.state == SweepState.SUCCEEDED and sweep.finished_at is not None
    assert (sweep.best_trial, sweep.best_value, sweep.best_run) == (1, 0.4, runs[1])
    alias = ModelAlias.objects.get(name="best")
    assert alias.version == sweep.best_version and alias.model.name == f"sweep-{sweep.pk}-sft"
    assert alias.version.source_run_id == runs[1].pk and runs[1].sweep == sweep  # the lineage
    assert study_states(sweep) == ["COMPLETE", "COMPLETE", "FAIL"]
    assert len(trial_runs(sweep)) == 3  # the budget
    assert sweeps.sweep_advance(sweep_id=sweep.pk).state == SweepState.SUCCEEDED  # an ended sweep stays

    detail = api(reviewer).get(f"/api/sweeps/{sweep.pk}/").json()
    assert [(t["number"], t["state"], t["run"], t["run_state"]) for t in detail["trials"]] == [
        (0, "complete", runs[0].pk, "succeeded"),
        (1, "complete", runs[1].pk, "succeeded"),
        (2, "failed", runs[2].pk, "failed"),
    ]
    assert detail["trials"][1]["value"] == 0.4 and set(detail["trials"][1]["params"]) == {"learning_rate", "lora_r"}
    assert detail["trials"][2]["error"].startswith(f"run {runs[2].pk} failed: it broke")
    assert detail["trials"][0]["duration_s"] >= 0
    assert detail["best"] == {
        "trial": 1,
        "value": 0.4,
        "params": detail["trials"][1]["params"],
        "run": runs[1].pk,
        "version": alias.version.pk,
    }
    assert detail["best_version"] == alias.version.pk and detail["trials_started"] == 3 and detail["trials_live"] == 0
    listed = api(reviewer).get("/api/sweeps/?state=succeeded&kind=sft").json()
    assert [s["id"] for s in listed["results"]] == [sweep.pk]
    assert api(reviewer).get("/api/sweeps/?state=nope").status_code == 400


def test_a_seeded_sweep_asks_the_same_parameters(reviewer, project, base_version, qa):
    first = make_sweep(project, base_version, qa, reviewer, sampler="random")
    second = make_sweep(project, base_version, qa, reviewer, sampler="random")
    for sweep in (first, second):
        sweeps.sweep_advance(sweep_id=sweep.pk)
    params = [[t.params for t in sweep_study.study_trials(s)] for s in (first, second)]
    assert params[0] == params[1] and params[0][0] != params[0][1]


def test_a_trial_whose_intermediate_metric_is_bad_is_pruned_and_its_run_cancelled(reviewer, project, base_version, qa):
    sweep = make_sweep(project, base_version, qa, reviewer, budget=8, parallelism=1, pruner="median")
    # Five trials complete (MedianPruner's startup), each with eval_loss 1.0 then 0.8 during training.
    for number in range(5):
        sweeps.sweep_advance(sweep_id=sweep.pk)
        run = trial_runs(sweep)[number]
        run_transition(run_id=run.pk, to=S.RUNNING)
        report(run, (1, 1.0), (2, 0.8))
        finish(run, 0.8)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    good = trial_runs(sweep)[5]
    run_transition(run_id=good.pk, to=S.RUNNING)
    report(good, (1, 0.9))  # better than the median at step 1: goes on
    sweeps.sweep_advance(sweep_id=sweep.pk)
    assert TrainingRun.objects.get(pk=good.pk).state == S.RUNNING and study_states(sweep)[5] == "RUNNING"
    report(good, (2, 3.0))  # far worse than the median at step 2: stopped
    sweeps.sweep_advance(sweep_id=sweep.pk)
    assert TrainingRun.objects.get(pk=good.pk).state == S.CANCELLING
    trial = sweep_study.study_trials(sweep)[5]
    assert trial.state == TrialState.PRUNED and trial.intermediate_values == {1: 0.9, 2: 3.0}
    # Its GPU is busy until the worker stops it: no new trial before the run has ended.
    sweeps.sweep_advance(sweep_id=sweep.pk)
    assert len(trial_runs(sweep)) == 6
    run_transition(run_id=good.pk, to=S.CANCELLED)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    assert len(trial_runs(sweep)) == 7 and study_states(sweep)[5] == "PRUNED"


def test_no_pruning_with_pruner_none(reviewer, project, base_version, qa):
    sweep = make_sweep(project, base_version, qa, reviewer, budget=7, parallelism=1, pruner="none")
    for number in range(5):
        sweeps.sweep_advance(sweep_id=sweep.pk)
        run = trial_runs(sweep)[number]
        report(run, (1, 1.0))
        finish(run, 1.0)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    run = trial_runs(sweep)[5]
    run_transition(run_id=run.pk, to=S.RUNNING)
    report(run, (1, 50.0))
    sweeps.sweep_advance(sweep_id=sweep.pk)
    assert TrainingRun.objects.get(pk=run.pk).state == S.RUNNING
    assert sweep_study.study_trials(sweep)[5].intermediate_values == {1: 50.0}


def test_a_crash_between_ask_and_start_neither_starts_a_trial_twice_nor_loses_one(
    reviewer, project, base_version, qa, monkeypatch
):
    sweep = make_sweep(project, base_version, qa, reviewer)
    real = run_services.run_start
    calls = []

    def crash_on_the_second(**kwargs):
        calls.append(kwargs["config"])
        if len(calls) == 2:
            raise RuntimeError("the worker died")
        return real(**kwargs)

    monkeypatch.setattr(run_services, "run_start", crash_on_the_second)
    with pytest.raises(RuntimeError), transaction.atomic():
        sweeps.sweep_advance(sweep_id=sweep.pk)
    # The runs rolled back with the transaction; the study (its own connection) kept both trials.
    assert TrainingRun.objects.filter(sweep=sweep).count() == 0
    assert study_states(sweep) == ["RUNNING", "RUNNING"]
    monkeypatch.setattr(run_services, "run_start", real)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    runs = trial_runs(sweep)
    trials = sweep_study.study_trials(sweep)
    assert sorted(runs) == [0, 1] and len(trials) == 2  # the asked trials got their runs; none asked again
    for trial in trials:
        params = sweep_study.decode_params(sweep.search_space, trial.params)
        assert runs[trial.number].config["learning_rate"] == params["learning_rate"]
    assert calls[0]["learning_rate"] == runs[0].config["learning_rate"]


def test_beat_advances_a_sweep_whose_trigger_was_lost(reviewer, project, base_version, qa, settings):
    sweep = make_sweep(project, base_version, qa, reviewer, budget=2, parallelism=1)
    assert tasks.advance_sweeps() == {"advanced": 1, "failed": 0}
    [run] = trial_runs(sweep).values()
    finish(run, 0.5)  # its advance message is lost (recorded, not sent)
    assert tasks.advance_sweeps() == {"advanced": 1, "failed": 0}
    assert sorted(trial_runs(sweep)) == [0, 1]
    assert tasks.advance_sweep(sweep.pk) == "running"
    entry = settings.CELERY_BEAT_SCHEDULE["advance-sweeps"]
    assert entry["task"] == tasks.advance_sweeps.name and entry["options"]["queue"] == "default"
    assert settings.CELERY_TASK_ROUTES[tasks.advance_sweep.name] == {"queue": "default"}


def test_a_trial_whose_run_is_refused_fails_and_a_sweep_of_failures_fails(reviewer, project, base_version, qa):
    sweep = make_sweep(project, base_version, qa, reviewer, budget=2, parallelism=2)
    qa.delete()  # every trial's run is now refused (its dataset is gone)
    sweep = sweeps.sweep_advance(sweep_id=sweep.pk)
    assert TrainingRun.objects.count() == 0 and study_states(sweep) == ["FAIL", "FAIL"]
    assert sweep.state == SweepState.FAILED and "inputs.dataset" in sweep.error
    assert "its run could not start" in sweep_study.study_trials(sweep)[0].user_attrs["error"]


def test_cancel_cancels_the_sweep_and_its_live_runs(
    api, reviewer, project, base_version, qa, django_capture_on_commit_callbacks
):
    sweep = make_sweep(project, base_version, qa, reviewer, budget=3, parallelism=2)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    runs = trial_runs(sweep)
    run_transition(run_id=runs[1].pk, to=S.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(reviewer).post(f"/api/sweeps/{sweep.pk}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    states = {n: TrainingRun.objects.get(pk=r.pk).state for n, r in runs.items()}
    assert states == {0: S.CANCELLED, 1: S.CANCELLING}
    assert study_states(sweep) == ["FAIL", "FAIL"]
    assert api(reviewer).post(f"/api/sweeps/{sweep.pk}/cancel/").status_code == 409
    run_transition(run_id=runs[1].pk, to=S.CANCELLED)
    assert sweeps.sweep_advance(sweep_id=sweep.pk).state == SweepState.CANCELLED
    assert len(trial_runs(sweep)) == 2  # nothing new starts


def test_a_creator_who_lost_the_role_stops_the_sweep(reviewer, project, base_version, qa):
    from labeling.models import Membership

    sweep = make_sweep(project, base_version, qa, reviewer, budget=3, parallelism=1)
    sweeps.sweep_advance(sweep_id=sweep.pk)
    finish(trial_runs(sweep)[0], 0.5)
    Membership.objects.filter(user=reviewer).delete()
    sweep = sweeps.sweep_advance(sweep_id=sweep.pk)
    assert sweep.state == SweepState.FAILED and "may no longer start runs" in sweep.error
    assert sweep.best_trial == 0 and len(trial_runs(sweep)) == 1


# -- what kinds report, where the study lives -----------------------------------------------------------


def test_every_sweepable_kind_names_the_metrics_its_result_reports():
    from training.ml import dpo, evaluate

    sweepable = {k for k, s in KINDS.items() if s.startable}
    assert all(KINDS[k].metrics for k in sweepable) and not KINDS["generate"].metrics
    assert set(KINDS["evaluate"].metrics) == {*evaluate.TABLE_METRICS, "best_rougeL"}
    assert set(KINDS["dpo"].metrics) - {"train_loss"} == set(dpo.EVAL_METRICS.values())
    assert {"eval_loss", "train_loss"} <= set(KINDS["sft"].metrics)


def test_the_kinds_a_sweep_searches_say_their_metrics_and_fields(api, reviewer):
    answer = {k["kind"]: k for k in api(reviewer).get("/api/sweeps/kinds/").json()}
    assert "generate" not in answer and answer["sft"]["metrics"] == list(KINDS["sft"].metrics)
    fields = {f["name"]: f for f in answer["sft"]["fields"]}
    assert fields["learning_rate"]["type"] == "float | None" and fields["lora_r"]["default"] == 16
    assert not {"model_path", "train_file", "eval_file", "gguf_file"} & set(fields)


def test_the_study_lives_in_the_database_django_uses():
    from django.db import connection

    url = sweep_study.storage_url()
    if connection.vendor == "postgresql":
        assert url.startswith("postgresql+psycopg://") and url.endswith("/" + connection.settings_dict["NAME"])
    else:
        assert url.startswith("sqlite:///")
