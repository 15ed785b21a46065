"""What every training service module looks up the same way, with no other service module below it:
where a run's files live, and the 400 that names an input field. (Modules import from here, never
from each other, for these, so no service module needs a function-local import to reach them.)"""

from pathlib import Path

from django.conf import settings

from common.exceptions import ServiceError

RUNS_DIR = "runs"


def run_folder(run_id: int) -> Path:
    """``ARTIFACT_ROOT/runs/<id>/``: run.json, the run's inputs and everything it writes."""
    return Path(settings.ARTIFACT_ROOT) / RUNS_DIR / str(run_id)


def input_error(key: str, message: str) -> ServiceError:
    """A 400 whose message and errors name the field (``inputs.snapshot``, ``config.principles``)."""
    return ServiceError(f"{key}: {message}", errors={key: [message]})
