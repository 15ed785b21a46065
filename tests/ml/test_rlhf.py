"""Run kind ``rlhf``: PPO (ours), RLOO and GRPO (TRL) on a tiny Llama against a rule-based reward
whose truth is known, the KL penalty always on; GAE and the KL controller by hand.

The reward is ``char_fraction: ``: the fraction of a completion's characters that are spaces. A
random tiny model samples tokens almost uniformly (entropy ~ log 512), so about a fifth of them hold
a space; a policy that learns the reward writes mostly space-bearing tokens. LoRA on the inner
layers cannot move such a model's output distribution much (its normalized last hidden state only
rotates), so PPO's LoRA also adapts ``lm_head``; TRL refuses an adapter there (it reads
``lm_head.weight`` directly), so its learning test trains every weight.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.ml.configs import ConfigError, config_for
from training.ml.events import EventWriter
from training.ml.rewards import correlation, parse_reward_function, reward_text
from training.ml.rlhf.ppo_math import (
    KLController,
    adaptive_kl_coef,
    gae,
    kl_penalized_rewards,
    policy_loss,
    value_loss,
    whiten,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["with statement", "class definition", "for loop", "import system", "exceptions", "lambda",
          "generators", "decorators", "slicing", "string methods", "dictionaries", "coroutines"]  # fmt: skip
LORA_WITH_HEAD = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]


class ListEvents(EventWriter):
    def __init__(self):
        self.rows: list[dict] = []

    def emit(self, type_, **fields):
        self.rows.append({"type": type_, **fields})


def metrics_by_step(rows: list[dict], name: str) -> dict[int, float]:
    return {r["step"]: r["value"] for r in rows if r["type"] == "metric" and r["name"] == name}


def write_prompts(folder: Path) -> tuple[Path, Path]:
    train, held_out = folder / "train.jsonl", folder / "eval.jsonl"
    rows = [{"prompt_id": i, "prompt": f"Explain {TOPICS[i % 12]} number {i}:"} for i in range(24)]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [{"prompt_id": 100 + i, "prompt": f"Explain {TOPICS[(5 * i + 3) % 12]} number {30 + i}:"} for i in range(8)]
    held_out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return train, held_out


def rlhf_config(model_dir: Path, folder: Path, **overrides):
    train, held_out = write_prompts(folder)
    return config_for(
        "rlhf",
        {
            "model_path": str(model_dir),
            "train_file": str(train),
            "eval_file": str(held_out),
            "reward_function": "char_fraction: ",
            "max_new_tokens": 6,
            "learning_rate": 0.01,
            "lr_scheduler_type": "constant",
            "save_steps": 0,
            **overrides,
        },
    )


def run(config, out: Path) -> tuple[dict, list[dict]]:
    from training.ml.rlhf import run as rlhf_run

    events = ListEvents()
    return rlhf_run(config, out, events), events.rows


# --- the arithmetic, by hand ---


def test_gae_by_hand():
    rewards, values = torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.4, 0.3]])
    advantages, returns = gae(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.8)
    # delta2 = 1 - 0.3 = 0.7; delta1 = 0.9 * 0.3 - 0.4 = -0.13; delta0 = 0.9 * 0.4 - 0.5 = -0.14
    # A2 = 0.7; A1 = -0.13 + 0.72 * 0.7 = 0.374; A0 = -0.14 + 0.72 * 0.374 = 0.12928
    assert advantages[0].tolist() == pytest.approx([0.12928, 0.374, 0.7])
    assert returns[0].tolist() == pytest.approx([0.62928, 0.774, 1.0])

    # The padding after a completion's end counts for nothing, whatever its value estimate.
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    advantages, returns = gae(torch.tensor([[0.0, 2.0, 0.0]]), torch.tensor([[0.5, 1.0, 9.0]]), mask, gamma=1, lam=1)
    assert advantages[0].tolist() == pytest.approx([1.5, 1.0, 0.0])
    assert returns[0].tolist() == pytest.approx([2.0, 2.0, 0.0])


def test_kl_penalty_clipped_losses_and_whitening_by_hand():
    logp, ref = torch.tensor([[-1.0, -2.0, -3.0]]), torch.tensor([[-1.5, -2.0, -1.0]])
    rewards, kl = kl_penalized_rewards(torch.tensor([4.0]), logp, ref, torch.tensor([[1.0, 1.0, 0.0]]), 0.1)
    assert kl[0].tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert rewards[0].tolist() == pytest.approx([-0.05, 4.0, 0.0])  # the score lands on the last real token

    # ratio e^0.5 = 1.65 with advantage 1 is clipped at 1.2; with advantage -1 the unclipped term wins.
    loss, clipfrac, approxkl = policy_loss(
        torch.tensor([[0.5, 0.5]]), torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]), torch.ones(1, 2), 0.2
    )
    assert loss.item() == pytest.approx((-1.2 + math.exp(0.5)) / 2)
    assert clipfrac.item() == pytest.approx(0.5) and approxkl.item() == pytest.approx(0.125)
    loss, vf_clipfrac = value_loss(
        torch.tensor([[2.0]]), torch.tensor([[1.0]]), torch.tensor([[3.0]]), torch.ones(1, 1), 0.2
    )
    assert loss.item() == pytest.approx(0.5 * (3.0 - 1.2) ** 2) and vf_clipfrac.item() == 1.0

    white = whiten(torch.tensor([[1.0, 2.0, 3.0, 99.0]]), torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    assert white[0].tolist() == pytest.approx([-1.0, 0.0, 1.0, 0.0], abs=1e-6)


def test_adaptive_kl_controller_by_hand():
    # Ziegler et al.: error clipped to +-0.2, scaled by the batch's share of the horizon.
    assert adaptive_kl_coef(0.1, 9.0, target=6.0, horizon=100, n_steps=10) == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    assert adaptive_kl_coef(0.1, 5.4, target=6.0, horizon=100, n_steps=10) == pytest.approx(0.1 * (1 - 0.1 * 0.1))
    assert adaptive_kl_coef(0.1, 0.0, target=6.0, horizon=10, n_steps=10) == pytest.approx(0.08)
    adaptive = KLController(0.1, adaptive=True, target=6.0, horizon=100)
    assert adaptive.update(9.0, n_steps=10) == pytest.approx(0.102)
    assert adaptive.update(9.0, n_steps=10) == pytest.approx(0.102 * 1.02)
    fixed = KLController(0.1)
    assert fixed.update(100.0, n_steps=10) == 0.1


def test_paired_gain_by_hand():
    from training.ml.rlhf.common import paired_gain

    # Prompt-to-prompt spread (0 vs 10) does not widen the interval: only the gains' spread does.
    gain = paired_gain([0.0, 10.0, 0.0, 10.0], [1.0, 11.0, 2.0, 12.0])
    half = 1.96 * math.sqrt(1 / 3) / 2  # gains 1, 1, 2, 2: sample sd sqrt(1/3), n 4
    assert gain == pytest.approx(
        {"eval/reward_gain": 1.5, "eval/reward_gain_low": 1.5 - half, "eval/reward_gain_high": 1.5 + half}
    )
    assert paired_gain([1.0], [3.0]) == {"eval/reward_gain": 2.0}


def test_rule_rewards_score_text_as_named():
    completions = ["one two three", "", "Please, please stop", "a b"]
    assert parse_reward_function("length:2").score([""] * 4, completions) == pytest.approx([-0.5, -1.0, -0.5, 0.0])
    assert parse_reward_function("contains:please").score([""] * 4, completions) == [0, 0, 1, 0]
    assert parse_reward_function("keyword_count:please").score([""] * 4, completions) == [0, 0, 2, 0]
    assert parse_reward_function("char_fraction: ").score([""] * 4, completions) == pytest.approx(
        [2 / 13, 0.0, 2 / 19, 1 / 3]
    )
    assert reward_text("Human: hi\n\nAssistant:", "Hello") == "Human: hi\n\nAssistant: Hello"
    assert reward_text("Q: ", "A") == "Q: A"
    assert correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0) and correlation([1, 1], [1, 2]) == 0.0


def test_a_reward_with_stop_strings_reads_each_completion_up_to_the_first_of_them():
    from training.ml.rewards import load_heldout_reward, load_reward

    base = {"model_path": "m", "train_file": "p.jsonl", "reward_function": "length:3"}
    completions = ["a b c\n\nHuman: d e f", "a b c", "Human: a b c", "x\nUser: y Human: z"]
    unstopped = load_reward(config_for("rlhf", base))  # -|words - 3| / 3
    assert unstopped.score([""] * 4, completions) == pytest.approx([-4 / 3, 0, -1 / 3, -2 / 3])
    stopped = load_reward(config_for("rlhf", {**base, "reward_stop_strings": ["Human:", "User:"]}))
    assert stopped.score([""] * 4, completions) == pytest.approx([0, 0, -1, -2 / 3])
    assert load_heldout_reward(config_for("rlhf", {**base, "reward_stop_strings": ["Human:"]})) is None


def test_the_config_keeps_the_kl_penalty_and_names_bad_fields(tmp_path):
    base = {"model_path": "m", "train_file": "p.jsonl", "reward_function": "length:20"}
    for algorithm in ("ppo", "rloo", "grpo"):
        with pytest.raises(ConfigError) as error:
            config_for("rlhf", {**base, "algorithm": algorithm, "kl_coef": 0})
        assert error.value.field == "kl_coef" and "GRPO default of beta = 0" in error.value.message
    bad = [
        ({"reward_model_path": "rm"}, "reward_model_path"),
        ({"reward_function": "sparkle:3"}, "reward_function"),
        ({"reward_function": "length:x"}, "reward_function"),
        ({"algorithm": "rloo", "num_generations": 1}, "num_generations"),
        ({"rollout_batch_size": 8, "mini_batch_size": 3}, "mini_batch_size"),
        ({"algorithm": "a2c"}, "algorithm"),
        ({"kl_controller": "adaptive", "kl_target": 0}, "kl_target"),
        ({"peft_method": "prompt_tuning"}, "peft_method"),
        ({"gradient_accumulation_steps": 2}, "gradient_accumulation_steps"),
        ({"train_file": ""}, "train_file"),
        ({"reward_stop_strings": "Human:"}, "reward_stop_strings"),
        ({"reward_stop_strings": ["Human:", ""]}, "reward_stop_strings[1]"),
    ]
    for overrides, field in bad:
        with pytest.raises(ConfigError) as error:
            config_for("rlhf", {**base, **overrides})
        assert error.value.field == field, overrides
    config = config_for("rlhf", {**base, "algorithm": "grpo"})
    assert (config.generations, config.epochs) == (4, 1)


# --- training: reward rises at bounded KL ---


def test_ppo_raises_the_known_reward_while_the_adaptive_controller_holds_kl_near_its_target(tmp_path, tiny_model_dir):
    target = 4.0
    config = rlhf_config(
        tiny_model_dir, tmp_path, algorithm="ppo", lora_target_modules=LORA_WITH_HEAD, max_steps=40,
        learning_rate=0.005, rollout_batch_size=16, mini_batch_size=8, kl_coef=0.2, kl_controller="adaptive",
        kl_target=target, kl_horizon=50,
    )  # fmt: skip
    result, rows = run(config, tmp_path / "out")
    reward, kl = metrics_by_step(rows, "reward"), metrics_by_step(rows, "objective/kl")
    assert sorted(reward) == list(range(1, 41))
    first, last = [reward[s] for s in range(1, 6)], [reward[s] for s in range(36, 41)]
    assert sum(last) / 5 > sum(first) / 5 + 0.25, reward  # spaces: ~0.2 at first
    # Ziegler's controller lowers the coefficient while the KL is under the target (it starts at 0)
    # and raises it once above: the KL overshoots for a while, then settles around the target.
    assert sum(kl[s] for s in range(31, 41)) / 10 < 1.5 * target, kl
    coef = metrics_by_step(rows, "objective/kl_coef")
    assert coef[1] == 0.2
    assert all((coef[s + 1] > coef[s]) == (kl[s] > target) for s in range(1, 40))
    for name in ("entropy", "policy/clipfrac", "loss/value", "loss/policy", "reward/length_corr"):
        assert len(metrics_by_step(rows, name)) == 40, name
    metrics = result["metrics"]
    assert metrics["eval_reward_after"] > metrics["eval_reward_before"] + 0.15
    assert metrics["eval_kl_after"] < 2 * target
    assert [o["dir"] for o in result["outputs"]] == ["model", "adapter"]


def test_rloo_raises_the_known_reward_at_kl_under_the_target(tmp_path, tiny_model_dir):
    target = 6.0
    config = rlhf_config(
        tiny_model_dir, tmp_path, algorithm="rloo", peft_method="full", max_steps=30, rollout_batch_size=4,
        num_generations=4, mini_batch_size=16, kl_coef=0.3, kl_controller="adaptive", kl_target=target,
        kl_horizon=50,
    )  # fmt: skip
    result, rows = run(config, tmp_path / "out")
    reward, kl = metrics_by_step(rows, "reward"), metrics_by_step(rows, "objective/kl")
    assert sorted(reward) == list(range(1, 31))
    first, last = [reward[s] for s in range(1, 6)], [reward[s] for s in range(26, 31)]
    assert sum(last) / 5 > sum(first) / 5 + 0.2, reward
    assert max(kl.values()) < target, kl
    coef = metrics_by_step(rows, "objective/kl_coef")
    assert coef[1] == 0.3 and coef[30] < 0.3  # under the target all along: the controller relaxed it
    assert result["metrics"]["eval_reward_after"] > result["metrics"]["eval_reward_before"] + 0.15
    assert [o["role"] for o in result["outputs"]] == ["full"]


# --- resume, and the command line ---


def test_ppo_resumes_from_its_newest_checkpoint_as_if_never_stopped(tmp_path, tiny_model_dir):
    common = {"algorithm": "ppo", "lora_target_modules": LORA_WITH_HEAD, "rollout_batch_size": 8,
              "mini_batch_size": 4, "save_steps": 2, "eval_file": None}  # fmt: skip
    _, straight = run(rlhf_config(tiny_model_dir, tmp_path, max_steps=4, **common), tmp_path / "straight")
    _, first = run(rlhf_config(tiny_model_dir, tmp_path, max_steps=3, **common), tmp_path / "resumed")
    assert [r["path"] for r in first if r["type"] == "checkpoint"] == ["checkpoints/checkpoint-2"]
    _, second = run(rlhf_config(tiny_model_dir, tmp_path, max_steps=4, **common), tmp_path / "resumed")
    assert any("resumed from checkpoint-2 (step 2 of 4)" in r.get("message", "") for r in second)
    assert sorted(metrics_by_step(second, "reward")) == [3, 4]
    for name in ("reward", "objective/kl", "loss/policy"):
        assert metrics_by_step(second, name) == pytest.approx(
            {s: v for s, v in metrics_by_step(straight, name).items() if s > 2}, rel=1e-4, abs=1e-6
        ), name
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-4" / "value_head.pt").exists()


def cli(config: Path, out: Path) -> tuple[int, list[dict]]:
    process = subprocess.run(
        [sys.executable, "-m", "training.ml", "rlhf", "--config", str(config), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    events = [json.loads(line) for line in process.stdout.splitlines()]  # every stdout line is an event
    return process.returncode, events


def test_grpo_through_the_command_line_with_a_reward_model_logs_kl_saves_loadable_models_and_resumes(
    tmp_path, tiny_model_dir, tiny_reward_model, tiny_tokenizer
):
    write_prompts(tmp_path)
    reward_model = tmp_path / "reward-model"  # a sequence classifier with its own tokenizer
    tiny_reward_model.save_pretrained(reward_model)
    tiny_tokenizer.save_pretrained(reward_model)
    body = {"model_path": str(tiny_model_dir), "train_file": "train.jsonl", "eval_file": "eval.jsonl",
            "algorithm": "grpo", "reward_model_path": str(reward_model), "eval_reward_model_path": str(reward_model),
            "kl_coef": 0.1, "max_new_tokens": 6, "rollout_batch_size": 4, "num_generations": 4,
            "mini_batch_size": 8, "max_steps": 2, "save_steps": 1, "learning_rate": 0.01}  # fmt: skip
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"run_id": 1, "kind": "rlhf", "config": {**body, "kl_coef": 0}, "inputs": {}}))
    code, events = cli(path, tmp_path / "out")
    assert code == 2 and events[-1]["message"].startswith("bad config: kl_coef: must be > 0")

    path.write_text(json.dumps({"run_id": 1, "kind": "rlhf", "config": body, "inputs": {}}))
    code, events = cli(path, tmp_path / "out")
    assert code == 0, events[-3:]
    kl = metrics_by_step(events, "objective/kl")
    # The sampled-token estimator, as ppo and rloo report (TRL's k3 beside it); step 1 samples from
    # the reference (LoRA's B starts at zero), so both are exactly 0 there.
    assert sorted(kl) == [1, 2] and kl[1] == 0 and kl[2] != 0
    k3 = metrics_by_step(events, "objective/kl_k3_per_token")
    per_token = kl[2] / metrics_by_step(events, "completions/mean_length")[2]
    assert k3[1] == 0 and k3[2] > 0 and k3[2] != pytest.approx(per_token)
    assert set(metrics_by_step(events, "objective/kl_coef").values()) == {0.1}
    assert sorted(metrics_by_step(events, "eval/reward")) == [0, 2]
    # The held-out reward model here is the training one: it re-scores the same completions alike.
    assert metrics_by_step(events, "eval/heldout_reward") == pytest.approx(metrics_by_step(events, "eval/reward"))
    samples = [json.loads(line) for line in (tmp_path / "out" / "eval_samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and [r["reward"] for r in samples] == sorted((r["reward"] for r in samples), reverse=True)
    # Each held-out completion sits beside the reference's; the run's gain is their paired mean.
    gain = sum(r["reward"] - r["reward_before"] for r in samples) / 8
    assert all(isinstance(r["completion_before"], str) for r in samples)
    assert metrics_by_step(events, "eval/reward_gain") == {2: pytest.approx(gain)}
    assert metrics_by_step(events, "eval/reward")[2] - metrics_by_step(events, "eval/reward")[0] == pytest.approx(gain)
    assert any(e["type"] == "artifact" and e["kind"] == "rlhf_samples" for e in events)
    assert [e["path"] for e in events if e["type"] == "checkpoint"] == [
        "checkpoints/checkpoint-1",
        "checkpoints/checkpoint-2",
    ]
    result = events[-1]
    assert result["type"] == "result" and result["metrics"]["steps"] == 2
    low, high = result["metrics"]["eval_reward_gain_low"], result["metrics"]["eval_reward_gain_high"]
    assert result["metrics"]["eval_reward_gain"] == pytest.approx(gain) and low < gain < high
    assert {(o["dir"], o["role"]) for o in result["outputs"]} == {("model", "merged"), ("adapter", "adapter")}

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model")
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "out" / "adapter"
    )
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
        assert not torch.allclose(merged(ids).logits, base, atol=1e-4)  # the adapters trained

    path.write_text(json.dumps({"run_id": 1, "kind": "rlhf", "config": {**body, "max_steps": 3}, "inputs": {}}))
    code, events = cli(path, tmp_path / "out")
    assert code == 0, events[-3:]
    assert any(e["type"] == "log" and "resuming from checkpoint-2" in e["message"] for e in events)
    assert sorted(metrics_by_step(events, "objective/kl")) == [3]
