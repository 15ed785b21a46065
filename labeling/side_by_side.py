"""Side-by-side verdicts over plain data (no Django; the selector feeds it votes).

* A **vote** is one labeler's verdict on one pair of answers: ``a`` won, ``b`` won, a ``tie``, or
  ``both_bad`` (both marked F). Ties and "both bad" count half a win to each side, as Chatbot Arena
  counts them.
* **Win rate** of ``a`` against ``b``: ``(wins + (ties + both_bad) / 2) / n`` with a Wilson 95%
  interval over the votes.
* **Bradley-Terry** scores on the Elo scale (400 * log10 of the strength, mean 1000), fitted by the
  minorization-maximization iteration of Hunter (2004), with ``PRIOR`` virtual half-wins each way on
  every pair that met (so an unbeaten version gets a finite score); the 95% interval is the 2.5th and
  97.5th percentile over bootstrap resamples of the *comparisons* (a comparison's votes move
  together: its labelers saw the same two answers).
* **Length bias**: how often the longer answer (in words) wins, by the length difference.
* **Judge agreement**: on comparisons where the humans' majority prefers one side, how often a
  judge's vote (an AI labeler) names the same side.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from contracts import orders as stored_orders

A, B, TIE, BOTH_BAD = "a", "b", "tie", "both_bad"
Z95 = 1.959963984540054
PRIOR = 0.5
ELO_SCALE = 400.0
ELO_MEAN = 1000.0
BOOTSTRAP_ROUNDS = 1000
# Upper bounds (exclusive) of the length-difference bins, in words; the last bin is open.
LENGTH_BINS = (5, 15, 40, 100)


@dataclass(frozen=True)
class Vote:
    comparison: int
    a: int  # entry ids, a before b in the evaluation
    b: int
    outcome: str
    a_words: int = 0
    b_words: int = 0


def outcome_of(order: Mapping, a_completion: int, b_completion: int) -> str | None:
    """The verdict one stored order (``{ranks, failed}``) gives on two completions; None when it
    does not score both (a malformed order counts for nothing)."""
    try:
        scores = stored_orders.scores(order)
    except stored_orders.MalformedOrder:
        return None
    return outcome_of_scores(scores, a_completion, b_completion)


def outcome_of_scores(scores: Mapping[int, float], a_completion: int, b_completion: int) -> str | None:
    """:func:`outcome_of` for an order already read (``contracts.orders.scores``)."""
    if a_completion not in scores or b_completion not in scores:
        return None
    sa, sb = scores[a_completion], scores[b_completion]
    if math.isinf(sa) and math.isinf(sb):
        return BOTH_BAD
    return A if sa < sb else B if sb < sa else TIE


def points(outcome: str) -> float:
    """What a vote is worth to ``a``: 1 for a win, a half for a tie or "both bad", 0 for a loss."""
    return 1.0 if outcome == A else 0.0 if outcome == B else 0.5


def wilson(successes: float, n: int) -> tuple[float | None, float | None]:
    """The Wilson score interval (95%) of ``successes / n``; (None, None) with no data."""
    if n <= 0:
        return None, None
    p = successes / n
    z2 = Z95 * Z95
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z95 * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(successes: float, n: int) -> dict:
    low, high = wilson(successes, n)
    return {"rate": successes / n if n else None, "low": low, "high": high, "n": n}


# -- win rates -------------------------------------------------------------------------------------


def pair_table(entries: Sequence[int], votes: Iterable[Vote]) -> list[dict]:
    """Every pair of entries that met, in the entries' order, with its counts and win rate of a."""
    counts: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys((A, B, TIE, BOTH_BAD), 0))
    for vote in votes:
        counts[(vote.a, vote.b)][vote.outcome] += 1
    table = []
    for a, b in combinations(entries, 2):
        if (a, b) not in counts:
            continue
        c = counts[(a, b)]
        n = sum(c.values())
        won = c[A] + (c[TIE] + c[BOTH_BAD]) / 2
        rate = _rate(won, n)
        table.append(
            {
                "a": a,
                "b": b,
                "wins": c[A],
                "losses": c[B],
                "ties": c[TIE],
                "both_bad": c[BOTH_BAD],
                "n": n,
                "win_rate": rate["rate"],
                "low": rate["low"],
                "high": rate["high"],
            }
        )
    return table


# -- Bradley-Terry ---------------------------------------------------------------------------------


def _win_matrices(entries: Sequence[int], votes: Sequence[Vote]) -> tuple[np.ndarray, list[int]]:
    """(C, M, M) wins of row over column per comparison (C comparisons, in first-seen order)."""
    index = {entry: i for i, entry in enumerate(entries)}
    order: dict[int, int] = {}
    for vote in votes:
        order.setdefault(vote.comparison, len(order))
    wins = np.zeros((len(order), len(entries), len(entries)))
    for vote in votes:
        c, i, j = order[vote.comparison], index[vote.a], index[vote.b]
        wins[c, i, j] += points(vote.outcome)
        wins[c, j, i] += 1 - points(vote.outcome)
    return wins, list(order)


