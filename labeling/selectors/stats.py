"""Project statistics: progress, inter-labeler agreement and per-labeler quality.

Reads a handful of queries (progress, assignments per labeler, all rankings of the chosen sources,
usernames) whatever the project's size; the orders are counted by ``labeling.selectors.stats_tally``
(as the timeline counts them) and the figures computed by ``labeling.agreement``.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from contracts import orders as stored_orders
from labeling import agreement
from labeling.models import Assignment, AssignmentState, Comparison, Project, Ranking, Role
from labeling.selectors.stats_tally import DEFAULT_SOURCES, OrderTally, check_filters

User = get_user_model()

# What a labeler sees of their own quality is coarse, so that submitting one item and re-reading the
# stats tells them nothing about its gold answer or its consensus: the figures cover whole windows of
# QUALITY_WINDOW of their comparisons (in the order they ranked them), a window counting once every
# comparison in it is settled (gold: at once; others: once complete, when no more labels come), and
# they are rounded down to QUALITY_BUCKET_PP percentage points. Reviewers and admins see exact figures.
QUALITY_WINDOW = 20
QUALITY_BUCKET_PP = 10


def project_progress(*, project: Project, now: datetime | None = None) -> tuple[dict, dict[int, dict]]:
    """Counts over the project's comparisons and leases (two queries), and per-labeler lease counts.

    ``complete``: non-gold comparisons with ``label_count >= overlap``; ``in_progress``: the other
    non-gold ones that have a ranking or a live lease; ``ai_only``: the ones an AI labeled and took out of
    the human queue (not picked for a spot check); ``not_started``: the rest. Gold comparisons are
    counted apart. ``skipped`` counts skipped assignments, ``live_leases`` leases not yet expired.
    """
    now = now or timezone.now()
    live_lease = Assignment.objects.filter(comparison=OuterRef("pk"), state=AssignmentState.LEASED, expires_at__gt=now)
    overlap = project.overlap
    counts = (
        Comparison.objects.filter(project=project)
        .annotate(leased=Exists(live_lease))
        .aggregate(
            comparisons_total=Count("pk", filter=Q(is_gold=False)),
            gold_total=Count("pk", filter=Q(is_gold=True)),
            complete=Count("pk", filter=Q(is_gold=False, label_count__gte=overlap)),
            in_progress=Count(
                "pk",
                filter=Q(is_gold=False, label_count__lt=overlap) & (Q(label_count__gt=0) | Q(leased=True)),
            ),
            ai_only=Count("pk", filter=Q(is_gold=False, human_queue=False, label_count=0, leased=False)),
        )
    )
    by_labeler = {
        row["labeler_id"]: row
        for row in Assignment.objects.filter(project=project)
        .values("labeler_id")
        .annotate(
            skipped=Count("pk", filter=Q(state=AssignmentState.SKIPPED)),
            live=Count("pk", filter=Q(state=AssignmentState.LEASED, expires_at__gt=now)),
        )
        .order_by()
    }
    progress = {
        "overlap": overlap,
        "comparisons_total": counts["comparisons_total"],
        "complete": counts["complete"],
        "in_progress": counts["in_progress"],
        "not_started": counts["comparisons_total"] - counts["complete"] - counts["in_progress"] - counts["ai_only"],
        "ai_only": counts["ai_only"],
        "gold_total": counts["gold_total"],
        "skipped": sum(row["skipped"] for row in by_labeler.values()),
        "live_leases": sum(row["live"] for row in by_labeler.values()),
    }
    return progress, by_labeler


def _pair_count(count: agreement.PairCount | None) -> tuple[float | None, int]:
    return (count.rate, count.pairs) if count is not None else (None, 0)


def settled_windows(comparisons: list[int], settled) -> list[int]:
    """The comparisons of the whole windows (QUALITY_WINDOW each, in ranking order) whose
    comparisons are all ``settled``; a window's figure never changes once it counts."""
    counted: list[int] = []
    for start in range(0, len(comparisons) - QUALITY_WINDOW + 1, QUALITY_WINDOW):
        window = comparisons[start : start + QUALITY_WINDOW]
        if all(settled(c) for c in window):
            counted += window
    return counted


