"""Reads of training runs: who sees which runs, their events, logs and metric series."""

import dataclasses

from django.db.models import Exists, OuterRef, Q, QuerySet
from rest_framework.exceptions import NotFound

from common.api import is_platform_admin
from labeling.models import Membership, Role
from training.kinds import KINDS, filled_fields
from training.ml.configs import worker_path_fields
from training.models import CritiqueRevision, RunEvent, RunEventType, TrainingRun

# These roles of a run's project see and manage its runs (a project's runs read its prompts, data
# and outputs, so being staff is not enough: staff need the membership like anyone else).
RUN_ROLES = (Role.ADMIN, Role.REVIEWER)
LOG_TYPES = (RunEventType.LOG, RunEventType.ERROR)
MAX_PAGE = 1000


def is_run_staff(user) -> bool:
    """Staff and platform admins: they start and see platform-level runs (runs with no project)."""
    return bool(user and user.is_active and (user.is_staff or user.is_superuser))


def runs_for_user(*, user) -> QuerySet[TrainingRun]:
    """Platform admins see every run; staff the platform-level runs (no project); everyone the runs
    of the projects they administer or review."""
    runs = TrainingRun.objects.all()
    if is_platform_admin(user):
        return runs
    if not (user and user.is_active):
        return runs.none()
    member = Membership.objects.filter(project=OuterRef("project_id"), user=user, role__in=RUN_ROLES)
    visible = Q(Exists(member))
    if is_run_staff(user):
        visible |= Q(project__isnull=True)
    return runs.filter(visible)


def run_for_user(*, user, run_id: int) -> TrainingRun:
    run = runs_for_user(user=user).filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Run {run_id} does not exist or you cannot see it.")
    return run


def run_events(*, run: TrainingRun, after: int = 0, types: tuple[str, ...] = (), limit: int = 500) -> list[RunEvent]:
    """Events with seq > after, oldest first: poll with the last seq you got."""
    events = RunEvent.objects.filter(run=run, seq__gt=after)
    if types:
        events = events.filter(type__in=types)
    return list(events.order_by("seq")[: min(limit, MAX_PAGE)])


def run_metrics(*, run: TrainingRun, name: str | None = None) -> dict[str, list[dict]]:
    """Metric events as series: ``{name: [{step, value, t}, ...]}`` in event order."""
    events = RunEvent.objects.filter(run=run, type=RunEventType.METRIC)
    if name is not None:
        events = events.filter(payload__name=name)
    series: dict[str, list[dict]] = {}
    for payload in events.order_by("seq").values_list("payload", flat=True).iterator(chunk_size=2000):
        key = payload.get("name")
        if isinstance(key, str):
            series.setdefault(key, []).append(
                {"step": payload.get("step"), "value": payload.get("value"), "t": payload.get("t")}
            )
    return series


def run_revisions(*, run: TrainingRun, principle: str | None = None) -> QuerySet[CritiqueRevision]:
    """A cai_revise run's stored steps in prompt order; with ``principle``, those a round used it on."""
    rows = CritiqueRevision.objects.filter(run=run).order_by("id")
    return rows.filter(principles__contains=f",{principle},") if principle else rows


def run_kinds() -> list[dict]:
    """Every run kind a person can start (``training.kinds``): its inputs, what each means for it
    (``hints``), and its config fields (type, default, required), read off the ``training.ml`` config
    classes, so a form never drifts from what the API accepts. Fields the platform fills from inputs
    are flagged and left out of ``required``."""
    kinds = []
    for kind, spec in sorted(KINDS.items()):
        config_class = spec.config_class
        if config_class is None or not spec.startable:  # generate: POST /api/projects/<id>/generate/
            continue
        filled = filled_fields(spec)
        fields = []
        paths = worker_path_fields(config_class)  # the same fields the API refuses to all but platform admins
        for f in dataclasses.fields(config_class):
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            fields.append(
                {
                    "name": f.name,
                    "type": f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)),
                    "default": default,
                    "required": not has_default and f.name not in filled,
                    "filled_by_inputs": f.name in filled,
                    "worker_path": f.name in paths,
                }
            )
        doc = (config_class.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc.startswith(f"{config_class.__name__}("):  # dataclass's generated docstring: no words
            doc = ""
        kinds.append(
            {
                "kind": kind,
                "description": doc,
                "inputs": list(spec.inputs),
                "hints": dict(spec.hints),
                "inputs_note": spec.inputs_note,
                "version_tasks": spec.version_tasks(),
                "adapter_base": spec.base_adapter_ok,
                "common_config": list(spec.common_config),
                "config": fields,
            }
        )
    return kinds