def _fit(wins: np.ndarray, *, iterations: int = 10_000, tolerance: float = 1e-10) -> np.ndarray:
    """Bradley-Terry log10-strengths for a batch of win matrices (..., M, M); NaN where an entry
    met no one. MM updates, normalized to a geometric mean of 1 over the entries that played."""
    met = (wins + np.swapaxes(wins, -1, -2)) > 0
    wins = wins + PRIOR * met
    games = wins + np.swapaxes(wins, -1, -2)
    total_wins = wins.sum(axis=-1)
    played = games.sum(axis=-1) > 0
    strength = np.where(played, 1.0, np.nan)
    for _ in range(iterations):
        s = np.where(played, strength, 1.0)
        denom = (games / (s[..., :, None] + s[..., None, :])).sum(axis=-1)
        updated = np.where(played, total_wins / np.where(denom > 0, denom, 1.0), np.nan)
        logs = np.log10(np.where(played, updated, 1.0))
        mean_log = logs.sum(axis=-1, keepdims=True) / np.maximum(played.sum(axis=-1, keepdims=True), 1)
        updated = np.where(played, updated / 10**mean_log, np.nan)
        change = np.nanmax(np.abs(np.log10(updated) - np.log10(strength)), initial=0.0)
        strength = updated
        if change < tolerance:
            break
    return np.log10(strength)


def elo(log_strength: np.ndarray) -> np.ndarray:
    return ELO_MEAN + ELO_SCALE * log_strength


def bradley_terry(
    entries: Sequence[int], votes: Sequence[Vote], *, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS
) -> list[dict]:
    """Each entry's score, 95% bootstrap interval and vote count, best first (unplayed entries last)."""
    wins, _ = _win_matrices(entries, votes)
    point = elo(_fit(wins.sum(axis=0)))
    low = high = np.full(len(entries), np.nan)
    if rounds > 0 and len(wins):
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(len(wins), np.full(len(wins), 1 / len(wins)), size=rounds)
        resampled = np.einsum("rc,cij->rij", counts, wins)
        scores = elo(_fit(resampled))
        with warnings.catch_warnings():  # an entry absent from every resample has no interval
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(scores, 2.5, axis=0), np.nanpercentile(scores, 97.5, axis=0)
    entry_votes = defaultdict(int)
    for vote in votes:
        entry_votes[vote.a] += 1
        entry_votes[vote.b] += 1
    rows = [
        {
            "entry": entry,
            "score": _finite(point[i]),
            "low": _finite(low[i]),
            "high": _finite(high[i]),
            "votes": entry_votes[entry],
        }
        for i, entry in enumerate(entries)
    ]
    rows.sort(key=lambda row: (row["score"] is None, -(row["score"] or 0.0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank if row["score"] is not None else None
    return rows


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 2)


# -- length bias -----------------------------------------------------------------------------------


def length_bias(votes: Iterable[Vote], bins: Sequence[int] = LENGTH_BINS) -> dict:
    """How often the longer answer won (ties half), overall and by the length difference in words;
    votes on answers of equal length say nothing about length and are left out."""
    edges = [1, *bins]
    sums = [[0.0, 0] for _ in edges]
    for vote in votes:
        diff = vote.a_words - vote.b_words
        if diff == 0:
            continue
        longer_points = points(vote.outcome) if diff > 0 else 1 - points(vote.outcome)
        slot = sum(1 for edge in edges[1:] if abs(diff) >= edge)
        sums[slot][0] += longer_points
        sums[slot][1] += 1
    won = sum(s for s, _ in sums)
    n = sum(count for _, count in sums)
    overall = _rate(won, n)
    result = {"longer_wins": overall["rate"], "low": overall["low"], "high": overall["high"], "n": n, "bins": []}
    for i, (s, count) in enumerate(sums):
        if count:
            rate = _rate(s, count)
            upper = edges[i + 1] if i + 1 < len(edges) else None
            result["bins"].append(
                {"min_words": edges[i], "max_words": upper, "longer_wins": rate["rate"], **_bounds(rate), "n": count}
            )
    return result


def _bounds(rate: dict) -> dict:
    return {"low": rate["low"], "high": rate["high"]}


# -- verdicts and agreement ------------------------------------------------------------------------


def verdict(entries: Sequence[int], votes: Sequence[Vote], *, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS) -> dict:
    return {
        "votes": len(votes),
        "comparisons": len({vote.comparison for vote in votes}),
        "scores": bradley_terry(entries, votes, seed=seed, rounds=rounds),
        "pairs": pair_table(entries, votes),
        "length_bias": length_bias(votes),
    }


def majority(votes: Iterable[Vote]) -> str | None:
    """A, B or None (a draw, or only ties) over one comparison's votes."""
    balance = sum(1 if vote.outcome == A else -1 if vote.outcome == B else 0 for vote in votes)
    return A if balance > 0 else B if balance < 0 else None


def judge_agreement(humans: Iterable[Vote], judge: Iterable[Vote]) -> dict:
    """On comparisons with a human majority and a judge vote: the share where the judge names the
    same side (a judge's tie counts as a disagreement)."""
    by_comparison: dict[int, list[Vote]] = defaultdict(list)
    for vote in humans:
        by_comparison[vote.comparison].append(vote)
    judged = {vote.comparison: vote.outcome for vote in judge}
    agree = n = 0
    for comparison, outcome in judged.items():
        side = majority(by_comparison.get(comparison, ()))
        if side is None:
            continue
        n += 1
        agree += outcome == side
    rate = _rate(agree, n)
    return {"n": n, "agree": agree, "rate": rate["rate"], "low": rate["low"], "high": rate["high"]}
