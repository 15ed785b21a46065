"""Rankings -> pairs (labeling.pairs): pure Python, no database."""

import json
import math
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from labeling.pairs import (
    COLUMNS,
    ComparisonData,
    OptionError,
    PairOptions,
    RankingData,
    build_pairs,
    labeler_gold_accuracy,
    order_levels,
    write_pair_files,
)


def comparison(cid, k=3, split="train", **extra):
    """Comparison ``cid`` with completions ``cid*10 + 1 .. cid*10 + k`` whose texts are "c<id>"."""
    completions = {cid * 10 + i: f"c{cid * 10 + i}" for i in range(1, k + 1)}
    return ComparisonData(id=cid, prompt=f"prompt {cid}", split=split, completions=completions, **extra)


def order(ranks, failed=(), criterion=None):
    return {"criterion": criterion, "ranks": {str(c): r for c, r in ranks.items()}, "failed": list(failed)}


def ranking(cid, labeler, *orders, source="human"):
    return RankingData(comparison_id=cid, labeler_id=labeler, source=source, orders=list(orders))


def directed(pairs):
    return {(p.chosen_completion_id, p.rejected_completion_id) for p in pairs}


def test_k3_with_a_tie_orders_only_the_strict_pairs():
    result = build_pairs([comparison(1)], [ranking(1, 7, order({11: 1, 12: 2, 13: 2}))])
    assert directed(result.pairs) == {(11, 12), (11, 13)}
    assert result.counts["tied_pairs"] == 1
    first = result.pairs[0]
    assert (first.prompt, first.chosen, first.rejected) == ("prompt 1", "c11", "c12")
    assert (first.comparison_id, first.labeler_id, first.source, first.criterion) == (1, 7, "human", None)
    # levels 0, 1, 1 -> margin (1 - 0) / (K - 1); weight 1 / C(3, 2)
    assert all(p.margin == pytest.approx(0.5) for p in result.pairs)
    assert all(p.weight == pytest.approx(1 / 3) for p in result.pairs)
    assert list(first.as_row()) == list(COLUMNS)


def test_only_the_order_matters_gaps_and_scale_vanish():
    a = build_pairs([comparison(1)], [ranking(1, 7, order({11: 1, 12: 2, 13: 3}))]).pairs
    b = build_pairs([comparison(1)], [ranking(1, 7, order({11: 2, 12: 50, 13: 51}))]).pairs
    assert [(p.chosen, p.rejected, p.margin) for p in a] == [(p.chosen, p.rejected, p.margin) for p in b]
    assert {(p.chosen, p.rejected): p.margin for p in a} == {
        ("c11", "c12"): 0.5,
        ("c11", "c13"): 1.0,
        ("c12", "c13"): 0.5,
    }


def test_f_marked_completions_rank_below_all_and_f_vs_f_gives_no_pair():
    result = build_pairs([comparison(1, k=4)], [ranking(1, 7, order({11: 1, 12: 2}, failed=[13, 14]))])
    assert directed(result.pairs) == {(11, 12), (11, 13), (11, 14), (12, 13), (12, 14)}
    margins = {(p.chosen_completion_id, p.rejected_completion_id): p.margin for p in result.pairs}
    # levels: 11 -> 0, 12 -> 1, F -> 2; K - 1 = 3
    assert margins[(11, 12)] == pytest.approx(1 / 3)
    assert margins[(11, 13)] == pytest.approx(2 / 3)
    assert margins[(12, 14)] == pytest.approx(1 / 3)
    assert result.counts["tied_pairs"] == 1  # 13 vs 14


def test_all_f_gives_nothing_and_f_beats_nothing():
    assert build_pairs([comparison(1)], [ranking(1, 7, order({}, failed=[11, 12, 13]))]).pairs == []
    # A completion both ranked and F-marked counts as F.
    assert order_levels(order({11: 1, 12: 2}, failed=[11]), [11, 12, 13]) == {12: 0, 11: 1}


def test_weights_sum_to_one_per_prompt_per_labeler_when_fully_ordered():
    comparisons = [comparison(1, k=4), comparison(2, k=4, split="eval")]
    rankings = [
        ranking(1, 7, order({11: 1, 12: 2, 13: 3, 14: 4})),
        ranking(1, 8, order({11: 4, 12: 3, 13: 2}, failed=[14])),
        ranking(2, 7, order({21: 2, 22: 1, 23: 4, 24: 3})),
    ]
    result = build_pairs(comparisons, rankings)
    sums = defaultdict(float)
    for p in result.pairs:
        sums[(p.comparison_id, p.labeler_id)] += p.weight
    assert sums == pytest.approx({(1, 7): 1.0, (1, 8): 1.0, (2, 7): 1.0})
    assert len(result.pairs) == 3 * math.comb(4, 2)
    # The biggest margin is best vs worst of a full order.
    assert max(p.margin for p in result.pairs) == 1.0


