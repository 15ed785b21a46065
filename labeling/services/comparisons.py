"""Importing comparisons: a prompt with K ready-made completions (and optionally a gold order)."""

from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from django.db import transaction

from common.exceptions import ServiceError, TooLarge
from labeling.models import Comparison, Completion, Project, Split
from labeling.parsing import RowError, UploadTooLarge, iter_jsonl, require
from labeling.ranking_rules import RankingError, normalize_order

BATCH = 500
SPLITS = {s.value for s in Split}


@dataclass
class ParsedComparison:
    line: int
    prompt: str
    completions: list[dict]
    split: str = Split.TRAIN
    metadata: dict = field(default_factory=dict)
    gold: dict | None = None  # {"ranks": [rank per position or None], "failed": [positions]}


def parse_comparison(row: dict, *, line: int, k: int) -> ParsedComparison:
    prompt = require(row, "prompt", str, line=line)
    raw = require(row, "completions", list, line=line)
    if len(raw) != k:
        raise RowError(f"expected {k} completions (the project's K), got {len(raw)}", line=line, field="completions")
    completions = []
    for i, item in enumerate(raw):
        where = f"completions[{i}]"
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict):
            raise RowError(f"expected a string or an object, got {type(item).__name__}", line=line, field=where)
        completions.append(
            {
                "text": require(item, "text", str, line=line),
                "model_name": require(item, "model", str, line=line, optional=True) or "",
                "generation_params": require(item, "params", dict, line=line, optional=True) or {},
                "seed": require(item, "seed", int, line=line, optional=True),
                "metadata": require(item, "metadata", dict, line=line, optional=True) or {},
            }
        )
    split = require(row, "split", str, line=line, optional=True) or Split.TRAIN
    if split not in SPLITS:
        raise RowError(f"unknown split {split!r}; use one of {sorted(SPLITS)}", line=line, field="split")
    metadata = require(row, "metadata", dict, line=line, optional=True) or {}
    gold = None
    if "gold" in row and row["gold"] is not None:
        gold = require(row, "gold", dict, line=line)
        positions = list(range(k))
        try:
            # Validate by position now; completion ids exist only after the insert.
            normalize_order(
                {i: r for i, r in enumerate(gold.get("ranks") or []) if r is not None}, gold.get("failed"), positions
            )
        except RankingError as exc:
            raise RowError(f"{exc} (ranks by position 0..{k - 1})", line=line, field="gold") from None
    return ParsedComparison(line, prompt, completions, split, metadata, gold)


def _gold_by_id(gold: dict | None, completion_ids: list[int]) -> dict | None:
    if gold is None:
        return None
    ranks = gold.get("ranks") or []
    return {
        "ranks": {str(completion_ids[i]): r for i, r in enumerate(ranks) if r is not None},
        "failed": sorted(completion_ids[i] for i in gold.get("failed") or []),
    }


def storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters, and a model can emit one: drop them."""
    return text.replace("\x00", "")


def comparisons_create(*, project: Project, parsed: list[ParsedComparison]) -> list[Comparison]:
    """Insert comparisons with their completions in bulk (caller holds the transaction)."""
    comparisons = Comparison.objects.bulk_create(
        [
            Comparison(
                project=project,
                prompt=storable(p.prompt),
                split=p.split,
                metadata=p.metadata,
                is_gold=p.gold is not None,
            )
            for p in parsed
        ]
    )
    completions = [
        Completion(comparison=c, position=i, **{**fields, "text": storable(fields["text"])})
        for c, p in zip(comparisons, parsed, strict=True)
        for i, fields in enumerate(p.completions)
    ]
    Completion.objects.bulk_create(completions)
    golds = []
    for c, p in zip(comparisons, parsed, strict=True):
        c.completion_ids = [x.pk for x in completions if x.comparison_id == c.pk]  # by position
        if p.gold is not None:
            c.gold = _gold_by_id(p.gold, c.completion_ids)
            golds.append(c)
    if golds:
        Comparison.objects.bulk_update(golds, ["gold"])
    return comparisons


def import_error(exc: RowError) -> ServiceError:
    """The API error for a bad upload: 413 past the size limit, else 400, naming line and field."""
    error = TooLarge if isinstance(exc, UploadTooLarge) else ServiceError
    return error(str(exc), errors=[exc.as_dict()])


def iter_jsonl_upload(stream: IO[bytes], *, filename: str):
    if not filename.lower().endswith((".jsonl", ".ndjson", ".json")):
        raise RowError(f"unsupported file type {filename!r}: this import takes JSONL (.jsonl)")
    return iter_jsonl(stream, max_bytes=settings.RANKFORGE_MAX_UPLOAD_BYTES)


@transaction.atomic
def comparisons_import(*, project: Project, stream: IO[bytes], filename: str) -> dict:
    """Import a JSONL file of ``{prompt, completions: [K], split?, metadata?, gold?}``. All or nothing."""
    k = project.completions_per_prompt
    batch: list[ParsedComparison] = []
    created = gold = 0
    try:
        for line, row in iter_jsonl_upload(stream, filename=filename):
            batch.append(parse_comparison(row, line=line, k=k))
            if len(batch) >= BATCH:
                created += len(comparisons_create(project=project, parsed=batch))
                gold += sum(p.gold is not None for p in batch)
                batch = []
    except RowError as exc:
        raise import_error(exc) from None
    created += len(comparisons_create(project=project, parsed=batch))
    gold += sum(p.gold is not None for p in batch)
    if created == 0:
        raise ServiceError("The file holds no comparisons.")
    return {"created": created, "gold": gold}
