"""What the project statistics count, for ``project_stats`` (now) and ``project_stats_timeline`` (per
bucket) alike, so the timeline's last bucket agrees with ``GET .../stats/`` by construction.

- :func:`check_filters`: the ``criterion`` and ``sources`` a caller may ask for;
- :class:`OrderTally`: which orders of a ranking count (well-formed, see :mod:`contracts.orders`, and
  of the chosen criterion), the orders by item, and how many rankings of each labeler counted.

An *item* is ``(comparison_id, criterion)``: each criterion of a comparison is ranked, and compared,
on its own. ``by_item`` is ``{item: {labeler_id: scores}}``, what ``labeling.agreement`` reads.
"""

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable

from common.exceptions import ServiceError
from contracts.orders import read_orders
from labeling.models import LabelSource, Project

logger = logging.getLogger(__name__)

DEFAULT_SOURCES = (LabelSource.HUMAN,)

Item = tuple[int, int | None]
Scores = dict[int, float]


def check_filters(*, project: Project, criterion_id: int | None, sources: Iterable[str]) -> list[str]:
    """The sources asked for, sorted; a ServiceError for an unknown source, none at all, or a
    criterion of another project."""
    sources = sorted(set(sources))
    unknown = [s for s in sources if s not in LabelSource.values]
    if unknown or not sources:
        raise ServiceError(
            f"Unknown label source {unknown[0] if unknown else ''!r}.",
            errors={"sources": [f"Allowed: {', '.join(LabelSource.values)}."]},
        )
    if criterion_id is not None and not project.criteria.filter(pk=criterion_id).exists():
        raise ServiceError(
            f"Criterion {criterion_id} is not a criterion of project {project.pk}.",
            errors={"criterion": [f"No criterion {criterion_id} in this project."]},
        )
    return sources


class OrderTally:
    """Rankings' orders as the statistics count them, fed one ranking at a time (in the order the
    caller wants later rankings to win: a labeler's second order of an item replaces the first)."""

    def __init__(self, *, criterion_id: int | None):
        self.criterion_id = criterion_id
        self.by_item: dict[Item, dict[int, Scores]] = defaultdict(dict)
        self.rankings: Counter[int] = Counter()  # labeler -> rankings with an order that counts
        self.malformed = 0  # stored orders left out as malformed

    def matching(self, comparison_id: int, orders) -> list[tuple[Item, Scores]]:
        """A ranking's orders that count, ``[(item, scores)]``: malformed ones are left out (and counted),
        and so are the other criteria's when one criterion was asked for."""
        read = read_orders(orders)
        self.malformed += read.malformed
        wanted = self.criterion_id
        return [
            ((comparison_id, order.criterion), order.scores)
            for order in read.orders
            if wanted is None or order.criterion == wanted
        ]

    def add(self, labeler_id: int, matched: list[tuple[Item, Scores]]) -> None:
        """Count one ranking's matching orders (a ranking with none does not count)."""
        if not matched:
            return
        for item, scores in matched:
            self.by_item[item][labeler_id] = scores
        self.rankings[labeler_id] += 1

    def log_malformed(self, project_id: int) -> None:
        if self.malformed:
            logger.warning(
                "project %s: %d malformed stored orders left out of the statistics", project_id, self.malformed
            )
