"""contracts/: the formats the web side and training/ml share, tested once, here (pure: no database).

The boundary (contracts import the standard library only; training/ml imports of ours only itself
and contracts) is checked in tests/test_tooling.py.
"""

import io
import json
import math

import pytest

from contracts import events, orders, pairs, principles
from contracts.orders import F_SCORE, MalformedOrder


def order(ranks, failed=(), criterion=None, **extra):
    return {"criterion": criterion, "ranks": {str(k): v for k, v in ranks.items()}, "failed": list(failed), **extra}


# -- orders: writing -------------------------------------------------------------------------------


def test_an_order_is_written_in_its_stored_form():
    written = orders.make_order(5, {12: 2, "11": 1}, [14, "13"], ai={"principle": "harm"})
    assert written == {"criterion": 5, "ranks": {"12": 2, "11": 1}, "failed": [13, 14], "ai": {"principle": "harm"}}
    assert list(written) == ["criterion", "ranks", "failed", "ai"]
    assert orders.order_body({3: 1}) == {"ranks": {"3": 1}, "failed": []}
    assert "ai" not in orders.make_order(None, {3: 1})
    # What is written reads back as written, through JSON.
    [read] = orders.read_orders(json.loads(json.dumps([written]))).orders
    assert (read.criterion, read.scores) == (5, {12: 2.0, 11: 1.0, 13: F_SCORE, 14: F_SCORE})


# -- orders: reading -------------------------------------------------------------------------------


def test_scores_and_levels_of_a_well_formed_order():
    stored = order({11: 1, 12: 5, 13: 5, 14: 9.5, 15: 2}, failed=[15, "16"])
    # F wins over a rank (15); every id is scored; lower is better.
    assert orders.scores(stored) == {11: 1.0, 12: 5.0, 13: 5.0, 14: 9.5, 15: F_SCORE, 16: F_SCORE}
    # Levels: dense over the distinct ranks, F below the last; ids outside the comparison ignored.
    assert orders.levels(stored, {11, 12, 13, 14, 15}) == {11: 0, 12: 1, 13: 1, 14: 2, 15: 3}
    assert orders.levels(stored, {12, 16}) == {12: 0, 16: 1}
    assert orders.criterion_of(order({}, criterion=7)) == 7
    assert orders.criterion_of(order({}, criterion="7")) == 7
    assert orders.criterion_of({"ranks": {}}) is None
    # Absent or null parts are empty, not malformed.
    assert orders.scores({}) == {} and orders.scores({"ranks": None, "failed": None}) == {}


MALFORMED = [
    pytest.param("1 > 2", id="not an object"),
    pytest.param(None, id="null"),
    pytest.param({"ranks": [1, 2]}, id="ranks a list"),
    pytest.param({"ranks": "junk"}, id="ranks a string"),
    pytest.param({"ranks": {"11": "first"}}, id="a rank that is text"),
    pytest.param({"ranks": {"11": "3"}}, id="a rank that is a numeral"),
    pytest.param({"ranks": {"11": True}}, id="a rank that is a bool"),
    pytest.param({"ranks": {"11": math.nan}}, id="a rank that is NaN"),
    pytest.param({"ranks": {"11": math.inf}}, id="an infinite rank"),
    pytest.param({"ranks": {"11": None}}, id="a null rank"),
    pytest.param({"ranks": {"x": 1}}, id="a key that is not an id"),
    pytest.param({"ranks": {True: 1}}, id="a key that is a bool"),
    pytest.param({"ranks": {1.5: 1}}, id="a key that is a float"),
    pytest.param({"failed": "12"}, id="failed a string"),
    pytest.param({"failed": 12}, id="failed a number"),
    pytest.param({"failed": {"12": 1}}, id="failed an object"),
    pytest.param({"failed": ["x"]}, id="an F mark that is not an id"),
    pytest.param({"failed": [None]}, id="a null F mark"),
    pytest.param({"failed": [False]}, id="an F mark that is a bool"),
    pytest.param({"criterion": "helpfulness", "ranks": {"11": 1}}, id="a criterion that is not an id"),
    pytest.param({"criterion": True, "ranks": {"11": 1}}, id="a criterion that is a bool"),
    pytest.param({"criterion": 2.0, "ranks": {"11": 1}}, id="a criterion that is a float"),
]


def refused(read) -> bool:
    try:
        read()
    except MalformedOrder:
        return True
    return False