def test_consensus_votes_across_three_labelers():
    # Three labelers on K=3:      11 vs 12        11 vs 13       12 vs 13
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2, 13: 3})),  # 11 > 12  11 > 13  12 > 13
        ranking(1, 2, order({11: 1, 12: 2, 13: 2})),  # 11 > 12  11 > 13  tie
        ranking(1, 3, order({11: 2, 12: 1, 13: 3})),  # 12 > 11  11 > 13  12 > 13
    ]
    result = build_pairs([comparison(1)], rankings, PairOptions(mode="consensus"))
    by_pair = {(p.chosen_completion_id, p.rejected_completion_id): p for p in result.pairs}
    assert set(by_pair) == {(11, 12), (11, 13), (12, 13)}
    assert by_pair[(11, 13)].margin == 1.0 and by_pair[(11, 13)].agreement == 1.0  # unanimous
    assert by_pair[(11, 12)].margin == pytest.approx(1 / 3)  # 2 against 1
    assert by_pair[(11, 12)].agreement == pytest.approx(2 / 3)
    assert by_pair[(12, 13)].margin == pytest.approx(2 / 3)  # 2 for, 0 against, 1 no preference
    assert all(
        p.labeler_id is None and p.source == "human" and p.weight == pytest.approx(1 / 3) for p in by_pair.values()
    )

    # A stricter threshold keeps only the unanimous pair.
    strict = build_pairs([comparison(1)], rankings, PairOptions(mode="consensus", consensus_threshold=0.9))
    assert directed(strict.pairs) == {(11, 13)}
    assert strict.counts["dropped_below_threshold"] == 2


def test_consensus_ties_in_votes_never_give_a_pair():
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 2, order({11: 2, 12: 1, 13: 3})),  # 11 vs 12: 1-1
        ranking(1, 3, order({11: 1, 12: 1, 13: 1})),  # ties everywhere
    ]
    result = build_pairs([comparison(1)], rankings, PairOptions(mode="consensus", consensus_threshold=0.0))
    assert directed(result.pairs) == {(11, 13), (12, 13)}
    assert result.counts["dropped_vote_tie"] == 1


def test_consensus_no_preference_voters_count_in_the_share():
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 2, order({11: 1, 12: 1, 13: 1})),
        ranking(1, 3, order({11: 1, 12: 1, 13: 1})),
    ]
    assert build_pairs([comparison(1)], rankings, PairOptions(mode="consensus")).pairs == []  # 1/3 < 0.5
    lenient = build_pairs([comparison(1)], rankings, PairOptions(mode="consensus", consensus_threshold=0.3)).pairs
    assert len(lenient) == 3 and all(p.margin == pytest.approx(1 / 3) for p in lenient)


def test_consensus_mixed_sources_are_tagged_mixed():
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 2, order({11: 1, 12: 2, 13: 3}), source="ai"),
    ]
    pairs = build_pairs([comparison(1)], rankings, PairOptions(mode="consensus")).pairs
    assert {p.source for p in pairs} == {"mixed"}


def test_criterion_filter_and_criteria_never_mix():
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2, 13: 3}, criterion=5), order({11: 3, 12: 2, 13: 1}, criterion=6)),
        ranking(1, 2, order({11: 1, 12: 2, 13: 3}, criterion=5), order({11: 3, 12: 2, 13: 1}, criterion=6)),
    ]
    everything = build_pairs([comparison(1)], rankings).pairs
    assert {p.criterion for p in everything} == {5, 6} and len(everything) == 12
    helpful = build_pairs([comparison(1)], rankings, PairOptions(criterion=5)).pairs
    assert {p.criterion for p in helpful} == {5} and directed(helpful) == {(11, 12), (11, 13), (12, 13)}
    # Consensus counts votes per criterion: the opposite orders of criterion 6 do not cancel criterion 5.
    consensus = build_pairs([comparison(1)], rankings, PairOptions(mode="consensus"))
    assert len(consensus.pairs) == 6 and all(p.margin == 1.0 for p in consensus.pairs)
    assert build_pairs([comparison(1)], rankings, PairOptions(criterion="overall")).pairs == []


def test_min_agreement_drops_the_minority_direction():
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2})),
        ranking(1, 2, order({11: 1, 12: 2})),
        ranking(1, 3, order({11: 2, 12: 1})),
    ]
    all_pairs = build_pairs([comparison(1, k=2)], rankings).pairs
    assert len(all_pairs) == 3
    assert sorted(p.agreement for p in all_pairs) == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    kept = build_pairs([comparison(1, k=2)], rankings, PairOptions(min_agreement=0.6))
    assert [p.labeler_id for p in kept.pairs] == [1, 2]
    assert directed(kept.pairs) == {(11, 12)} and kept.counts["dropped_min_agreement"] == 1


def test_sources_filter():
    rankings = [
        ranking(1, 1, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 2, order({11: 1, 12: 2, 13: 3}), source="ai"),
        ranking(1, 3, order({11: 1, 12: 2, 13: 3}), source="imported"),
    ]
    result = build_pairs([comparison(1)], rankings, PairOptions(sources=["ai", "imported"]))
    assert {p.labeler_id for p in result.pairs} == {2, 3}
    assert {p.source for p in result.pairs} == {"ai", "imported"}
    assert result.counts["rankings_skipped_source"] == 1


