"""What every training service module looks up the same way, with no other service module below it:
where a run's files live, and the 400 that names an input field. (Modules import from here, never
from each other, for these, so no service module needs a function-local import to reach them.)

A run's files: the run works in a folder on the local disk of the worker that runs it,
``runs/<id>/`` under the artifact store's local root (``run_folder``, through
``common.storage.local_path``, like staging): run.json, the run's inputs and everything it writes.
With the local backend that folder is also where the store keeps them. With ``ARTIFACT_STORAGE=s3``
the runner publishes the folder's finished files (its top-level files: run.json, inputs, results,
samples; not model folders, which the registry publishes, nor checkpoints) to ``runs/<id>`` in the
bucket when the run ends (``training.runner``). Readers on any process use ``run_file_open`` /
``run_file_exists``: the local work folder when the file is there, else the store's copy.
"""

from pathlib import Path, PurePosixPath
from typing import BinaryIO

from common import storage
from common.exceptions import ServiceError

RUNS_DIR = "runs"


def run_relpath(run_id: int) -> str:
    """The run's folder in the artifact store: ``runs/<id>``."""
    return str(PurePosixPath(RUNS_DIR, str(run_id)))


def run_folder(run_id: int) -> Path:
    """The run's work folder on local disk, ``runs/<id>/`` in the store's local root: run.json, the
    run's inputs and everything it writes."""
    return storage.local_path(run_relpath(run_id))


def run_published_files(folder: Path) -> list[str]:
    """The files of a run folder that are kept in the store once the run ends: its top-level files but
    hidden ones (the folder's lock) and half-written ones (``*.tmp``); folders (models: the registry
    publishes the registered ones; checkpoints) stay on the worker."""
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
    )


def _stored_names(run_id: int) -> dict[str, int]:
    """``{name: size}`` of the run's files in the store (S3; empty before the run ended)."""
    try:
        return dict(storage.list_files(run_relpath(run_id)))
    except FileNotFoundError:
        return {}


def run_file_exists(run_id: int, name: str) -> bool:
    """Whether the run has file ``name`` (a top-level file of its folder): locally or in the store."""
    if (run_folder(run_id) / name).is_file():
        return True
    return storage.on_s3() and name in _stored_names(run_id)


def run_file_open(run_id: int, name: str) -> BinaryIO:
    """One file of the run's folder for reading: the local work folder's copy when it is on this
    machine (the worker running it, a shared volume), else the store's (S3, once the run ended).
    FileNotFoundError when neither has it."""
    local = run_folder(run_id) / name
    if local.is_file():
        return local.open("rb")
    if storage.on_s3() and name in _stored_names(run_id):
        return storage.open_file(run_relpath(run_id), name)
    raise FileNotFoundError(f"run {run_id} has no file {name}")


def input_error(key: str, message: str) -> ServiceError:
    """A 400 whose message and errors name the field (``inputs.snapshot``, ``config.principles``)."""
    return ServiceError(f"{key}: {message}", errors={key: [message]})
