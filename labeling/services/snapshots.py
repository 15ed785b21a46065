"""Preference snapshots: immutable, versioned exports of pairs (DESIGN.md, PreferenceSnapshot).

``snapshot_create`` validates the options, takes the project's next version and enqueues the build
once the transaction commits; ``snapshot_build`` (run by the Celery task) streams the live tables in
one read transaction (:mod:`labeling.selectors.snapshot_rows`: server-side cursors in comparison-id
order), converts each comparison with :mod:`labeling.pairs` as it is read and writes its pairs at
once (:mod:`labeling.pair_files`) into a staging folder of the artifact store (:mod:`common.storage`):
``train``/``eval`` (+ ``test`` when it has pairs) as ``.jsonl`` and ``.parquet``, the same splits as a
Hugging Face DatasetDict folder ``hf/`` (what ``save_to_disk`` writes), and ``manifest.json``. Memory
stays flat whatever the number of rankings. The folder is then published as
``snapshots/<project>/<version>`` (``snapshot.path``): whole or not at all (on local disk a rename; with
``ARTIFACT_STORAGE=s3`` an upload, the ``_COMPLETE`` marker last), before the row says ready, and never
rewritten. Downloads read it through the store (``list_files``/``open_file``), whatever the backend:
``snapshot_file`` gives one split's file, ``snapshot_dataset_tar`` streams ``hf/`` (or one split's
folder) as a tar. Workers get a local copy through ``storage.materialize`` (training.runner).
"""

import contextlib
import logging
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from common import storage
from common.exceptions import Conflict, ServiceError, Unavailable
from labeling import pair_files, tasks
from labeling import pairs as conversion
from labeling.models import PreferenceSnapshot, Project, SnapshotStatus
from labeling.pair_files import HF_FOLDER, PairFileWriter
from labeling.selectors import snapshot_rows
from labeling.tar_stream import Member, TarStream

logger = logging.getLogger(__name__)

FILE_FORMATS = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}  # one file a split
HF = "hf"  # the Hugging Face dataset folder, as a tar
FORMATS = {**FILE_FORMATS, HF: "application/x-tar"}
HF_DICT_FILE = f"{HF_FOLDER}/dataset_dict.json"  # in counts["files"] of the snapshots that have hf/
SNAPSHOT_DIR = "snapshots"
DEFINITIONS = {
    "pair": "Two completions with different levels in one order; ties and F vs F give none.",
    "weight": "1 / C(K, 2), K = completions of the comparison: a fully ordered ranking sums to 1.",
    "margin_per_labeler": "(level(rejected) - level(chosen)) / (K - 1); levels are dense ranks, F last.",
    "margin_consensus": "(votes(winner) - votes(loser)) / voters on the pair.",
    "agreement": "votes for this direction / labelers who levelled both completions (ties count as voters).",
    "consensus_keep": "winner has strictly more votes than loser and votes(winner)/voters >= threshold.",
}


def _options_or_400(options) -> conversion.PairOptions:
    if not isinstance(options, dict):
        raise ServiceError("Snapshot options must be a JSON object.")
    try:
        return conversion.PairOptions.from_dict(options)
    except conversion.OptionError as exc:
        raise ServiceError(str(exc), errors={exc.field: [exc.message]}) from exc


@transaction.atomic
def snapshot_create(*, project: Project, created_by, options: dict | None = None) -> PreferenceSnapshot:
    """A pending snapshot with the project's next version; its build starts after commit."""
    pair_options = _options_or_400(options or {})
    if isinstance(pair_options.criterion, int) and not project.criteria.filter(pk=pair_options.criterion).exists():
        raise ServiceError(
            f"criterion: project {project.pk} has no criterion {pair_options.criterion}.",
            errors={"criterion": [f"Unknown criterion {pair_options.criterion} in this project."]},
        )
    # The project row serializes version numbers (the unique constraint backs it up).
    Project.objects.select_for_update().filter(pk=project.pk).first()
    last = PreferenceSnapshot.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0
    snapshot = PreferenceSnapshot.objects.create(
        project=project,
        version=last + 1,
        options=pair_options.to_dict(),
        status=SnapshotStatus.PENDING,
        created_by=created_by,
    )
    snapshot_id = snapshot.pk
    transaction.on_commit(lambda: tasks.enqueue_snapshot_build(snapshot_id))
    return snapshot


def snapshot_relpath(snapshot: PreferenceSnapshot) -> str:
    """The snapshot's folder in the artifact store: ``snapshots/<project>/<version>``."""
    return str(PurePosixPath(SNAPSHOT_DIR, str(snapshot.project_id), str(snapshot.version)))


