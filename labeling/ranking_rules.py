"""What a valid submitted ranking is (pure Python, no Django).

A ranking gives every completion either a rank 1..K (1 is best; equal ranks tie, gaps are
allowed) or an F mark (nonsense / off-task), never both. Errors name the completion and the rule.
What passes is written in the stored form of :mod:`contracts.orders` (whose reader is more lenient:
it reads any well-formed order, complete or not).
"""

from collections.abc import Iterable, Mapping
from typing import Any

from contracts.orders import order_body


class RankingError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _completion_id(value: Any, problems: list[str], where: str) -> int | None:
    if isinstance(value, bool):
        problems.append(f"{where}: {value!r} is not a completion id")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        problems.append(f"{where}: {value!r} is not a completion id")
        return None


def _rank_items(ranks: Any, problems: list[str]) -> list[tuple[Any, Any]]:
    if isinstance(ranks, Mapping):
        return list(ranks.items())
    if isinstance(ranks, list):
        items = []
        for i, entry in enumerate(ranks):
            if not isinstance(entry, Mapping) or "completion" not in entry or "rank" not in entry:
                problems.append(f"ranks[{i}]: expected {{'completion': id, 'rank': n}}")
                continue
            items.append((entry["completion"], entry["rank"]))
        return items
    problems.append("ranks: expected an object {completion_id: rank} or a list of {completion, rank}")
    return []


def normalize_order(ranks: Any, failed: Any, completion_ids: Iterable[int], *, label: str = "") -> dict:
    """Check one order against the comparison's completions; return ``{"ranks": {id: rank}, "failed": [id]}``.

    Raises RankingError listing every problem found, each prefixed with ``label`` when given.
    """
    ids = list(completion_ids)
    k = len(ids)
    known = set(ids)
    problems: list[str] = []
    prefix = f"{label}: " if label else ""

    normalized: dict[int, int] = {}
    flagged: set[int] = set()  # completions that already have a problem reported
    for key, rank in _rank_items(ranks, problems):
        cid = _completion_id(key, problems, "ranks")
        if cid is None:
            continue
        if cid not in known:
            problems.append(f"unknown completion {cid} (this comparison has {sorted(known)})")
            continue
        if cid in normalized:
            problems.append(f"completion {cid} is ranked twice")
            continue
        if isinstance(rank, bool) or not isinstance(rank, int):
            problems.append(f"rank {rank!r} for completion {cid} is not a whole number")
            flagged.add(cid)
            continue
        if not 1 <= rank <= k:
            problems.append(f"rank {rank} for completion {cid} is out of range 1..{k}")
            flagged.add(cid)
            continue
        normalized[cid] = rank

    failed_ids: list[int] = []
    if failed is None:
        failed = []
    if not isinstance(failed, list):
        problems.append("failed: expected a list of completion ids")
        failed = []
    for value in failed:
        cid = _completion_id(value, problems, "failed")
        if cid is None:
            continue
        if cid not in known:
            problems.append(f"unknown completion {cid} in failed (this comparison has {sorted(known)})")
        elif cid in failed_ids:
            problems.append(f"completion {cid} is marked F twice")
        elif cid in normalized:
            problems.append(f"completion {cid} is marked F and must not also have a rank")
        else:
            failed_ids.append(cid)

    for cid in ids:
        if cid not in normalized and cid not in failed_ids and cid not in flagged:
            problems.append(f"completion {cid} has no rank and is not marked F")

    if problems:
        raise RankingError([prefix + p for p in problems])
    return order_body({cid: normalized[cid] for cid in ids if cid in normalized}, failed_ids)
