"""Agreement and quality statistics over plain data. No Django here: the selectors feed it dicts.

Vocabulary
----------
* An **order** is one labeler's ranking of one item: ``{completion_id: score}``, lower is better.
  ``contracts.orders`` reads it from the stored ``{"ranks": ..., "failed": [...]}`` (``scores``,
  ``read_orders``); an F-marked completion scores ``math.inf``, below every ranked completion, and
  two F marks tie. Only the order of the scores matters: equal scores tie, gaps mean nothing.
* An **item** is whatever was ranked as one unit: the stats selector uses ``(comparison_id,
  criterion_id)``, so each criterion of a comparison is ranked (and compared) separately.
* ``by_item`` is ``{item: {labeler: order}}``: every order submitted for every item.
* A **strict pair** of an order is an unordered completion pair ``(a, b)`` with ``a < b`` that the
  order does not tie; its **direction** is ``+1`` when ``a`` is preferred (lower score), ``-1`` when
  ``b`` is. Pairs only count between completions that both orders in question score.

Every rate comes back with the counts behind it and is ``None`` when there was nothing to count,
never 0.0 for "no data".
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from contracts import orders as stored_orders
from contracts.orders import F_SCORE as F_SCORE  # the selectors compare scores with it

Order = Mapping[int, float]
ByItem = Mapping[Hashable, Mapping[Hashable, Order]]


# -- orders ----------------------------------------------------------------------------------------


def scores_from_order(ranks: Mapping[str | int, float], failed: Iterable[int | str] = ()) -> dict[int, float]:
    """``{completion_id: score}`` from a stored order's ranks and F marks (``contracts.orders.scores``):
    keys become ints; F marks win over a rank; a malformed one raises ``MalformedOrder``."""
    return stored_orders.scores({"ranks": ranks, "failed": list(failed)})


def direction(order: Order, a: int, b: int) -> int:
    """+1 if ``a`` is preferred over ``b``, -1 if ``b`` over ``a``, 0 for a tie."""
    sa, sb = order[a], order[b]
    return (sa < sb) - (sa > sb)


def strict_pairs(order: Order) -> dict[tuple[int, int], int]:
    """Every strict pair of the order with its direction (ties and F-vs-F left out)."""
    pairs = {}
    for a, b in combinations(sorted(order), 2):
        d = direction(order, a, b)
        if d:
            pairs[(a, b)] = d
    return pairs


def rank_positions(order: Order) -> dict[int, float]:
    """Positions 1..K in the order, ties sharing the mean of their positions (fractional ranks).

    ``{a: 1, b: 5, c: 5, d: inf}`` -> ``{a: 1.0, b: 2.5, c: 2.5, d: 4.0}``: two labelers who order
    the same way get the same positions whatever rank numbers (gaps) they typed.
    """
    ordered = sorted(order, key=lambda cid: order[cid])
    positions: dict[int, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and order[ordered[j + 1]] == order[ordered[i]]:
            j += 1
        mean_position = (i + j) / 2 + 1
        for cid in ordered[i : j + 1]:
            positions[cid] = mean_position
        i = j + 1
    return positions


# -- results ---------------------------------------------------------------------------------------


@dataclass
class PairCount:
    """``agreements`` out of ``pairs``; ``rate`` is None when no pair counted."""

    agreements: int = 0
    pairs: int = 0

    @property
    def rate(self) -> float | None:
        return self.agreements / self.pairs if self.pairs else None

    def add(self, agree: bool) -> None:
        self.pairs += 1
        self.agreements += int(agree)


@dataclass
class PairwiseAgreement(PairCount):
    """Inter-labeler agreement on shared strict pairs, plus the pairs it left out for a one-sided tie."""

    one_sided_ties: int = 0
    items: int = 0  # items ranked by two or more labelers


@dataclass
class TauSummary:
    mean: float | None
    count: int  # (item, labeler pair) cases averaged
    undefined: int  # cases skipped because one order ties everything (tau-b is 0/0)


@dataclass
class AlphaResult:
    alpha: float | None  # None when undefined: no pairable values, or no variation at all
    units: int  # units with two or more values (the pairable ones)
    values: int  # n, the number of pairable values
    observed_disagreement: float | None = None
    expected_disagreement: float | None = None


@dataclass
class Speed:
    tasks: int
    median_seconds: float | None
    per_hour: float | None  # tasks per hour of time spent on them: 3600 * tasks / total seconds


# -- inter-labeler agreement -----------------------------------------------------------------------


def _labeler_pairs(labelers: Mapping[Hashable, Order]):
    keys = sorted(labelers, key=repr)
    return combinations(keys, 2)


def pairwise_agreement(by_item: ByItem) -> PairwiseAgreement:
    """The InstructGPT-style agreement rate between labelers.

    For every item ranked by two or more labelers, for every unordered pair of those labelers, for
    every unordered pair of completions both of them scored: if both orders are strict on it, the
    pair counts, and it agrees when they prefer the same completion. If exactly one of them ties it
    (an explicit tie or F vs F), it is left out of the rate and counted in ``one_sided_ties``; when
    both tie it nothing is counted. ``rate = agreements / pairs``.
    """
    result = PairwiseAgreement()
    for orders in by_item.values():
        if len(orders) < 2:
            continue
        result.items += 1
        for la, lb in _labeler_pairs(orders):
            oa, ob = orders[la], orders[lb]
            for a, b in combinations(sorted(oa.keys() & ob.keys()), 2):
                da, db = direction(oa, a, b), direction(ob, a, b)
                if da and db:
                    result.add(da == db)
                elif da or db:
                    result.one_sided_ties += 1
    return result


def kendall_tau_b(x: Order, y: Order) -> float | None:
    """Kendall's tau-b between two orders over the completions both scored (same value as
    ``scipy.stats.kendalltau``, computed from pair counts because K is at most 9).

    tau_b = (concordant - discordant) / sqrt((n0 - ties_x) * (n0 - ties_y)), n0 = C(n, 2); a pair tied
    in both orders counts in both tie terms. None when undefined (fewer than 2 completions, or one
    order ties everything).
    """
    common = sorted(x.keys() & y.keys())
    n0 = len(common) * (len(common) - 1) // 2
    concordant = discordant = ties_x = ties_y = 0
    for a, b in combinations(common, 2):
        dx, dy = direction(x, a, b), direction(y, a, b)
        ties_x += dx == 0
        ties_y += dy == 0
        if dx and dy:
            if dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = (n0 - ties_x) * (n0 - ties_y)
    if denominator == 0:
        return None
    return (concordant - discordant) / math.sqrt(denominator)


def mean_kendall_tau_b(by_item: ByItem) -> TauSummary:
    """Mean tau-b over every (item, unordered labeler pair) of items ranked by two or more labelers,
    each case weighted equally; undefined cases (an all-tied order) are skipped and counted."""
    taus: list[float] = []
    undefined = 0
    for orders in by_item.values():
        for la, lb in _labeler_pairs(orders):
            tau = kendall_tau_b(orders[la], orders[lb])
            if tau is None:
                undefined += 1
            else:
                taus.append(tau)
    return TauSummary(mean=statistics.fmean(taus) if taus else None, count=len(taus), undefined=undefined)


# -- Krippendorff's alpha --------------------------------------------------------------------------


def _delta_squared(values: np.ndarray, marginals: np.ndarray, metric: str) -> np.ndarray:
    if metric == "nominal":
        return 1.0 - np.eye(len(values))
    if metric == "interval":
        return np.subtract.outer(values, values) ** 2
    if metric == "ordinal":
        # delta^2_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 for c <= k, symmetric.
        cumulative = np.cumsum(marginals)
        lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cumulative[hi] - cumulative[lo] + marginals[lo]
        return (between - np.add.outer(marginals, marginals) / 2) ** 2
    raise ValueError(f"Unknown metric {metric!r}; use nominal, ordinal or interval.")


def krippendorff_alpha(units: Mapping[Hashable, Mapping[Hashable, float]], metric: str = "ordinal") -> AlphaResult:
    """Krippendorff's alpha for ``{unit: {coder: value}}`` (a coder may skip units).

    Coincidence matrix: each unit with m >= 2 values adds 1 / (m - 1) to o[c, k] for every ordered
    pair of values (c, k) from two different coders; n_c = sum_k o[c, k], n = sum_c n_c.
    alpha = 1 - D_o / D_e = 1 - (n - 1) * sum o[c, k] delta^2_ck / sum n_c n_k delta^2_ck.
    Units with fewer than two values are not pairable and drop out.
    """
    pairable = [list(coded.values()) for coded in units.values() if len(coded) >= 2]
    if not pairable:
        return AlphaResult(alpha=None, units=0, values=0)
    values = np.array(sorted({v for unit in pairable for v in unit}), dtype=float)
    index = {v: i for i, v in enumerate(values.tolist())}
    coincidences = np.zeros((len(values), len(values)))
    for unit in pairable:
        counts = np.bincount([index[float(v)] for v in unit], minlength=len(values)).astype(float)
        # Ordered pairs from different coders: all pairs minus each value paired with itself.
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (len(unit) - 1)
    marginals = coincidences.sum(axis=1)
    n = marginals.sum()
    delta2 = _delta_squared(values, marginals, metric)
    observed = float((coincidences * delta2).sum() / n)
    expected = float((np.outer(marginals, marginals) * delta2).sum() / (n * (n - 1)))
    alpha = None if expected == 0 else 1.0 - observed / expected
    return AlphaResult(
        alpha=alpha,
        units=len(pairable),
        values=sum(len(unit) for unit in pairable),
        observed_disagreement=observed,
        expected_disagreement=expected,
    )


def ranking_alpha(by_item: ByItem) -> AlphaResult:
    """Ordinal alpha over rankings: units are (item, completion), coders are labelers, and a value is
    the completion's fractional position (``rank_positions``) in that labeler's order of the item."""
    units: dict[Hashable, dict[Hashable, float]] = defaultdict(dict)
    for item, orders in by_item.items():
        for labeler, order in orders.items():
            for cid, position in rank_positions(order).items():
                units[(item, cid)][labeler] = position
    return krippendorff_alpha(units, metric="ordinal")


# -- per labeler -----------------------------------------------------------------------------------


def consensus_agreement(by_item: ByItem) -> dict[Hashable, PairCount]:
    """Each labeler against the majority of the *other* labelers, pair by pair.

    For every strict pair in labeler L's order of an item, the other labelers of that item vote: +1
    or -1 by their direction, nothing when they tie it or did not score both completions. If the votes
    have a strict majority, the pair counts for L, and agrees when L's direction matches it; a pair
    with no votes or a split vote is left out. Labelers who never met a majority get ``pairs == 0``.
    """
    results: dict[Hashable, PairCount] = defaultdict(PairCount)
    for orders in by_item.values():
        strict = {labeler: strict_pairs(order) for labeler, order in orders.items()}
        for labeler, pairs in strict.items():
            result = results[labeler]
            for (a, b), own in pairs.items():
                votes = 0
                for other, order in orders.items():
                    if other != labeler and a in order and b in order:
                        votes += direction(order, a, b)
                if votes:
                    result.add((votes > 0) == (own > 0))
    return dict(results)


def gold_accuracy(by_item: ByItem, gold: Mapping[Hashable, Order]) -> dict[Hashable, PairCount]:
    """Share of gold strict pairs each labeler orders the same way.

    For every item with a gold order, for every labeler who ranked it, every strict pair of the gold
    order (over completions the labeler scored) counts once; it agrees only when the labeler prefers
    the same completion, so a tie where gold has an order is an error.
    """
    results: dict[Hashable, PairCount] = defaultdict(PairCount)
    for item, gold_order in gold.items():
        gold_pairs = strict_pairs(gold_order)
        for labeler, order in by_item.get(item, {}).items():
            result = results[labeler]
            for (a, b), expected in gold_pairs.items():
                if a in order and b in order:
                    result.add(direction(order, a, b) == expected)
    return dict(results)


def task_speed(seconds: Iterable[float | None]) -> Speed:
    """Median seconds per task and throughput (tasks per hour of time spent labeling) over the tasks
    whose duration is known. Idle time between tasks is not counted, so this is working speed."""
    known = [s for s in seconds if s is not None and s >= 0]
    total = sum(known)
    return Speed(
        tasks=len(known),
        median_seconds=statistics.median(known) if known else None,
        per_hour=3600 * len(known) / total if total > 0 else None,
    )
