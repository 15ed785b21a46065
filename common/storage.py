"""The artifact store: every read and write of artifact files goes through these few functions.

Artifacts are folders named by a path relative to the store (the database stores that path):
registry versions ``models/<model name>/<version>/`` (``models_registry.storage`` names them),
preference snapshots ``snapshots/<project>/<version>/``, training runs' files ``runs/<id>/``.
Services, selectors and views never join paths onto ``settings.ARTIFACT_ROOT`` themselves
(tests/test_storage_layer.py checks it): they read and write through these functions, and open a
local file only at a path one of them gave. Two backends, picked by ``settings.ARTIFACT_STORAGE``:

- ``local`` (default): folders on disk under ``settings.ARTIFACT_ROOT`` (a shared volume in
  production). Writes are atomic: a folder is copied, moved or built into a hidden ``.incoming-*``
  folder beside its destination, then renamed into place, so a reader never sees half a folder.
- ``s3``: objects in the bucket of the ``"artifacts"`` storage (django-storages), same keys. Staging
  stays local (under ``ARTIFACT_ROOT``); ``publish`` uploads the files, then a ``_COMPLETE`` marker
  last; a folder without its marker does not exist for readers. See ``storage_s3``.

``ARTIFACT_ROOT`` is also every process's local work area, whatever the backend: staging folders,
``.scratch/`` (downloads), ``cache/`` (S3 downloads) and the folders runs work in (``runs/<id>/``
on the worker that runs them; ``local_path`` gives them, ``publish_copy`` puts their files in the
store). Workers read artifacts from a local folder: ``materialize(relpath)`` gives one (the folder
itself on local disk; a verified download cache under ``ARTIFACT_ROOT/cache/`` with S3).
"""

import os
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings

INCOMING_PREFIX = ".incoming-"
CHUNK = 1024 * 1024
# Never copied into the store: VCS and download bookkeeping.
IGNORED_NAMES = (".git", ".cache", ".huggingface", "__pycache__")
# Already-compressed or binary weights are stored as-is in a zip; the rest is deflated.
STORED_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".zip", ".gz")


def root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def on_s3() -> bool:
    """Whether artifacts live in the S3 bucket (``ARTIFACT_STORAGE=s3``) rather than under ``root()``."""
    return getattr(settings, "ARTIFACT_STORAGE", "local") == "s3"


def _s3():
    from common import storage_s3  # boto3 is imported only where S3 is used

    return storage_s3


def local_path(relpath: str) -> Path:
    """The path on local disk under ``root()`` for a relative path; refuses paths that climb out of it.

    With S3 a published folder is not on local disk: hand workers ``materialize(relpath)`` instead;
    what stays local whatever the backend (staging, a run's work folder) is found here too.
    """
    base = root().resolve()
    path = (base / relpath).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"Artifact path {relpath!r} is outside the artifact store.")
    return path


def staging_dir(under: str) -> Path:
    """A fresh, empty hidden folder inside ``under`` (the parent of the destination), on local disk,
    to build a folder in before ``publish`` (beside its destination: the rename stays on one disk)."""
    parent = local_path(under)
    parent.mkdir(parents=True, exist_ok=True)
    staged = parent / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
    staged.mkdir()
    return staged


def stage(source: Path, *, under: str, move: bool, skip: Iterable[str] = ()) -> Path:
    """Copy (or move) ``source`` into a fresh hidden folder inside ``under`` (the destination's parent).

    ``skip`` names files (relative paths) that are not to be copied. A move leaves nothing behind at
    ``source``; ``unstage(..., restore_to=source)`` puts it back if registration fails.
    """
    parent = local_path(under)
    parent.mkdir(parents=True, exist_ok=True)
    staged = parent / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
    skipped = {str(PurePosixPath(s)) for s in skip}
    if move and not skipped:
        shutil.move(str(source), str(staged))
        for name in IGNORED_NAMES:
            leftover = staged / name
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
        return staged

    def ignore(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(source)
        return {n for n in names if n in IGNORED_NAMES or str(PurePosixPath(*rel.parts, n)) in skipped}

    # symlinks=False copies what links point at (a hub cache's snapshot folder is all links).
    shutil.copytree(source, staged, symlinks=False, ignore=ignore)
    if move:
        shutil.rmtree(source)
    return staged


def scratch_dir() -> Path:
    """A folder inside the store for downloads, so that registering them is a rename, not a copy."""
    path = root() / ".scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unstage(staged: Path, *, restore_to: Path | None = None) -> None:
    """Undo ``stage``: move a moved folder back to where it came from, or delete the copy."""
    if not staged.exists():
        return
    if restore_to is not None and not restore_to.exists():
        shutil.move(str(staged), str(restore_to))
    else:
        shutil.rmtree(staged, ignore_errors=True)


def publish(staged: Path, relpath: str) -> None:
    """Rename a staged folder to its final place (atomic on one filesystem).

    The caller makes sure that ``relpath`` is free (a lock in the database, a fresh version number);
    a folder already there is the leftover of a publish whose transaction rolled back, and is
    replaced. With S3: an upload, then the marker; the staged folder is deleted when the caller's
    transaction commits (at once outside a transaction).
    """
    if on_s3():
        _s3().publish(staged, relpath)
        return
    final = local_path(relpath)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staged, final)


