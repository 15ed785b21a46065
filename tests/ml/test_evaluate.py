"""The ``evaluate`` run kind on a tiny model: the table of prompt variants x generation configs,
ROUGE/BLEU against references, reward, KL to the base, an off-task set, and bad configs refused."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.ml import evaluate
from training.ml.configs import ConfigError, config_for
from training.ml.events import EventWriter

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["the with statement", "a class definition", "lambda expressions", "the import system", "exceptions"]


def write_data(folder: Path, name: str = "data.jsonl", references: list | None = None) -> Path:
    rows = [
        {
            "id": i,
            "reference": references[i] if references else f"A summary of {topic}.",
            "prompts": {"zero_shot": f"Explain {topic}.", "one_shot": f"Example: lambda. Now explain {topic}."},
        }
        for i, topic in enumerate(TOPICS)
    ]
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(data: dict, out: Path) -> tuple[dict, list[dict]]:
    stream = io.StringIO()
    result = evaluate.run(config_for("evaluate", data), out, EventWriter(stream))
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_table_through_the_cli_with_the_model_as_its_own_base(tiny_model_dir, tmp_path):
    from rouge_score import rouge_scorer

    write_data(tmp_path)
    config = {
        "model_path": str(tiny_model_dir),
        "base_model_path": str(tiny_model_dir),
        "data_file": "data.jsonl",  # relative to the config file
        "generations": [{"greedy": True}, {"temperature": 1.0, "top_k": 20}],
        "max_new_tokens": 8,
        "batch_size": 2,
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "training.ml", "evaluate", "--config", str(tmp_path / "c.json"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    result = events[-1]
    assert result["type"] == "result" and result["outputs"] == []
    table = result["table"]
    assert [(t["variant"], t["generation"]) for t in table] == [
        ("zero_shot", "greedy"),
        ("zero_shot", "sample_t1.0_k20"),
        ("one_shot", "greedy"),
        ("one_shot", "sample_t1.0_k20"),
    ]
    for entry in table:
        assert entry["rows"] == 5 and entry["set"] == "main"
        for name in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"):
            assert 0.0 <= entry[name] <= 1.0
        assert entry["kl"] == entry["kl_per_token"] == entry["kl_full_per_token"] == 0.0  # the model is its base
    assert result["metrics"]["variant"] == "zero_shot" and result["metrics"]["rouge1"] == table[0]["rouge1"]
    assert json.loads((out / "metrics.json").read_text())["table"] == table

    names = {e["name"] for e in events if e["type"] == "metric"}
    assert {"rouge1/zero_shot/greedy", "rougeLsum/one_shot/sample_t1.0_k20", "kl/one_shot/greedy"} <= names
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total"] == 2 * 2 * 3  # variants x generations x batches

    lines = read_lines(out / "predictions.jsonl")
    assert len(lines) == 20
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    greedy = [line for line in lines if line["variant"] == "zero_shot" and line["generation"] == "greedy"]
    assert [line["id"] for line in greedy] == list(range(5))
    for line in greedy:
        assert line["rouge1"] == pytest.approx(scorer.score(line["reference"], line["prediction"])["rouge1"].fmeasure)
        assert 1 <= line["tokens"] <= 8 and line["kl"] == 0.0
    assert table[0]["rougeL"] == pytest.approx(sum(line["rougeL"] for line in greedy) / 5)


def test_rouge_of_a_model_against_its_own_greedy_output_is_one(tiny_model_dir, tmp_path):
    data = {
        "model_path": str(tiny_model_dir),
        "data_file": str(write_data(tmp_path)),
        "variants": ["zero_shot"],
        "max_new_tokens": 6,
    }
    run(data, tmp_path / "first")
    predictions = [line["prediction"] for line in read_lines(tmp_path / "first" / "predictions.jsonl")]
    data["data_file"] = str(write_data(tmp_path, "again.jsonl", references=predictions))
    again, _ = run(data, tmp_path / "again")
    words = [bool(re.search(r"[a-z0-9]", p.lower())) for p in predictions]
    assert any(words)
    for line, has_words in zip(read_lines(tmp_path / "again" / "predictions.jsonl"), words, strict=True):
        assert line["rouge1"] == (1.0 if has_words else 0.0)
    assert again["table"][0]["bleu"] == pytest.approx(1.0)
    assert "kl" not in again["table"][0]  # no base given: no kl by default


@pytest.fixture
def adapters(tiny_model_dir, tmp_path):
    """A LoRA adapter that changes the model, one that does not (B = 0), and a random soft prompt."""
    from peft import LoraConfig, PromptTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = {}
    for name, peft_config in {
        "lora": LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM"),
        "lora_zero": LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"),
        "prompt": PromptTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"),
    }.items():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), peft_config)
        if name == "lora":
            for parameter_name, parameter in model.named_parameters():
                if "lora_B" in parameter_name:
                    parameter.data.normal_(0, 0.5)
        folders[name] = tmp_path / name
        model.save_pretrained(folders[name])
    return folders


def test_kl_of_an_adapter_to_its_base(tiny_model_dir, adapters, tmp_path):
    data = {
        "model_path": str(tiny_model_dir),
        "data_file": str(write_data(tmp_path)),
        "variants": ["zero_shot"],
        "max_new_tokens": 8,
        "batch_size": 3,
    }
    tables = {}
    for name, folder in adapters.items():
        result, _ = run({**data, "adapter_path": str(folder)}, tmp_path / f"out-{name}")
        tables[name] = result["table"][0]
        assert result["metrics"]["kl"] == tables[name]["kl"]  # kl is on by default with an adapter
    assert tables["lora_zero"]["kl_full_per_token"] == pytest.approx(0.0, abs=1e-6)
    assert tables["lora"]["kl_full_per_token"] > 0.01
    assert tables["lora"]["kl"] > 0  # greedy picks tokens the adapter likes more than the base
    assert tables["prompt"]["kl_full_per_token"] > 0

    # The base as a folder gives what the adapter switched off gives.
    result, _ = run(
        {**data, "adapter_path": str(adapters["lora"]), "base_model_path": str(tiny_model_dir)},
        tmp_path / "out-base",
    )
    for name in ("kl", "kl_per_token", "kl_full_per_token"):
        assert result["table"][0][name] == pytest.approx(tables["lora"][name], rel=1e-4, abs=1e-5)


def test_reward_and_an_off_task_set(tiny_model_dir, make_tiny_model, tiny_tokenizer, tmp_path):
    from training.ml.rewards import RewardModelScorer

    reward_dir = tmp_path / "reward"
    make_tiny_model("sequence_classification").save_pretrained(reward_dir)
    tiny_tokenizer.save_pretrained(reward_dir)
    data = {
        "model_path": str(tiny_model_dir),
        "data_file": str(write_data(tmp_path)),
        "offtask_file": str(write_data(tmp_path, "offtask.jsonl", references=["x"] * 5)),
        "reward_model_path": str(reward_dir),
        "variants": ["one_shot"],
        "limit": 3,
        "max_new_tokens": 8,
    }
    result, events = run(data, tmp_path / "out")
    assert [(t["set"], t["rows"]) for t in result["table"]] == [("main", 3), ("offtask", 3)]
    main = result["table"][0]
    lines = read_lines(tmp_path / "out" / "predictions.jsonl")
    rows = [line for line in lines if line["set"] == "main"]
    scorer = RewardModelScorer(str(reward_dir))
    prompts = [f"Example: lambda. Now explain {topic}." for topic in TOPICS[:3]]
    expected = scorer.score(prompts, [line["prediction"] for line in rows])
    assert [line["reward"] for line in rows] == pytest.approx(expected, abs=1e-5)
    assert main["reward"] == pytest.approx(sum(expected) / 3, abs=1e-5)
    summary = result["metrics"]
    assert summary["reward"] == main["reward"] and summary["offtask_rouge1"] == result["table"][1]["rouge1"]
    assert "offtask_reward" in summary
    names = {e["name"] for e in events if e["type"] == "metric"}
    assert {"reward/one_shot/greedy", "offtask/rouge1/one_shot/greedy"} <= names


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"generations": [{"greedy": True}, {"temperature": -1}]}, "generations[1].temperature", "must be > 0"),
        ({"generations": [{"temperature": 0.7, "top_p": 2}]}, "generations[0].top_p", "must be in (0, 1]"),
        ({"generations": [{"greedy": True, "temperature": 0.7}]}, "generations[0].temperature", "greedy decoding"),
        ({"generations": [{"beams": 4}]}, "generations[0].beams", "unknown option"),
        ({"generations": [{}, {"greedy": True}]}, "generations[1].name", "names two generation configs"),
        ({"generations": []}, "generations", "non-empty"),
        ({"metrics": ["rouge", "meteor"]}, "metrics", "unknown metric 'meteor'"),
        ({"metrics": ["kl"]}, "metrics", "kl needs base_model_path"),
        ({"metrics": ["reward"]}, "metrics", "reward needs reward_model_path"),
        ({"batch_size": 0}, "batch_size", "must be 1..512"),
        ({"limit": 0}, "limit", "must be >= 1"),
        ({"prompts_file": "p.jsonl"}, "prompts_file", "unknown option"),
    ],
)
def test_bad_configs_name_the_field(overrides, field, message):
    with pytest.raises(ConfigError) as caught:
        config_for("evaluate", {"model_path": "m", "data_file": "d.jsonl", **overrides})
    assert caught.value.field == field and message in caught.value.message


def test_the_cli_refuses_a_bad_generation_config_with_exit_2(tmp_path):
    config = {"model_path": "m", "data_file": "d.jsonl", "generations": [{"temperature": -1}]}
    (tmp_path / "c.json").write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "training.ml", "evaluate", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert json.loads(done.stdout.splitlines()[-1])["message"].startswith(
        "bad config: generations[0].temperature: must be > 0"
    )


def test_bad_rows_name_the_row_and_field(tmp_path):
    path = write_data(tmp_path)
    rows = evaluate.read_rows(str(path))
    with pytest.raises(ValueError, match=r"row 1, field 'prompts': no variant 'few_shot'"):
        evaluate.variants_of(rows, ["zero_shot", "few_shot"], str(path))
    assert evaluate.variants_of(rows, [], str(path)) == ["zero_shot", "one_shot"]
    assert len(evaluate.read_rows(str(path), limit=2)) == 2
    path.write_text(json.dumps({"id": 1, "reference": 3, "prompts": {"a": "b"}}) + "\n")
    with pytest.raises(ValueError, match=r"row 1, field 'reference'"):
        evaluate.read_rows(str(path))
    path.write_text(json.dumps({"id": 1, "reference": "r"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1, field 'prompts': missing"):
        evaluate.read_rows(str(path))
