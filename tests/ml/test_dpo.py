"""The ``dpo`` kind on a tiny causal LM: LoRA through the CLI (the preference is learned, the
reference is the model with adapters off), full fine-tuning, resume, a bad config, and pairs longer
than ``max_length`` that keep their prompt's end and are not dropped."""

import json
from pathlib import Path

import pytest

from tests.ml.kind_runs import run_cli
from tests.ml.kind_runs import run_in_process as run_kind_in_process
from training.ml.configs import ConfigError, config_for

pytestmark = pytest.mark.slow

TOPICS = ["the with statement", "a class definition", "the import system", "string formatting", "a for loop"]


def pair_rows(n: int, *, offset: int = 0) -> list[dict]:
    """The chosen reply is always the same word list, the rejected one another: a learnable preference."""
    return [
        {
            "prompt": f"Question {i}: explain {TOPICS[i % len(TOPICS)]}.",
            "chosen": " it is a short answer about the object",
            "rejected": " never mind the value of an import",
            "margin": 1.0,
            "weight": 1.0,
            "split": "train",
        }
        for i in range(offset, offset + n)
    ]


def write_pairs(folder: Path, train: list[dict], evaluation: list[dict] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    if evaluation is not None:
        (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evaluation))
    return folder


def config_dict(model_path: Path, **overrides) -> dict:
    return {
        "model_path": str(model_path),
        "train_file": "train.jsonl",
        "eval_file": "eval.jsonl",
        "learning_rate": 1e-2,
        "max_steps": 8,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "max_length": 64,
        "lora_r": 8,
        "lora_dropout": 0.0,
        "logging_steps": 1,
        "save_steps": 0,
        "torch_threads": 1,
        **overrides,
    }


def cli(config: Path, out: Path):
    return run_cli("dpo", config, out)


