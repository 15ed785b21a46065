"""The streaming export (issue 13) against the list-based one it replaced (tests/labeling/pairs_reference.py).

Random projects -- ties, gaps, F marks, several criteria, AI orders with ``ai.pairs`` probabilities
(some malformed, some 0), gold items, all sources, unsorted ids, texts that need escaping -- under
every mode and filter: :func:`build_pairs` and the streaming :func:`export_pairs` +
:class:`PairFileWriter` give the same rows in the same order, the same counts and the same files.
Pure Python, no database (the database path: test_snapshot_streaming_db.py).
"""

import json
import random
from collections import Counter, defaultdict
from enum import IntEnum
from itertools import combinations

import pyarrow.parquet as pq
import pytest

from labeling import pair_files
from labeling.pair_files import COLUMNS, PairFileWriter, jsonl_line
from labeling.pairs import (
    ComparisonData,
    Counts,
    Pair,
    PairOptions,
    RankingData,
    build_pairs,
    excluded_labelers,
    export_pairs,
    labeler_gold_accuracy,
    pairs_for_comparison,
    rows_for_comparison,
)

from . import pairs_reference as reference

TEXTS = [
    "plain answer",
    'a "quoted" word and a \\ backslash',
    "line one\nline two\ttabbed\r",
    "ünïcödé — 中文 🙂",
    "\x00\x01\x1f control",
    "separators \u2028 \u2029 and \ud7ff",
    "",
]

OPTIONS = [
    {},
    {"mode": "consensus"},
    {"mode": "consensus", "consensus_threshold": 0.0},
    {"mode": "consensus", "consensus_threshold": 0.9, "min_agreement": 0.6},
    {"min_agreement": 0.5},
    {"criterion": 5},
    {"criterion": "overall", "mode": "consensus"},
    {"sources": ["ai"]},
    {"sources": ["human", "imported"], "mode": "consensus"},
    {"min_gold_accuracy": 0.5},
    {"min_gold_accuracy": 0.5, "mode": "consensus", "include_gold": True},
    {"include_gold": True, "min_agreement": 0.3},
]
SEEDS = range(8)


def random_order(rng: random.Random, ids: list[int], criterion, *, ai: bool) -> dict:
    failed = [i for i in ids if rng.random() < 0.15]
    scale = rng.choice([len(ids), 2, 9])  # small scales make ties, large ones gaps
    ranks = {str(i): rng.randint(1, max(scale, 1)) for i in ids if i not in failed}
    if ranks and rng.random() < 0.1:
        ranks[next(iter(ranks))] = 1.5  # a float rank is a number too
    order = {"criterion": criterion, "ranks": ranks, "failed": failed}
    if ai:
        pairs = [
            {"a": a, "b": b, "p_a": rng.choice([0.0, 0.25, 0.5, 0.9, 1.0, rng.random()])}
            for a, b in combinations(ids, 2)
            if rng.random() < 0.7
        ]
        if rng.random() < 0.3:
            pairs += [{"a": "x", "b": ids[0], "p_a": 0.5}, {"a": ids[0]}, {"a": ids[0], "b": ids[-1], "p_a": 7}]
        order["ai"] = {"principle": "helpful", "probability": 0.8, "pairs": pairs}
    return order


def random_world(seed: int) -> tuple[list[ComparisonData], list[RankingData]]:
    rng = random.Random(seed)
    comparisons, rankings = [], []
    next_id = 1000
    for comparison_id in rng.sample(range(1, 400), 30):  # ids out of order
        k = rng.choice([1, 2, 2, 3, 4, 5])
        ids = list(range(next_id, next_id + k))
        next_id += k
        rng.shuffle(ids)  # position order is not id order
        completions = {i: f"{rng.choice(TEXTS)} #{i}" for i in ids}
        is_gold = rng.random() < 0.15
        gold = None
        if is_gold:
            gold_failed = [ids[-1]] if k > 2 and rng.random() < 0.3 else []
            gold = {"ranks": {str(i): n + 1 for n, i in enumerate(ids) if i not in gold_failed}, "failed": gold_failed}
        split = rng.choice(["train", "train", "train", "eval", "test"])
        prompt = f"{rng.choice(TEXTS)} prompt {comparison_id}"
        comparisons.append(ComparisonData(comparison_id, prompt, split, completions, is_gold=is_gold, gold=gold))
        for labeler in rng.sample(range(1, 8), rng.randint(0, 5)):
            source = rng.choice(["human", "human", "human", "ai", "imported"])
            criteria = rng.choice([[None], [None], [5, 6], [None, 5], [6]])
            orders = [random_order(rng, ids, criterion, ai=source == "ai") for criterion in criteria]
            rankings.append(RankingData(comparison_id, labeler, source, orders))
    rng.shuffle(rankings)
    return comparisons, rankings


