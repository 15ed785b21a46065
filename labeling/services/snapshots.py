"""Preference snapshots: immutable, versioned exports of pairs (DESIGN.md, PreferenceSnapshot).

``snapshot_create`` validates the options, takes the project's next version and enqueues the build
once the transaction commits; ``snapshot_build`` (run by the Celery task) streams the live tables in
one read transaction (:mod:`labeling.selectors.snapshot_rows`: server-side cursors in comparison-id
order), converts each comparison with :mod:`labeling.pairs` as it is read and writes its pairs at
once (:mod:`labeling.pair_files`) to ``ARTIFACT_ROOT/snapshots/<project>/<version>/``: ``train``/``eval``
(+ ``test`` when it has pairs) as ``.jsonl`` and ``.parquet``, the same splits as a Hugging Face
DatasetDict folder ``hf/`` (what ``save_to_disk`` writes), and ``manifest.json``. Memory stays flat
whatever the number of rankings. The folder appears whole (written beside it, then renamed) and is
never rewritten. ``snapshot_dataset_tar`` streams ``hf/`` (or one split's folder) as a tar.
"""

import logging
import shutil
import uuid
from contextlib import closing, contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

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


def snapshot_folder(snapshot: PreferenceSnapshot) -> Path:
    return Path(settings.ARTIFACT_ROOT) / SNAPSHOT_DIR / str(snapshot.project_id) / str(snapshot.version)


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
    """The snapshot's files in a staging folder beside its final one: (counts, staging folder)."""
    options = conversion.PairOptions.from_dict(snapshot.options)
    final = snapshot_folder(snapshot)
    if final.exists():
        raise FileExistsError(f"{final} already exists; snapshots are never rewritten")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{snapshot.version}.building-{uuid.uuid4().hex[:8]}"
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
        shutil.rmtree(staging, ignore_errors=True)
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
    try:
        counts, staging = _write(snapshot)
    except Exception as exc:
        logger.exception("snapshot %s failed", snapshot_id)
        return snapshot_mark_failed(
            snapshot_id=snapshot_id, error=f"{type(exc).__name__}: {exc}", building_since=started_at
        )

    final = snapshot_folder(snapshot)
    renamed = False
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
                shutil.rmtree(staging, ignore_errors=True)
                return snapshot
            staging.rename(final)  # the folder appears whole, only for the build that still holds the claim
            renamed = True
            snapshot.status = SnapshotStatus.READY
            snapshot.counts = counts
            snapshot.path = str(final.relative_to(Path(settings.ARTIFACT_ROOT)))
            snapshot.error = ""
            snapshot.finished_at = timezone.now()
            snapshot.save(update_fields=["status", "counts", "path", "error", "finished_at"])
    except BaseException:
        # Not ready (the save or the commit failed): no folder may stay behind as if it were.
        shutil.rmtree(final if renamed else staging, ignore_errors=True)
        raise
    return snapshot


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


def snapshot_file(*, snapshot: PreferenceSnapshot, split: str, file_format: str) -> Path:
    """The file to download, or a 409 while the snapshot is not ready, a 404 for a split it lacks."""
    _downloadable(snapshot, file_format=file_format, split=split)
    if file_format not in FILE_FORMATS:
        raise ValueError(f"{file_format!r} is a folder, not a file: snapshot_dataset_tar sends it")
    path = Path(settings.ARTIFACT_ROOT) / snapshot.path / f"{split}.{file_format}"
    if not path.is_file():
        raise _no_split(snapshot, split)
    return path


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
    folder = Path(settings.ARTIFACT_ROOT) / snapshot.path / prefix
    top = hf_download_name(snapshot, split)
    members, folders = [Member(top, folder)], {""}
    for name in inner_names:  # each folder before its files
        parent = name.rpartition("/")[0]
        if parent not in folders:
            folders.add(parent)
            members.append(Member(f"{top}/{parent}", folder / parent))
        members.append(Member(f"{top}/{name}", folder / name))
    return TarStream(members)
