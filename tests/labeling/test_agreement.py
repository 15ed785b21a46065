"""The agreement math, on plain data (no database)."""

import math
import random
import warnings

import pytest
from scipy.stats import kendalltau

from labeling.agreement import (
    F_SCORE,
    consensus_agreement,
    gold_accuracy,
    kendall_tau_b,
    krippendorff_alpha,
    mean_kendall_tau_b,
    pairwise_agreement,
    rank_positions,
    ranking_alpha,
    scores_from_order,
    strict_pairs,
    task_speed,
)

F = F_SCORE
BEST_FIRST = {1: 1, 2: 2, 3: 3}
WORST_FIRST = {1: 3, 2: 2, 3: 1}


# -- orders ------------------------------------------------------------------------------------------


def test_scores_from_stored_order_turn_f_into_the_bottom():
    scores = scores_from_order({"10": 2, "11": 1}, failed=[12, "13"])
    assert scores == {10: 2.0, 11: 1.0, 12: F, 13: F}
    assert strict_pairs(scores) == {(10, 11): -1, (10, 12): 1, (10, 13): 1, (11, 12): 1, (11, 13): 1}


def test_f_mark_wins_over_a_rank_for_the_same_completion():
    assert scores_from_order({"1": 1, "2": 2}, failed=[2]) == {1: 1.0, 2: F}


def test_rank_positions_ignore_gaps_and_share_ties():
    assert rank_positions({1: 1, 2: 5, 3: 5, 4: F}) == {1: 1.0, 2: 2.5, 3: 2.5, 4: 4.0}
    assert rank_positions({1: 7, 2: F, 3: F}) == {1: 1.0, 2: 2.5, 3: 2.5}
    assert rank_positions({1: 1, 2: 9}) == rank_positions({1: 1, 2: 2})


# -- pairwise agreement ------------------------------------------------------------------------------


def test_pairwise_perfect_agreement_despite_different_rank_numbers():
    result = pairwise_agreement({"c1": {"a": BEST_FIRST, "b": {1: 1, 2: 5, 3: 9}}})
    assert (result.agreements, result.pairs, result.rate, result.items) == (3, 3, 1.0, 1)


def test_pairwise_total_disagreement():
    result = pairwise_agreement(
        {"c1": {"a": BEST_FIRST, "b": WORST_FIRST}, "c2": {"a": {1: 1, 2: 2}, "b": {1: 2, 2: 1}}}
    )
    assert (result.agreements, result.pairs, result.rate) == (0, 4, 0.0)


def test_pairwise_counts_every_labeler_pair_of_an_item():
    # a and b agree, c reverses: (a,b) 3/3, (a,c) 0/3, (b,c) 0/3.
    result = pairwise_agreement({"c1": {"a": BEST_FIRST, "b": BEST_FIRST, "c": WORST_FIRST}})
    assert (result.agreements, result.pairs) == (3, 9)
    assert result.rate == pytest.approx(1 / 3)


def test_pairwise_leaves_out_ties_and_counts_one_sided_ones():
    a = {1: 1, 2: 1, 3: 2}  # ties 1 and 2
    b = {1: 1, 2: 2, 3: 3}
    result = pairwise_agreement({"c1": {"a": a, "b": b}})
    # (1,2): tied by a only -> one-sided; (1,3), (2,3): both strict and agreeing.
    assert (result.agreements, result.pairs, result.one_sided_ties) == (2, 2, 1)
    both_tie = pairwise_agreement({"c1": {"a": {1: 1, 2: 1}, "b": {1: 4, 2: 4}}})
    assert (both_tie.pairs, both_tie.one_sided_ties, both_tie.rate) == (0, 0, None)


def test_pairwise_f_marks_rank_below_everything_and_tie_each_other():
    a = {1: 1, 2: F, 3: F}  # 1 > 2 = 3
    b = {1: 2, 2: 1, 3: F}  # 2 > 1 > 3
    result = pairwise_agreement({"c1": {"a": a, "b": b}})
    # (1,2): a says 1, b says 2 -> disagree; (1,3): both say 1 -> agree; (2,3): F vs F tie for a -> one-sided.
    assert (result.agreements, result.pairs, result.one_sided_ties) == (1, 2, 1)


def test_pairwise_ignores_items_with_one_labeler_and_completions_not_shared():
    result = pairwise_agreement({"solo": {"a": BEST_FIRST}, "c2": {"a": {1: 1, 2: 2, 3: 3}, "b": {1: 1, 2: 2}}})
    assert (result.items, result.pairs, result.agreements) == (1, 1, 1)
    assert pairwise_agreement({}).rate is None


