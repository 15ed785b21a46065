"""Rankings -> preference pairs (the files they are written to: :mod:`labeling.pair_files`).

Pure Python: no Django, no torch. Pairs are made one comparison at a time
(:func:`rows_for_comparison`: group the orders, tally the votes, then the per-labeler or consensus
step), from the plain records below (:class:`ComparisonData`, :class:`RankingData`):

- :func:`export_pairs` streams: it takes ``(comparison, its rankings)`` in comparison-id order and
  hands each comparison's rows to a writer at once (the snapshot service reads the live tables
  through server-side cursors and writes with :class:`labeling.pair_files.PairFileWriter`), so
  memory does not grow with the number of rankings or pairs;
- :func:`build_pairs` takes whole lists and returns every :class:`Pair` (the ML side and the tests
  call it); both give the same rows in the same order and the same counts.

Rows come out ordered by comparison id, then criterion (none first), then labeler id (per labeler)
or the completions' position order (consensus).

Definitions (DESIGN.md, "Rankings -> pairs")
--------------------------------------------
*Order.* One ranking holds one order per criterion: ``{"criterion": id | None, "ranks":
{completion_id: rank}, "failed": [completion_id]}`` (the format and its reading:
:mod:`contracts.orders`). Rank 1 is best and only the order matters: ranks are replaced by their
*level*, the 0-based position of the rank among the distinct ranks given (so ranks 1, 5, 5, 9
become levels 0, 1, 1, 2; gaps vanish, equal ranks tie). F-marked completions all share one level
below every ranked completion. A completion neither ranked nor F-marked (never the case for a valid
submit) takes part in no pair. A malformed order fails the build, naming the ranking (the policy of
:mod:`contracts.orders`: training data is never made from what is left of a ranking).

*Pair.* Every two completions of a comparison with different levels in one order yield one pair
(prompt, chosen = the better level, rejected). Equal levels -- a tie, or F vs F -- yield none.

*Weight.* ``1 / C(K, 2)`` with K the number of completions of the comparison, so a fully ordered
ranking contributes weights summing to exactly 1 per prompt per labeler (per criterion); ties and
F vs F lose their share instead of inflating the others (InstructGPT counts each prompt once). In
``consensus`` mode the weight is the same, once per kept unordered pair.

*Votes and agreement.* Within one (comparison, criterion), every labeler whose order levels both
completions of an unordered pair {a, b} is a *voter* on it: a vote for a, a vote for b, or no
preference (tie / F vs F). ``agreement`` of a directed pair a > b is
``votes(a > b) / voters`` -- the share of the labelers who saw both that put them this way round.
A comparison ranked by one labeler has agreement 1.0 on all its pairs.

*Margin* (the value TRL's ``RewardTrainer`` subtracts inside its loss,
``-logsigmoid(r_chosen - r_rejected - margin)``), always in (0, 1]:

- ``per_labeler``: ``(level(rejected) - level(chosen)) / (K - 1)``, the rank difference on the
  tie- and gap-free scale, normalized by the largest possible difference (best vs worst of K fully
  ordered completions, or best vs F). Adjacent completions of a full order of K=4 get 1/3.
- ``consensus``: ``(votes(winner) - votes(loser)) / voters``, the net vote share: 1.0 when every
  voter agrees, 1/3 for a 2-1 split among three labelers.
- an AI ranking (``per_labeler``) that kept its judge's pair probabilities: the probability the AI
  labeler gave to chosen over rejected, so a confident AI label weighs more than a coin flip.

*Consensus.* Votes are counted per unordered pair within one (comparison, criterion) -- criteria
never mix. The pair is kept, winner chosen, when (1) the winner has strictly more votes than the
loser -- a tie in votes (1-1, or 0-0 when everyone tied) never yields a pair, whatever the
threshold -- and (2) ``share = votes(winner) / voters`` (no-preference voters count in the
denominator) is at least ``consensus_threshold`` (default 0.5, so 2 of 3 is kept, and 1 vote
against 2 "no preference" is dropped) and at least ``min_agreement``. Consensus rows carry
``labeler_id = None`` and ``source`` = the voters' common source, or ``"mixed"``.

*Filters*, applied in this order: gold comparisons are left out unless ``include_gold``; rankings
whose ``source`` is not in ``sources`` are left out; labelers whose gold accuracy (computed by the
caller, e.g. with :func:`labeler_gold_accuracy`) is below ``min_gold_accuracy`` are left out --
labelers with no gold measurement are kept; only the orders of ``criterion`` are used (``None``:
every criterion, each row tagged with its own; ``"overall"``: only the orders without a
criterion; an id: only that criterion). Votes and agreement are counted after these filters.
Then, in ``per_labeler`` mode, a pair is kept when its ``agreement >= min_agreement``.

*Split.* A pair inherits its comparison's split (train / eval / test); a comparison's pairs never
straddle two splits, and test pairs are kept apart from train and eval.

*Counts* (``PairSet.counts``, a snapshot's ``counts``), always: ``pairs``, ``by_split``,
``comparisons`` (with two or more completions and at least one usable order), ``labelers`` (with a
ranking used), ``labelers_excluded_gold_accuracy``; only when not zero: ``gold_comparisons_skipped``,
``rankings_skipped_source``, ``rankings_skipped_gold_accuracy``, ``rankings_used``, ``orders_used``,
``tied_pairs`` (ties and F vs F within one labeler's order), ``dropped_min_agreement``,
``dropped_vote_tie``, ``dropped_below_threshold``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import combinations
from operator import itemgetter

from contracts.orders import MalformedOrder, ai_pair_probabilities, criterion_of, order_list
from contracts.orders import levels as levels_of

# The files (re-exported: callers import them from here).
from labeling.pair_files import (  # noqa: F401
    COLUMNS,
    SPLITS,
    arrow_schema,
    make_read_only,
    write_jsonl,
    write_manifest,
    write_pair_files,
    write_parquet,
)

PER_LABELER = "per_labeler"
CONSENSUS = "consensus"
MODES = (PER_LABELER, CONSENSUS)
SOURCES = ("human", "ai", "imported")
OVERALL = "overall"  # the ``criterion`` option that selects orders made without a criterion
MIXED_SOURCE = "mixed"

Row = tuple  # the values of one pair in COLUMNS order


class OptionError(ValueError):
    """A snapshot option is unknown or has a bad value; ``field`` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _unit_interval(name: str, value) -> float:
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise OptionError(name, f"must be a number from 0 to 1, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class PairOptions:
    """How a snapshot turns rankings into pairs. See the module docstring for the exact meaning."""

    mode: str = PER_LABELER
    criterion: int | str | None = None  # None: all criteria; "overall": orders without one; or an id
    min_agreement: float = 0.0
    min_gold_accuracy: float | None = None  # None: no gold filter
    sources: tuple[str, ...] = SOURCES
    consensus_threshold: float = 0.5
    include_gold: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise OptionError("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}.")
        crit = self.criterion
        if not (crit is None or crit == OVERALL or (isinstance(crit, int) and not isinstance(crit, bool) and crit > 0)):
            raise OptionError("criterion", f"must be a criterion id, {OVERALL!r} or null, got {crit!r}.")
        object.__setattr__(self, "min_agreement", _unit_interval("min_agreement", self.min_agreement))
        if self.min_gold_accuracy is not None:
            object.__setattr__(self, "min_gold_accuracy", _unit_interval("min_gold_accuracy", self.min_gold_accuracy))
        object.__setattr__(self, "consensus_threshold", _unit_interval("consensus_threshold", self.consensus_threshold))
        sources = self.sources
        if isinstance(sources, str) or not isinstance(sources, Sequence) or not sources:
            raise OptionError("sources", f"must be a non-empty list drawn from {', '.join(SOURCES)}.")
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            raise OptionError("sources", f"unknown source {unknown[0]!r}; use {', '.join(SOURCES)}.")
        object.__setattr__(self, "sources", tuple(s for s in SOURCES if s in sources))
        if not isinstance(self.include_gold, bool):
            raise OptionError("include_gold", f"must be true or false, got {self.include_gold!r}.")

    @classmethod
    def from_dict(cls, raw: Mapping | None) -> PairOptions:
        """Options from JSON; an unknown key is an :class:`OptionError` naming it."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        for key in raw:
            if key not in known:
                raise OptionError(str(key), f"unknown option; allowed: {', '.join(sorted(known))}.")
        return cls(**raw)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["sources"] = list(self.sources)
        return data


@dataclass(frozen=True)
class ComparisonData:
    id: int
    prompt: str
    split: str
    completions: Mapping[int, str]  # completion id -> text, in position order
    is_gold: bool = False
    gold: Mapping | None = None  # {"ranks": {completion_id: rank}, "failed": [completion_id]}


@dataclass(frozen=True)
class RankingData:
    comparison_id: int
    labeler_id: int
    source: str
    orders: Sequence[Mapping]


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    margin: float
    weight: float
    comparison_id: int
    labeler_id: int | None
    source: str
    criterion: int | None
    split: str
    agreement: float
    chosen_completion_id: int
    rejected_completion_id: int

    def as_row(self) -> dict:
        return {name: getattr(self, name) for name in COLUMNS}


@dataclass
class PairSet:
    pairs: list[Pair]
    counts: dict = field(default_factory=dict)

    def by_split(self) -> dict[str, list[Pair]]:
        return split_pairs(self.pairs)


# Counters that appear in ``counts`` only once something was counted (the others always appear).
_EVENT_COUNTS = (
    "gold_comparisons_skipped",
    "rankings_skipped_source",
    "rankings_skipped_gold_accuracy",
    "rankings_used",
    "orders_used",
    "tied_pairs",
    "dropped_min_agreement",
    "dropped_vote_tie",
    "dropped_below_threshold",
)


@dataclass
class Counts:
    """What a build kept and dropped, accumulated comparison by comparison (see "Counts" above)."""

    gold_comparisons_skipped: int = 0
    rankings_skipped_source: int = 0
    rankings_skipped_gold_accuracy: int = 0
    rankings_used: int = 0
    orders_used: int = 0
    tied_pairs: int = 0
    dropped_min_agreement: int = 0
    dropped_vote_tie: int = 0
    dropped_below_threshold: int = 0
    pairs: int = 0
    comparisons: int = 0
    labelers: set = field(default_factory=set)  # ids of the labelers with a ranking used
    labelers_excluded_gold_accuracy: int = 0
    by_split: dict = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))

    def as_dict(self) -> dict:
        result = {name: getattr(self, name) for name in _EVENT_COUNTS if getattr(self, name)}
        result.update(
            pairs=self.pairs,
            comparisons=self.comparisons,
            labelers=len(self.labelers),
            labelers_excluded_gold_accuracy=self.labelers_excluded_gold_accuracy,
        )
        result = {key: result[key] for key in sorted(result)}
        result["by_split"] = {split: self.by_split[split] for split in SPLITS}
        return result


def order_levels(order: Mapping, completion_ids: Iterable[int]) -> dict[int, int]:
    """Completion id -> level (0 is best) for one order; F-marked completions share the last level.

    Ids that are not completions of the comparison are ignored; a completion both ranked and F-marked
    counts as F-marked. A malformed order raises ``contracts.orders.MalformedOrder`` (a ``ValueError``).
    """
    return levels_of(order, set(completion_ids))


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
    Only gold comparisons and their rankings matter: callers may pass just those.
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


def excluded_labelers(gold_accuracy: Mapping[int, float] | None, options: PairOptions) -> set[int]:
    """The labelers ``min_gold_accuracy`` leaves out (none without that option)."""
    if options.min_gold_accuracy is None:
        return set()
    return {labeler for labeler, accuracy in (gold_accuracy or {}).items() if accuracy < options.min_gold_accuracy}


# ---------------------------------------------------------------------------------------------
# One comparison: group -> tally -> per-labeler or consensus rows

# (labeler id, source, levels) of one usable order
Entry = tuple[int, str, dict[int, int]]


def group_orders(
    comparison: ComparisonData,
    rankings: Iterable[RankingData],
    options: PairOptions,
    excluded: set[int] | frozenset[int],
    counts: Counts,
) -> tuple[dict[int | None, list[Entry]], dict[tuple, dict[tuple[int, int], float]]]:
    """Step 1, the filters: the comparison's usable orders by criterion, ``{criterion: [entry]}`` in
    ranking order, and the AI pair probabilities ``{(criterion, labeler): {(chosen, rejected): p}}``."""
    ids = frozenset(comparison.completions)
    sources, criterion_option = options.sources, options.criterion
    groups: dict[int | None, list[Entry]] = {}
    ai: dict[tuple, dict[tuple[int, int], float]] = {}
    known: dict[int, dict[int, int]] = {}  # id(order) -> its levels, for rankings sharing one order object
    for ranking in rankings:
        source, labeler = ranking.source, ranking.labeler_id
        if source not in sources:
            counts.rankings_skipped_source += 1
            continue
        if labeler in excluded:
            counts.rankings_skipped_gold_accuracy += 1
            continue
        used = False
        try:
            for order in order_list(ranking.orders):
                criterion = criterion_of(order)
                if criterion_option is not None and not _wanted(criterion, criterion_option):
                    continue
                found = known.get(id(order))
                if found is None:
                    found = known[id(order)] = levels_of(order, ids)
                entries = groups.get(criterion)
                if entries is None:
                    entries = groups[criterion] = []
                entries.append((labeler, source, found))
                if "ai" in order:
                    ai[(criterion, labeler)] = ai_pair_probabilities(order)
                counts.orders_used += 1
                used = True
        except MalformedOrder as exc:
            raise ValueError(
                f"ranking of comparison {ranking.comparison_id} by labeler {labeler} is malformed: {exc}"
            ) from exc
        if used:
            counts.rankings_used += 1
            counts.labelers.add(labeler)
    return groups, ai


def tally_votes(ids: Sequence[int], entries: Sequence[Entry]) -> dict[tuple[int, int], tuple[int, int, int, set]]:
    """Step 2: per unordered pair (a before b in position order), ``(for a, for b, voters, sources)``."""
    votes = {}
    for a, b in combinations(ids, 2):
        for_a = for_b = voters = 0
        sources = set()
        for _, source, levels in entries:
            level_a, level_b = levels.get(a), levels.get(b)
            if level_a is None or level_b is None:
                continue
            voters += 1
            sources.add(source)
            if level_a < level_b:
                for_a += 1
            elif level_b < level_a:
                for_b += 1
        votes[(a, b)] = (for_a, for_b, voters, sources)
    return votes


def per_labeler_rows(
    comparison: ComparisonData,
    criterion: int | None,
    entries: Sequence[Entry],
    votes: Mapping[tuple[int, int], tuple],
    ai: Mapping[tuple, Mapping[tuple[int, int], float]],
    options: PairOptions,
    counts: Counts,
) -> list[Row]:
    """Step 3a: every strictly ordered pair of every labeler's order (labelers in id order)."""
    texts, prompt, split, comparison_id = comparison.completions, comparison.prompt, comparison.split, comparison.id
    scale = len(texts) - 1
    weight = 1.0 / math.comb(len(texts), 2)
    min_agreement = options.min_agreement
    rows: list[Row] = []
    for labeler, source, levels in entries:
        probabilities = ai.get((criterion, labeler)) or {}
        for (a, b), (for_a, for_b, voters, _) in votes.items():
            level_a, level_b = levels.get(a), levels.get(b)
            if level_a is None or level_b is None:
                continue
            if level_a == level_b:
                counts.tied_pairs += 1
                continue
            if level_a < level_b:
                chosen, rejected, agreement = a, b, for_a / voters
            else:
                chosen, rejected, agreement = b, a, for_b / voters
            if agreement < min_agreement:
                counts.dropped_min_agreement += 1
                continue
            margin = (levels[rejected] - levels[chosen]) / scale
            if probabilities:
                margin = probabilities.get((chosen, rejected)) or margin
            rows.append(
                (
                    prompt,
                    texts[chosen],
                    texts[rejected],
                    margin,
                    weight,
                    comparison_id,
                    labeler,
                    source,
                    criterion,
                    split,
                    agreement,
                    chosen,
                    rejected,
                )
            )
    return rows


def consensus_rows(
    comparison: ComparisonData,
    criterion: int | None,
    votes: Mapping[tuple[int, int], tuple],
    options: PairOptions,
    counts: Counts,
) -> list[Row]:
    """Step 3b: one row per unordered pair whose majority clears the threshold (position order)."""
    texts, weight = comparison.completions, 1.0 / math.comb(len(comparison.completions), 2)
    rows: list[Row] = []
    for (a, b), (for_a, for_b, voters, sources) in votes.items():
        if voters == 0:
            continue
        if for_a == for_b:
            counts.dropped_vote_tie += 1
            continue
        chosen, rejected, won, lost = (a, b, for_a, for_b) if for_a > for_b else (b, a, for_b, for_a)
        share = won / voters
        if share < options.consensus_threshold or share < options.min_agreement:
            counts.dropped_below_threshold += 1
            continue
        source = next(iter(sources)) if len(sources) == 1 else MIXED_SOURCE
        margin = (won - lost) / voters
        rows.append(
            (
                comparison.prompt,
                texts[chosen],
                texts[rejected],
                margin,
                weight,
                comparison.id,
                None,
                source,
                criterion,
                comparison.split,
                share,
                chosen,
                rejected,
            )
        )
    return rows


_by_labeler = itemgetter(0)


def _criterion_order(criterion: int | None) -> int:
    return -1 if criterion is None else criterion


def rows_for_comparison(
    comparison: ComparisonData,
    rankings: Iterable[RankingData],
    options: PairOptions,
    excluded: set[int] | frozenset[int] = frozenset(),
    counts: Counts | None = None,
) -> list[Row]:
    """One comparison's pairs as row tuples (``COLUMNS`` order), counted into ``counts`` (what was
    used, dropped and made): criteria in order (none first), each grouped, tallied, then turned into
    per-labeler or consensus rows. The comparison's split and gold flag are the caller's to check
    (:func:`export_pairs` does)."""
    counts = counts if counts is not None else Counts()
    groups, ai = group_orders(comparison, rankings, options, excluded, counts)
    ids = list(comparison.completions)
    if not groups or len(ids) < 2:
        return []
    counts.comparisons += 1
    rows: list[Row] = []
    for criterion in sorted(groups, key=_criterion_order) if len(groups) > 1 else groups:
        entries = groups[criterion]
        if len(entries) > 1:
            entries = sorted(entries, key=_by_labeler)
        votes = tally_votes(ids, entries)
        if options.mode == PER_LABELER:
            rows += per_labeler_rows(comparison, criterion, entries, votes, ai, options, counts)
        else:
            rows += consensus_rows(comparison, criterion, votes, options, counts)
    counts.pairs += len(rows)
    counts.by_split[comparison.split] = counts.by_split.get(comparison.split, 0) + len(rows)
    return rows


def pairs_for_comparison(
    comparison: ComparisonData,
    rankings: Iterable[RankingData],
    options: PairOptions,
    excluded: set[int] | frozenset[int] = frozenset(),
    counts: Counts | None = None,
) -> list[Pair]:
    """:func:`rows_for_comparison` as :class:`Pair` records."""
    return [Pair(*row) for row in rows_for_comparison(comparison, rankings, options, excluded, counts)]


# ---------------------------------------------------------------------------------------------
# Many comparisons


def export_pairs(
    items: Iterable[tuple[ComparisonData, Sequence[RankingData]]],
    options: PairOptions,
    write: Callable[[list[Row]], object],
    *,
    excluded: set[int] | frozenset[int] = frozenset(),
    counts: Counts | None = None,
) -> Counts:
    """Stream ``(comparison, its rankings)`` pairs, in comparison-id order, into ``write(rows)``.

    Each comparison's rows are handed over as soon as they are made (nothing else is kept but the
    counts), so a caller that writes them to files holds one comparison at a time. Gold comparisons
    are skipped unless ``include_gold``; a comparison with an unknown split is a ``ValueError``.
    ``excluded``: the labelers :func:`excluded_labelers` leaves out.
    """
    counts = counts if counts is not None else Counts()
    counts.labelers_excluded_gold_accuracy = len(excluded)
    include_gold = options.include_gold
    for comparison, rankings in items:
        if comparison.split not in SPLITS:
            raise ValueError(f"comparison {comparison.id} has unknown split {comparison.split!r}")
        if comparison.is_gold and not include_gold:
            counts.gold_comparisons_skipped += 1
            continue
        rows = rows_for_comparison(comparison, rankings, options, excluded, counts)
        if rows:
            write(rows)
    return counts


def build_pairs(
    comparisons: Iterable[ComparisonData],
    rankings: Iterable[RankingData],
    options: PairOptions | None = None,
    gold_accuracy: Mapping[int, float] | None = None,
) -> PairSet:
    """Turn rankings into pairs under ``options``; ``counts`` says what was kept and dropped.

    The whole-list form of :func:`export_pairs` (same rows, same order, same counts).
    """
    options = options or PairOptions()
    counts = Counts()
    by_id: dict[int, ComparisonData] = {}
    for comparison in comparisons:
        if comparison.split not in SPLITS:
            raise ValueError(f"comparison {comparison.id} has unknown split {comparison.split!r}")
        if comparison.is_gold and not options.include_gold:
            counts.gold_comparisons_skipped += 1
            continue
        by_id[comparison.id] = comparison
    grouped: dict[int, list[RankingData]] = defaultdict(list)
    for ranking in rankings:
        if ranking.comparison_id in by_id:
            grouped[ranking.comparison_id].append(ranking)
    rows: list[Row] = []
    export_pairs(
        ((by_id[comparison_id], grouped[comparison_id]) for comparison_id in sorted(grouped)),
        options,
        rows.extend,
        excluded=excluded_labelers(gold_accuracy, options),
        counts=counts,
    )
    return PairSet(pairs=[Pair(*row) for row in rows], counts=counts.as_dict())


def split_pairs(pairs: Iterable[Pair]) -> dict[str, list[Pair]]:
    """Pairs grouped by their comparison's split: ``{"train": [...], "eval": [...], "test": [...]}``."""
    out: dict[str, list[Pair]] = {split: [] for split in SPLITS}
    for pair in pairs:
        out[pair.split].append(pair)
    return out
