"""Project statistics over time, for the quality dashboard: what ``project_stats`` says now, per bucket.

Per hour or day bucket (UTC): rankings submitted, completed comparisons (cumulative), inter-labeler
agreement over every ranking up to the bucket's end, rankings per labeler; and, over everything, the
rank distribution per completion position (position bias at a glance).

A fixed handful of queries whatever the project's size: the progress counts (two, from
``project_progress``), the project's rankings, its completions' positions, the labelers' usernames.
The orders are counted by the same tally as ``labeling.selectors.stats`` (``stats_tally``) and the
agreement computed by ``labeling.agreement``, so the last bucket agrees with ``GET .../stats/``.

Cost: the pairwise rate is a sum over items, so it is updated per bucket for the items that changed.
Krippendorff's alpha is not (its expected disagreement depends on every value), so it is recomputed
from scratch at a bounded number of bucket ends, spread by rankings and always including the last
bucket; the other buckets say ``alpha_computed: false``.
"""

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from common.exceptions import ServiceError
from labeling import agreement
from labeling.models import Completion, LabelSource, Project, Ranking
from labeling.selectors.stats import project_progress
from labeling.selectors.stats_tally import DEFAULT_SOURCES, OrderTally, check_filters

User = get_user_model()

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 2000
# Alpha is recomputed over all orders so far at up to this many bucket ends ...
MAX_ALPHA_POINTS = 120
# ... and at fewer when the orders to go through (summed over those recomputations) would exceed this.
ALPHA_ORDER_BUDGET = 50_000
F_LEVEL = "F"


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """The start (UTC) of the hour or day that holds ``moment``."""
    moment = moment.astimezone(UTC)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def dense_levels(scores: dict[int, float]) -> dict[int, int | str]:
    """Level 1..K of each completion in one order (dense: ties share a level, gaps vanish), F for F."""
    distinct = sorted({s for s in scores.values() if s != agreement.F_SCORE})
    level = {score: i + 1 for i, score in enumerate(distinct)}
    return {cid: F_LEVEL if s == agreement.F_SCORE else level[s] for cid, s in scores.items()}