# -- Kendall's tau-b ---------------------------------------------------------------------------------


def test_tau_b_perfect_reversed_and_with_ties():
    assert kendall_tau_b(BEST_FIRST, {1: 1, 2: 5, 3: 9}) == pytest.approx(1.0)
    assert kendall_tau_b(BEST_FIRST, WORST_FIRST) == pytest.approx(-1.0)
    # x ties 2 and 3: concordant 2, discordant 0, n0 = 3, ties_x = 1 -> 2 / sqrt(2 * 3).
    assert kendall_tau_b({1: 1, 2: 2, 3: 2}, BEST_FIRST) == pytest.approx(2 / math.sqrt(6))


def test_tau_b_is_undefined_when_an_order_ties_everything():
    assert kendall_tau_b({1: F, 2: F, 3: F}, BEST_FIRST) is None
    assert kendall_tau_b({1: 1}, {1: 1}) is None
    summary = mean_kendall_tau_b(
        {"c1": {"a": BEST_FIRST, "b": {1: 2, 2: 2, 3: 2}}, "c2": {"a": BEST_FIRST, "b": WORST_FIRST}}
    )
    assert (summary.mean, summary.count, summary.undefined) == (-1.0, 1, 1)


def test_mean_tau_b_over_items_and_labeler_pairs():
    summary = mean_kendall_tau_b({"c1": {"a": BEST_FIRST, "b": BEST_FIRST, "c": WORST_FIRST}, "c2": {"a": BEST_FIRST}})
    # (a,b) = 1, (a,c) = -1, (b,c) = -1; c2 has no pair.
    assert summary.mean == pytest.approx(-1 / 3)
    assert summary.count == 3