def test_gold_accuracy_and_its_filter():
    gold = comparison(9, is_gold=True, gold={"ranks": {"91": 1, "92": 2}, "failed": [93]})
    work = comparison(1)
    rankings = [
        ranking(9, 1, order({91: 1, 92: 2}, failed=[93])),  # all 3 gold pairs right
        ranking(9, 2, order({91: 2, 92: 1, 93: 3})),  # 91/92 wrong, 91/93 and 92/93 right
        ranking(9, 3, order({91: 1, 92: 1, 93: 1})),  # ties count as wrong
        ranking(1, 1, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 2, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 3, order({11: 1, 12: 2, 13: 3})),
        ranking(1, 4, order({11: 1, 12: 2, 13: 3})),  # never saw gold: kept
    ]
    accuracy = labeler_gold_accuracy([gold, work], rankings)
    assert accuracy == pytest.approx({1: 1.0, 2: 2 / 3, 3: 0.0})

    result = build_pairs([gold, work], rankings, PairOptions(min_gold_accuracy=0.6), gold_accuracy=accuracy)
    assert {p.labeler_id for p in result.pairs} == {1, 2, 4}
    assert {p.comparison_id for p in result.pairs} == {1}  # gold items are not exported by default
    assert result.counts["gold_comparisons_skipped"] == 1
    assert result.counts["labelers_excluded_gold_accuracy"] == 1
    with_gold = build_pairs([gold, work], rankings, PairOptions(include_gold=True)).pairs
    assert 9 in {p.comparison_id for p in with_gold}


def test_split_by_comparison_and_test_kept_apart(tmp_path):
    comparisons = [comparison(1), comparison(2, split="eval"), comparison(3, split="test"), comparison(4)]
    rankings = [
        ranking(c, lab, order({c * 10 + 1: 1, c * 10 + 2: 2, c * 10 + 3: 3})) for c in (1, 2, 3, 4) for lab in (1, 2)
    ]
    result = build_pairs(comparisons, rankings)
    splits = result.by_split()
    assert {p.comparison_id for p in splits["train"]} == {1, 4}
    assert {p.comparison_id for p in splits["eval"]} == {2}
    assert {p.comparison_id for p in splits["test"]} == {3}
    assert all(p.split == "train" for p in splits["train"])
    assert result.counts["by_split"] == {"train": 12, "eval": 6, "test": 6}

    files = write_pair_files(result.pairs, tmp_path)
    assert set(files) == {f"{s}.{e}" for s in ("train", "eval", "test") for e in ("jsonl", "parquet")}
    rows = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == files["eval.jsonl"]["rows"] == 6
    assert list(rows[0]) == list(COLUMNS) and rows[0]["split"] == "eval"
    table = pq.read_table(tmp_path / "train.parquet")
    assert table.column_names == list(COLUMNS) and table.num_rows == 12

    # No test pairs: no test files; empty train/eval files still carry the columns.
    only_train = write_pair_files(build_pairs(comparisons[:1], rankings).pairs, tmp_path / "b")
    assert "test.jsonl" not in only_train and only_train["eval.jsonl"]["rows"] == 0
    assert pq.read_table(tmp_path / "b" / "eval.parquet").column_names == list(COLUMNS)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"mode": "majority"}, "mode"),
        ({"min_agreement": 1.5}, "min_agreement"),
        ({"min_agreement": "high"}, "min_agreement"),
        ({"min_gold_accuracy": -0.1}, "min_gold_accuracy"),
        ({"sources": []}, "sources"),
        ({"sources": ["human", "robot"]}, "sources"),
        ({"sources": "human"}, "sources"),
        ({"consensus_threshold": True}, "consensus_threshold"),
        ({"criterion": "helpfulness"}, "criterion"),
        ({"criterion": 0}, "criterion"),
        ({"include_gold": "yes"}, "include_gold"),
        ({"min_agreemnt": 0.5}, "min_agreemnt"),
    ],
)
def test_bad_options_name_the_field(raw, field):
    with pytest.raises(OptionError) as caught:
        PairOptions.from_dict(raw)
    assert caught.value.field == field


def test_options_round_trip_and_defaults():
    options = PairOptions.from_dict({"sources": ["imported", "human"], "mode": "consensus", "criterion": "overall"})
    assert options.sources == ("human", "imported")
    assert PairOptions.from_dict(options.to_dict()) == options
    assert PairOptions().to_dict() == {
        "mode": "per_labeler",
        "criterion": None,
        "min_agreement": 0.0,
        "min_gold_accuracy": None,
        "sources": ["human", "ai", "imported"],
        "consensus_threshold": 0.5,
        "include_gold": False,
    }


def test_malformed_ranking_fails_loudly():
    with pytest.raises(ValueError, match="labeler 7"):
        build_pairs([comparison(1)], [ranking(1, 7, {"criterion": None, "ranks": {"11": "first"}, "failed": []})])
