"""A sweep's Optuna side: where its study lives, its sampler and pruner, and its search space (checked
against the kind's config class, turned into Optuna distributions and back). Used by
:mod:`training.services.sweeps`, which moves sweeps on; nothing here starts a run.

SQLite (the embedded default) serializes writers (IMMEDIATE transactions): a second connection that
wrote the study into the same file while the advance holds the write lock would wait for it forever,
so there the study lives in a file beside the database (``<name>.optuna``).
"""

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from common.exceptions import ServiceError
from training.kinds import KindSpec, filled_fields
from training.ml.configs import worker_path_fields
from training.models import Sweep, SweepPruner, SweepSampler
from training.services import runs as run_services
from training.services.lookups import input_error

logger = logging.getLogger(__name__)

MAX_FIELDS = 20  # fields one search space may vary
MAX_CHOICES = 64
SPACE_KEYS = {"choice": {"type", "values"}, "int": {"type", "low", "high", "log", "step"}}
SPACE_KEYS["float"] = SPACE_KEYS["int"]
# The config field types each range type may vary (training.ml config classes' annotations).
RANGE_FIELD_TYPES = {"int": {"int", "int | None", "float", "float | None"}, "float": {"float", "float | None"}}

# -- the study's storage ------------------------------------------------------------------------------


def storage_url() -> str:
    """The SQLAlchemy URL of the database Django is connected to now (the test database in tests)."""
    from sqlalchemy.engine import URL

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        return URL.create(
            "postgresql+psycopg",
            username=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=int(db["PORT"]) if db.get("PORT") else None,
            database=db["NAME"],
        ).render_as_string(hide_password=False)
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if connection.is_in_memory_db():  # the tests' in-memory database: a file of its own
            path = Path(settings.VAR_DIR) / "optuna-memory.sqlite3"
        else:
            path = Path(f"{name}.optuna")
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    raise ServiceError(f"Sweeps need PostgreSQL or SQLite; this database is {connection.vendor}.", status=503)


_storages: dict[str, Any] = {}
_storages_lock = threading.Lock()


def study_storage():
    """Optuna's ``RDBStorage`` on this database, one per URL and process. No pool: a connection per
    operation, so nothing is held across a fork (Celery's prefork pool), a database restart or the
    end of a test (whose database is dropped)."""
    import optuna
    from sqlalchemy.pool import NullPool

    url = storage_url()
    with _storages_lock:
        storage = _storages.get(url)
        if storage is None:
            optuna.logging.disable_default_handler()  # into Django's logging instead of a handler of its own
            optuna.logging.enable_propagation()
            try:
                storage = optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})
            except Exception:  # two processes creating the tables at once: the second finds them
                logger.warning("creating the sweep study storage failed once; trying again", exc_info=True)
                storage = optuna.storages.RDBStorage(url, engine_kwargs={"poolclass": NullPool})
            _storages[url] = storage
    return storage


def sampler_for(sweep: Sweep, offset: int):
    """A fresh sampler for the next ask. Samplers keep their random state in memory, and every
    advance builds the study anew, so a seeded sweep seeds each ask by how many trials came before:
    the same sweep asks the same parameters again after a restart, and never repeats itself."""
    from optuna.samplers import RandomSampler, TPESampler

    seed = None if sweep.seed is None else (sweep.seed + offset) % 2**32
    return RandomSampler(seed=seed) if sweep.sampler == SweepSampler.RANDOM else TPESampler(seed=seed)


def _pruner(sweep: Sweep):
    from optuna.pruners import MedianPruner, NopPruner

    return MedianPruner() if sweep.pruner == SweepPruner.MEDIAN else NopPruner()