def run_in_process(folder: Path, config: dict, out: Path) -> tuple[dict, list[dict]]:
    return run_kind_in_process("dpo", folder, config, out)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_cli_trains_lora_dpo_and_the_preference_is_learned(tmp_path, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = write_pairs(tmp_path / "snapshot", pair_rows(16), pair_rows(8, offset=100))
    config = folder / "config.json"
    config.write_text(json.dumps(config_dict(tiny_model_dir)))
    done = cli(config, tmp_path / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is an event
    result = events[-1]
    assert result["type"] == "result"
    assert result["outputs"] == [
        {"dir": "adapter", "task": "causal-lm", "role": "adapter", "peft_method": "lora"},
        {"dir": "model", "task": "causal-lm", "role": "merged"},
    ]
    metrics = result["metrics"]
    assert metrics["steps"] == 8 and metrics["eval_pairs"] == 8
    # Before training the policy is the reference: no preference (ties are not counted), loss log 2.
    assert metrics["eval_rewards_accuracy_before"] == 0.0
    assert metrics["eval_loss_before"] == pytest.approx(0.6931, abs=1e-3)
    assert metrics["eval_rewards_accuracy"] == 1.0, metrics
    assert metrics["eval_rewards_margin"] > 0 and metrics["eval_loss"] < 0.6
    losses = [e["value"] for e in events if e["type"] == "metric" and e["name"] == "loss"]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert any(e["type"] == "metric" and e["name"] == "eval_rewards/accuracies" for e in events)

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model")
    assert not torch.equal(merged.model.layers[0].self_attn.q_proj.weight, base.model.layers[0].self_attn.q_proj.weight)
    assert torch.equal(merged.model.embed_tokens.weight, base.model.embed_tokens.weight)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "out" / "adapter"
    )
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(adapted(ids).logits, merged(ids).logits, atol=1e-4)


def test_full_fine_tuning_against_a_frozen_copy(tmp_path, tiny_model_dir):
    folder = write_pairs(tmp_path / "snapshot", pair_rows(8), pair_rows(4, offset=100))
    config = config_dict(tiny_model_dir, peft_method="full", learning_rate=1e-3, max_steps=4, eval_before=False)
    result, _ = run_in_process(folder, config, tmp_path / "out")
    assert result["outputs"] == [{"dir": "model", "task": "causal-lm", "role": "full"}]
    assert result["metrics"]["trainable_params"] == result["metrics"]["total_params"]
    assert "eval_rewards_accuracy_before" not in result["metrics"]
    assert result["metrics"]["eval_rewards_accuracy"] > 0.5


def test_a_bad_config_is_refused_with_the_field_named(tmp_path, tiny_model_dir):
    cases = [
        ({"beta": 0}, "beta"),
        ({"loss_type": "kto"}, "loss_type"),
        ({"peft_method": "prompt_tuning"}, "peft_method"),
        ({"max_prompt_length": 600}, "max_prompt_length"),
        ({"loss_type": "exo_pair"}, "label_smoothing"),
        ({"eval_steps": 5}, "eval_steps"),
    ]
    for overrides, field in cases:
        with pytest.raises(ConfigError) as error:
            config_for("dpo", {"model_path": "m", "train_file": "t.jsonl", **overrides})
        assert error.value.field == field, overrides
    config = config_for("dpo", {"model_path": "m", "train_file": "t.jsonl"})
    assert config.peft_method == "lora" and config.learning_rate == 5e-5 and config.beta == 0.1

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_path": str(tiny_model_dir), "train_file": "t.jsonl", "beta": -1}))
    done = cli(path, tmp_path / "out")
    assert done.returncode == 2
    assert json.loads(done.stdout.splitlines()[-1])["message"].startswith("bad config: beta: must be > 0")


def test_resume_from_the_checkpoint_of_an_earlier_attempt(tmp_path, tiny_model_dir):
    folder = write_pairs(tmp_path / "snapshot", pair_rows(16), pair_rows(4, offset=100))
    out = tmp_path / "out"
    first, _ = run_in_process(folder, config_dict(tiny_model_dir, max_steps=2, save_steps=2), out)
    assert first["metrics"]["steps"] == 2 and (out / "checkpoints" / "checkpoint-2").is_dir()
    second, events = run_in_process(folder, config_dict(tiny_model_dir, max_steps=4, save_steps=2), out)
    assert second["metrics"]["steps"] == 4 and second["metrics"]["resumed_from"] == "checkpoint-2"
    assert any(e["type"] == "log" and e["message"].startswith("resuming from checkpoint-2") for e in events)
    assert "eval_rewards_accuracy_before" not in second["metrics"]  # a resumed run is not "before training"
    assert [e["step"] for e in events if e["type"] == "progress"] == [3, 4]


def test_long_pairs_keep_the_end_of_their_prompt_and_are_not_dropped(tmp_path, tiny_model_dir, tiny_tokenizer):
    from training.ml.dpo import tokenize_pair

    eos = tiny_tokenizer.eos_token_id
    prompt = " ".join(f"detail{i}" for i in range(200)) + " Finally: the question?"
    example, cut = tokenize_pair(tiny_tokenizer, prompt, " yes it is", " no", max_length=40)
    assert cut and len(example["prompt_ids"]) + len(example["chosen_ids"]) == 40
    assert tiny_tokenizer.decode(example["prompt_ids"]).endswith(" Finally: the question?")
    assert example["chosen_ids"][-1] == eos and example["rejected_ids"][-1] == eos
    assert tiny_tokenizer.decode(example["chosen_ids"][:-1]) == " yes it is"

    example, cut = tokenize_pair(tiny_tokenizer, prompt, " yes", " no", max_length=60, max_prompt_length=10)
    assert cut and len(example["prompt_ids"]) == 10
    # Completions too long to fit: half the room for the prompt's end, the completions cut on the right.
    long_reply = " " + " ".join(["answer"] * 100)
    example, cut = tokenize_pair(tiny_tokenizer, prompt, long_reply, " no", max_length=40)
    assert len(example["prompt_ids"]) == 20 and len(example["chosen_ids"]) == 20 and example["rejected_ids"][-1] == eos

    # A chat template: the prompt is one user turn with the generation prompt, the reply stripped.
    tiny_tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|eos|>{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    example, _ = tokenize_pair(tiny_tokenizer, "Hi there", " hello", " go", max_length=64)
    assert tiny_tokenizer.decode(example["prompt_ids"]) == "user: Hi there<|eos|>assistant:"
    assert tiny_tokenizer.decode(example["chosen_ids"]) == "hello<|eos|>"

    rows = pair_rows(6)
    rows[0]["prompt"] = prompt
    folder = write_pairs(tmp_path / "snapshot", rows)
    config = config_dict(tiny_model_dir, eval_file=None, max_steps=1, max_length=48)
    result, events = run_in_process(folder, config, tmp_path / "out")
    assert result["metrics"]["train_pairs"] == 6 and result["metrics"]["train_pairs_cut"] == 1
    assert any("lost prompt tokens from the left (no pair dropped)" in e.get("message", "") for e in events)