def snapshot_folder(snapshot: PreferenceSnapshot) -> Path:
    """Where the snapshot's folder is on local disk with the local backend (``storage.local_path``);
    with S3 it is in the bucket, read through the store (or ``storage.materialize``)."""
    return storage.local_path(snapshot_relpath(snapshot))


@contextmanager
def _consistent_read():
    """One snapshot of the tables for the whole build (the build streams from them while writing)."""
    with transaction.atomic():
        if connection.vendor == "postgresql" and not _inside_outer_atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # SQLite (WAL): a read transaction sees one snapshot from its first read on.
        yield


def _inside_outer_atomic() -> bool:
    return len(connection.atomic_blocks) > 1


def _build_files(snapshot: PreferenceSnapshot, options: conversion.PairOptions, staging: Path):
    """Stream the project into the staging folder: (counts, files, gold accuracy, criteria)."""
    project_id = snapshot.project_id
    with _consistent_read():
        # A small pre-pass: the gold filter needs every labeler's accuracy before the first pair.
        with closing(snapshot_rows.gold_rankings(project_id)) as gold_rankings:
            accuracy = conversion.labeler_gold_accuracy(snapshot_rows.gold_comparisons(project_id), gold_rankings)
        excluded = conversion.excluded_labelers(accuracy, options)
        with (
            PairFileWriter(staging, hf_dataset=True) as writer,
            closing(snapshot_rows.comparisons_with_rankings(project_id)) as items,
        ):
            counts = conversion.export_pairs(items, options, writer.write, excluded=excluded)
            files = writer.close()
        criteria = snapshot_rows.criteria_names(project_id)
    return counts.as_dict(), files, accuracy, criteria


def _write(snapshot: PreferenceSnapshot) -> tuple[dict, Path]:
    """The snapshot's files in a staging folder of the store (local disk): (counts, staging folder)."""
    options = conversion.PairOptions.from_dict(snapshot.options)
    relpath = snapshot_relpath(snapshot)
    if storage.exists(relpath):
        raise FileExistsError(f"{relpath} already exists in the artifact store; snapshots are never rewritten")
    staging = storage.staging_dir(str(PurePosixPath(relpath).parent))
    try:
        counts, files, accuracy, criteria = _build_files(snapshot, options, staging)
        counts = {**counts, "files": {name: info["rows"] for name, info in files.items()}}
        pair_files.write_manifest(
            {
                "snapshot_id": snapshot.pk,
                "project_id": snapshot.project_id,
                "version": snapshot.version,
                "options": options.to_dict(),
                "counts": counts,
                "criteria": {str(pk): name for pk, name in criteria.items()},
                "labelers_excluded_gold_accuracy": sorted(
                    labeler
                    for labeler, value in accuracy.items()
                    if options.min_gold_accuracy is not None and value < options.min_gold_accuracy
                ),
                "columns": list(conversion.COLUMNS),
                "definitions": DEFINITIONS,
                "files": files,
                "created_by": snapshot.created_by_id,
                "created_at": snapshot.created_at.isoformat(),
                "built_at": timezone.now().isoformat(),
            },
            staging,
        )
        pair_files.make_read_only(staging)
    except BaseException:
        storage.unstage(staging)
        raise
    return counts, staging


def snapshot_build(*, snapshot_id: int) -> PreferenceSnapshot | None:
    """Build a pending snapshot: pending -> building -> ready | failed (the error is kept).

    Anything but a pending snapshot is left alone, so a redelivered message never builds twice.
    """
    with transaction.atomic():
        snapshot = PreferenceSnapshot.objects.select_for_update().filter(pk=snapshot_id).first()
        if snapshot is None:
            logger.warning("snapshot %s does not exist; nothing to build", snapshot_id)
            return None
        if snapshot.status != SnapshotStatus.PENDING:
            logger.info("snapshot %s is %s, not pending; not building it again", snapshot_id, snapshot.status)
            return snapshot
        snapshot.status = SnapshotStatus.BUILDING
        snapshot.started_at = timezone.now()
        snapshot.save(update_fields=["status", "started_at"])

    # This build's claim: the sweep may fail a build it thinks is dead (a stale started_at) while it is
    # in fact still running; the claim is checked under the row lock before the build may finish.
    started_at = snapshot.started_at
    relpath = snapshot_relpath(snapshot)
    try:
        counts, staging = _write(snapshot)
        _publish(staging, relpath)
    except Exception as exc:
        logger.exception("snapshot %s failed", snapshot_id)
        return snapshot_mark_failed(
            snapshot_id=snapshot_id, error=f"{type(exc).__name__}: {exc}", building_since=started_at
        )

    # Published (whole), and not ready until the build that still holds the claim says so. (Its
    # version is this snapshot's alone, so no other build ever publishes at this path.)
    try:
        with transaction.atomic():
            snapshot = PreferenceSnapshot.objects.select_for_update().get(pk=snapshot_id)
            if snapshot.status != SnapshotStatus.BUILDING or snapshot.started_at != started_at:
                logger.warning(
                    "snapshot %s is %s now (this build started %s): not making it ready; its files are dropped",
                    snapshot_id,
                    snapshot.status,
                    started_at.isoformat(),
                )
                _drop(relpath)
                return snapshot
            snapshot.status = SnapshotStatus.READY
            snapshot.counts = counts
            snapshot.path = relpath
            snapshot.error = ""
            snapshot.finished_at = timezone.now()
            snapshot.save(update_fields=["status", "counts", "path", "error", "finished_at"])
    except BaseException:
        # Not ready (the save or the commit failed): no folder may stay behind as if it were.
        _drop(relpath)
        raise
    return snapshot