def publish_copy(folder: Path, relpath: str, *, names: Iterable[str]) -> None:
    """Publish copies of ``names`` (paths relative to ``folder``) as the folder ``relpath``;
    ``folder`` stays as it is (a run's work folder, which a later attempt may reuse).

    On local disk, when ``folder`` is already ``local_path(relpath)``, there is nothing to do. With
    S3: the files are uploaded, the marker last, replacing what was published there before.
    """
    names = sorted({str(PurePosixPath(n)) for n in names})
    if on_s3():
        _s3().publish_files(folder, relpath, names)
        return
    final = local_path(relpath)
    if Path(folder).resolve() == final:
        return
    staged = staging_dir(str(PurePosixPath(relpath).parent))
    try:
        for name in names:
            target = staged / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(folder) / name, target)
        publish(staged, relpath)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def unpublish(relpath: str, staged: Path) -> None:
    """Undo ``publish`` (its transaction failed): the folder goes back to where it was staged."""
    if on_s3():
        _s3().remove(relpath)  # the staged folder is still there: it goes only on commit
        return
    final = local_path(relpath)
    if final.exists() and not staged.exists():
        os.replace(final, staged)


def remove(relpath: str) -> None:
    if on_s3():
        _s3().remove(relpath)
        return
    shutil.rmtree(local_path(relpath), ignore_errors=True)


def exists(relpath: str) -> bool:
    if on_s3():
        return _s3().exists(relpath)
    return local_path(relpath).is_dir()


def list_files(relpath: str) -> list[tuple[str, int]]:
    """``(name relative to the folder, size in bytes)`` of every file, sorted by name."""
    if on_s3():
        return _s3().list_files(relpath)
    base = local_path(relpath)
    if not base.is_dir():
        raise FileNotFoundError(f"The artifact folder {relpath} is missing from the artifact store.")
    files = [(p.relative_to(base).as_posix(), p.stat().st_size) for p in base.rglob("*") if p.is_file()]
    return sorted(files)


def open_file(relpath: str, name: str) -> BinaryIO:
    """A binary stream of one file of the folder (FileNotFoundError when it is not there)."""
    if on_s3():
        return _s3().open_file(relpath, name)
    path = local_path(str(PurePosixPath(relpath, name)))
    return path.open("rb")


def materialize(relpath: str) -> Path:
    """A local folder holding the folder's files, for a worker to read (a model to load, pairs to train on).

    On local disk, the folder itself. With S3, a download into ``ARTIFACT_ROOT/cache/<relpath>/``,
    made once and reused while it matches the bucket's copy; complete or absent, never half there
    (see ``storage_s3.materialize``). Raises FileNotFoundError when the folder is missing from the
    store (S3).
    """
    if on_s3():
        return _s3().materialize(relpath)
    return local_path(relpath)


class _ZipSink:
    """A write-only stream that hands what zipfile writes to a generator, chunk by chunk."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.offset = 0

    def write(self, data) -> int:
        data = bytes(data)
        self.chunks.append(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def zip_stream(relpath: str, *, prefix: str) -> Iterator[bytes]:
    """The folder as a zip archive, produced while it is read: memory stays at about one chunk.

    Entries are named ``<prefix>/<file>``; weights are stored, text files deflated. The output
    stream is not seekable, so zipfile writes data descriptors after each entry.
    """
    files = list_files(relpath)
    sink = _ZipSink()
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as archive:
        for name, size in files:
            info = zipfile.ZipInfo(f"{prefix}/{name}")
            info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            with open_file(relpath, name) as source, archive.open(info, mode="w", force_zip64=size > 2**31) as entry:
                while block := source.read(CHUNK):
                    entry.write(block)
                    if sink.chunks:
                        yield sink.drain()
            if sink.chunks:
                yield sink.drain()
    if sink.chunks:
        yield sink.drain()
