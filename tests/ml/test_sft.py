"""The ``sft`` run kind on a tiny model: LoRA, prompt tuning and full fine-tuning, completion-only
loss, outputs that load, resuming, and configs refused with the field named."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.ml import sft
from training.ml.configs import ConfigError, GenerateConfig, config_for
from training.ml.events import EventWriter
from training.ml.generation import Prompt, encode, generate_batch, load, prepare_tokenizer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["apple", "river", "stone", "cloud", "table", "green", "music", "paper"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|pad|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}"
)


@pytest.fixture
def learner_dir(tmp_path, tiny_tokenizer, make_tiny_model):
    """The tiny Llama with larger initial weights: its logits start far from uniform, so a few dozen
    steps teach it the pairs (at the default 0.02 a LoRA or a soft prompt barely moves the loss)."""
    folder = tmp_path / "tiny-learner"
    make_tiny_model("causal_lm", initializer_range=0.3).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def write_pairs(folder: Path, name: str = "train.jsonl", repeat: int = 4) -> Path:
    """A learnable set: the completion repeats the prompt's word three times."""
    rows = [
        {"prompt": f"Repeat the word {w}:", "completion": f" {w} {w} {w}", "row_index": i} for i, w in enumerate(WORDS)
    ]
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * repeat))
    return path


def sft_config(model_dir, folder: Path, **overrides) -> dict:
    write_pairs(folder)
    write_pairs(folder, "eval.jsonl", repeat=1)
    return {
        "model_path": str(model_dir),
        "train_file": "train.jsonl",
        "eval_file": "eval.jsonl",
        "max_steps": 40,
        "per_device_train_batch_size": 8,
        "logging_steps": 4,
        "save_steps": 0,
        "learning_rate": 2e-2,
        "max_length": 64,
        **overrides,
    }


def cli(folder: Path, config: dict, out: Path) -> tuple[int, list[dict], str]:
    path = folder / "c.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "training.ml", "sft", "--config", str(path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def run_in_process(folder: Path, config: dict, out: Path) -> tuple[dict, list[dict]]:
    path = folder / "train.jsonl"
    data = {**config, "train_file": str(path), "eval_file": str(folder / "eval.jsonl")}
    stream = io.StringIO()
    result = sft.run(config_for("sft", data), out, EventWriter(stream))
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]


def losses(events: list[dict]) -> list[float]:
    return [e["value"] for e in events if e["type"] == "metric" and e["name"] == "loss"]


def test_lora_through_the_cli_learns_and_saves_an_adapter_and_a_merged_model(learner_dir, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    code, events, stderr = cli(tmp_path, sft_config(learner_dir, tmp_path), out)
    assert code == 0, stderr
    result = events[-1]
    assert result["type"] == "result"
    assert result["outputs"] == [
        {"dir": "adapter", "task": "causal-lm", "role": "adapter", "peft_method": "lora"},
        {"dir": "model", "task": "causal-lm", "role": "merged"},
    ]
    metrics = result["metrics"]
    assert metrics["steps"] == 40 and metrics["peft_method"] == "lora"
    assert 0 < metrics["trainable_params"] < metrics["total_params"]
    assert "eval_loss" in metrics and metrics["train_loss"] > 0
    curve = losses(events)
    assert len(curve) == 10 and curve[-1] < curve[0] / 3, curve
    accuracy = [e["value"] for e in events if e["type"] == "metric" and e["name"] == "mean_token_accuracy"]
    assert accuracy[0] < 0.5 and accuracy[-1] > 0.9, accuracy
    assert any(e["type"] == "progress" and e["step"] == 40 for e in events)

    # LoRA's B matrices start at zero: training moved them
    weights = load_file(out / "adapter" / "adapter_model.safetensors")
    b = [v for k, v in weights.items() if "lora_B" in k]
    assert b and all(v.abs().sum() > 0 for v in b)
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        learner_dir
    )

    # The merged folder loads on its own and equals base + adapter.
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    merged = AutoModelForCausalLM.from_pretrained(out / "model").eval()
    base = AutoModelForCausalLM.from_pretrained(learner_dir).eval()
    ids = tokenizer("Repeat the word stone:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_logits = base(ids).logits
        adapted = PeftModel.from_pretrained(base, out / "adapter").eval()
        adapter_logits = adapted(ids).logits
        merged_logits = merged(ids).logits
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)
    assert (out / "adapter" / "tokenizer.json").exists()