def open_study(sweep: Sweep):
    """The sweep's study, created on its first advance."""
    import optuna

    storage, sampler, pruner = study_storage(), sampler_for(sweep, 0), _pruner(sweep)
    try:
        return optuna.load_study(study_name=sweep.study_name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        return optuna.create_study(
            storage=storage,
            study_name=sweep.study_name,
            direction=sweep.direction,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )


def study_trials(sweep: Sweep) -> list:
    """The study's trials (optuna ``FrozenTrial``), oldest first; none before the first advance."""
    import optuna

    try:
        study = optuna.load_study(study_name=sweep.study_name, storage=study_storage())
    except KeyError:
        return []
    return study.get_trials(deepcopy=False)


# -- the search space ------------------------------------------------------------------------------


def distributions_of(space: dict) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    made = {}
    for name, entry in space.items():
        if entry["type"] == "choice":
            # JSON text: a choice may be a list (lora_target_modules) or null, which optuna cannot hold.
            made[name] = CategoricalDistribution([json.dumps(v, sort_keys=True) for v in entry["values"]])
        elif entry["type"] == "int":
            made[name] = IntDistribution(entry["low"], entry["high"], log=entry["log"], step=entry["step"] or 1)
        else:
            made[name] = FloatDistribution(entry["low"], entry["high"], log=entry["log"], step=entry["step"])
    return made


def decode_params(space: dict, params: dict) -> dict:
    """A trial's parameters as config values (choices come back from their JSON text)."""
    decoded = {}
    for name, value in params.items():
        entry = space.get(name, {})
        if entry.get("type") == "choice" and isinstance(value, str):
            decoded[name] = json.loads(value)
        elif entry.get("type") == "int":
            decoded[name] = int(value)
        else:
            decoded[name] = value
    return decoded


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _canonical(value: Any) -> Any:
    """A value as JSON Schema compares them (uniqueItems): 1 and 1.0 are one number."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def _field_type(config_class, name: str) -> str | None:
    import dataclasses

    for f in dataclasses.fields(config_class):
        if f.name == name:
            return f.type.__name__ if isinstance(f.type, type) else str(f.type)
    return None


def _space_entry(name: str, entry: Any, spelled: str) -> dict:
    """One field's range, checked and with its defaults (log false, step null)."""
    key = f"search_space.{name}"
    if not isinstance(entry, dict):
        raise input_error(key, 'expected an object: {"type": "choice", "values": [...]} or {"type": "int", ...}')
    kind = entry.get("type")
    if kind not in SPACE_KEYS:
        raise input_error(f"{key}.type", f"expected choice, int or float, got {kind!r:.40}")
    unknown = sorted(set(entry) - SPACE_KEYS[kind])
    if unknown:
        raise input_error(
            f"{key}.{unknown[0]}", f"unknown key for a {kind}; known: {', '.join(sorted(SPACE_KEYS[kind]))}"
        )
    if kind == "choice":
        values = entry.get("values")
        if not isinstance(values, list) or not values:
            raise input_error(f"{key}.values", "expected a non-empty list of values")
        if len(values) > MAX_CHOICES:
            raise input_error(f"{key}.values", f"at most {MAX_CHOICES} values")
        texts = [json.dumps(_canonical(v), sort_keys=True) for v in values]
        if len(set(texts)) != len(texts):
            raise input_error(f"{key}.values", "lists a value twice")
        return {"type": "choice", "values": values}
    if spelled not in RANGE_FIELD_TYPES[kind]:
        hint = "int" if kind == "float" and spelled.startswith("int") else "choice"
        raise input_error(f"{key}.type", f"{name} is a {spelled} field; a {kind} range cannot set it (use {hint})")
    low, high, log, step = entry.get("low"), entry.get("high"), entry.get("log", False), entry.get("step")
    integral = kind == "int"
    for which, value in (("low", low), ("high", high)):
        if not is_number(value) or (integral and not isinstance(value, int)):
            raise input_error(
                f"{key}.{which}", f"expected {'an integer' if integral else 'a number'}, got {value!r:.40}"
            )
    if low >= high:
        raise input_error(key, f"empty range: low {low} must be below high {high}")
    if not isinstance(log, bool):
        raise input_error(f"{key}.log", "expected true or false")
    if step is not None and (not is_number(step) or step <= 0 or (integral and not isinstance(step, int))):
        raise input_error(f"{key}.step", f"expected a positive {'integer' if integral else 'number'}, got {step!r:.40}")
    if log and low <= 0:
        raise input_error(f"{key}.low", "a log range starts above 0")
    if log and step is not None and not (integral and step == 1):
        raise input_error(f"{key}.step", "a log range takes no step")
    if integral and step is not None and (high - low) % step:
        raise input_error(f"{key}.step", f"high - low ({high - low}) is not a multiple of step {step}")
    return {"type": kind, "low": low, "high": high, "log": log, "step": step}


def _sample_points(entry: dict) -> list:
    """The values a field's range is checked at against the config class: each choice, both ends and
    the middle (as the distribution reaches them)."""
    if entry["type"] == "choice":
        return list(entry["values"])
    from optuna.distributions import FloatDistribution, IntDistribution

    low, high, log, step = entry["low"], entry["high"], entry["log"], entry["step"]
    if entry["type"] == "int":
        made = IntDistribution(low, high, log=log, step=step or 1)
        middle = round(math.sqrt(low * made.high) if log else (low + made.high) / 2)
        middle = low + (middle - low) // made.step * made.step
    else:
        made = FloatDistribution(low, high, log=log, step=step)  # high: the last step it reaches
        middle = math.exp((math.log(low) + math.log(made.high)) / 2) if log else low / 2 + made.high / 2
    return [low, middle, made.high]


def search_space_check(*, spec: KindSpec, search_space: Any, config: dict) -> dict:
    """The search space with its defaults, or a 400 naming the field: each key a config field of the
    kind that a person may set (not one the platform fills from inputs, not a path on the workers,
    not also fixed in ``config``), each range non-empty and of the field's type."""
    config_class = spec.config_class
    if not isinstance(search_space, dict) or not search_space:
        raise input_error("search_space", "expected an object with at least one config field")
    if len(search_space) > MAX_FIELDS:
        raise input_error("search_space", f"at most {MAX_FIELDS} fields")
    filled = filled_fields(spec)
    paths = worker_path_fields(config_class)
    checked = {}
    for name, entry in search_space.items():
        key = f"search_space.{name}"
        spelled = _field_type(config_class, name)
        if spelled is None:
            raise input_error(key, f"{spec.kind} has no config field {name!r}")
        if name in filled:
            raise input_error(key, f"{name} is filled by the platform from the inputs; a sweep cannot vary it")
        if name in paths:
            raise input_error(key, f"{name} names a path on the workers; a sweep cannot vary it")
        if name in config:
            raise input_error(key, f"{name} is set in config too; give one or the other")
        checked[name] = _space_entry(name, entry, spelled)
        try:  # optuna's own checks (a step it cannot divide the range by, ...)
            distributions_of({name: checked[name]})
        except (ValueError, ArithmeticError) as exc:
            raise input_error(key, f"not a range optuna can sample: {exc}") from None
    return checked


def check_sample_points(*, kind: str, space: dict, config: dict) -> None:
    """Every field's sample values through the kind's config class (the other fields at the base)."""
    for name, entry in space.items():
        for value in _sample_points(entry):
            try:
                run_services.run_validate_config(kind=kind, config={**config, name: value})
            except ServiceError as exc:
                message = f"{value!r:.80} is refused by {kind}'s config: {exc.message}"
                raise input_error(f"search_space.{name}", message) from None
