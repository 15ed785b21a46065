"""Reads of training runs: who sees which runs, their events, logs and metric series."""

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound

from labeling.models import Role
from training.models import RunEvent, RunEventType, TrainingRun

# Besides staff and platform admins, these roles of a run's project see and manage its runs.
RUN_ROLES = (Role.ADMIN, Role.REVIEWER)
LOG_TYPES = (RunEventType.LOG, RunEventType.ERROR)
MAX_PAGE = 1000


def is_run_staff(user) -> bool:
    return bool(user and user.is_active and (user.is_staff or user.is_superuser))


def runs_for_user(*, user) -> QuerySet[TrainingRun]:
    """Staff and platform admins see every run; others the runs of projects they administer or review."""
    runs = TrainingRun.objects.all()
    if is_run_staff(user):
        return runs
    return runs.filter(project__memberships__user=user, project__memberships__role__in=RUN_ROLES)


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
