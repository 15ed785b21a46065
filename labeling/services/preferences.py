"""Importing labelled pairs from outside: each pair becomes a K=2 comparison ranked by the
project's "imported" member, so it flows through the same snapshots as human and AI labels."""

import hashlib
from typing import IO

from django.db import transaction

from common.exceptions import ServiceError
from contracts.orders import make_order
from labeling.models import LabelSource, Project, Ranking
from labeling.parsing import RowError, require
from labeling.services.comparisons import (
    BATCH,
    SPLITS,
    ParsedComparison,
    comparisons_create,
    import_error,
    iter_jsonl_upload,
)
from labeling.services.system_members import system_member
from labeling.splits import stable_split

ASSISTANT_TURN = "\n\nAssistant:"
ON_ERROR = ("fail", "skip")


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two HH transcripts at their last Assistant turn into (prompt, chosen reply, rejected reply).

    The prompt keeps the trailing "Assistant:" so a model continues it; both transcripts must share it.
    """
    cut_c, cut_r = chosen.rfind(ASSISTANT_TURN), rejected.rfind(ASSISTANT_TURN)
    if cut_c < 0 or cut_r < 0:
        which = "chosen" if cut_c < 0 else "rejected"
        raise RowError("no '\\n\\nAssistant:' turn to split at", field=which)
    prompt_c, prompt_r = chosen[: cut_c + len(ASSISTANT_TURN)], rejected[: cut_r + len(ASSISTANT_TURN)]
    if prompt_c != prompt_r:
        at = next((i for i, (a, b) in enumerate(zip(prompt_c, prompt_r, strict=False)) if a != b), None)
        at = min(len(prompt_c), len(prompt_r)) if at is None else at
        raise RowError(
            f"chosen and rejected differ before the last Assistant turn (at character {at})", field="rejected"
        )
    return prompt_c, chosen[cut_c + len(ASSISTANT_TURN) :].strip(), rejected[cut_r + len(ASSISTANT_TURN) :].strip()


def parse_pair(row: dict, *, line: int) -> tuple[str, str, str]:
    chosen = require(row, "chosen", str, line=line)
    rejected = require(row, "rejected", str, line=line)
    if "prompt" in row:
        return require(row, "prompt", str, line=line), chosen, rejected
    try:
        return split_transcripts(chosen, rejected)
    except RowError as exc:
        raise RowError(exc.reason, line=line, field=exc.field) from None


def _chosen_first(prompt: str, chosen: str, rejected: str) -> bool:
    # Position must not give the answer away to labelers: a stable pseudo-random side per pair.
    return hashlib.sha256(f"{prompt}\x00{chosen}\x00{rejected}".encode()).digest()[0] % 2 == 0


def _to_comparison(line: int, prompt: str, chosen: str, rejected: str, split: str) -> tuple[ParsedComparison, int]:
    first = _chosen_first(prompt, chosen, rejected)
    texts = [chosen, rejected] if first else [rejected, chosen]
    parsed = ParsedComparison(
        line=line,
        prompt=prompt,
        completions=[{"text": t, "metadata": {}} for t in texts],
        split=split,
        metadata={"source": "preference_import", "line": line},
    )
    return parsed, 0 if first else 1


@transaction.atomic
def preferences_import(
    *, project: Project, stream: IO[bytes], filename: str, on_error: str = "fail", eval_fraction: float = 0.1
) -> dict:
    """Import ``{chosen, rejected}`` HH transcripts or ``{prompt, chosen, rejected}`` rows.

    A row's ``split`` field wins; otherwise the split is a stable hash of the pair against
    ``eval_fraction``.
    ``on_error="fail"`` refuses the whole file at the first bad row; ``"skip"`` skips rows that cannot
    be split and counts them (malformed JSON still fails: the file itself is broken).
    """
    if on_error not in ON_ERROR:
        raise ServiceError(f"on_error must be one of {ON_ERROR}, not {on_error!r}", errors={"on_error": [on_error]})
    if not 0 <= eval_fraction <= 1:
        raise ServiceError(
            f"eval_fraction must be in 0..1, not {eval_fraction}", errors={"eval_fraction": [eval_fraction]}
        )
    if project.completions_per_prompt != 2:
        raise ServiceError(
            f"Preference pairs need a project with 2 completions per prompt; this one has "
            f"{project.completions_per_prompt}.",
        )
    member = system_member(project=project, source=LabelSource.IMPORTED)
    created, skipped = 0, []
    batch: list[tuple[ParsedComparison, int]] = []

    def flush():
        nonlocal created
        comparisons = comparisons_create(project=project, parsed=[p for p, _ in batch])
        rankings = []
        for comparison, (_, chosen_position) in zip(comparisons, batch, strict=True):
            ids = comparison.completion_ids
            ranks = {ids[chosen_position]: 1, ids[1 - chosen_position]: 2}
            rankings.append(
                Ranking(
                    comparison=comparison,
                    labeler=member,
                    source=LabelSource.IMPORTED,
                    orders=[make_order(None, ranks)],
                )
            )
        Ranking.objects.bulk_create(rankings)
        created += len(comparisons)
        batch.clear()

    try:
        for line, row in iter_jsonl_upload(stream, filename=filename):
            try:
                prompt, chosen, rejected = parse_pair(row, line=line)
                split = require(row, "split", str, line=line, optional=True) or stable_split(
                    prompt + "\x00" + chosen + "\x00" + rejected, eval_fraction=eval_fraction
                )
                if split not in SPLITS:
                    raise RowError(f"unknown split {split!r}; use one of {sorted(SPLITS)}", line=line, field="split")
            except RowError as exc:
                if on_error == "skip":
                    skipped.append(exc.as_dict())
                    continue
                raise
            batch.append(_to_comparison(line, prompt, chosen, rejected, split))
            if len(batch) >= BATCH:
                flush()
    except RowError as exc:
        raise import_error(exc) from None
    if batch:
        flush()
    if created == 0:
        raise ServiceError("The file holds no importable pairs.", errors=skipped or None)
    return {"created": created, "skipped": len(skipped), "skipped_rows": skipped[:100]}