@pytest.mark.parametrize("method", ["prompt_tuning", "full"])
def test_prompt_tuning_and_full_fine_tuning(method, learner_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    lr = {"prompt_tuning": 0.3, "full": 3e-3}[method]
    config = sft_config(learner_dir, tmp_path, peft_method=method, learning_rate=lr, num_virtual_tokens=4)
    out = tmp_path / "out"
    result, events = run_in_process(tmp_path, config, out)
    curve = losses(events)
    # 4 soft tokens cannot learn to copy a word, but they do learn the completions' vocabulary
    assert curve[-1] < curve[0] - 1.0, curve
    assert result["metrics"]["peft_method"] == method and "eval_loss" in result["metrics"]
    if method == "prompt_tuning":
        from peft import PeftModel

        assert result["outputs"] == [{"dir": "adapter", "task": "causal-lm", "role": "adapter", "peft_method": method}]
        assert result["metrics"]["trainable_params"] == 4 * 32  # virtual tokens x hidden size
        assert not (out / "model").exists()
        assert json.loads((out / "adapter" / "adapter_config.json").read_text())["peft_type"] == "PROMPT_TUNING"
        # loadable over its base; generation continues the prompt after the soft tokens
        model, tokenizer = load(str(learner_dir))
        tuned = PeftModel.from_pretrained(model, out / "adapter").eval()
        generate = GenerateConfig.from_dict(
            {"model_path": "m", "prompts_file": "p", "k": 1, "greedy": True, "max_new_tokens": 4}
        )
        lines, tokens = generate_batch(
            tuned, tokenizer, [Prompt(0, 0, "Repeat the word apple:")], generate, max_prompt_tokens=64
        )
        assert tokens > 0 and lines[0]["prompt_tokens"] == len(tokenizer("Repeat the word apple:")["input_ids"])
    else:
        assert result["outputs"] == [{"dir": "model", "task": "causal-lm", "role": "full"}]
        assert result["metrics"]["trainable_params"] == result["metrics"]["total_params"]
        trained = AutoModelForCausalLM.from_pretrained(out / "model")
        base = AutoModelForCausalLM.from_pretrained(learner_dir)
        name = "model.layers.0.self_attn.q_proj.weight"
        assert not torch.equal(trained.state_dict()[name], base.state_dict()[name])


def test_completion_only_loss_masks_the_prompt(tiny_model_dir, tmp_path):
    def first_batch(**overrides):
        data = sft_config(tiny_model_dir, tmp_path, **overrides)
        data.update(train_file=str(tmp_path / "train.jsonl"), eval_file=None, peft_method="full")
        setup = sft.build_trainer(config_for("sft", data), tmp_path / "out", EventWriter(io.StringIO()))
        return setup, next(iter(setup.trainer.get_train_dataloader()))

    setup, batch = first_batch()
    tokenizer = setup.tokenizer
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        ids, labels = ids[mask.bool()].tolist(), labels[mask.bool()].tolist()
        text = tokenizer.decode(ids)
        word = text.split("Repeat the word ")[1].split(":")[0]
        prompt_length = len(tokenizer(f"Repeat the word {word}:")["input_ids"])
        assert labels[:prompt_length] == [-100] * prompt_length
        assert labels[prompt_length:] == ids[prompt_length:]  # the completion and its eos are learned
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[prompt_length:-1]) == f" {word} {word} {word}"
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()  # padding never counts

    _, batch = first_batch(completion_only_loss=False)
    real = batch["attention_mask"].bool()
    assert (batch["labels"][real] == batch["input_ids"][real]).all()


def test_pairs_are_tokenized_as_generation_sees_them(tiny_tokenizer):
    tiny_tokenizer.chat_template = CHAT_TEMPLATE
    pair, cut = sft.tokenize_pair(tiny_tokenizer, "Repeat the word apple:", " apple apple", max_length=64)
    prepare_tokenizer(tiny_tokenizer)
    generation_batch, _ = encode(tiny_tokenizer, ["Repeat the word apple:"], max_prompt_tokens=64)
    prompt_ids = generation_batch["input_ids"][0].tolist()
    assert not cut
    assert pair["input_ids"][: len(prompt_ids)] == prompt_ids  # the chat template's user turn
    completion = pair["input_ids"][len(prompt_ids) :]
    assert tiny_tokenizer.decode(completion[:-1]) == "apple apple"  # leading space dropped after the turn
    assert completion[-1] == tiny_tokenizer.eos_token_id
    assert pair["completion_mask"] == [0] * len(prompt_ids) + [1] * len(completion)

    # Too long: the prompt loses tokens from the left, the completion stays whole.
    long_prompt = "word " * 100 + "Repeat the word apple:"
    pair, cut = sft.tokenize_pair(tiny_tokenizer, long_prompt, " apple apple", max_length=32)
    assert cut and len(pair["input_ids"]) == 32
    text = tiny_tokenizer.decode(pair["input_ids"])
    assert text.endswith("Repeat the word apple:<|eos|>\n<|pad|>assistant\napple apple<|eos|>")
    # A completion longer than max_length keeps half the room for the prompt.
    pair, cut = sft.tokenize_pair(tiny_tokenizer, "Repeat:", " apple" * 80, max_length=32)
    assert cut and len(pair["input_ids"]) == 32 and sum(pair["completion_mask"]) >= 16


