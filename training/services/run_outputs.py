"""What a finished training run leaves in the registry.

A successful ``sft``/``reward_model``/``dpo``/``rlhf`` run's result lists its outputs
(``training.ml.hf_training``: ``{"dir", "task", "role"}``); each becomes a version of the run's
``output_model`` with its lineage: base version, snapshot, run, and the run's metrics. Adapters are
registered first; a merged model names the adapter's base as its base too. An ``evaluate`` run's
metrics table is written into the evaluated version's ``metrics["evaluations"]`` (by run id), so a
version carries its own scores and can be compared with its base.

Registration happens when the run succeeded; the folders are moved (not copied) out of the run
folder into the store. A failure here fails the run with the reason (the supervisor's handler rule).
Each output is registered once: a version remembers its run and role (unique together), so a run
resumed after a kill between registering and finishing, whose handler finishes again, gets the
versions of its first attempt back (its new folders stay in the run folder); an evaluation is
keyed by the run's id and written once. The versions belong to the run's project (none for a
platform-level run: unscoped, platform admins read it).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from models_registry.models import ModelVersion
from models_registry.services import model_version_register
from training.models import TrainingRun

logger = logging.getLogger(__name__)

ROLE_ORDER = {"adapter": 0, "full": 1, "merged": 2}
MAX_EVALUATIONS_KEPT = 20


def _summary(metrics: dict) -> dict:
    """Scalars only: the registry's metrics summary, not the run's curves."""
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float | str | bool) or v is None}


@dataclass
class OutputsRegistrar:
    """The runner's handler for the kinds that register models and for ``evaluate`` (``KindSpec.handler``
    in ``training.kinds``)."""

    run: TrainingRun
    folder: Path
    registered: list[dict] = field(default_factory=list)

    @classmethod
    def for_run(cls, run: TrainingRun, folder: Path) -> "OutputsRegistrar":
        return cls(run=run, folder=folder)

    def on_artifact(self, event: dict) -> int:
        return 0

    def finish(self, *, result: dict, succeeded: bool) -> dict[str, Any]:
        if not succeeded:
            return {}
        if self.run.kind == "evaluate":
            return evaluation_store(run=self.run, result=result)
        self.registered = outputs_register(run=self.run, folder=self.folder, result=result)
        return {"registered": self.registered}


def _tags(run: TrainingRun, role: str) -> list[str]:
    tags = [run.kind, role]
    if run.config.get("algorithm"):
        tags.append(run.config["algorithm"])
    if run.inputs.get("cai_run"):  # trained on constitutional-AI revisions or pairs: say under which version
        tags += ["cai", f"constitution-v{run.inputs.get('constitution')}"]
    return tags


def outputs_register(*, run: TrainingRun, folder: Path, result: dict) -> list[dict]:
    outputs = result.get("outputs") or []
    if not isinstance(outputs, list):
        raise ValueError("the run's result has no list of outputs")
    base = ModelVersion.objects.filter(pk=run.inputs.get("base_version")).first()
    name = run.inputs.get("output_model") or f"run-{run.pk}"
    metrics = _summary(result.get("metrics") or {})
    registered = []
    roles = [entry.get("role", "full") for entry in outputs]
    if len(set(roles)) != len(roles):
        raise ValueError(f"the run's result lists two outputs of one role ({', '.join(roles)})")
    for entry in sorted(outputs, key=lambda o: ROLE_ORDER.get(o.get("role"), 9)):
        role = entry.get("role", "full")
        path = (folder / str(entry["dir"])).resolve()
        done = ModelVersion.objects.select_related("model").filter(source_run_id=run.pk, source_role=role).first()
        # (A resumed run's first attempt may have moved this folder into the store already.)
        if folder.resolve() not in path.parents or (done is None and not path.is_dir()):
            raise ValueError(f"output {entry['dir']!r} is not a folder inside the run's folder")
        version = done or model_version_register(
            model_name=name,
            task=entry["task"],
            folder=path,
            fmt=None,
            base_version=base,
            run_id=run.pk,
            run_role=role,
            project_id=run.project_id,
            snapshot_id=run.inputs.get("snapshot"),
            metrics=metrics,
            tags=_tags(run, role),
            created_by=run.created_by,
            copy=False,
            merged=role == "merged" and base is not None,
            description=f"{run.kind} run {run.pk}",
        )
        registered.append(
            {
                "id": version.pk,
                "model": version.model.name,
                "model_id": version.model_id,
                "version": version.version,
                "role": role,
            }
        )
        logger.info(
            "run %s %s %s v%s (%s)",
            run.pk,
            "had registered" if done else "registered",
            version.model.name,
            version.version,
            role,
        )
    return registered


@transaction.atomic
def evaluation_store(*, run: TrainingRun, result: dict) -> dict[str, Any]:
    """The evaluate run's table into the evaluated version's metrics (kept per run, newest last).

    Written once per run: a resumed run that finishes again finds its entry (under the row lock) and
    leaves the version as it is."""
    version = ModelVersion.objects.select_for_update().filter(pk=run.inputs.get("base_version")).first()
    if version is None:
        return {}
    if any(e.get("run") == run.pk for e in (version.metrics or {}).get("evaluations", [])):
        return {"evaluated_version": version.pk}
    entry = {
        "run": run.pk,
        "dataset": run.inputs.get("dataset"),
        "split": run.inputs.get("split"),
        "summary": _summary(result.get("metrics") or {}),
        "table": result.get("table") or [],
    }
    evaluations = [*(version.metrics or {}).get("evaluations", []), entry][-MAX_EVALUATIONS_KEPT:]
    version.metrics = {**(version.metrics or {}), "evaluations": evaluations}
    version.save(update_fields=["metrics"])
    return {"evaluated_version": version.pk}