def _publish(staging: Path, relpath: str) -> None:
    """Put the staged folder at ``relpath`` in the store: local disk, a rename; S3, an upload with the
    marker last (the staging folder goes once that is done: at once, or when the caller's transaction
    commits). A failed publish leaves neither the folder nor the staging copy."""
    try:
        storage.publish(staging, relpath)
    except BaseException:
        storage.unstage(staging)
        raise


def _drop(relpath: str) -> None:
    """Remove a published folder that is not to be a ready snapshot (the first error is the one told)."""
    with contextlib.suppress(Exception):
        storage.remove(relpath)


@transaction.atomic
def snapshot_mark_failed(*, snapshot_id: int, error: str, building_since=None) -> PreferenceSnapshot | None:
    """Record a failed build; a snapshot that is already ready stays ready. With ``building_since``,
    only the build that started then may fail it (a later verdict, the sweep's, is kept)."""
    snapshot = PreferenceSnapshot.objects.select_for_update().filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.status == SnapshotStatus.READY:
        return snapshot
    if building_since is not None and (
        snapshot.status != SnapshotStatus.BUILDING or snapshot.started_at != building_since
    ):
        return snapshot
    snapshot.status = SnapshotStatus.FAILED
    snapshot.error = error[:5000]
    snapshot.finished_at = timezone.now()
    snapshot.save(update_fields=["status", "error", "finished_at"])
    return snapshot