def streamed_items(comparisons, rankings):
    """What the service reads: comparisons in id order, each with its rankings in labeler order."""
    own = defaultdict(list)
    for ranking in rankings:
        own[ranking.comparison_id].append(ranking)
    for comparison in sorted(comparisons, key=lambda c: c.id):
        yield comparison, sorted(own[comparison.id], key=lambda r: r.labeler_id)


def old_and_new(seed: int, raw_options: dict):
    comparisons, rankings = random_world(seed)
    options = PairOptions.from_dict(raw_options)
    accuracy = reference.labeler_gold_accuracy(comparisons, rankings)
    old = reference.build_pairs(comparisons, rankings, options, gold_accuracy=accuracy)
    return comparisons, rankings, options, accuracy, old


@pytest.mark.parametrize("raw_options", OPTIONS, ids=[json.dumps(o) for o in OPTIONS])
@pytest.mark.parametrize("seed", SEEDS)
def test_build_pairs_and_the_stream_match_the_list_based_build(seed, raw_options):
    comparisons, rankings, options, accuracy, old = old_and_new(seed, raw_options)

    # The gold pre-pass sees only gold comparisons and their rankings, and agrees.
    gold_ids = {c.id for c in comparisons if c.is_gold}
    assert (
        labeler_gold_accuracy(
            [c for c in comparisons if c.is_gold], [r for r in rankings if r.comparison_id in gold_ids]
        )
        == accuracy
    )

    new = build_pairs(comparisons, rankings, options, gold_accuracy=accuracy)
    assert new.pairs == old.pairs
    assert new.counts == old.counts

    rows: list[tuple] = []
    counts = export_pairs(
        streamed_items(comparisons, rankings),
        options,
        rows.extend,
        excluded=excluded_labelers(accuracy, options),
    )
    assert [Pair(*row) for row in rows] == old.pairs
    assert counts.as_dict() == old.counts


def test_the_random_projects_exercise_every_counter():
    """Guards the test above: the random worlds hit every rule they claim to cover."""
    total: Counter = Counter()
    sources, margins_from_ai = set(), 0
    for seed in SEEDS:
        for raw_options in OPTIONS:
            *_, old = old_and_new(seed, raw_options)
            total.update({k: v for k, v in old.counts.items() if isinstance(v, int)})
            sources |= {p.source for p in old.pairs}
            margins_from_ai += sum(1 for p in old.pairs if p.source == "ai" and p.margin not in (0.25, 0.5, 1.0))
    for key in (
        "gold_comparisons_skipped",
        "rankings_skipped_source",
        "rankings_skipped_gold_accuracy",
        "tied_pairs",
        "dropped_min_agreement",
        "dropped_vote_tie",
        "dropped_below_threshold",
        "labelers_excluded_gold_accuracy",
    ):
        assert total[key] > 0, key
    assert sources == {"human", "ai", "imported", "mixed"}
    assert margins_from_ai > 0


@pytest.mark.parametrize("mode", ["per_labeler", "consensus"])
@pytest.mark.parametrize("seed", [0, 3, 5])
def test_streamed_files_match_the_list_based_files(tmp_path, seed, mode):
    comparisons, rankings, options, _, old = old_and_new(seed, {"mode": mode, "include_gold": True})
    old_files = reference.write_pair_files(old.pairs, tmp_path / "old")
    assert old_files["train.jsonl"]["rows"] > 10

    def stream(folder, **kwargs):
        with PairFileWriter(folder, **kwargs) as writer:
            export_pairs(streamed_items(comparisons, rankings), options, writer.write, excluded=set())
            return writer.close()

    # One row group (as the list-based writer made for small files): byte for byte the same files.
    assert stream(tmp_path / "new") == old_files
    assert stream(tmp_path / "pure") == pair_files.write_pair_files(old.pairs, tmp_path / "pure-list") == old_files

    # Small row groups: the same JSONL bytes, the same Parquet rows.
    small = stream(tmp_path / "small", row_group_rows=4)
    assert set(small) == set(old_files)
    for name, info in old_files.items():
        assert small[name]["rows"] == info["rows"]
        if name.endswith(".jsonl"):
            assert small[name] == info
            assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "old" / name).read_bytes()
        else:
            new_table, old_table = pq.read_table(tmp_path / "small" / name), pq.read_table(tmp_path / "old" / name)
            assert new_table.schema == old_table.schema and new_table.to_pylist() == old_table.to_pylist()
    assert pq.ParquetFile(tmp_path / "small" / "train.parquet").metadata.num_row_groups > 1