def alpha_points(cumulative: list[int], *, max_points: int | None = None, budget: int | None = None) -> set[int]:
    """Indexes of the buckets whose end gets a full alpha recomputation.

    ``cumulative[i]`` is the number of orders up to bucket i's end. Only buckets that add orders are
    candidates; the last of them is always chosen; the others are picked where the cumulative count
    crosses evenly spaced thresholds, as many as ``max_points`` and ``budget`` allow.
    """
    max_points = MAX_ALPHA_POINTS if max_points is None else max_points
    budget = ALPHA_ORDER_BUDGET if budget is None else budget
    candidates = [i for i, n in enumerate(cumulative) if n > (cumulative[i - 1] if i else 0)]
    if not candidates:
        return set()
    total = cumulative[candidates[-1]]
    # Recomputing at evenly spread points costs about points * total / 2 orders.
    wanted = min(len(candidates), max_points, max(1, (2 * budget) // max(total, 1)))
    if wanted >= len(candidates):
        return set(candidates)
    chosen = {candidates[-1]}
    values = [cumulative[i] for i in candidates]
    for step in range(1, wanted):
        threshold = total * step / wanted
        chosen.add(candidates[min(bisect_right(values, threshold - 1e-9), len(candidates) - 1)])
    return chosen


def project_stats_timeline(
    *,
    project: Project,
    bucket: str = "day",
    criterion_id: int | None = None,
    sources: Iterable[str] = DEFAULT_SOURCES,
) -> dict:
    """Per-bucket progress, agreement and throughput, and the rank distribution per position.

    ``criterion_id`` and ``sources`` pick the orders as in ``project_stats``. A comparison counts as
    completed at the bucket of its ``overlap``-th human ranking (gold comparisons are not counted),
    whatever ``sources`` says, as the progress counts do. Malformed stored orders are left out (and logged).
    """
    if bucket not in BUCKETS:
        raise ServiceError(f"Unknown bucket {bucket!r}; use hour or day.", errors={"bucket": ["Use hour or day."]})
    sources = check_filters(project=project, criterion_id=criterion_id, sources=sources)
    step = BUCKETS[bucket]
    progress, _ = project_progress(project=project)

    rankings = (
        Ranking.objects.filter(comparison__project=project)
        .order_by("created_at", "id")
        .values_list("comparison_id", "labeler_id", "source", "orders", "created_at", "comparison__is_gold")
    )
    positions = dict(Completion.objects.filter(comparison__project=project).values_list("id", "position"))

    k = max([project.completions_per_prompt, *(p + 1 for p in positions.values())])
    levels: list[int | str] = [*range(1, k + 1), F_LEVEL]
    distribution = [Counter() for _ in range(k)]
    wanted = set(sources)
    tally = OrderTally(criterion_id=criterion_id)
    humans_seen: Counter[int] = Counter()
    # Per ranking in time order: (bucket start, labeler, [(item, scores)]) for those that count.
    events: list[tuple[datetime, int, list]] = []
    completed_at: list[datetime] = []
    for comparison_id, labeler_id, source, orders, created_at, is_gold in rankings:
        start = bucket_start(created_at, bucket)
        if source == LabelSource.HUMAN and not is_gold:
            humans_seen[comparison_id] += 1
            if humans_seen[comparison_id] == project.overlap:
                completed_at.append(start)
        if source not in wanted:
            continue
        matched = tally.matching(comparison_id, orders)
        for _, scores in matched:
            for cid, level in dense_levels(scores).items():
                position = positions.get(cid)
                if position is not None:
                    distribution[position][level] += 1
        if matched:
            events.append((start, labeler_id, matched))
    tally.log_malformed(project.pk)

    starts: list[datetime] = []
    moments = [events[0][0], events[-1][0]] if events else []
    moments += completed_at[:1] + completed_at[-1:]
    if moments:
        first, last = min(moments), max(moments)
        count = int((last - first) / step) + 1
        if count > MAX_BUCKETS:
            raise ServiceError(
                f"{count:,} {bucket} buckets from {first:%Y-%m-%d} to {last:%Y-%m-%d}; at most {MAX_BUCKETS:,}."
                + (" Use bucket=day." if bucket == "hour" else ""),
                errors={"bucket": [f"Too many buckets ({count:,}); the limit is {MAX_BUCKETS:,}."]},
            )
        starts = [first + i * step for i in range(count)]
    index_of = {start: i for i, start in enumerate(starts)}

    per_bucket: list[list] = [[] for _ in starts]
    for start, labeler_id, matched in events:
        per_bucket[index_of[start]].append((labeler_id, matched))
    completed_per_bucket = Counter(index_of[t] for t in completed_at)
    cumulative_orders, running = [], 0
    for entries in per_bucket:
        running += sum(len(matched) for _, matched in entries)
        cumulative_orders.append(running)
    recompute_alpha = alpha_points(cumulative_orders)

    by_item = tally.by_item  # filled bucket by bucket below
    item_pairwise: dict[tuple, agreement.PairwiseAgreement] = {}
    throughput: dict[int, list[int]] = {}
    total = agreement.PairwiseAgreement()
    completed = 0
    rows = []
    for i, (start, entries) in enumerate(zip(starts, per_bucket, strict=True)):
        changed = set()
        for labeler_id, matched in entries:
            throughput.setdefault(labeler_id, [0] * len(starts))[i] += 1
            tally.add(labeler_id, matched)
            changed.update(item for item, _ in matched)
        for item in changed:
            # Pairwise agreement is a sum over items: swap the changed items' shares.
            old = item_pairwise.get(item) or agreement.PairwiseAgreement()
            new = item_pairwise[item] = agreement.pairwise_agreement({item: by_item[item]})
            total.agreements += new.agreements - old.agreements
            total.pairs += new.pairs - old.pairs
            total.one_sided_ties += new.one_sided_ties - old.one_sided_ties
            total.items += new.items - old.items
        alpha = agreement.ranking_alpha(by_item) if i in recompute_alpha else None
        completed += completed_per_bucket.get(i, 0)
        rows.append(
            {
                "start": start,
                "end": start + step,
                "rankings": len(entries),
                "completed": completed,
                "shared_items": total.items,
                "pairwise_rate": total.rate,
                "pairwise_pairs": total.pairs,
                "alpha_computed": alpha is not None,
                "krippendorff_alpha_ordinal": alpha.alpha if alpha is not None else None,
                "krippendorff_units": alpha.units if alpha is not None else None,
            }
        )

    names = dict(User.objects.filter(pk__in=list(throughput)).values_list("pk", "username")) if throughput else {}
    labelers = sorted(
        (
            {
                "labeler": user_id,
                "username": names.get(user_id, str(user_id)),
                "rankings": sum(counts),
                "per_bucket": counts,
            }
            for user_id, counts in throughput.items()
        ),
        key=lambda row: row["username"],
    )
    return {
        "project": project.pk,
        "bucket": bucket,
        "timezone": "UTC",
        "criterion": criterion_id,
        "sources": sources,
        "overlap": project.overlap,
        "comparisons_total": progress["comparisons_total"],
        "complete": progress["complete"],
        "buckets": rows,
        "labelers": labelers,
        "rank_distribution": {
            "levels": [str(level) for level in levels],
            "positions": [
                {
                    "position": position,
                    "orders": sum(counter.values()),
                    "counts": [counter.get(level, 0) for level in levels],
                }
                for position, counter in enumerate(distribution)
            ],
        },
    }
