"""Hyperparameter sweeps (issue 16): a search over one run kind's config, each trial an ordinary run.

A sweep names a kind, the config and inputs every trial starts from (as ``POST /api/runs/`` takes
them), a search space (config field -> ``{"type": "choice", "values": [...]}`` or ``{"type": "int" |
"float", "low", "high", "log"?, "step"?}``), a metric of the kind's result to maximise or minimise, a
budget of trials and how many run at once. Optuna searches: TPE or random sampling, median pruning,
through its ask-and-tell interface, its study kept in the platform's own database (``RDBStorage``;
the URL is built from Django's connection, so tests use the test database). Nothing here samples.

Each trial's run is started by ``run_start`` (the kind's validation, inputs and permissions, as the
creator), on the kind's queue, and names its sweep and trial (``TrainingRun.sweep``/``sweep_trial``,
unique together). ``sweep_advance`` is the one step that moves a sweep on, under the sweep's row lock
and idempotent, so it may run any number of times, from anywhere:

1. each trial's run: a finished one is told to the study (its metric from the run's result, else its
   last metric event; a failed or cancelled run, or one without the metric, is a failed trial); a
   running one's new metric events (the sweep's metric, by step) are reported, and one the pruner
   stops is told pruned and cancelled;
2. trials the study asked for but whose run was never started (a crash between ask and start rolled
   the run back; the study is not in the transaction) get their run now, with their own parameters:
   nothing is started twice (the lock, the unique trial number) and no asked trial is lost;
3. new trials are asked while fewer than ``parallelism`` runs are live and fewer than ``budget``
   trials were asked; a trial whose run is refused (a 400 from run_start) is a failed trial;
4. when every trial has ended: succeeded (the best trial's model version gets the sweep's alias,
   ``best`` by default: the version's source run is the best trial's run, which names the sweep) or
   failed when no trial completed.

It is triggered when a trial's run ends (``run_transition`` sends ``training.advance_sweep`` on
commit) and every few seconds by beat (``training.advance_sweeps``), so a sweep whose message was
lost, or whose worker or web process restarted, goes on from the database and the study.

The study's storage, sampler, pruner and the search space's checks live in
:mod:`training.services.sweep_study`.
"""

import logging
import re
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException

from common.exceptions import Conflict, ServiceError
from labeling.access import project_access
from labeling.models import Role
from models_registry.models import ALIAS_RE, ModelVersion
from models_registry.services import alias_set
from training import tasks
from training.kinds import KINDS, KindSpec
from training.models import (
    TERMINAL_STATES,
    RunEvent,
    RunEventType,
    RunState,
    Sweep,
    SweepDirection,
    SweepPruner,
    SweepSampler,
    SweepState,
    TrainingRun,
)
from training.services import runs as run_services
from training.services.lookups import input_error
from training.services.run_inputs import resolve_inputs
from training.services.sweep_study import (
    check_sample_points,
    decode_params,
    distributions_of,
    is_number,
    open_study,
    sampler_for,
    search_space_check,
    study_trials,
)

logger = logging.getLogger(__name__)

VERSION_ROLES = ("merged", "full", "adapter")  # which of the best run's versions gets the alias
MAX_ERROR_CHARS = 2000


# -- create, cancel ------------------------------------------------------------------------------


def _startable(kind: Any) -> KindSpec:
    spec = KINDS.get(kind) if isinstance(kind, str) else None
    startable = sorted(k for k, s in KINDS.items() if s.startable and s.config_class is not None)
    if spec is None or not spec.startable or spec.config_class is None:
        raise input_error("kind", f"{kind!r:.40} cannot be swept; kinds: {', '.join(startable)}")
    return spec