def test_no_test_split_means_no_test_files_and_empty_splits_keep_their_columns(tmp_path):
    comparison = ComparisonData(1, "p", "train", {11: "a", 12: "b"})
    ranking = RankingData(1, 7, "human", [{"criterion": None, "ranks": {"11": 1, "12": 2}, "failed": []}])
    with PairFileWriter(tmp_path) as writer:
        export_pairs([(comparison, [ranking])], PairOptions(), writer.write)
        files = writer.close()
    assert sorted(files) == ["eval.jsonl", "eval.parquet", "train.jsonl", "train.parquet"]
    assert files["eval.jsonl"]["rows"] == 0 and (tmp_path / "eval.jsonl").read_bytes() == b""
    assert pq.read_table(tmp_path / "eval.parquet").column_names == list(COLUMNS)
    reference.write_pair_files([], tmp_path / "old")
    assert (tmp_path / "eval.parquet").read_bytes() == (tmp_path / "old" / "eval.parquet").read_bytes()


def test_pairs_are_handed_to_the_writer_comparison_by_comparison():
    """Nothing waits for the end: a comparison's rows are written before the next one is read."""
    comparisons, rankings = random_world(2)
    written: list[int] = []
    expected: dict[int, int] = {}
    options = PairOptions()
    for comparison, own in streamed_items(comparisons, rankings):
        if not comparison.is_gold:
            expected[comparison.id] = len(rows_for_comparison(comparison, own, options))

    def items():
        previous = None
        for comparison, own in streamed_items(comparisons, rankings):
            if previous is not None and expected.get(previous):
                assert written[-1] == previous, "the previous comparison's rows were not written yet"
            previous = comparison.id
            yield comparison, own

    export_pairs(items(), options, lambda rows: written.extend(row[5] for row in rows))
    assert sum(expected.values()) == len(written) > 0


def test_pairs_for_comparison_is_the_one_comparison_step():
    comparisons, rankings = random_world(4)
    options = PairOptions(mode="consensus", consensus_threshold=0.0)
    old = reference.build_pairs(comparisons, rankings, options)
    counts = Counts()
    pairs = []
    for comparison, own in streamed_items(comparisons, rankings):
        if not comparison.is_gold:
            pairs += pairs_for_comparison(comparison, own, options, counts=counts)
    assert pairs == old.pairs
    counts.gold_comparisons_skipped = old.counts.get("gold_comparisons_skipped", 0)  # the caller's to count
    assert counts.as_dict() == old.counts


def test_a_malformed_ranking_fails_the_stream_loudly():
    comparison = ComparisonData(1, "p", "train", {11: "a", 12: "b"})
    bad = RankingData(1, 7, "human", [{"criterion": None, "ranks": {"11": "first"}, "failed": []}])
    with pytest.raises(ValueError, match="ranking of comparison 1 by labeler 7 is malformed"):
        export_pairs([(comparison, [bad])], PairOptions(), lambda rows: None)
    with pytest.raises(ValueError, match="unknown split"):
        export_pairs([(ComparisonData(2, "p", "dev", {}), [])], PairOptions(), lambda rows: None)


class Kind(IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "row",
    [
        (*TEXTS[:3], 1 / 3, 0.1 + 0.2, 12, 7, "human", None, "train", 2 / 3, 1001, 1002),
        (TEXTS[3], TEXTS[4], TEXTS[5], 1.0, 1e-20, 12, None, "mixed", 5, "eval", 1.0, 1, 2),
        ("", "", "", 0.5, 0.5, 2**70, None, "ai", None, "test", 0.5, 0, -1),
        ("p", "c", "r", -0.0, 0.0, 1, 2, "human", 3, "train", -0.0, 1, 2),
        ("p", "c", "r", 0.0, -0.0, 1, 2, "human", 3, "train", 0.0, 1, 2),
        # Not plain values: json.dumps writes them (as the list-based writer did).
        ("p", "c", "r", 1, 0.5, True, Kind.ONE, "human", None, "train", 1.0, 1, 2),
        ("p", "c", "r", 0.5, 0.5, "12", None, "human", None, "train", 1.0, 1, 2),
        ("p", None, "r", 0.5, 0.5, 12, None, "human", None, "train", float("nan"), 1, 2),
    ],
)
def test_jsonl_line_is_json_dumps(row):
    expected = json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False) + "\n"
    assert jsonl_line(row) == expected
    cache: dict = {}
    assert jsonl_line(row, cache) == expected
    assert jsonl_line(row, cache) == expected  # from the cache