def test_a_second_invocation_resumes_from_the_checkpoint(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    config = sft_config(tiny_model_dir, tmp_path, max_steps=4, save_steps=2, logging_steps=1, eval_file=None)
    code, events, stderr = cli(tmp_path, config, out)
    assert code == 0, stderr
    assert [e["path"] for e in events if e["type"] == "checkpoint"] == [
        "checkpoints/checkpoint-2",
        "checkpoints/checkpoint-4",
    ]
    assert "resumed_from" not in events[-1]["metrics"]

    code, events, stderr = cli(tmp_path, {**config, "max_steps": 6}, out)  # the same run, asked for 6 steps
    assert code == 0, stderr
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert any(m.startswith("resuming from checkpoint-4") for m in logs), logs
    result = events[-1]
    assert result["metrics"]["steps"] == 6 and result["metrics"]["resumed_from"] == "checkpoint-4"
    assert [e["step"] for e in events if e["type"] == "metric" and e["name"] == "loss"] == [5, 6]
    assert (out / "model" / "model.safetensors").exists()

    # Started once more after it finished (a worker lost while saving): the outputs are written again
    # with a real train loss. (transformers' loop checks max_steps only after a step, so it may take
    # one more, at a learning rate of 0 by then.)
    code, events, stderr = cli(tmp_path, {**config, "max_steps": 6}, out)
    assert code == 0, stderr
    metrics = events[-1]["metrics"]
    assert metrics["resumed_from"] == "checkpoint-6" and metrics["steps"] >= 6
    assert metrics["train_loss"] > 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lora_r": 0}, "bad config: lora_r: must be 1..1024, got 0"),
        ({"peft_method": "qlora"}, "bad config: peft_method: use one of lora, prompt_tuning, full, none, not 'qlora'"),
        ({"learning_rate": 2}, "bad config: learning_rate: must be in (0, 1], got 2"),
        ({"train_file": None}, "bad config: train_file: expected str, got NoneType None"),
        ({"packing": True}, "bad config: packing: unknown option"),
        ({"eval_steps": 5}, "bad config: eval_steps: evaluating every eval_steps needs an eval_file"),
    ],
)
def test_bad_configs_are_refused_with_the_field_named(overrides, message, tmp_path):
    config = {"model_path": str(tmp_path / "none"), "train_file": "train.jsonl", **overrides}
    code, events, _ = cli(tmp_path, config, tmp_path / "out")
    assert code == 2
    assert events[-1]["type"] == "error" and events[-1]["message"].startswith(message)


def test_the_config_is_light_and_picks_a_learning_rate_by_method():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, training.ml.sft_config, training.ml.evaluate_config; "
            "print(any(m in sys.modules for m in ('torch', 'trl', 'transformers', 'peft')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "False", done.stderr
    rates = {
        method: config_for("sft", {"model_path": "m", "train_file": "t", "peft_method": method}).learning_rate
        for method in ("lora", "prompt_tuning", "full", "none")
    }
    assert rates == {"lora": 2e-4, "prompt_tuning": 3e-2, "full": 2e-5, "none": 2e-5}
    assert config_for("sft", {"model_path": "m", "train_file": "t", "learning_rate": 1e-3}).learning_rate == 1e-3
    with pytest.raises(ConfigError) as caught:
        config_for("sft", {"model_path": "m"})
    assert caught.value.field == "train_file"


def test_a_bad_row_names_the_file_row_and_field(tiny_model_dir, tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"prompt": "p", "completion": 3}) + "\n")
    config = config_for("sft", {"model_path": str(tiny_model_dir), "train_file": str(tmp_path / "train.jsonl")})
    with pytest.raises(ValueError, match=r"train.jsonl, row 1, field 'completion': expected a string"):
        sft.run(config, tmp_path / "out", EventWriter(io.StringIO()))


def test_lora_without_merging_writes_only_the_adapter(tiny_model_dir, tmp_path):
    config = sft_config(tiny_model_dir, tmp_path, max_steps=2, merge_adapter=False, eval_file=None)
    result, _ = run_in_process(tmp_path, config, tmp_path / "out")
    assert [o["role"] for o in result["outputs"]] == ["adapter"]
    assert not (tmp_path / "out" / "model").exists()