def test_tau_b_matches_scipy_on_random_orders_with_ties_and_f_marks():
    rng = random.Random(7)
    for _ in range(300):
        k = rng.randint(2, 9)
        x = {i: rng.choice([1, 2, 2, 3, 5, F]) for i in range(k)}
        y = {i: rng.choice([1, 1, 2, 4, F]) for i in range(k)}
        ours = kendall_tau_b(x, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on constant input
            theirs = kendalltau([x[i] for i in range(k)], [y[i] for i in range(k)]).statistic
        if ours is None:
            assert math.isnan(theirs)
        else:
            assert ours == pytest.approx(theirs, abs=1e-12)


# -- Krippendorff's alpha ----------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the worked example with missing
# values: 4 coders, 12 units, values 1..5. Published: nominal .743, ordinal .815, interval .849.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _units(matrix):
    units: dict = {}
    for coder, row in enumerate(matrix):
        for unit, value in enumerate(row):
            if value is not None:
                units.setdefault(unit, {})[coder] = value
    return units


@pytest.mark.parametrize(
    ("metric", "published", "exact"),
    [("nominal", 0.743, 0.7434210526), ("ordinal", 0.815, 0.8153875038), ("interval", 0.849, 0.8491071429)],
)
def test_alpha_reproduces_krippendorffs_worked_example(metric, published, exact):
    result = krippendorff_alpha(_units(KRIPPENDORFF_2011), metric=metric)
    assert round(result.alpha, 3) == published
    assert result.alpha == pytest.approx(exact, abs=1e-9)
    assert (result.units, result.values) == (11, 40)  # unit 12 has a single value: not pairable


def test_ordinal_alpha_hand_computed():
    # Units (1,1), (2,3), (3,3): n1=2, n2=1, n3=3, n=6; o23 = o32 = 1.
    # Ordinal delta^2: d12 = (3 - 1.5)^2 = 2.25, d23 = (4 - 2)^2 = 4, d13 = (6 - 2.5)^2 = 12.25.
    # sum o*d = 2 * 4 = 8; sum n_c n_k d = 2 * (2*1*2.25 + 1*3*4 + 2*3*12.25) = 180; alpha = 1 - 5*8/180 = 7/9.
    units = {1: {"a": 1, "b": 1}, 2: {"a": 2, "b": 3}, 3: {"a": 3, "b": 3}}
    assert krippendorff_alpha(units, "ordinal").alpha == pytest.approx(7 / 9)
    # The interval metric on the same data differs (1 - 5*2/58), so the ordinal metric is really in use.
    assert krippendorff_alpha(units, "interval").alpha == pytest.approx(1 - 10 / 58)


def test_alpha_simple_cases():
    assert krippendorff_alpha({1: {"a": 1, "b": 1}, 2: {"a": 2, "b": 2}}).alpha == 1.0
    assert krippendorff_alpha({1: {"a": 1, "b": 1}, 2: {"a": 1, "b": 2}}).alpha == pytest.approx(0.0)
    assert krippendorff_alpha({1: {"a": 1, "b": 2}, 2: {"a": 2, "b": 1}}).alpha == pytest.approx(-0.5)
    # Undefined: nothing pairable, or no variation at all.
    assert krippendorff_alpha({1: {"a": 1}}).alpha is None
    assert krippendorff_alpha({1: {"a": 3, "b": 3}, 2: {"a": 3, "b": 3}}).alpha is None
    with pytest.raises(ValueError, match="metric"):
        krippendorff_alpha({1: {"a": 1, "b": 2}}, metric="ratio-ish")


def test_ranking_alpha_perfect_agreement_is_one_whatever_the_rank_numbers():
    by_item = {
        "c1": {"a": BEST_FIRST, "b": {1: 1, 2: 5, 3: 9}},
        "c2": {"a": {1: 2, 2: 1, 3: F}, "b": {1: 3, 2: 1, 3: F}},
    }
    result = ranking_alpha(by_item)
    assert result.alpha == 1.0
    assert (result.units, result.values) == (6, 12)


def test_ranking_alpha_reversed_rankings_hand_computed():
    # Positions a: 1,2,3; b: 3,2,1. Units (1,3), (2,2), (3,1): n1 = n2 = n3 = 2, n = 6, o13 = o31 = 2.
    # d13 = (6 - 2)^2 = 16, d12 = d23 = 4; sum o*d = 64; sum n n d = 2 * (4*4 + 4*4 + 4*16) = 192.
    assert ranking_alpha({"c1": {"a": BEST_FIRST, "b": WORST_FIRST}}).alpha == pytest.approx(1 - 5 * 64 / 192)


def test_ranking_alpha_f_marks_share_the_bottom_positions():
    # a: 1 > 2 = 3 (F, F) -> positions 1, 2.5, 2.5; b: the same with explicit tied ranks -> full agreement.
    assert ranking_alpha({"c1": {"a": {1: 1, 2: F, 3: F}, "b": {1: 1, 2: 4, 3: 4}}}).alpha == 1.0


# -- per labeler -------------------------------------------------------------------------------------


def test_consensus_leaves_the_labeler_out_and_skips_split_votes():
    by_item = {"c1": {"a": BEST_FIRST, "b": BEST_FIRST, "c": BEST_FIRST, "d": WORST_FIRST}}
    result = consensus_agreement(by_item)
    assert (result["a"].agreements, result["a"].pairs) == (3, 3)  # others vote 2:1 for a's side
    assert (result["d"].agreements, result["d"].pairs, result["d"].rate) == (0, 3, 0.0)
    split = consensus_agreement({"c1": {"a": BEST_FIRST, "b": BEST_FIRST, "c": WORST_FIRST}})
    # For a: b says yes, c says no -> split, left out. For c: a and b both disagree with it.
    assert (split["a"].pairs, split["a"].rate) == (0, None)
    assert (split["c"].agreements, split["c"].pairs) == (0, 3)


def test_consensus_ignores_tied_votes_and_own_ties():
    # a ties 1-2 (no pair for a); for b, the only voter on (1,2) is a, who abstains.
    result = consensus_agreement({"c1": {"a": {1: 1, 2: 1, 3: 2}, "b": BEST_FIRST}})
    assert (result["a"].agreements, result["a"].pairs) == (2, 2)
    assert (result["b"].agreements, result["b"].pairs) == (2, 2)


def test_gold_accuracy_counts_gold_strict_pairs_and_labeler_ties_as_errors():
    gold = {"g": {1: 1, 2: 2, 3: F}}
    by_item = {
        "g": {
            "exact": {1: 1, 2: 2, 3: 3},  # 3 ranked last counts as below: all right
            "tied": {1: 1, 2: 1, 3: F},  # (1,2) tied where gold orders it: wrong
            "reversed": {1: F, 2: 2, 3: 1},
        },
        "not-gold": {"exact": WORST_FIRST},
    }
    result = gold_accuracy(by_item, gold)
    assert (result["exact"].agreements, result["exact"].pairs) == (3, 3)
    assert result["tied"].rate == pytest.approx(2 / 3)
    assert result["reversed"].rate == 0.0
    # A gold tie gives no pair to score.
    assert gold_accuracy({"g": {"x": BEST_FIRST}}, {"g": {1: 1, 2: 1, 3: 2}})["x"].pairs == 2


def test_task_speed():
    speed = task_speed([10, 20, 60, None])
    assert (speed.tasks, speed.median_seconds, speed.per_hour) == (3, 20, 120.0)
    empty = task_speed([])
    assert (empty.tasks, empty.median_seconds, empty.per_hour) == (0, None, None)
