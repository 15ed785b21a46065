"""Reads of hyperparameter sweeps: who sees which sweeps (as runs: training.selectors), and a sweep's
trials, each its study's trial beside its run."""

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound

from common.api import is_platform_admin
from labeling.models import Membership
from training.kinds import KINDS, filled_fields
from training.ml.configs import worker_path_fields
from training.models import TERMINAL_STATES, Sweep, SweepDirection, TrainingRun
from training.selectors import RUN_ROLES, is_run_staff, run_kinds
from training.services.sweep_study import decode_params, study_trials


def sweeps_for_user(*, user) -> QuerySet[Sweep]:
    """Whoever sees a project's runs sees its sweeps: platform admins every sweep, staff the
    platform-level ones (no project), everyone the sweeps of the projects they administer or review.
    Each with ``trials_started`` and ``trials_live`` (its runs)."""
    sweeps = Sweep.objects.annotate(
        trials_started=Count("runs"),
        trials_live=Count("runs", filter=~Q(runs__state__in=TERMINAL_STATES)),
    )
    if is_platform_admin(user):
        return sweeps
    if not (user and user.is_active):
        return sweeps.none()
    member = Membership.objects.filter(project=OuterRef("project_id"), user=user, role__in=RUN_ROLES)
    visible = Q(Exists(member))
    if is_run_staff(user):
        visible |= Q(project__isnull=True)
    return sweeps.filter(visible)


def sweep_for_user(*, user, sweep_id: int) -> Sweep:
    sweep = sweeps_for_user(user=user).filter(pk=sweep_id).first()
    if sweep is None:
        raise NotFound(f"Sweep {sweep_id} does not exist or you cannot see it.")
    return sweep


def _seconds(start, end) -> float | None:
    if start is None:
        return None
    return round(((end or timezone.now()) - start).total_seconds(), 1)


def sweep_trials(*, sweep: Sweep) -> list[dict]:
    """Every trial the study asked for, oldest first: its state, parameters (as config values), value,
    intermediate values by step, and its run (id, state, timings, error)."""
    runs = {run.sweep_trial: run for run in TrainingRun.objects.filter(sweep=sweep)}
    rows = []
    for trial in study_trials(sweep):
        run = runs.get(trial.number)
        error = trial.user_attrs.get("error")
        if error is None and run is not None and run.error:
            error = run.error
        rows.append(
            {
                "number": trial.number,
                "state": "failed" if trial.state.name == "FAIL" else trial.state.name.lower(),
                "params": decode_params(sweep.search_space, trial.params),
                "value": trial.value,
                "intermediate_values": [
                    {"step": step, "value": value} for step, value in sorted(trial.intermediate_values.items())
                ],
                "run": run.pk if run is not None else None,
                "run_state": run.state if run is not None else None,
                "started_at": run.started_at if run is not None else None,
                "finished_at": run.finished_at if run is not None else None,
                "duration_s": _seconds(run.started_at, run.finished_at) if run is not None else None,
                "error": error or "",
            }
        )
    return rows


def sweep_best(*, sweep: Sweep, trials: list[dict]) -> dict | None:
    """The best completed trial so far (the sweep's direction), and the version aliased for it."""
    complete = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    if not complete:
        return None
    if sweep.direction == SweepDirection.MAXIMIZE:
        best = max(complete, key=lambda t: (t["value"], -t["number"]))
    else:
        best = min(complete, key=lambda t: (t["value"], t["number"]))
    return {
        "trial": best["number"],
        "value": best["value"],
        "params": best["params"],
        "run": best["run"],
        "version": sweep.best_version_id if sweep.best_trial == best["number"] else None,
    }


def sweep_kinds() -> list[dict]:
    """Each kind a sweep may search (those a person can start): the metrics its result reports, and
    the config fields a search space may vary, with their type and default (``GET /api/runs/kinds/``'s
    fields, less those the platform fills from inputs and paths on the workers)."""
    kinds = []
    for entry in run_kinds():
        spec = KINDS[entry["kind"]]
        hidden = filled_fields(spec) | worker_path_fields(spec.config_class)
        fields = [
            {"name": f["name"], "type": f["type"], "default": f["default"]}
            for f in entry["config"]
            if f["name"] not in hidden
        ]
        kinds.append({"kind": entry["kind"], "metrics": list(spec.metrics), "fields": fields})
    return kinds