def coarse_rate(count: agreement.PairCount | None) -> float | None:
    """The rate rounded down to QUALITY_BUCKET_PP percentage points (integer arithmetic: no float edge)."""
    if count is None or not count.pairs:
        return None
    buckets = 100 // QUALITY_BUCKET_PP
    return (buckets * count.agreements // count.pairs) / buckets


def _own_quality(*, labeler_id: int, ranked: list[tuple[int, bool]], by_item, gold, settled_ids: set[int]) -> dict:
    """A labeler's gold accuracy and consensus agreement over settled windows, coarse (see QUALITY_WINDOW)."""
    gold_comparisons = settled_windows([c for c, is_gold in ranked if is_gold], lambda c: True)
    other = settled_windows([c for c, is_gold in ranked if not is_gold], settled_ids.__contains__)
    in_gold, in_other = set(gold_comparisons), set(other)
    own_gold = {item: {labeler_id: orders[labeler_id]} for item, orders in by_item.items() if item[0] in in_gold}
    shared = {item: orders for item, orders in by_item.items() if item[0] in in_other}
    accuracy = agreement.gold_accuracy(own_gold, gold).get(labeler_id)
    consensus = agreement.consensus_agreement(shared).get(labeler_id)
    return {
        "gold_accuracy": coarse_rate(accuracy),
        "gold_pairs": accuracy.pairs if accuracy is not None else 0,
        "gold_comparisons": len(gold_comparisons),
        "consensus_agreement": coarse_rate(consensus),
        "consensus_pairs": consensus.pairs if consensus is not None else 0,
        "consensus_comparisons": len(other),
    }


def _gold_scores(gold_order) -> dict[int, float] | None:
    """The known order of a gold comparison as scores; None when it is missing, empty or malformed."""
    if not gold_order:
        return None
    try:
        return stored_orders.scores(gold_order) or None
    except stored_orders.MalformedOrder:
        return None


def _seconds(spent_ms: int | None, leased_at: datetime | None, finished_at: datetime | None) -> float | None:
    """Time spent on one ranking: as the labeler's page measured it, else lease to submit, else unknown."""
    if spent_ms is not None:
        return spent_ms / 1000
    if leased_at and finished_at:
        return (finished_at - leased_at).total_seconds()
    return None


def _agreement_figures(by_item) -> dict:
    pairwise = agreement.pairwise_agreement(by_item)
    tau = agreement.mean_kendall_tau_b(by_item)
    alpha = agreement.ranking_alpha(by_item)
    return {
        "items": len(by_item),
        "shared_items": pairwise.items,
        "pairwise_rate": pairwise.rate,
        "pairwise_agreements": pairwise.agreements,
        "pairwise_pairs": pairwise.pairs,
        "pairwise_one_sided_ties": pairwise.one_sided_ties,
        "kendall_tau_b": tau.mean,
        "kendall_tau_b_cases": tau.count,
        "kendall_tau_b_undefined": tau.undefined,
        "krippendorff_alpha_ordinal": alpha.alpha,
        "krippendorff_units": alpha.units,
        "krippendorff_values": alpha.values,
    }


def project_stats(
    *,
    project: Project,
    criterion_id: int | None = None,
    sources: Iterable[str] = DEFAULT_SOURCES,
    only_labeler=None,
    now: datetime | None = None,
) -> dict:
    """Progress, agreement and per-labeler rows for one project.

    ``criterion_id`` picks the orders for one criterion; None takes every order of every ranking, each
    (comparison, criterion) ranked and compared on its own (for a project that ranks overall that is
    just the overall order). ``sources`` picks human / ai / imported rankings (human by default).
    ``only_labeler`` (a user) limits the answer to what that labeler may see: progress and their own
    row, no project-wide agreement, and their gold accuracy and consensus agreement only coarsely
    (``figures: coarse``, see QUALITY_WINDOW). Malformed stored orders are left out (and logged).
    """
    sources = check_filters(project=project, criterion_id=criterion_id, sources=sources)
    progress, leases_by_labeler = project_progress(project=project, now=now)
    rankings = (
        Ranking.objects.filter(comparison__project=project, source__in=sources)
        .order_by("pk")
        .values_list(
            "comparison_id",
            "labeler_id",
            "orders",
            "time_spent_ms",
            "assignment__created_at",
            "assignment__finished_at",
            "comparison__is_gold",
            "comparison__gold",
            "comparison__label_count",
        )
    )

    tally = OrderTally(criterion_id=criterion_id)
    gold: dict[tuple[int, int | None], dict[int, float]] = {}
    seconds: dict[int, list[float | None]] = defaultdict(list)
    rankings_total = 0
    # For a labeler's own coarse figures: their comparisons in the order they ranked them, and which
    # non-gold comparisons are complete (no more labels will change their consensus).
    own_id = only_labeler.pk if only_labeler is not None else None
    own_ranked: list[tuple[int, bool]] = []
    settled_ids: set[int] = set()
    for row in rankings:
        comparison_id, labeler_id, orders, spent_ms, leased_at, finished_at, is_gold, gold_order, labels = row
        rankings_total += 1
        if not is_gold and labels >= project.overlap:
            settled_ids.add(comparison_id)
        matched = tally.matching(comparison_id, orders)
        if not matched:
            continue
        tally.add(labeler_id, matched)
        if is_gold:
            for item, _ in matched:
                if item not in gold and (known := _gold_scores(gold_order)):
                    gold[item] = known
        if labeler_id == own_id:
            own_ranked.append((comparison_id, bool(is_gold)))
        seconds[labeler_id].append(_seconds(spent_ms, leased_at, finished_at))
    progress["rankings_total"] = rankings_total
    tally.log_malformed(project.pk)
    by_item = tally.by_item

    if only_labeler is not None:
        consensus, accuracy = {}, {}
        people = [(only_labeler.pk, only_labeler.get_username())]
    else:
        consensus = agreement.consensus_agreement(by_item)
        accuracy = agreement.gold_accuracy(by_item, gold)
        people = list(
            User.objects.filter(
                Q(pk__in=list(tally.rankings)) | Q(memberships__project=project, memberships__role=Role.LABELER)
            )
            .distinct()
            .order_by("username")
            .values_list("pk", "username")
        )

    rows = []
    for user_id, username in people:
        speed = agreement.task_speed(seconds.get(user_id, ()))
        gold_rate, gold_pairs = _pair_count(accuracy.get(user_id))
        consensus_rate, consensus_pairs = _pair_count(consensus.get(user_id))
        leases = leases_by_labeler.get(user_id, {})
        if only_labeler is not None:
            quality = _own_quality(
                labeler_id=user_id, ranked=own_ranked, by_item=by_item, gold=gold, settled_ids=settled_ids
            )
        else:
            quality = {
                "gold_accuracy": gold_rate,
                "gold_pairs": gold_pairs,
                "gold_comparisons": None,  # only coarse figures say how many windows' comparisons they cover
                "consensus_agreement": consensus_rate,
                "consensus_pairs": consensus_pairs,
                "consensus_comparisons": None,
            }
        rows.append(
            {
                "labeler": user_id,
                "username": username,
                "rankings": tally.rankings.get(user_id, 0),
                "skipped": leases.get("skipped", 0),
                "throughput_per_hour": speed.per_hour,
                "median_seconds_per_task": speed.median_seconds,
                **quality,
            }
        )

    return {
        "project": project.pk,
        "criterion": criterion_id,
        "sources": sources,
        "progress": progress,
        "agreement": _agreement_figures(by_item) if only_labeler is None else None,
        "figures": "exact" if only_labeler is None else "coarse",
        "labelers": rows,
    }
