"""The side-by-side statistics against hand computations (pure: no database)."""

import math

import pytest

from labeling import side_by_side as sxs
from labeling.side_by_side import BOTH_BAD, TIE, A, B, Vote


def votes(a, b, outcomes, *, start=0, words=(0, 0)):
    return [Vote(start + i, a, b, o, *words) for i, o in enumerate(outcomes)]


def test_outcome_of_a_stored_order():
    assert sxs.outcome_of({"ranks": {"1": 1, "2": 2}}, 1, 2) == A
    assert sxs.outcome_of({"ranks": {"1": 2, "2": 1}}, 1, 2) == B
    assert sxs.outcome_of({"ranks": {"1": 1, "2": 1}}, 1, 2) == TIE
    assert sxs.outcome_of({"ranks": {}, "failed": [1, 2]}, 1, 2) == BOTH_BAD
    assert sxs.outcome_of({"ranks": {"2": 1}, "failed": [1]}, 1, 2) == B  # F ranks below any rank
    assert sxs.outcome_of({"ranks": {"1": 1}}, 1, 2) is None  # does not score both: counts for nothing
    assert sxs.outcome_of({"ranks": "junk"}, 1, 2) is None


def test_wilson_interval_matches_the_formula():
    low, high = sxs.wilson(7, 10)
    # Wilson (1927): (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.96, p = 0.7, n = 10
    z = 1.959963984540054
    centre = (0.7 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.7 * 0.3 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)
    assert sxs.wilson(0, 0) == (None, None)


def test_pair_table_counts_ties_and_both_bad_as_half_a_win():
    table = sxs.pair_table([7, 9], votes(7, 9, [A] * 6 + [B] * 2 + [TIE] + [BOTH_BAD]))
    [row] = table
    assert (row["wins"], row["losses"], row["ties"], row["both_bad"], row["n"]) == (6, 2, 1, 1, 10)
    assert row["win_rate"] == pytest.approx(0.7)
    assert (row["low"], row["high"]) == pytest.approx(sxs.wilson(7, 10))


def test_two_versions_bradley_terry_is_the_log_odds_of_the_win_share():
    ballot = votes(1, 2, [A] * 30 + [B] * 10 + [TIE] * 10)
    scores = {row["entry"]: row for row in sxs.bradley_terry([1, 2], ballot, seed=3)}
    won, lost = 30 + 5 + sxs.PRIOR, 10 + 5 + sxs.PRIOR  # ties half each way, the prior on both sides
    expected = 200 * math.log10(won / lost)  # 400·log10(p1/p2) split around the mean of 1000
    assert scores[1]["score"] == pytest.approx(1000 + expected, abs=0.01)
    assert scores[2]["score"] == pytest.approx(1000 - expected, abs=0.01)
    assert scores[1]["rank"] == 1 and scores[2]["rank"] == 2
    assert scores[1]["low"] < scores[1]["score"] < scores[1]["high"]
    assert scores[1]["votes"] == scores[2]["votes"] == 50


def test_bradley_terry_satisfies_its_likelihood_equations_for_three_versions():
    ballot = (
        votes(1, 2, [A] * 8 + [B] * 2)
        + votes(2, 3, [A] * 6 + [B] * 4, start=100)
        + votes(1, 3, [A] * 7 + [B] * 3, start=200)
    )
    rows = sxs.bradley_terry([1, 2, 3], ballot, rounds=0)
    assert [row["entry"] for row in rows] == [1, 2, 3]
    p = {row["entry"]: 10 ** ((row["score"] - 1000) / 400) for row in rows}
    wins = {(1, 2): 8, (2, 1): 2, (2, 3): 6, (3, 2): 4, (1, 3): 7, (3, 1): 3}
    wins = {k: v + sxs.PRIOR for k, v in wins.items()}
    for i in (1, 2, 3):  # at the maximum: observed wins = expected wins, for every version
        observed = sum(v for (x, _), v in wins.items() if x == i)
        expected = sum((wins[(i, j)] + wins[(j, i)]) * p[i] / (p[i] + p[j]) for j in (1, 2, 3) if j != i)
        assert observed == pytest.approx(expected, rel=1e-3)
    assert math.prod(p.values()) == pytest.approx(1.0, rel=1e-3)  # mean score 1000
    assert rows[0]["low"] is None  # no bootstrap asked for


def test_bootstrap_is_seeded_and_resamples_comparisons_not_votes():
    ballot = votes(1, 2, [A, B, A, A, TIE, A, B, A])
    first = sxs.bradley_terry([1, 2], ballot, seed=11)
    assert first == sxs.bradley_terry([1, 2], ballot, seed=11)
    # Two labelers per comparison who always agree: the same evidence, so the same width.
    doubled = ballot + [Vote(v.comparison, v.a, v.b, v.outcome) for v in ballot]
    wide = sxs.bradley_terry([1, 2], doubled, seed=11)
    assert wide[0]["high"] - wide[0]["low"] > 0.8 * (first[0]["high"] - first[0]["low"])


def test_an_entry_no_one_voted_on_has_no_score():
    rows = sxs.bradley_terry([1, 2, 3], votes(1, 2, [A, B, A]), rounds=20)
    assert rows[-1] == {"entry": 3, "score": None, "low": None, "high": None, "votes": 0, "rank": None}


def test_length_bias_bins_by_the_word_difference():
    ballot = (
        votes(1, 2, [A, A, B], words=(12, 10))  # a longer by 2 words: the longer won 2 of 3
        + votes(1, 2, [B, TIE], start=10, words=(5, 30))  # b longer by 25: won 1.5 of 2
        + votes(1, 2, [A], start=20, words=(8, 8))  # same length: says nothing
    )
    bias = sxs.length_bias(ballot)
    assert bias["n"] == 5 and bias["longer_wins"] == pytest.approx(3.5 / 5)
    assert [(b["min_words"], b["max_words"], b["n"]) for b in bias["bins"]] == [(1, 5, 3), (15, 40, 2)]
    assert bias["bins"][0]["longer_wins"] == pytest.approx(2 / 3)
    assert bias["bins"][1]["longer_wins"] == pytest.approx(0.75)


def test_judge_agreement_against_the_human_majority():
    humans = [*votes(1, 2, [A, B, A]), Vote(0, 1, 2, A), Vote(1, 1, 2, B), Vote(2, 1, 2, B)]
    # comparison 0: A, A -> A; 1: B, B -> B; 2: A, B -> no majority
    judge = [Vote(0, 1, 2, A), Vote(1, 1, 2, A), Vote(2, 1, 2, A), Vote(3, 1, 2, A)]
    result = sxs.judge_agreement(humans, judge)
    assert (result["n"], result["agree"], result["rate"]) == (2, 1, 0.5)