def sweep_create(
    *,
    kind: str,
    config: dict,
    inputs: dict,
    search_space: dict,
    metric: str,
    direction: str,
    budget: int,
    parallelism: int,
    sampler: str = SweepSampler.TPE,
    seed: int | None = None,
    pruner: str = SweepPruner.MEDIAN,
    alias: str = "best",
    project=None,
    created_by,
) -> Sweep:
    """Check everything a trial's run will be checked for, once, then save the sweep and send its first
    advance on commit. A 400 names the field and creates nothing."""
    spec = _startable(kind)
    if metric not in spec.metrics:
        raise input_error("metric", f"{kind} runs report {', '.join(spec.metrics)}; not {metric!r:.60}")
    if direction not in SweepDirection.values:
        raise input_error("direction", f"expected {' or '.join(SweepDirection.values)}")
    if sampler not in SweepSampler.values:
        raise input_error("sampler", f"expected {' or '.join(SweepSampler.values)}")
    if pruner not in SweepPruner.values:
        raise input_error("pruner", f"expected {' or '.join(SweepPruner.values)}")
    most = settings.RANKFORGE_SWEEP_MAX_TRIALS
    if not isinstance(budget, int) or not 1 <= budget <= most:
        raise input_error("budget", f"expected 1..{most} trials (RANKFORGE_SWEEP_MAX_TRIALS), got {budget!r:.20}")
    at_once = min(budget, settings.RANKFORGE_SWEEP_MAX_PARALLELISM)
    if not isinstance(parallelism, int) or not 1 <= parallelism <= at_once:
        raise input_error(
            "parallelism", f"expected 1..{at_once} (at most the budget and {settings.RANKFORGE_SWEEP_MAX_PARALLELISM})"
        )
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32):
        raise input_error("seed", "expected an integer in 0..4294967295")
    if not isinstance(alias, str) or not re.fullmatch(ALIAS_RE, alias):
        raise input_error("alias", "use 1-64 lowercase letters, digits, '_' or '-', starting with a letter")
    if not isinstance(config, dict) or not isinstance(inputs, dict):
        raise input_error("config" if not isinstance(config, dict) else "inputs", "expected an object")
    space = search_space_check(spec=spec, search_space=search_space, config=config)

    with transaction.atomic():
        sweep = Sweep.objects.create(
            project=project,
            kind=kind,
            config=config,
            inputs=inputs,
            search_space=space,
            metric=metric,
            direction=direction,
            budget=budget,
            parallelism=parallelism,
            sampler=sampler,
            seed=seed,
            pruner=pruner,
            alias=alias,
            study_name=f"rankforge-sweep-{uuid.uuid4().hex}",
            created_by=created_by,
        )
        if spec.output_task is not None and not inputs.get("output_model"):
            # The trials' versions go to one model of the sweep's own, which the alias names.
            sweep.inputs = {**inputs, "output_model": f"sweep-{sweep.pk}-{kind.replace('_', '-')}"}
        sweep.study_name = f"rankforge-sweep-{sweep.pk}-{uuid.uuid4().hex[:12]}"
        sweep.save(update_fields=["inputs", "study_name"])
        # A trial's run checks these again (as the creator, when it starts); a 400 here rolls back.
        resolved = resolve_inputs(spec=spec, inputs=sweep.inputs, config=config, project=project, requester=created_by)
        base = {**config, **resolved.config}
        run_services.run_validate_config(kind=kind, config=base)
        check_sample_points(kind=kind, space=space, config=base)
        sweep_id = sweep.pk
        transaction.on_commit(lambda: tasks.enqueue_sweep_advance(sweep_id), robust=True)
    return sweep


def _locked(sweep_id: int, *, skip_locked: bool = False) -> Sweep | None:
    return Sweep.objects.select_for_update(skip_locked=skip_locked).filter(pk=sweep_id).first()


def sweep_cancel(*, sweep_id: int, by=None) -> Sweep:
    """Cancel a running sweep and every trial run still queued or running (409 once it has ended)."""
    with transaction.atomic():
        sweep = _locked(sweep_id)
        if sweep is None:
            raise ServiceError(f"Sweep {sweep_id} does not exist.", status=404)
        if sweep.state != SweepState.RUNNING:
            raise Conflict(f"Sweep {sweep.pk} already {sweep.state}; there is nothing to cancel.")
        for run in sweep.runs.filter(state__in=(RunState.QUEUED, RunState.RUNNING)):
            _cancel(run, by=by)
        sweep.state = SweepState.CANCELLED
        sweep.finished_at = timezone.now()
        sweep.error = f"cancelled by {by.get_username()}" if by is not None else "cancelled"
        sweep.save(update_fields=["state", "finished_at", "error", "updated_at"])
        transaction.on_commit(lambda: _fail_unfinished(sweep), robust=True)
    return sweep


def _fail_unfinished(sweep: Sweep) -> None:
    """A cancelled sweep's trials that had not ended end as failed in the study too."""
    from optuna.trial import TrialState

    trials = study_trials(sweep)
    if not trials:
        return
    study = open_study(sweep)
    for trial in trials:
        if not trial.state.is_finished():
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


# -- advance ------------------------------------------------------------------------------


def _metric_events(run: TrainingRun, metric: str) -> list[tuple[int, float]]:
    """The run's events of this metric that carry a step, as (step, value), first per step."""
    seen: dict[int, float] = {}
    payloads = RunEvent.objects.filter(run=run, type=RunEventType.METRIC, payload__name=metric).order_by("seq")
    for payload in payloads.values_list("payload", flat=True):
        step, value = payload.get("step"), payload.get("value")
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0 and is_number(value):
            seen.setdefault(step, float(value))
    return sorted(seen.items())


