"""The list-based export as it was before snapshots streamed (issue 13), kept verbatim as a reference.

Only the equivalence tests import it: the streaming build (``labeling.pairs.export_pairs`` +
``labeling.pair_files.PairFileWriter``) and the whole-list ``labeling.pairs.build_pairs`` must give
exactly what this gives: the same rows in the same order, the same counts, the same files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from pathlib import Path

from labeling.pairs import (
    MIXED_SOURCE,
    OVERALL,
    PER_LABELER,
    SPLITS,
    ComparisonData,
    Pair,
    PairOptions,
    PairSet,
    RankingData,
    _is_number,
    arrow_schema,
)


def ai_pair_probabilities(order: Mapping) -> dict[tuple[int, int], float]:
    """``{(chosen, rejected): p}`` from an AI order's ``ai.pairs`` (``p_a`` = P(a better than b));
    malformed entries are skipped: the margin then falls back to the rank difference."""
    result: dict[tuple[int, int], float] = {}
    details = order.get("ai")
    for pair in (details.get("pairs") if isinstance(details, Mapping) else None) or ():
        try:
            a, b, p_a = int(pair["a"]), int(pair["b"]), float(pair["p_a"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= p_a <= 1:
            result[(a, b)], result[(b, a)] = p_a, 1 - p_a
    return result


def order_levels(order: Mapping, completion_ids: Iterable[int]) -> dict[int, int]:
    """Completion id -> level (0 is best) for one order; F-marked completions share the last level.

    Ids that are not completions of the comparison are ignored; a completion both ranked and F-marked
    counts as F-marked. A malformed order (a non-integer id, a non-numeric rank) raises ``ValueError``.
    """
    ids = set(completion_ids)
    failed = {int(c) for c in (order.get("failed") or [])} & ids
    ranks: dict[int, float] = {}
    for key, rank in (order.get("ranks") or {}).items():
        completion_id = int(key)
        if not _is_number(rank):
            raise ValueError(f"rank of completion {completion_id} is {rank!r}, not a number")
        if completion_id in ids and completion_id not in failed:
            ranks[completion_id] = rank
    level_of = {rank: level for level, rank in enumerate(sorted(set(ranks.values())))}
    levels = {completion_id: level_of[rank] for completion_id, rank in ranks.items()}
    for completion_id in failed:
        levels[completion_id] = len(level_of)
    return levels


def _criterion_of(order: Mapping) -> int | None:
    criterion = order.get("criterion")
    return None if criterion is None else int(criterion)


def _wanted(criterion: int | None, option: int | str | None) -> bool:
    if option is None:
        return True
    if option == OVERALL:
        return criterion is None
    return criterion == option


def labeler_gold_accuracy(comparisons: Iterable[ComparisonData], rankings: Iterable[RankingData]) -> dict[int, float]:
    """Labeler id -> gold accuracy, for labelers with at least one gold pair.

    Gold accuracy is the share of the strictly ordered pairs of the known order (``Comparison.gold``,
    with F below everything as usual) that the labeler put the same way round; a tie where the gold
    has an order counts as wrong. Every order of a ranking on a gold item is scored (one per criterion).
    """
    gold = {
        c.id: (c, order_levels(c.gold, c.completions)) for c in comparisons if c.is_gold and isinstance(c.gold, Mapping)
    }
    correct: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for ranking in rankings:
        if ranking.comparison_id not in gold:
            continue
        comparison, gold_levels = gold[ranking.comparison_id]
        for order in ranking.orders:
            levels = order_levels(order, comparison.completions)
            for a, b in combinations(sorted(gold_levels), 2):
                if gold_levels[a] == gold_levels[b]:
                    continue
                total[ranking.labeler_id] += 1
                if a in levels and b in levels and (levels[a] - levels[b]) * (gold_levels[a] - gold_levels[b]) > 0:
                    correct[ranking.labeler_id] += 1
    return {labeler: correct[labeler] / n for labeler, n in total.items()}


def build_pairs(
    comparisons: Iterable[ComparisonData],
    rankings: Iterable[RankingData],
    options: PairOptions | None = None,
    gold_accuracy: Mapping[int, float] | None = None,
) -> PairSet:
    """Turn rankings into pairs under ``options``; ``counts`` says what was kept and dropped."""
    options = options or PairOptions()
    gold_accuracy = gold_accuracy or {}
    counts: Counter[str] = Counter()

    by_id: dict[int, ComparisonData] = {}
    for comparison in comparisons:
        if comparison.split not in SPLITS:
            raise ValueError(f"comparison {comparison.id} has unknown split {comparison.split!r}")
        if comparison.is_gold and not options.include_gold:
            counts["gold_comparisons_skipped"] += 1
            continue
        by_id[comparison.id] = comparison

    excluded: set[int] = set()
    if options.min_gold_accuracy is not None:
        excluded = {labeler for labeler, accuracy in gold_accuracy.items() if accuracy < options.min_gold_accuracy}

    # (comparison id, criterion) -> [(ranking, levels)], one entry per labeler's order.
    groups: dict[tuple[int, int | None], list[tuple[RankingData, dict[int, int]]]] = defaultdict(list)
    labelers_used: set[int] = set()
    # (comparison id, criterion, labeler) -> {(chosen, rejected): probability} of AI rankings.
    ai_margins: dict[tuple, dict[tuple[int, int], float]] = {}
    for ranking in rankings:
        comparison = by_id.get(ranking.comparison_id)
        if comparison is None:
            continue
        if ranking.source not in options.sources:
            counts["rankings_skipped_source"] += 1
            continue
        if ranking.labeler_id in excluded:
            counts["rankings_skipped_gold_accuracy"] += 1
            continue
        used = False
        for order in ranking.orders:
            criterion = _criterion_of(order)
            if not _wanted(criterion, options.criterion):
                continue
            try:
                levels = order_levels(order, comparison.completions)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"ranking of comparison {ranking.comparison_id} by labeler {ranking.labeler_id} is malformed: {exc}"
                ) from exc
            groups[(comparison.id, criterion)].append((ranking, levels))
            if "ai" in order:
                ai_margins[(comparison.id, criterion, ranking.labeler_id)] = ai_pair_probabilities(order)
            counts["orders_used"] += 1
            used = True
        if used:
            counts["rankings_used"] += 1
            labelers_used.add(ranking.labeler_id)

    pairs: list[Pair] = []
    comparisons_used: set[int] = set()
    for comparison_id, criterion in sorted(groups, key=lambda key: (key[0], -1 if key[1] is None else key[1])):
        comparison = by_id[comparison_id]
        ids = list(comparison.completions)
        if len(ids) < 2:
            continue
        weight = 1.0 / math.comb(len(ids), 2)
        entries = sorted(groups[(comparison_id, criterion)], key=lambda entry: entry[0].labeler_id)
        comparisons_used.add(comparison_id)

        def make(
            chosen: int,
            rejected: int,
            margin: float,
            agreement: float,
            labeler: int | None,
            source: str,
            comparison=comparison,
            criterion=criterion,
            weight=weight,
        ) -> Pair:
            return Pair(
                prompt=comparison.prompt,
                chosen=comparison.completions[chosen],
                rejected=comparison.completions[rejected],
                margin=margin,
                weight=weight,
                comparison_id=comparison.id,
                labeler_id=labeler,
                source=source,
                criterion=criterion,
                split=comparison.split,
                agreement=agreement,
                chosen_completion_id=chosen,
                rejected_completion_id=rejected,
            )

        # Votes per unordered pair (a before b in position order): [for a, for b, voters, sources].
        votes: dict[tuple[int, int], list] = {}
        for a, b in combinations(ids, 2):
            tally = [0, 0, 0, set()]
            for ranking, levels in entries:
                if a in levels and b in levels:
                    tally[2] += 1
                    tally[3].add(ranking.source)
                    if levels[a] < levels[b]:
                        tally[0] += 1
                    elif levels[b] < levels[a]:
                        tally[1] += 1
            votes[(a, b)] = tally

        if options.mode == PER_LABELER:
            for ranking, levels in entries:
                for a, b in combinations(ids, 2):
                    if a not in levels or b not in levels:
                        continue
                    if levels[a] == levels[b]:
                        counts["tied_pairs"] += 1
                        continue
                    for_a, for_b, voters, _ = votes[(a, b)]
                    chosen, rejected, agree = (a, b, for_a) if levels[a] < levels[b] else (b, a, for_b)
                    agreement = agree / voters
                    if agreement < options.min_agreement:
                        counts["dropped_min_agreement"] += 1
                        continue
                    margin = (levels[rejected] - levels[chosen]) / (len(ids) - 1)
                    ai_margin = ai_margins.get((comparison_id, criterion, ranking.labeler_id), {})
                    margin = ai_margin.get((chosen, rejected)) or margin
                    pairs.append(make(chosen, rejected, margin, agreement, ranking.labeler_id, ranking.source))
        else:
            for (a, b), (for_a, for_b, voters, sources) in votes.items():
                if voters == 0:
                    continue
                if for_a == for_b:
                    counts["dropped_vote_tie"] += 1
                    continue
                chosen, rejected, won, lost = (a, b, for_a, for_b) if for_a > for_b else (b, a, for_b, for_a)
                share = won / voters
                if share < options.consensus_threshold or share < options.min_agreement:
                    counts["dropped_below_threshold"] += 1
                    continue
                source = next(iter(sources)) if len(sources) == 1 else MIXED_SOURCE
                pairs.append(make(chosen, rejected, (won - lost) / voters, share, None, source))

    per_split = Counter(pair.split for pair in pairs)
    counts.update(
        {
            "pairs": len(pairs),
            "comparisons": len(comparisons_used),
            "labelers": len(labelers_used),
            "labelers_excluded_gold_accuracy": len(excluded),
        }
    )
    result = {key: counts[key] for key in sorted(counts)}
    result["by_split"] = {split: per_split[split] for split in SPLITS}
    return PairSet(pairs=pairs, counts=result)


def split_pairs(pairs: Iterable[Pair]) -> dict[str, list[Pair]]:
    """Pairs grouped by their comparison's split: ``{"train": [...], "eval": [...], "test": [...]}``."""
    out: dict[str, list[Pair]] = {split: [] for split in SPLITS}
    for pair in pairs:
        out[pair.split].append(pair)
    return out


# ---------------------------------------------------------------------------------------------
# Files


def write_jsonl(pairs: Iterable[Pair], path: Path) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps(pair.as_row(), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_parquet(pairs: Sequence[Pair], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([pair.as_row() for pair in pairs], schema=arrow_schema())
    pq.write_table(table, path)
    return table.num_rows


def _describe(path: Path, rows: int) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_pair_files(pairs: Iterable[Pair], folder: Path) -> dict[str, dict]:
    """Write ``train``/``eval`` (always) and ``test`` (when it has pairs) as ``.jsonl`` and ``.parquet``.

    Returns ``{file name: {rows, bytes, sha256}}`` for the manifest.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, split_rows in split_pairs(pairs).items():
        if split == "test" and not split_rows:
            continue
        for ext, writer in (("jsonl", write_jsonl), ("parquet", write_parquet)):
            path = folder / f"{split}.{ext}"
            files[path.name] = _describe(path, writer(split_rows, path))
    return files