def snapshots_sweep(*, requeue_after: timedelta, stale_after: timedelta) -> dict:
    """Recover from lost work: re-enqueue snapshots left pending (the SQLAlchemy broker does not
    redeliver after a worker dies) and fail those whose build started too long ago (a dead worker)."""
    now = timezone.now()
    pending = list(
        PreferenceSnapshot.objects.filter(status=SnapshotStatus.PENDING, created_at__lt=now - requeue_after)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    requeued = 0
    for snapshot_id in pending:
        try:
            tasks.enqueue_snapshot_build(snapshot_id)  # a no-op for any that another worker started meanwhile
        except Unavailable:
            logger.warning("the task queue is unreachable; %s pending snapshots wait for the next sweep", len(pending))
            break
        requeued += 1
    stale = list(
        PreferenceSnapshot.objects.filter(status=SnapshotStatus.BUILDING, started_at__lt=now - stale_after)
        .order_by("pk")
        .values_list("pk", "started_at")
    )
    for snapshot_id, started_at in stale:
        snapshot_mark_failed(
            snapshot_id=snapshot_id,
            error=f"the worker building it stopped (build started {started_at.isoformat()}); create a new snapshot",
        )
    return {"requeued": requeued, "failed": len(stale)}


def _downloadable(snapshot: PreferenceSnapshot, *, file_format: str, split: str | None) -> None:
    """400 for an unknown format or split, 409 while the snapshot is not ready (or failed)."""
    if file_format not in FORMATS:
        raise ServiceError(
            f"format: unknown format {file_format!r}; use {', '.join(FORMATS)}.",
            errors={"format": [f"Unknown format {file_format!r}."]},
        )
    if split is not None and split not in conversion.SPLITS:
        raise ServiceError(
            f"split: unknown split {split!r}; use {', '.join(conversion.SPLITS)}.",
            errors={"split": [f"Unknown split {split!r}."]},
        )
    if snapshot.status in (SnapshotStatus.PENDING, SnapshotStatus.BUILDING):
        raise Conflict(
            f"Snapshot v{snapshot.version} is not ready yet (status: {snapshot.status}); "
            f"poll its detail until status is ready, then download."
        )
    if snapshot.status == SnapshotStatus.FAILED:
        raise Conflict(f"Snapshot v{snapshot.version} failed and has no files: {snapshot.error}. Create a new one.")


def _no_split(snapshot: PreferenceSnapshot, split: str) -> ServiceError:
    return ServiceError(f"Snapshot v{snapshot.version} has no {split} split (it has no {split} pairs).", status=404)


@dataclass(frozen=True)
class SnapshotFile:
    """One file of a ready snapshot in the artifact store: ``relpath`` (the snapshot's folder), its
    ``name`` in that folder and ``size`` in bytes; ``open()`` reads it through the store."""

    relpath: str
    name: str
    size: int

    def open(self) -> BinaryIO:
        return storage.open_file(self.relpath, self.name)


class SnapshotFilesMissing(ServiceError):
    """A ready snapshot whose folder (or one of its files) is not in the artifact store."""

    status = 404


def _stored_files(snapshot: PreferenceSnapshot) -> dict[str, int]:
    """``{name: size}`` of the ready snapshot's files in the store; a 404 when its folder is gone."""
    try:
        return dict(storage.list_files(snapshot.path))
    except FileNotFoundError:
        raise SnapshotFilesMissing(
            f"Snapshot v{snapshot.version}'s files are missing from the artifact store; create a new snapshot."
        ) from None


def snapshot_file(*, snapshot: PreferenceSnapshot, split: str, file_format: str) -> SnapshotFile:
    """The file to download, or a 409 while the snapshot is not ready, a 404 for a split it lacks."""
    _downloadable(snapshot, file_format=file_format, split=split)
    if file_format not in FILE_FORMATS:
        raise ValueError(f"{file_format!r} is a folder, not a file: snapshot_dataset_tar sends it")
    name = f"{split}.{file_format}"
    size = _stored_files(snapshot).get(name)
    if size is None:
        raise _no_split(snapshot, split)
    return SnapshotFile(relpath=snapshot.path, name=name, size=size)


def has_hf_dataset(snapshot: PreferenceSnapshot) -> bool:
    """Whether the snapshot has its ``hf/`` folder (those built before it was added have not)."""
    return HF_DICT_FILE in (snapshot.counts or {}).get("files", {})


def hf_download_name(snapshot: PreferenceSnapshot, split: str | None = None) -> str:
    """The tar's name without ``.tar``, also its top folder: ``project1-snapshot-v2-hf`` (``-train-hf``)."""
    return f"project{snapshot.project_id}-snapshot-v{snapshot.version}{f'-{split}' if split else ''}-hf"


def snapshot_dataset_tar(*, snapshot: PreferenceSnapshot, split: str | None = None) -> TarStream:
    """The snapshot's ``hf/`` DatasetDict folder (with ``split``: that split's Dataset folder) as a tar
    of one top folder, :func:`hf_download_name`, that ``datasets.load_from_disk`` reads once extracted.
    409 while not ready; 404 for a snapshot built before ``hf/`` existed, or a split it lacks."""
    _downloadable(snapshot, file_format=HF, split=split)
    files = (snapshot.counts or {}).get("files", {})
    if not has_hf_dataset(snapshot):
        raise ServiceError(
            f"Snapshot v{snapshot.version} was built before snapshots had a Hugging Face dataset folder, "
            f"so it has none; create a new snapshot (or download its jsonl or parquet files).",
            status=404,
        )
    prefix = f"{HF_FOLDER}/" if split is None else f"{HF_FOLDER}/{split}/"
    inner_names = sorted(name.removeprefix(prefix) for name in files if name.startswith(prefix))
    if not inner_names:
        raise _no_split(snapshot, split)
    stored = _stored_files(snapshot)
    missing = [name for name in inner_names if f"{prefix}{name}" not in stored]
    if missing:
        raise SnapshotFilesMissing(
            f"Snapshot v{snapshot.version}'s {prefix}{missing[0]} is missing from the artifact store; "
            f"create a new snapshot."
        )
    mtime = int(snapshot.finished_at.timestamp()) if snapshot.finished_at else 0
    top = hf_download_name(snapshot, split)
    members, folders = [Member.folder(top, mtime=mtime)], {""}
    for name in inner_names:  # each folder before its files
        parent = name.rpartition("/")[0]
        if parent not in folders:
            folders.add(parent)
            members.append(Member.folder(f"{top}/{parent}", mtime=mtime))
        stored_name = f"{prefix}{name}"
        members.append(
            Member.file(
                f"{top}/{name}",
                size=stored[stored_name],
                opener=partial(storage.open_file, snapshot.path, stored_name),
                mtime=mtime,
            )
        )
    return TarStream(members)