def metric_value(run: TrainingRun, metric: str) -> float | None:
    """A finished run's value of the metric: its result's, else the last metric event of that name."""
    value = ((run.outputs.get("result") or {}).get("metrics") or {}).get(metric)
    if is_number(value):
        return float(value)
    last = (
        RunEvent.objects.filter(run=run, type=RunEventType.METRIC, payload__name=metric)
        .order_by("-seq")
        .values_list("payload", flat=True)
        .first()
    )
    value = (last or {}).get("value")
    return float(value) if is_number(value) else None


def _cancel(run: TrainingRun, *, by=None) -> TrainingRun:
    """Cancel a trial's run; one that ended meanwhile stays as it ended."""
    try:
        with transaction.atomic():
            return run_services.run_cancel(run_id=run.pk, by=by)
    except Conflict:
        return TrainingRun.objects.get(pk=run.pk)


def _live_trial(study, trial):
    """An optuna ``Trial`` to report to or ask about, from a trial (frozen or live) of the study."""
    import optuna

    return optuna.trial.Trial(study, trial._trial_id)


def _report(study, frozen, run: TrainingRun, metric: str) -> int:
    """Report the run's new intermediate values of the metric to its trial; how many were new."""
    new = [(step, value) for step, value in _metric_events(run, metric) if step not in frozen.intermediate_values]
    if new:
        trial = _live_trial(study, frozen)
        for step, value in new:
            trial.report(value, step)
    return len(new)


def _fail(study, trial, error: str) -> None:
    from optuna.trial import TrialState

    _live_trial(study, trial).set_user_attr("error", error[:MAX_ERROR_CHARS])
    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def _tell_ended(study, frozen, run: TrainingRun, sweep: Sweep) -> None:
    if run.state == RunState.SUCCEEDED:
        value = metric_value(run, sweep.metric)
        if value is not None:
            study.tell(frozen.number, value, skip_if_finished=True)
            return
        _fail(study, frozen, f"run {run.pk} succeeded but reported no {sweep.metric}")
        return
    _fail(study, frozen, f"run {run.pk} {run.state}: {run.error or 'no error message'}")


def _start(sweep: Sweep, study, trial, params: dict) -> TrainingRun | None:
    """The trial's run (``trial``: frozen or live), started as the sweep's creator; a run the platform
    refuses fails the trial."""
    number = trial.number
    try:
        with transaction.atomic():
            run = run_services.run_start(
                kind=sweep.kind,
                config={**sweep.config, **params},
                inputs=sweep.inputs,
                project=sweep.project,
                created_by=sweep.created_by,
            )
            TrainingRun.objects.filter(pk=run.pk).update(sweep=sweep, sweep_trial=number)
    except IntegrityError:  # the trial has its run already (nothing else writes one): take it
        return TrainingRun.objects.filter(sweep=sweep, sweep_trial=number).first()
    except (ServiceError, APIException) as exc:
        message = getattr(exc, "message", None) or str(getattr(exc, "detail", exc))
        logger.warning("sweep %s: trial %s could not start: %s", sweep.pk, number, message)
        _fail(study, trial, f"its run could not start: {message}")
        return None
    run.sweep_id, run.sweep_trial = sweep.pk, number
    logger.info("sweep %s: trial %s is run %s (%s)", sweep.pk, number, run.pk, params)
    return run


def _may_still_run(sweep: Sweep) -> str | None:
    """Why the creator may no longer start the sweep's runs, or None."""
    user = sweep.created_by
    if user is None or not user.is_active:
        return "its creator's account is gone or inactive"
    if sweep.project_id is None:
        return None if (user.is_staff or user.is_superuser) else "only staff start runs outside a project"
    try:
        project_access(user=user, project_id=sweep.project_id, at_least=Role.REVIEWER)
    except APIException as exc:
        return f"its creator may no longer start runs in project {sweep.project_id}: {exc.detail}"
    return None


def _best(sweep: Sweep, trials: list):
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    if sweep.direction == SweepDirection.MAXIMIZE:
        return max(complete, key=lambda t: (t.value, -t.number))
    return min(complete, key=lambda t: (t.value, t.number))


def _best_version(run: TrainingRun | None) -> ModelVersion | None:
    if run is None:
        return None
    versions = {v.source_role: v for v in ModelVersion.objects.select_related("model").filter(source_run_id=run.pk)}
    return next((versions[role] for role in VERSION_ROLES if role in versions), None)


