"""The S3 backend of ``common.storage`` (``ARTIFACT_STORAGE=s3``); call it through that module.

Objects live in the bucket of the ``"artifacts"`` storage of ``settings.STORAGES`` (django-storages'
S3Storage), under the keys of the local layout: ``<relpath>/<file>`` (``models/<name>/<version>/...``,
``snapshots/<project>/<version>/...``, ``runs/<id>/...``).

All-or-nothing for readers: S3 has no rename, so a folder is published in two steps. ``publish``
uploads every file of the staged folder, then writes ``<relpath>/_COMPLETE`` last: a small JSON
manifest (``upload_id``, the files and their sizes). Readers look at the marker only: ``exists`` is
"the marker is there", ``list_files`` returns the manifest (objects outside it are ignored),
``materialize`` downloads what the manifest lists. A folder without its marker (an upload in
progress, or one that failed) does not exist. ``remove`` deletes the marker first, then the prefix.
A failed upload deletes what it had uploaded; a crash mid-upload leaves unlisted objects that the
next ``publish`` to the same key clears first. The caller writes its row after the marker (the
registry: in the transaction that holds the model's row lock), so a row always names a complete
folder. The staged local folder is deleted when that transaction commits (a rollback leaves it to
``unstage``, which can move a moved folder back). ``publish_files`` uploads copies of some files of a
folder that stays (a run's work folder), the same way, marker last.

Download cache: ``materialize`` downloads a folder into ``ARTIFACT_ROOT/cache/<relpath>/`` so that
workers can read it from disk. The files go into a hidden ``.download-*`` folder beside it, then
the manifest is copied there last, then the folder is renamed into place: a cache folder is
complete or absent. It is reused when its manifest's ``upload_id`` equals the bucket's (one small GET
per call), so a folder that was removed and published again is downloaded afresh. Two processes
that materialize the same folder wait on a lock file (``flock``) so that one downloads; if the lock
is not honoured (some network filesystems) both download and the rename decides: the loser sees a
valid folder in place and drops its copy.
"""

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from botocore.exceptions import ClientError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from storages.utils import clean_name

from common import storage as base

STORAGE_ALIAS = "artifacts"
MARKER = "_COMPLETE"
MANIFEST_FORMAT = 1
CACHE_DIR = "cache"
DOWNLOAD_PREFIX = ".download-"
STALE_PREFIX = ".stale-"


def backend():
    """The django-storages S3Storage configured as ``STORAGES["artifacts"]``."""
    return storages[STORAGE_ALIAS]


def _clean(relpath: str) -> str:
    """A relative key path with no climbing: ``models/x/1``, ``models/x/1/sub/file.json``."""
    path = PurePosixPath(relpath)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise ValueError(f"Artifact path {relpath!r} is outside the artifact store.")
    return str(path)


def _name(relpath: str, name: str) -> str:
    return _clean(str(PurePosixPath(relpath, name)))


def _object_key(name: str) -> str:
    """The bucket key of a storage name (django-storages adds its ``location`` prefix, if any)."""
    return backend()._normalize_name(clean_name(name))


def _missing(relpath: str) -> FileNotFoundError:
    return FileNotFoundError(f"The artifact folder {relpath} is missing from the artifact store.")


# --- writes ---


