"""The stored ranking order, in one place: how it is written, how it is read, and what happens to a
malformed one. Every reader of ``Ranking.orders`` and ``Comparison.gold`` goes through here.

Format
------
A ranking's ``orders`` is a list with one order per criterion (one order, criterion null, for a
project that ranks overall)::

    {"criterion": id | null, "ranks": {"<completion id>": rank}, "failed": [completion id], "ai": {...}}

Rank 1 is best and only the order matters: equal ranks tie, gaps mean nothing. An F mark
(``failed``: nonsense / off-task) puts a completion below every ranked one; two F marks tie; a
completion both ranked and F-marked counts as F-marked. ``ai`` (AI labels only) keeps the judge's
details: ``principle``, ``probability``, ``constitution``, ``run`` and ``pairs`` ``[{a, b, p_a}]``
with ``p_a`` the probability that ``a`` is better. A comparison's gold order is the same
``{ranks, failed}`` without a criterion.

Well-formed means: the order is an object; ``criterion`` is absent, null or an id; ``ranks`` is
absent, null or an object whose keys are completion ids and whose values are finite numbers;
``failed`` is absent, null or a list of completion ids. An id is an integer or a string that
``int()`` reads as one (JSON object keys are strings); true and false are not ids, and a rank of
``"3"`` is not a number.

Malformed data
--------------
Nothing is guessed: :func:`criterion_of`, :func:`scores` and :func:`levels` raise
:class:`MalformedOrder` (a ``ValueError``) naming the problem, and :func:`read_orders` leaves a
malformed order out and counts it (a ranking whose ``orders`` is not a list counts as one). A figure
that describes the labels (statistics, the timeline, side-by-side verdicts, the AI audit, a round's
summary) is computed without the malformed orders and the page is served (the statistics and the
side-by-side results log how many they left out); a preference snapshot, which becomes training
data, is refused instead: its build fails naming the ranking (``labeling.pairs``), since a training
set silently short of some labels is worse than none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

F_SCORE = math.inf  # the score of an F-marked completion (lower scores are better)

_isfinite = math.isfinite


class MalformedOrder(ValueError):
    """A stored order that is not well-formed (see the module docstring); the message says why."""


# -- writing ---------------------------------------------------------------------------------------


def order_body(ranks: Mapping[int | str, int | float], failed: Iterable[int | str] = ()) -> dict:
    """``{"ranks": {"<id>": rank}, "failed": [id]}``: the ranks in the given order, keyed by the id as
    a string; the F-marked ids as sorted integers. The callers check the ranks first
    (``labeling.ranking_rules`` checks a submit)."""
    return {"ranks": {str(cid): rank for cid, rank in ranks.items()}, "failed": sorted(int(cid) for cid in failed)}


def make_order(
    criterion: int | None,
    ranks: Mapping[int | str, int | float],
    failed: Iterable[int | str] = (),
    *,
    ai: Mapping | None = None,
) -> dict:
    """One order as a ranking stores it: ``{"criterion", "ranks", "failed"}`` (and ``"ai"`` when given)."""
    order = {"criterion": criterion, **order_body(ranks, failed)}
    if ai is not None:
        order["ai"] = dict(ai)
    return order


# -- reading one order -----------------------------------------------------------------------------


def _kind(value) -> str:
    return "null" if value is None else type(value).__name__


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _id(value, what: str) -> int:
    """A completion or criterion id: an integer (not a bool) or a string ``int()`` reads."""
    if value.__class__ is int:
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            pass
    raise MalformedOrder(f"{what}: {value!r} is not an id")


def _check_mapping(order) -> None:
    if order.__class__ is not dict and not isinstance(order, Mapping):
        raise MalformedOrder(f"an order is an object {{criterion, ranks, failed}}, not {_kind(order)}")


def criterion_of(order) -> int | None:
    """The order's criterion id, None for an overall order."""
    _check_mapping(order)
    criterion = order.get("criterion")
    return None if criterion is None else _id(criterion, "criterion")


