"""Constitutional AI on tiny models (no Django): ``cai_revise`` (answer -> critique -> revision under
sampled principles, SFT and pair files) and ``ai_feedback`` (the (A)/(B) labeler, both orders,
rankings), plus the constitution's validation."""

import copy
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.ml import ai_feedback, cai_revise
from training.ml.configs import ConfigError, config_for
from training.ml.constitution import PrincipleSampler, validate_principles
from training.ml.events import EventWriter
from training.ml.generation import Prompt

ROOT = Path(__file__).resolve().parents[2]
PRINCIPLES = [
    {
        "key": key,
        "name": f"Principle {key}",
        "critique_request": f"Critique the answer for {key}.",
        "revision_request": f"Rewrite the answer to fix {key}.",
        "choice_question": f"Which response is better about {key}?",
    }
    for key in ("harm", "honesty", "tone")
]
PROMPTS = ["How do I open a file?", "What is a lambda?", "Explain the with statement", "Define a class", "Why?"]
TEXTS = ["Use the open function.", "Never do that, it is dangerous.", "A lambda is an anonymous function."]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_prompts(folder: Path, prompts=PROMPTS) -> Path:
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt_id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    return path


def write_comparisons(folder: Path, rows: list[dict]) -> Path:
    path = folder / "comparisons.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_kind(module, kind: str, data: dict, out: Path) -> tuple[dict, list[dict]]:
    stream = io.StringIO()
    result = module.run(config_for(kind, data), out, EventWriter(stream))
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]


# --- the constitution and the configs ------------------------------------------------------------


def _broken(change) -> list[dict]:
    principles = copy.deepcopy(PRINCIPLES)
    change(principles)
    return principles


