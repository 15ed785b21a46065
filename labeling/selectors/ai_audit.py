"""Audit of the AI labeler: where AI and people (human labelers, or imported labels such as HH-RLHF's
chosen/rejected) ranked the same comparison, how often do they agree, per principle, beside how
often the humans agree with each other on those comparisons; and the comparisons they disagree on.

Only overall orders (no criterion) are compared: the AI labeler ranks overall.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from contracts.orders import read_orders
from labeling import agreement
from labeling.models import Comparison, LabelSource, Project, Ranking

PEOPLE = (LabelSource.HUMAN, LabelSource.IMPORTED)


@dataclass
class _Shared:
    """One AI-labeled comparison: the AI's order and the people's orders by labeler id."""

    principle: str
    ai: dict[int, float]
    ai_details: dict
    people: dict[str, dict[int, dict[int, float]]] = field(default_factory=lambda: defaultdict(dict))


def _overall_order(orders) -> tuple[dict | None, dict[int, float] | None]:
    """The stored overall order of a ranking and its scores (malformed orders left out)."""
    for order in read_orders(orders).orders:
        if order.criterion is None:
            return order.stored, order.scores
    return None, None


def _ai_labeled(project: Project, principle: str | None = None) -> dict[int, _Shared]:
    """Every AI-labeled comparison of the project with every person's overall order of it (one query)."""
    ai_labeled = Ranking.objects.filter(comparison__project=project, source=LabelSource.AI).values("comparison_id")
    rows = (
        Ranking.objects.filter(comparison_id__in=ai_labeled, comparison__is_gold=False)
        .values_list("comparison_id", "labeler_id", "source", "orders")
        .order_by("comparison_id", "id")
    )
    ai: dict[int, _Shared] = {}
    people: dict[int, list[tuple[str, int, dict]]] = defaultdict(list)
    for comparison_id, labeler_id, source, orders in rows:
        raw, scores = _overall_order(orders)
        if scores is None:
            continue
        if source == LabelSource.AI:
            details = raw.get("ai") if isinstance(raw.get("ai"), dict) else {}
            key = str(details.get("principle") or "unspecified")
            if principle is None or key == principle:
                ai[comparison_id] = _Shared(principle=key, ai=scores, ai_details=details)
        elif source in PEOPLE:
            people[comparison_id].append((source, labeler_id, scores))
    for comparison_id, shared in ai.items():
        for source, labeler_id, scores in people.get(comparison_id, ()):
            shared.people[source][labeler_id] = scores
    return ai


def _public(order: dict[int, float]) -> dict[str, float | str]:
    """An order as JSON can carry it: an F mark (infinite score) written as "F"."""
    return {str(cid): ("F" if score == agreement.F_SCORE else score) for cid, score in order.items()}


def _rate(count: agreement.PairCount) -> dict:
    return {"rate": count.rate, "agreements": count.agreements, "pairs": count.pairs}


def _ai_vs(shared: list[_Shared], source: str) -> agreement.PairCount:
    """AI against each person of ``source``, pair by pair (the AI order taken as the reference)."""
    by_item = {i: s.people.get(source, {}) for i, s in enumerate(shared)}
    total = agreement.PairCount()
    for count in agreement.gold_accuracy(by_item, {i: s.ai for i, s in enumerate(shared)}).values():
        total.agreements += count.agreements
        total.pairs += count.pairs
    return total


def _disagrees(shared: _Shared) -> bool:
    ai_pairs = agreement.strict_pairs(shared.ai)
    for orders in shared.people.values():
        for order in orders.values():
            for (a, b), expected in ai_pairs.items():
                if a in order and b in order and agreement.direction(order, a, b) == -expected:
                    return True
    return False


def _row(principle: str, shared: list[_Shared]) -> dict:
    humans = agreement.pairwise_agreement({i: s.people.get(LabelSource.HUMAN, {}) for i, s in enumerate(shared)})
    return {
        "principle": principle,
        "ai_labels": len(shared),
        "shared_with_humans": sum(1 for s in shared if s.people.get(LabelSource.HUMAN)),
        "shared_with_imported": sum(1 for s in shared if s.people.get(LabelSource.IMPORTED)),
        "ai_human_agreement": _rate(_ai_vs(shared, LabelSource.HUMAN)),
        "human_human_agreement": _rate(humans),
        "ai_imported_agreement": _rate(_ai_vs(shared, LabelSource.IMPORTED)),
        "disagreements": sum(1 for s in shared if _disagrees(s)),
    }


def ai_audit(*, project: Project) -> dict:
    """Per principle and overall: AI labels, the comparisons people also ranked, agreement rates."""
    labeled = _ai_labeled(project)
    by_principle: dict[str, list[_Shared]] = defaultdict(list)
    for shared in labeled.values():
        by_principle[shared.principle].append(shared)
    return {
        "project": project.pk,
        "spot_check_rate": project.ai_spot_check_rate,
        "overall": _row("all", list(labeled.values())),
        "principles": [_row(key, by_principle[key]) for key in sorted(by_principle)],
    }


def ai_disagreements(*, project: Project, principle: str | None = None) -> list[dict]:
    """The AI-labeled comparisons where a person prefers the other side of some pair, newest first,
    with the prompt, the completions, the AI's order and details and every person's order."""
    labeled = _ai_labeled(project, principle)
    ids = sorted((cid for cid, shared in labeled.items() if _disagrees(shared)), reverse=True)
    comparisons = Comparison.objects.filter(pk__in=ids).prefetch_related("completions").in_bulk()
    result = []
    for comparison_id in ids:
        comparison, shared = comparisons[comparison_id], labeled[comparison_id]
        result.append(
            {
                "comparison": comparison_id,
                "prompt": comparison.prompt,
                "split": comparison.split,
                "completions": [
                    {"id": c.pk, "position": c.position, "text": c.text} for c in comparison.completions.all()
                ],
                "principle": shared.principle,
                "ai": {"order": _public(shared.ai), "details": shared.ai_details},
                "people": [
                    {"source": source, "labeler": labeler, "order": _public(order)}
                    for source, orders in sorted(shared.people.items())
                    for labeler, order in sorted(orders.items())
                ],
            }
        )
    return result