@pytest.mark.parametrize("bad", MALFORMED)
def test_one_policy_for_a_malformed_order(bad):
    """Nothing is guessed: a reading raises MalformedOrder (a ValueError) for the part it reads --
    the criterion, or the ranks and F marks, all of them whatever completions are asked for -- and
    read_orders leaves the order out, counts it, and keeps the rest."""
    bad_criterion = isinstance(bad, dict) and "criterion" in bad  # the cases above with good ranks
    assert refused(lambda: orders.criterion_of(bad)) == (bad_criterion or not isinstance(bad, dict))
    assert refused(lambda: orders.scores(bad)) == (not bad_criterion)
    assert refused(lambda: orders.levels(bad, {99})) == (not bad_criterion)
    assert issubclass(MalformedOrder, ValueError)
    good = order({11: 1, 12: 2}, criterion=3)
    read = orders.read_orders([good, bad, good])
    assert read.malformed == 1
    assert [(o.criterion, o.scores) for o in read.orders] == [(3, {11: 1.0, 12: 2.0})] * 2
    assert read.orders[0].stored is good


@pytest.mark.parametrize("value", [None, {"criterion": None, "ranks": {}}, "[]", 3])
def test_orders_that_are_not_a_list_count_as_one_malformed_entry(value):
    assert orders.read_orders(value) == orders.OrdersRead([], 1)
    with pytest.raises(MalformedOrder):
        orders.order_list(value)
    assert orders.read_orders([]) == orders.OrdersRead([], 0)
    assert orders.read_orders((order({1: 1}),)).malformed == 0


def test_ai_pair_probabilities_skip_malformed_entries():
    stored = order(
        {1: 1, 2: 2, 3: 3},
        ai={
            "pairs": [
                {"a": 1, "b": 2, "p_a": 0.8},
                {"a": "x", "b": 2, "p_a": 0.5},
                {"a": 1},
                {"a": 1, "b": 3, "p_a": 7},
            ]
        },
    )
    assert orders.ai_pair_probabilities(stored) == {(1, 2): 0.8, (2, 1): pytest.approx(0.2)}
    assert orders.ai_pair_probabilities(order({1: 1}, ai={"pairs": "junk"})) == {}
    assert orders.ai_pair_probabilities(order({1: 1})) == {}


# -- pair files --------------------------------------------------------------------------------------


def test_the_pair_files_are_written_with_the_contract_columns():
    from labeling import pair_files
    from labeling import pairs as labeling_pairs

    assert pair_files.COLUMNS is pairs.COLUMNS and labeling_pairs.COLUMNS is pairs.COLUMNS
    assert pairs.COLUMNS[: len(pairs.REQUIRED_COLUMNS)] == pairs.REQUIRED_COLUMNS
    assert pair_files.arrow_schema().names == list(pairs.COLUMNS)


# -- run events --------------------------------------------------------------------------------------


def test_what_the_run_writes_the_worker_reads_as_an_event():
    from training.ml.events import EventWriter

    stream = io.StringIO()
    writer = EventWriter(stream)
    writer.progress(3, 32)
    writer.metric("loss", 0.61, step=3)
    writer.log("loaded")
    writer.artifact("completions", "completions.jsonl", count=8)
    writer.checkpoint("checkpoint-3", 3)
    writer.error("boom")
    writer.result(prompts=8)
    read = [events.parse_event(line) for line in stream.getvalue().splitlines()]
    assert [event["type"] for event in read] == [
        events.PROGRESS,
        events.METRIC,
        events.LOG,
        events.ARTIFACT,
        events.CHECKPOINT,
        events.ERROR,
        events.RESULT,
    ]
    assert {event["type"] for event in read} == events.EVENT_TYPES
    assert all(isinstance(event["t"], float) for event in read)


@pytest.mark.parametrize("line", ["", "loading weights...", "[1, 2]", '{"step": 3}', '{"type": 3}', "{broken"])
def test_a_line_that_is_not_an_event_is_none(line):
    assert events.parse_event(line) is None


# -- principles ----------------------------------------------------------------------------------------


def test_the_shipped_principles_are_valid_and_a_bad_one_is_named():
    from labeling.principles import DEFAULT_PRINCIPLES
    from training.ml.configs import ConfigError
    from training.ml.constitution import EXAMPLE_PRINCIPLES, validate_principles

    principles.validate_principles(DEFAULT_PRINCIPLES)
    principles.validate_principles(EXAMPLE_PRINCIPLES)
    bad = [DEFAULT_PRINCIPLES[0], {**DEFAULT_PRINCIPLES[1], "key": "harm"}]
    with pytest.raises(principles.PrincipleError) as caught:
        principles.validate_principles(bad, field="constitution")
    expected = ("constitution[1].key", "'harm' is used by an earlier principle")
    assert (caught.value.field, caught.value.message) == expected
    # A run config says the same, as its own ConfigError.
    with pytest.raises(ConfigError) as as_config:
        validate_principles(bad, field="constitution")
    assert (as_config.value.field, as_config.value.message) == (caught.value.field, caught.value.message)