def _finish(sweep: Sweep, trials: list, runs: dict[int, TrainingRun]) -> None:
    best = _best(sweep, trials)
    sweep.finished_at = timezone.now()
    if best is None:
        sweep.state = SweepState.FAILED
        errors = [str(t.user_attrs.get("error", t.state.name.lower())) for t in trials]
        sweep.error = f"none of its {len(trials)} trials completed; the last: {errors[-1] if errors else 'none'}"
        return
    sweep.state = SweepState.SUCCEEDED
    version = _best_version(runs.get(best.number))
    if version is None:
        return  # a kind that registers nothing (evaluate): the best trial is the answer
    try:
        with transaction.atomic():
            alias_set(model=version.model, alias=sweep.alias, version=version, actor=sweep.created_by)
    except ServiceError as exc:
        sweep.error = f"the best version was not aliased {sweep.alias!r}: {exc.message}"
        return
    sweep.best_version = version
    logger.info("sweep %s: %s v%s is %r", sweep.pk, version.model.name, version.version, sweep.alias)


def sweep_advance(*, sweep_id: int, skip_locked: bool = False) -> Sweep | None:
    """One step of the sweep (see the module docstring); a sweep that is not running is left alone.
    ``skip_locked`` (beat): None at once when another advance holds the sweep."""
    from optuna.trial import TrialState

    with transaction.atomic():
        sweep = _locked(sweep_id, skip_locked=skip_locked)
        if sweep is None or sweep.state != SweepState.RUNNING:
            return sweep
        study = open_study(sweep)
        runs = {run.sweep_trial: run for run in TrainingRun.objects.filter(sweep=sweep)}
        prunes = sweep.pruner != SweepPruner.NONE

        # 1. What the trials' runs did.
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for number, run in sorted(runs.items()):
            frozen = trials.get(number)
            if frozen is None:
                continue
            if frozen.state.is_finished():
                if frozen.state == TrialState.PRUNED and run.state in (RunState.QUEUED, RunState.RUNNING):
                    runs[number] = _cancel(run)  # told pruned just before a crash
                continue
            reported = _report(study, frozen, run, sweep.metric)
            if run.state in TERMINAL_STATES:
                _tell_ended(study, frozen, run, sweep)
            elif reported and prunes and run.state == RunState.RUNNING and _live_trial(study, frozen).should_prune():
                logger.info("sweep %s: trial %s (run %s) is pruned", sweep.pk, number, run.pk)
                study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
                runs[number] = _cancel(run)

        # 2. and 3. Start what was asked but never started, then ask for more.
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        orphans = [t for n, t in sorted(trials.items()) if t.state == TrialState.RUNNING and n not in runs]
        live = sum(run.state not in TERMINAL_STATES for run in runs.values())
        asked = len(trials)
        if orphans or (live < sweep.parallelism and asked < sweep.budget):
            refused = _may_still_run(sweep)
            if refused is not None:
                for frozen in orphans:
                    _fail(study, frozen, refused)
                return _end(sweep, study, runs, error=refused)
        for frozen in orphans:
            run = _start(sweep, study, frozen, decode_params(sweep.search_space, frozen.params))
            if run is not None:
                runs[frozen.number] = run
                live += 1
        distributions = distributions_of(sweep.search_space)
        while live < sweep.parallelism and asked < sweep.budget:
            study.sampler = sampler_for(sweep, asked)
            trial = study.ask(distributions)
            asked += 1
            run = _start(sweep, study, trial, decode_params(sweep.search_space, trial.params))
            if run is not None:
                runs[trial.number] = run
                live += 1

        # 4. The best so far, and the end.
        trials_now = study.get_trials(deepcopy=False)
        if asked >= sweep.budget and live == 0 and all(t.state.is_finished() for t in trials_now):
            _finish(sweep, trials_now, runs)
        _note_best(sweep, trials_now, runs)
        sweep.save()
    return sweep


def _note_best(sweep: Sweep, trials: list, runs: dict[int, TrainingRun]) -> None:
    best = _best(sweep, trials)
    if best is not None:
        sweep.best_trial, sweep.best_value = best.number, best.value
        sweep.best_run = runs.get(best.number)


def _end(sweep: Sweep, study, runs: dict[int, TrainingRun], *, error: str) -> Sweep:
    """Fail a sweep that cannot go on: its live runs are cancelled, the best so far is kept."""
    for run in runs.values():
        if run.state in (RunState.QUEUED, RunState.RUNNING):
            _cancel(run)
    sweep.state, sweep.error, sweep.finished_at = SweepState.FAILED, error, timezone.now()
    _note_best(sweep, study.get_trials(deepcopy=False), runs)
    sweep.save()
    return sweep


def sweeps_advance_running() -> dict:
    """Advance every running sweep (beat); one that another advance holds is passed over this time."""
    advanced = failed = 0
    for sweep_id in Sweep.objects.filter(state=SweepState.RUNNING).order_by("pk").values_list("pk", flat=True):
        try:
            sweep_advance(sweep_id=sweep_id, skip_locked=True)
            advanced += 1
        except Exception:
            logger.exception("sweep %s: the advance failed; beat tries again", sweep_id)
            failed += 1
    return {"advanced": advanced, "failed": failed}