def _local_files(folder: Path) -> list[tuple[str, int]]:
    files = [(p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()]
    # A folder materialized from the store carries its source's marker; the new folder gets its own.
    return sorted((name, size) for name, size in files if name != MARKER)


def _upload(folder: Path, relpath: str, files: list[tuple[str, int]]) -> None:
    """Upload ``files`` of ``folder`` under ``relpath``, then the marker; on any failure, delete what
    was uploaded. What was published at ``relpath`` before is removed first."""
    storage = backend()
    remove(relpath)  # the leftover of a publish that never wrote its row, or an earlier copy
    try:
        for name, _size in files:
            with (folder / name).open("rb") as source:
                storage.save(_name(relpath, name), File(source, name=name))
        manifest = {"format": MANIFEST_FORMAT, "upload_id": uuid.uuid4().hex, "files": [list(f) for f in files]}
        storage.save(_name(relpath, MARKER), ContentFile(json.dumps(manifest).encode()))
    except BaseException:
        with contextlib.suppress(Exception):  # the upload's own error is the one to report
            remove(relpath)
        raise


def publish(staged: Path, relpath: str) -> None:
    """Upload the staged folder's files, then the marker; the staged folder goes on commit."""
    relpath = _clean(relpath)
    _upload(staged, relpath, _local_files(staged))
    # Uploaded: the staged copy goes once the row is committed (at once outside a transaction).
    transaction.on_commit(lambda: shutil.rmtree(staged, ignore_errors=True), robust=True)


def publish_files(folder: Path, relpath: str, names: list[str]) -> None:
    """Upload copies of ``names`` (relative to ``folder``, which stays), then the marker."""
    relpath = _clean(relpath)
    files = sorted((_clean(name), (folder / name).stat().st_size) for name in names if name != MARKER)
    _upload(folder, relpath, files)


def remove(relpath: str) -> None:
    """Delete the folder: its marker first (readers stop seeing it), then every object, then the cache."""
    relpath = _clean(relpath)
    storage = backend()
    storage.delete(_name(relpath, MARKER))
    storage.bucket.objects.filter(Prefix=_object_key(relpath) + "/").delete()
    _drop(_cache_path(relpath))


# --- reads ---


def _manifest(relpath: str) -> dict:
    relpath = _clean(relpath)
    try:
        with backend().open(_name(relpath, MARKER), "rb") as marker:
            manifest = json.loads(marker.read())
    except FileNotFoundError:
        raise _missing(relpath) from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"The marker of {relpath} has an unknown format: {manifest.get('format')!r}.")
    return manifest


def exists(relpath: str) -> bool:
    return backend().exists(_name(relpath, MARKER))


def list_files(relpath: str) -> list[tuple[str, int]]:
    """The files the marker lists, ``(name, size)`` sorted by name; FileNotFoundError without a marker."""
    return sorted((_clean(name), int(size)) for name, size in _manifest(relpath)["files"])


def open_file(relpath: str, name: str) -> BinaryIO:
    """A streaming read of one object (S3File would first copy the whole object into memory)."""
    try:
        return backend().bucket.Object(_object_key(_name(relpath, name))).get()["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(f"{name} is missing from {relpath} in the artifact store.") from None
        raise


# --- the local cache ---


def _cache_path(relpath: str) -> Path:
    return base.local_path(str(PurePosixPath(CACHE_DIR, _clean(relpath))))


def _cached_upload(folder: Path) -> str | None:
    try:
        return json.loads((folder / MARKER).read_text()).get("upload_id")
    except (OSError, ValueError, AttributeError):
        return None


def _drop(folder: Path) -> None:
    """Take a cache folder out of its place in one rename, then delete it."""
    stale = folder.parent / f"{STALE_PREFIX}{uuid.uuid4().hex}"
    try:
        os.rename(folder, stale)
    except FileNotFoundError:
        return
    shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """An exclusive lock on ``.<name>.lock`` beside the cache folder (released if the process dies)."""
    with (target.parent / f".{target.name}.lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _download(relpath: str, manifest: dict, into: Path) -> None:
    storage = backend()
    into.mkdir(parents=True)
    for name, size in manifest["files"]:
        dest = into / _clean(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        storage.bucket.Object(_object_key(_name(relpath, name))).download_file(
            str(dest), Config=storage.transfer_config
        )
        if dest.stat().st_size != size:
            raise OSError(f"{relpath}/{name}: downloaded {dest.stat().st_size} bytes, the marker says {size}.")
    (into / MARKER).write_text(json.dumps(manifest))  # last: a folder with it is complete


def _install(download: Path, target: Path, upload_id: str) -> None:
    """Rename the finished download into place; a stale folder there is replaced, a valid one kept."""
    for _ in range(10):
        try:
            os.rename(download, target)  # replaces only a missing or empty folder
            return
        except OSError:
            if not target.exists():
                continue
            if _cached_upload(target) == upload_id:
                return  # another process put the same upload in place
            _drop(target)
    raise OSError(f"Could not put the download of {target} in place.")


def materialize(relpath: str) -> Path:
    """The folder as a local copy in the cache, downloaded unless a copy of the same upload is there."""
    relpath = _clean(relpath)
    manifest = _manifest(relpath)
    upload_id = manifest["upload_id"]
    target = _cache_path(relpath)
    if _cached_upload(target) == upload_id:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        if _cached_upload(target) == upload_id:
            return target  # downloaded by whoever held the lock
        download = target.parent / f"{DOWNLOAD_PREFIX}{uuid.uuid4().hex}"
        try:
            _download(relpath, manifest, download)
            _install(download, target, upload_id)
        finally:
            shutil.rmtree(download, ignore_errors=True)
    return target
