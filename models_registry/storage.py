"""Where registry versions live in the artifact store (``common.storage``), and the store's functions
under the names the registry calls them by.

A version lives in ``models/<model name>/<version>/``; the database stores that folder as a path
relative to the store. Services, selectors and views never touch paths themselves: every read and
write goes through these functions, that is through ``common.storage`` and its backends (local disk
with atomic renames, or S3 with a ``_COMPLETE`` marker written last: ``common.storage_s3``). Workers
load models from a local folder: ``materialize(relpath)`` gives one (the folder itself on local
disk; a verified download cache under ``ARTIFACT_ROOT/cache/models/...`` with S3).
"""

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from common import storage as store
from common.storage import (
    CHUNK,
    IGNORED_NAMES,
    INCOMING_PREFIX,
    STORED_SUFFIXES,
    exists,
    list_files,
    local_path,
    materialize,
    on_s3,
    open_file,
    publish,
    remove,
    root,
    scratch_dir,
    unpublish,
    unstage,
    zip_stream,
)

__all__ = [
    "CHUNK",
    "IGNORED_NAMES",
    "INCOMING_PREFIX",
    "MODELS_DIR",
    "STORED_SUFFIXES",
    "exists",
    "list_files",
    "local_path",
    "materialize",
    "on_s3",
    "open_file",
    "publish",
    "remove",
    "root",
    "scratch_dir",
    "stage",
    "unpublish",
    "unstage",
    "version_relpath",
    "zip_stream",
]

MODELS_DIR = "models"


def version_relpath(model_name: str, version: int) -> str:
    return str(PurePosixPath(MODELS_DIR, model_name, str(version)))


def stage(source: Path, *, model_name: str, move: bool, skip: Iterable[str] = ()) -> Path:
    """Copy (or move) ``source`` into a fresh hidden folder beside the model's versions.

    ``skip`` names files (relative paths) that are not to be copied. A move leaves nothing behind at
    ``source``; ``unstage(..., restore_to=source)`` puts it back if registration fails.
    """
    return store.stage(source, under=str(PurePosixPath(MODELS_DIR, model_name)), move=move, skip=skip)