BAD_PRINCIPLES = [
    (lambda p: p[1].update(critique_request=""), "principles[1].critique_request", "required"),
    (lambda p: p[2].update(choice_question="   "), "principles[2].choice_question", "required"),
    (lambda p: p[2].pop("critique_request"), "principles[2].critique_request", "required"),
    (lambda p: p[0].update(name=3), "principles[0].name", "expected a string"),
    (lambda p: p[1].update(key="harm"), "principles[1].key", "used by an earlier principle"),
    (lambda p: p[0].update(key="no spaces"), "principles[0].key", "is not a key"),
    (lambda p: p[0].update(key="Harm"), "principles[0].key", "is not a key"),
    (lambda p: p[0].update(name="x" * 2001), "principles[0].name", "at most 2000 characters"),
    (lambda p: p[0].update(critique="x"), "principles[0].critique", "unknown field"),
    (lambda p: p.__setitem__(1, "harm"), "principles[1]", "must be an object"),
    (lambda p: p.clear(), "principles", "non-empty list"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_PRINCIPLES)
def test_bad_principles_are_refused_naming_the_field(change, field, message):
    principles = _broken(change)
    with pytest.raises(ConfigError) as error:
        validate_principles(principles)
    assert error.value.field == field and message in error.value.message
    for kind, data in (
        ("cai_revise", {"model_path": "m", "prompts_file": "p.jsonl"}),
        ("ai_feedback", {"model_path": "m", "comparisons_file": "c.jsonl"}),
    ):
        with pytest.raises(ConfigError) as error:
            config_for(kind, {**data, "principles": principles})
        assert error.value.field == field


@pytest.mark.parametrize(
    ("kind", "options", "field", "message"),
    [
        ("cai_revise", {"rounds": 0}, "rounds", "must be 1..8"),
        ("cai_revise", {"rounds": 9}, "rounds", "must be 1..8"),
        ("cai_revise", {"principle_keys": ["harm", "kindness"]}, "principle_keys", "no principle 'kindness'"),
        ("cai_revise", {"principle_keys": []}, "principle_keys", "at least one"),
        ("cai_revise", {"sampling": "shuffle"}, "sampling", "random, cycle"),
        ("cai_revise", {"temperature": 0}, "temperature", "must be > 0"),
        ("cai_revise", {"principles": None}, "principles", "non-empty list"),
        ("cai_revise", {"principles": PRINCIPLES * 34}, "principles", "at most 100 principles"),
        ("ai_feedback", {"principle": "kindness"}, "principle", "no principle 'kindness'"),
        ("ai_feedback", {"batch_size": 0}, "batch_size", "must be 1..512"),
        ("ai_feedback", {"both_orders": "yes"}, "both_orders", "expected bool"),
    ],
)
def test_bad_run_configs_are_refused_naming_the_field(kind, options, field, message):
    file_field = "prompts_file" if kind == "cai_revise" else "comparisons_file"
    data = {"model_path": "m", file_field: "f.jsonl", "principles": PRINCIPLES, **options}
    with pytest.raises(ConfigError) as error:
        config_for(kind, data)
    assert error.value.field == field and message in error.value.message


def test_a_config_needs_its_principles():
    with pytest.raises(ConfigError) as error:
        config_for("ai_feedback", {"model_path": "m", "comparisons_file": "c.jsonl"})
    assert error.value.field == "principles" and error.value.message == "required"


@pytest.mark.parametrize(
    "first", ["training.ml.constitution", "training.ml.cai_revise_config", "training.ml.ai_feedback_config"]
)
def test_any_module_can_be_imported_first_and_stays_light(first):
    # constitution imports configs, which registers the kind configs, which import constitution.
    code = (
        f"import sys, {first}\nfrom training.ml.configs import available_configs\n"
        "assert {'cai_revise', 'ai_feedback'} <= set(available_configs())\n"
        "assert not {'torch', 'transformers', 'django'} & set(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_principle_sampling_is_seeded_cycles_and_keeps_to_the_keys():
    keys = ["harm", "honesty", "tone"]
    picks = [PrincipleSampler(keys, seed=7, rounds=2).pick(item, r) for item in range(20) for r in range(2)]
    assert picks == [PrincipleSampler(keys, seed=7, rounds=2).pick(item, r) for item in range(20) for r in range(2)]
    assert set(picks) == set(keys)  # several principles get used
    other = [PrincipleSampler(keys, seed=8, rounds=2).pick(item, r) for item in range(20) for r in range(2)]
    assert other != picks
    assert {PrincipleSampler(["tone"], seed=7).pick(item) for item in range(10)} == {"tone"}
    cycle = PrincipleSampler(keys, "cycle", rounds=2)
    assert [cycle.pick(item, r) for item in range(3) for r in range(2)] == keys + keys
    config = config_for(
        "cai_revise", {"model_path": "m", "prompts_file": "p", "principles": PRINCIPLES, "principle_keys": ["tone"]}
    )
    assert config.sampled_keys() == ["tone"]


# --- cai_revise ------------------------------------------------------------------------------------


class RecordingStages:
    """Stands in for the model: answers every stage with a numbered text and records what it was asked."""

    def __init__(self):
        self.calls: list[list[list[dict]]] = []

    def generate(self, conversations, seed):
        self.calls.append(conversations)
        return [f"out{len(self.calls)}-{i}" for i in range(len(conversations))]


def test_each_round_critiques_the_current_answer_then_revises_it():
    config = config_for(
        "cai_revise",
        {"model_path": "m", "prompts_file": "p", "principles": PRINCIPLES, "rounds": 2, "sampling": "cycle"},
    )
    stages = RecordingStages()
    prompts = [Prompt(index=0, prompt_id="a", text="Q0"), Prompt(index=1, prompt_id="b", text="Q1")]
    rows = cai_revise.revise_batch(
        stages, prompts, config, PrincipleSampler(["harm", "honesty", "tone"], "cycle", rounds=2)
    )

    assert len(stages.calls) == 5  # initial, then critique + revision for each of 2 rounds
    user, assistant = "user", "assistant"
    assert stages.calls[0][1] == [{"role": user, "content": "Q1"}]
    critique_asked = stages.calls[1][1]  # prompt 1, round 0: principle "tone" (cycle position 2)
    assert critique_asked == [
        {"role": user, "content": "Q1"},
        {"role": assistant, "content": "out1-1"},
        {"role": user, "content": "Critique the answer for tone."},
    ]
    assert stages.calls[2][1] == [
        *critique_asked,
        {"role": assistant, "content": "out2-1"},
        {"role": user, "content": "Rewrite the answer to fix tone."},
    ]
    # Round 2 starts again from the prompt and the revision of round 1.
    assert stages.calls[3][1][:2] == [{"role": user, "content": "Q1"}, {"role": assistant, "content": "out3-1"}]

    assert rows[1]["initial"] == "out1-1" and rows[1]["final"] == "out5-1"
    assert [r["principle"] for r in rows[0]["rounds"]] == ["harm", "honesty"]
    assert [r["principle"] for r in rows[1]["rounds"]] == ["tone", "harm"]
    assert rows[1]["rounds"][0] == {
        "principle": "tone",
        "critique_request": "Critique the answer for tone.",
        "critique": "out2-1",
        "revision_request": "Rewrite the answer to fix tone.",
        "revision": "out3-1",
    }


def test_conversations_render_with_a_chat_template_or_as_a_transcript(tiny_tokenizer):
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    assert cai_revise.render(tiny_tokenizer, messages) == "\n\nHuman: Q\n\nAssistant: A\n\nAssistant:"
    tiny_tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert cai_revise.render(tiny_tokenizer, messages) == "<user>Q<assistant>A<assistant>"


@pytest.mark.slow
def test_cai_revise_stores_every_stage_and_builds_the_sft_and_pair_files(tiny_model_dir, tmp_path):
    data = {
        "model_path": str(tiny_model_dir),
        "prompts_file": str(write_prompts(tmp_path, PROMPTS[:3])),
        "principles": PRINCIPLES,
        "rounds": 2,
        "sampling": "cycle",
        "principle_keys": ["tone", "harm"],
        "max_new_tokens": 6,
        "batch_size": 2,
    }
    result, events = run_kind(cai_revise, "cai_revise", data, tmp_path / "out")

    steps = read_lines(tmp_path / "out" / "steps.jsonl")
    assert [s["prompt_id"] for s in steps] == ["p0", "p1", "p2"]
    for index, step in enumerate(steps):
        assert step["prompt"] == PROMPTS[index] and isinstance(step["initial"], str)
        assert [r["principle"] for r in step["rounds"]] == (["tone", "harm"])  # cycle of 2 keys, 2 rounds
        for r in step["rounds"]:
            assert r["critique_request"] == f"Critique the answer for {r['principle']}."
            assert r["revision_request"] == f"Rewrite the answer to fix {r['principle']}."
            assert isinstance(r["critique"], str) and isinstance(r["revision"], str)
        assert step["final"] == step["rounds"][-1]["revision"]
    assert any(r["critique"] for s in steps for r in s["rounds"])  # the model did write

    sft = read_lines(tmp_path / "out" / "sft.jsonl")
    assert sft == [
        {"prompt_id": s["prompt_id"], "prompt": s["prompt"], "completion": s["final"]} for s in steps if s["final"]
    ]
    pairs = read_lines(tmp_path / "out" / "pairs.jsonl")
    kept = [s for s in steps if s["final"] and s["final"] != s["initial"]]
    assert pairs == [
        {"prompt_id": s["prompt_id"], "prompt": s["prompt"], "chosen": s["final"], "rejected": s["initial"]}
        for s in kept
    ]

    assert result["prompts"] == 3 and result["revised"] == 3
    assert result["files"] == {"steps": "steps.jsonl", "sft": "sft.jsonl", "pairs": "pairs.jsonl"}
    assert result["principle_counts"] == {"harm": 3, "tone": 3}
    assert result["metrics"]["pairs"] == len(pairs) and result["metrics"]["pairs_skipped"] == 3 - len(pairs)
    artifacts = [(e["kind"], e["count"]) for e in events if e["type"] == "artifact"]
    assert artifacts[:2] == [("steps", 2), ("steps", 3)]
    assert [e["step"] for e in events if e["type"] == "progress"] == [0, 2, 3]
    metrics = {e["name"] for e in events if e["type"] == "metric"}
    assert {"mean_initial_chars", "mean_final_chars", "share_changed", "principle_count/harm"} <= metrics


@pytest.mark.slow
def test_cai_revise_resumes_and_reproduces_a_fresh_run(tiny_model_dir, tmp_path):
    data = {
        "model_path": str(tiny_model_dir),
        "principles": PRINCIPLES,
        "rounds": 1,
        "max_new_tokens": 4,
        "batch_size": 2,
        "seed": 3,
        "temperature": 1.0,
    }
    fresh, _ = run_kind(
        cai_revise, "cai_revise", {**data, "prompts_file": str(write_prompts(tmp_path))}, tmp_path / "a"
    )
    assert fresh["revised"] == 5

    (tmp_path / "part").mkdir()
    partial = write_prompts(tmp_path / "part", PROMPTS[:2])
    run_kind(cai_revise, "cai_revise", {**data, "prompts_file": str(partial)}, tmp_path / "b")
    with open(tmp_path / "b" / "steps.jsonl", "a") as handle:
        handle.write('{"prompt_id": "p2", "prom')  # a run killed mid-write
    result, events = run_kind(
        cai_revise, "cai_revise", {**data, "prompts_file": str(write_prompts(tmp_path))}, tmp_path / "b"
    )

    assert result["revised"] == 3
    assert any("2 of 5 prompts already revised" in e.get("message", "") for e in events)
    # Seeds depend on the prompt's position, not on the run: the resumed file equals the fresh one.
    assert read_lines(tmp_path / "b" / "steps.jsonl") == read_lines(tmp_path / "a" / "steps.jsonl")
    principles = [s["rounds"][0]["principle"] for s in read_lines(tmp_path / "a" / "steps.jsonl")]
    sampler = PrincipleSampler(["harm", "honesty", "tone"], seed=3)
    assert principles == [sampler.pick(i, 0) for i in range(5)] and len(set(principles)) > 1


@pytest.mark.slow
def test_cai_revise_through_the_cli(tiny_model_dir, tmp_path):
    write_prompts(tmp_path, PROMPTS[:2])
    config = {
        "model_path": str(tiny_model_dir),
        "prompts_file": "prompts.jsonl",  # relative to the config file
        "principles": PRINCIPLES,
        "max_new_tokens": 3,
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"run_id": 1, "kind": "cai_revise", "config": config, "inputs": {}}))
    done = subprocess.run(
        [sys.executable, "-m", "training.ml", "cai_revise", "--config", str(path), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["type"] == "result" and result["prompts"] == 2 and result["revised"] == 2
    assert len(read_lines(tmp_path / "out" / "steps.jsonl")) == 2


# --- ai_feedback -----------------------------------------------------------------------------------


def test_bad_comparison_lines_name_the_line_and_field(tmp_path):
    good = {"comparison_id": 1, "prompt": "Q", "completions": [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}]}
    cases = [
        ({"completions": [{"id": 1, "text": "a"}]}, "line 2, field 'completions'"),
        ({"completions": [{"id": 1, "text": "a"}, {"id": 2, "text": None}]}, "line 2, field 'completions[1].text'"),
        ({"completions": [{"id": 1, "text": "a"}, {"id": 1, "text": "b"}]}, "line 2, field 'completions[1].id'"),
        ({"comparison_id": 1}, "line 2, field 'comparison_id': 1 appears twice"),
        ({"prompt": 5}, "line 2, field 'prompt'"),
    ]
    for change, message in cases:
        path = write_comparisons(tmp_path, [good, {**good, "comparison_id": 2, **change}])
        with pytest.raises(ValueError, match=re.escape(message)):
            ai_feedback.read_comparisons(path)


def test_a_long_conversation_is_cut_from_the_left_keeping_question_and_options(tiny_tokenizer):
    labeler = ai_feedback.Labeler(None, tiny_tokenizer, max_length=120)
    conversation = " ".join(f"word{i}" for i in range(200)) + " THE END"
    text, cut = labeler.fit(conversation, "Which is kinder?", "Option one.", "Option two.")
    assert cut and 110 <= labeler.length(text) <= 120
    assert text.endswith("Which is kinder?\nOptions:\n(A) Option one.\n(B) Option two.\nThe answer is: (")
    assert "THE END" in text and "word0 " not in text
    assert text.startswith("Consider the following conversation between a human and an assistant:\n")
    short, cut = labeler.fit("Human: hi", "Q?", "a", "b")
    assert not cut and short == "Consider the following conversation between a human and an assistant:\n" + (
        "Human: hi\nQ?\nOptions:\n(A) a\n(B) b\nThe answer is: ("
    )


def test_with_a_chat_template_the_answer_is_prefilled(tiny_tokenizer):
    tiny_tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    text = ai_feedback.Labeler(None, tiny_tokenizer, max_length=200).render("C", "Q?", "a", "b")
    assert text.startswith("<user>Consider") and text.endswith("(B) b<assistant>The answer is: (")
    plain = ai_feedback.Labeler(None, tiny_tokenizer, max_length=200, use_chat_template=False)
    assert plain.render("C", "Q?", "a", "b").endswith("(B) b\nThe answer is: (")


def test_ranks_follow_the_pairwise_probabilities():
    assert ai_feedback.rank([7, 9], {(0, 1): 0.7}) == {"7": 1, "9": 2}
    assert ai_feedback.rank([7, 9], {(0, 1): 0.3}) == {"7": 2, "9": 1}
    assert ai_feedback.rank([7, 9], {(0, 1): 0.5}) == {"7": 1, "9": 1}
    # Expected wins: a 0.9 + 0.6 = 1.5, b 0.1 + 0.8 = 0.9, c 0.4 + 0.2 = 0.6.
    assert ai_feedback.rank(["a", "b", "c"], {(0, 1): 0.9, (0, 2): 0.6, (1, 2): 0.8}) == {"a": 1, "b": 2, "c": 3}
    assert ai_feedback.rank(["a", "b", "c"], {(0, 1): 0.5, (0, 2): 0.5, (1, 2): 0.5}) == {"a": 1, "b": 1, "c": 1}
    assert ai_feedback.rank(["a", "b", "c"], {(0, 1): 0.5, (0, 2): 0.9, (1, 2): 0.9}) == {"a": 1, "b": 1, "c": 3}


def _comparisons() -> list[dict]:
    x, y, z = TEXTS
    return [
        {
            "comparison_id": "xy",
            "prompt": "Human: how do I read a file?",
            "completions": [{"id": 1, "text": x}, {"id": 2, "text": y}],
        },
        {
            "comparison_id": "yx",
            "prompt": "Human: how do I read a file?",
            "completions": [{"id": 2, "text": y}, {"id": 1, "text": x}],
        },
        {
            "comparison_id": "xyz",
            "prompt": "Human: tell me something",
            "completions": [{"id": 1, "text": x}, {"id": 2, "text": y}, {"id": 3, "text": z}],
        },
    ]


@pytest.mark.slow
def test_ai_feedback_probabilities_symmetry_and_ranks(tiny_model_dir, tmp_path):
    data = {
        "model_path": str(tiny_model_dir),
        "comparisons_file": str(write_comparisons(tmp_path, _comparisons())),
        "principles": PRINCIPLES,
        "batch_size": 4,
        "principle": "tone",  # the same question for xy and yx
    }
    result, events = run_kind(ai_feedback, "ai_feedback", data, tmp_path / "both")
    judgments = {j["comparison_id"]: j for j in read_lines(tmp_path / "both" / "judgments.jsonl")}
    assert list(judgments) == ["xy", "yx", "xyz"]
    for judgment in judgments.values():
        for pair in judgment["pairs"]:
            for name in ("p_a_first", "p_a_second", "p_a"):
                assert 0 < pair[name] < 1
            assert pair["p_a"] == pytest.approx((pair["p_a_first"] + pair["p_a_second"]) / 2)

    xy, yx = judgments["xy"]["pairs"][0], judgments["yx"]["pairs"][0]
    assert (xy["a"], xy["b"], yx["a"], yx["b"]) == (1, 2, 2, 1)
    # The same two questions in the other order: the combined probabilities are complementary.
    assert yx["p_a"] == pytest.approx(1 - xy["p_a"], abs=1e-5)
    assert yx["p_a_first"] == pytest.approx(1 - xy["p_a_second"], abs=1e-5)
    winner = "1" if xy["p_a"] > 0.5 else "2"
    assert judgments["xy"]["ranks"][winner] == 1 and sorted(judgments["xy"]["ranks"].values()) == [1, 2]
    assert judgments["xy"]["probability"] == pytest.approx(max(xy["p_a"], 1 - xy["p_a"]))

    three = judgments["xyz"]
    assert len(three["pairs"]) == 3 and three["probability"] is None
    wins = {"1": 0.0, "2": 0.0, "3": 0.0}
    for pair in three["pairs"]:
        wins[str(pair["a"])] += pair["p_a"]
        wins[str(pair["b"])] += 1 - pair["p_a"]
    assert sorted(wins, key=wins.get, reverse=True) == sorted(three["ranks"], key=three["ranks"].get)

    assert result["comparisons"] == 3 and result["judged"] == 3 and result["file"] == "judgments.jsonl"
    assert result["principle_counts"] == {"tone": 3}
    assert -0.5 < result["metrics"]["position_bias"] < 0.5
    assert 0 <= result["metrics"]["order_consistency"] <= 1
    assert [(e["kind"], e["count"]) for e in events if e["type"] == "artifact"] == [("judgments", 3)]

    # One order only: p_a is the first order's, the same questions as before.
    result, _ = run_kind(ai_feedback, "ai_feedback", {**data, "both_orders": False}, tmp_path / "one")
    single = {j["comparison_id"]: j for j in read_lines(tmp_path / "one" / "judgments.jsonl")}
    assert result["metrics"]["order_consistency"] is None
    for cid, judgment in single.items():
        for pair, both in zip(judgment["pairs"], judgments[cid]["pairs"], strict=True):
            assert pair["p_a_second"] is None and pair["p_a"] == pair["p_a_first"]
            assert pair["p_a_first"] == pytest.approx(both["p_a_first"], abs=1e-5)

    # No fixed principle: one sampled per comparison, seeded.
    many = [{**_comparisons()[0], "comparison_id": i} for i in range(12)]
    (tmp_path / "many").mkdir()
    data_many = {
        **data,
        "comparisons_file": str(write_comparisons(tmp_path / "many", many)),
        "principle": None,
        "seed": 5,
    }
    result, _ = run_kind(ai_feedback, "ai_feedback", {**data_many, "both_orders": False}, tmp_path / "sampled")
    sampler = PrincipleSampler(["harm", "honesty", "tone"], seed=5)
    picks = [j["principle"] for j in read_lines(tmp_path / "sampled" / "judgments.jsonl")]
    assert picks == [sampler.pick(i) for i in range(12)] and len(set(picks)) > 1
    assert sum(result["principle_counts"].values()) == 12

    # A rerun skips what is judged; a torn line is cut off.
    with open(tmp_path / "one" / "judgments.jsonl", "a") as handle:
        handle.write('{"comparison_id": "zz", "pri')
    result, _ = run_kind(ai_feedback, "ai_feedback", {**data, "both_orders": False}, tmp_path / "one")
    assert result["judged"] == 0 and len(read_lines(tmp_path / "one" / "judgments.jsonl")) == 3


@pytest.mark.slow
def test_a_labeler_that_always_says_a_is_caught_and_cancelled_by_both_orders(tiny_model_dir, tmp_path, monkeypatch):
    real_load = ai_feedback.load

    def rigged_load(*args, **kwargs):
        import torch

        model, tokenizer = real_load(*args, **kwargs)
        a_token = ai_feedback.Labeler(model, tokenizer, max_length=64).answer_ids[0]
        bias = torch.zeros(model.config.vocab_size)
        bias[a_token] = 50.0  # "A" wins whatever the question
        model.lm_head.register_forward_hook(lambda module, inputs, output: output + bias)
        return model, tokenizer

    monkeypatch.setattr(ai_feedback, "load", rigged_load)
    data = {
        "model_path": str(tiny_model_dir),
        "comparisons_file": str(write_comparisons(tmp_path, _comparisons())),
        "principles": PRINCIPLES,
    }
    result, _ = run_kind(ai_feedback, "ai_feedback", {**data, "both_orders": False}, tmp_path / "one")
    assert result["metrics"]["position_bias"] == pytest.approx(0.5)
    for judgment in read_lines(tmp_path / "one" / "judgments.jsonl"):
        assert all(pair["p_a"] == pytest.approx(1.0) for pair in judgment["pairs"])  # (A) always "better"

    result, _ = run_kind(ai_feedback, "ai_feedback", data, tmp_path / "both")
    assert result["metrics"]["position_bias"] == pytest.approx(0.5)  # the bias is still measured
    assert result["metrics"]["order_consistency"] == 0.0
    judgments = read_lines(tmp_path / "both" / "judgments.jsonl")
    for judgment in judgments:
        assert all(pair["p_a"] == 0.5 for pair in judgment["pairs"])  # but cancelled
        assert set(judgment["ranks"].values()) == {1}
    assert judgments[0]["probability"] == 0.5 and result["metrics"]["ties"] == 3