def _parts(order, ids: set[int] | frozenset[int] | None) -> tuple[dict[int, int | float], set[int]]:
    """``({id: rank} of the ranked completions that are not F-marked, {F-marked ids})``, both kept
    to ``ids`` when given. The whole order is checked, whatever ``ids`` keeps."""
    # The hot path of a snapshot build: the usual shapes (dict, list, str keys) are tested first.
    if order.__class__ is not dict:
        _check_mapping(order)
    failed_ids = order.get("failed")
    failed: set[int] = set()
    if failed_ids:
        if failed_ids.__class__ is not list and not isinstance(failed_ids, tuple):
            raise MalformedOrder(f"failed is a list of completion ids, not {_kind(failed_ids)}")
        for value in failed_ids:
            completion_id = _id(value, "failed")
            if ids is None or completion_id in ids:
                failed.add(completion_id)
    elif failed_ids is not None and failed_ids.__class__ is not list and not isinstance(failed_ids, tuple):
        raise MalformedOrder(f"failed is a list of completion ids, not {_kind(failed_ids)}")
    given = order.get("ranks")
    ranks: dict[int, int | float] = {}
    if given is None:
        return ranks, failed
    if given.__class__ is not dict and not isinstance(given, Mapping):
        raise MalformedOrder(f"ranks is an object {{completion_id: rank}}, not {_kind(given)}")
    for key, rank in given.items():
        try:
            completion_id = int(key) if key.__class__ is str else _id(key, "ranks")
        except ValueError:
            raise MalformedOrder(f"ranks: {key!r} is not an id") from None
        if not (rank.__class__ is int or (rank.__class__ is float and _isfinite(rank)) or _is_number(rank)):
            raise MalformedOrder(f"rank of completion {completion_id} is {rank!r}, not a number")
        if completion_id not in failed and (ids is None or completion_id in ids):
            ranks[completion_id] = rank
    return ranks, failed


def scores(order) -> dict[int, float]:
    """``{completion_id: score}``, lower is better: the rank as a float, :data:`F_SCORE` for an F mark.
    Every id of the order is kept (labeling.agreement's "order")."""
    ranks, failed = _parts(order, None)
    result = {completion_id: float(rank) for completion_id, rank in ranks.items()}
    for completion_id in failed:
        result[completion_id] = F_SCORE
    return result


def levels(order, completion_ids: set[int] | frozenset[int]) -> dict[int, int]:
    """``{completion_id: level}`` over the given completions (others are ignored): the 0-based
    position of the rank among the distinct ranks given (ranks 1, 5, 5, 9 -> levels 0, 1, 1, 2), the
    F-marked completions sharing the level below the last (labeling.pairs turns levels into pairs)."""
    ranks, failed = _parts(order, completion_ids)
    distinct = sorted(set(ranks.values()))
    level_of = {rank: level for level, rank in enumerate(distinct)}
    result = {completion_id: level_of[rank] for completion_id, rank in ranks.items()}
    for completion_id in failed:
        result[completion_id] = len(distinct)
    return result


def ai_pair_probabilities(order: Mapping) -> dict[tuple[int, int], float]:
    """``{(chosen, rejected): p}`` from an AI order's ``ai.pairs`` (``p_a`` = P(a better than b)).
    A malformed pair entry is skipped (a snapshot's margin then falls back to the rank difference)."""
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


# -- reading a ranking's orders --------------------------------------------------------------------


def order_list(value) -> list | tuple:
    """A ranking's ``orders`` as the list it must be."""
    if value.__class__ is not list and not isinstance(value, tuple):
        raise MalformedOrder(f"a ranking's orders are a list, not {_kind(value)}")
    return value


@dataclass(frozen=True)
class StoredOrder:
    """One well-formed order of a ranking: its criterion, its :func:`scores`, and the order as stored."""

    criterion: int | None
    scores: dict[int, float]
    stored: Mapping


@dataclass(frozen=True)
class OrdersRead:
    orders: list[StoredOrder]
    malformed: int  # orders left out (a value that is not a list counts as one)


def read_orders(value) -> OrdersRead:
    """A ranking's stored ``orders``: the well-formed ones, in order, and how many were left out."""
    try:
        entries = order_list(value)
    except MalformedOrder:
        return OrdersRead([], 1)
    orders: list[StoredOrder] = []
    malformed = 0
    for order in entries:
        try:
            orders.append(StoredOrder(criterion_of(order), scores(order), order))
        except MalformedOrder:
            malformed += 1
    return OrdersRead(orders, malformed)
