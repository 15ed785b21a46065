"""What a snapshot build reads, streamed: a project's comparisons with their completions and rankings.

Call these inside one read transaction (the snapshot service opens a REPEATABLE READ READ ONLY one
on PostgreSQL; SQLite reads one snapshot from its first read on). Each stream is a server-side cursor
(``QuerySet.iterator``) read in chunks, in comparison-id order; :func:`comparisons_with_rankings`
merges them, so memory holds one chunk of each, whatever the size of the project. ``orders`` is read
as text and parsed here (cheaper than Django's per-row JSON converter). Close a stream you do not
read to its end (``contextlib.closing``) before the transaction ends.
"""

import json
from collections.abc import Iterator

from django.db.models import TextField
from django.db.models.functions import Cast

from labeling.models import AlignmentCriterion, Comparison, Completion, Ranking
from labeling.pairs import ComparisonData, RankingData

CHUNK_ROWS = 20_000
_END = (None,)  # past the last row of a stream


def _rankings(project_id: int, *, gold_only: bool = False, chunk_size: int | None = None) -> Iterator[tuple]:
    """``(comparison_id, labeler_id, source, orders JSON text)`` by comparison, then labeler."""
    queryset = Ranking.objects.filter(comparison__project_id=project_id)
    if gold_only:
        queryset = queryset.filter(comparison__is_gold=True)
    return (
        queryset.order_by("comparison_id", "labeler_id")
        .annotate(orders_text=Cast("orders", TextField()))
        .values_list("comparison_id", "labeler_id", "source", "orders_text")
        .iterator(chunk_size=chunk_size or CHUNK_ROWS)
    )


_scan = json.JSONDecoder().scan_once  # the C scanner behind json.loads, without its two regex matches


def _json(text: str):
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        end = -1
    return value if end == len(text) else json.loads(text)  # json.loads: surrounding space, or the error


def _ranking(row: tuple) -> RankingData:
    comparison_id, labeler_id, source, text = row
    return RankingData(comparison_id, labeler_id, source, _json(text) or [])


def comparisons_with_rankings(
    project_id: int, *, chunk_size: int | None = None
) -> Iterator[tuple[ComparisonData, list[RankingData]]]:
    """Every comparison of the project in id order, with its completions (position order) and its
    rankings (labeler order). ``gold`` is not read here (see :func:`gold_comparisons`)."""
    comparisons = (
        Comparison.objects.filter(project_id=project_id)
        .order_by("id")
        .values_list("id", "prompt", "split", "is_gold")
        .iterator(chunk_size=chunk_size or CHUNK_ROWS)
    )
    completions = (
        Completion.objects.filter(comparison__project_id=project_id)
        .order_by("comparison_id", "position", "id")
        .values_list("comparison_id", "id", "text")
        .iterator(chunk_size=chunk_size or CHUNK_ROWS)
    )
    rankings = _rankings(project_id, chunk_size=chunk_size)
    try:
        completion = next(completions, _END)
        ranking = next(rankings, _END)
        for comparison_id, prompt, split, is_gold in comparisons:
            texts: dict[int, str] = {}
            # A row of a smaller id belongs to no comparison read here: skipped, as the whole-list read did.
            while completion[0] is not None and completion[0] <= comparison_id:
                if completion[0] == comparison_id:
                    texts[completion[1]] = completion[2]
                completion = next(completions, _END)
            own: list[RankingData] = []
            parsed: dict[str, list] = {}  # the rankings that hold the same orders share one parsed list
            while ranking[0] is not None and ranking[0] <= comparison_id:
                if ranking[0] == comparison_id:
                    text = ranking[3]
                    orders = parsed.get(text)
                    if orders is None:
                        orders = parsed[text] = _json(text) or []
                    own.append(RankingData(comparison_id, ranking[1], ranking[2], orders))
                ranking = next(rankings, _END)
            yield ComparisonData(id=comparison_id, prompt=prompt, split=split, completions=texts, is_gold=is_gold), own
    finally:  # closes the server-side cursors while the read transaction is still open
        for stream in (comparisons, completions, rankings):
            stream.close()


def gold_comparisons(project_id: int, *, chunk_size: int | None = None) -> list[ComparisonData]:
    """The project's gold comparisons with their known order; completions carry ids only (texts "")."""
    ids: dict[int, dict[int, str]] = {}
    for comparison_id, completion_id in (
        Completion.objects.filter(comparison__project_id=project_id, comparison__is_gold=True)
        .order_by("comparison_id", "position", "id")
        .values_list("comparison_id", "id")
        .iterator(chunk_size=chunk_size or CHUNK_ROWS)
    ):
        ids.setdefault(comparison_id, {})[completion_id] = ""
    return [
        ComparisonData(id=pk, prompt="", split=split, completions=ids.get(pk, {}), is_gold=True, gold=gold)
        for pk, split, gold in Comparison.objects.filter(project_id=project_id, is_gold=True)
        .order_by("id")
        .values_list("id", "split", "gold")
        .iterator(chunk_size=chunk_size or CHUNK_ROWS)
    ]


def gold_rankings(project_id: int, *, chunk_size: int | None = None) -> Iterator[RankingData]:
    """The rankings of the project's gold comparisons, streamed."""
    rows = _rankings(project_id, gold_only=True, chunk_size=chunk_size)
    try:
        yield from map(_ranking, rows)
    finally:
        rows.close()


def criteria_names(project_id: int) -> dict[int, str]:
    return dict(AlignmentCriterion.objects.filter(project_id=project_id).values_list("id", "name"))
