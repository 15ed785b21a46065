"""PPO for language models, ours (TRL 1.13+ no longer ships it): Ziegler et al. 2019, with the
details of Huang et al. 2024, "The N Implementation Details of RLHF with PPO".

A step: sample a completion (``num_generations`` of them) for each of ``rollout_batch_size``
prompts from the policy (left-padded batched ``generate``); score the decoded text with the reward;
per-token rewards are ``-kl_coef * (logp - logp_ref)`` plus the score on the last token (optionally
whitened); GAE with ``gamma``/``lam`` against the value head's estimates; whitened advantages; then
``ppo_epochs`` passes of shuffled minibatches minimizing the clipped surrogate plus ``vf_coef`` times
the clipped value loss. The KL controller (fixed or adaptive) updates after every step.

The policy is the model with LoRA adapters; the reference is the same model with the adapters
disabled (with ``peft_method: full``, a frozen copy). The value head is a linear layer on the
policy's last hidden state, trained with it. The model stays in eval mode: no dropout, so the
rollout's log-probabilities are those the first update sees.

Checkpoints (every ``save_steps``) hold the adapter (or model), value head, optimizer, scheduler,
step, KL controller and the per-step history; a run started again resumes from the newest one.
"""

import copy
import json
import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from training.ml.hf_training import CHECKPOINTS, resume_checkpoint
from training.ml.rlhf import common
from training.ml.rlhf.ppo_math import (
    KLController,
    entropy_of,
    gae,
    kl_penalized_rewards,
    logprobs_of,
    masked_mean,
    policy_loss,
    value_loss,
    whiten,
)

STATE_FILE = "ppo_state.json"


@dataclass
class Rollout:
    query: torch.Tensor
    query_mask: torch.Tensor
    response: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


def batch_for_step(n_prompts: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Prompt indices of step ``step`` (1-based): consecutive slices of a seeded shuffle per epoch,
    so a resumed run sees the batches an uninterrupted one would have."""
    indices = []
    for position in range((step - 1) * batch_size, step * batch_size):
        epoch, offset = divmod(position, n_prompts)
        order = list(range(n_prompts))
        random.Random(seed * 100003 + epoch).shuffle(order)
        indices.append(order[offset])
    return indices


class PPOTrainer:
    def __init__(self, config, model, tokenizer, reward, *, ref_model=None, total_steps: int):
        self.config, self.model, self.tokenizer, self.reward = config, model, tokenizer, reward
        self.ref_model = ref_model
        self.peft = ref_model is None  # the reference is the model with its adapters disabled
        hidden = model.config.get_text_config().hidden_size
        self.value_head = torch.nn.Linear(hidden, 1).to(model.device)
        torch.nn.init.normal_(self.value_head.weight, std=1 / math.sqrt(hidden + 1))
        torch.nn.init.zeros_(self.value_head.bias)
        self.params = [p for p in model.parameters() if p.requires_grad] + list(self.value_head.parameters())
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.learning_rate, eps=1e-5, weight_decay=config.weight_decay
        )
        from transformers import get_scheduler

        updates = (
            total_steps * config.epochs * (config.rollout_batch_size * config.generations // config.mini_batch_size)
        )
        self.scheduler = get_scheduler(
            config.lr_scheduler_type,
            self.optimizer,
            num_warmup_steps=int(config.warmup_ratio * updates),
            num_training_steps=updates,
        )
        self.kl = KLController.from_config(config)
        self.step = 0
        self.history: list[dict] = []
        model.eval()

    def rollout(self, prompts: list[common.RLPrompt]) -> tuple[Rollout, dict]:
        config = self.config
        repeated = [p for p in prompts for _ in range(config.generations)]
        query, query_mask, response, mask = common.sample(
            self.model, self.tokenizer, [p.query for p in repeated], config
        )
        texts = common.decode(self.tokenizer, response, mask)
        scores = torch.tensor(self.reward.score([p.text for p in repeated], texts), dtype=torch.float32)
        with torch.no_grad():
            logits, hidden = common.forward(
                self.model, query, query_mask, response, mask, config.temperature, hidden=True
            )
            logprobs = logprobs_of(logits, response)
            entropy = masked_mean(entropy_of(logits), mask.float())
            values = self.value_head(hidden.float()).squeeze(-1)
            del logits, hidden
            with common.reference(self.model, self.ref_model) as ref:
                ref_logits, _ = common.forward(ref, query, query_mask, response, mask, config.temperature)
            ref_logprobs = logprobs_of(ref_logits, response)
        maskf = mask.float().cpu()
        logprobs, ref_logprobs, values = logprobs.cpu(), ref_logprobs.cpu(), values.cpu() * maskf
        rewards, kl = kl_penalized_rewards(scores, logprobs, ref_logprobs, maskf, self.kl.value)
        if config.whiten_rewards:
            rewards = whiten(rewards, maskf, shift_mean=False)
        advantages, returns = gae(rewards, values, maskf, gamma=config.gamma, lam=config.lam)
        advantages = whiten(advantages, maskf)
        lengths = maskf.sum(1)
        sequence_kl = kl.sum(1)
        stats = common.rollout_stats(scores.tolist(), lengths.tolist())
        stats.update(
            {
                "reward/std": float(scores.std()) if len(scores) > 1 else 0.0,
                "objective/kl": float(sequence_kl.mean()),
                "objective/kl_per_token": float(kl.sum() / maskf.sum()),
                "objective/kl_coef": self.kl.value,
                "objective/rlhf_reward": float((scores - self.kl.value * sequence_kl).mean()),
                "entropy": float(entropy),
                "val/mean": float(masked_mean(values, maskf)),
            }
        )
        moved = [t.to(self.model.device) for t in (logprobs, values, advantages, returns)]
        return Rollout(query, query_mask, response, mask, *moved), stats

    def update(self, data: Rollout) -> dict:
        config = self.config
        n = data.response.shape[0]
        generator = torch.Generator().manual_seed(config.seed * 7919 + self.step)
        totals: dict[str, float] = {}
        count = 0
        for _ in range(config.epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, config.mini_batch_size):
                mb = order[start : start + config.mini_batch_size].to(data.response.device)
                mask = data.mask[mb].float()
                sequences = (data.query[mb], data.query_mask[mb], data.response[mb], data.mask[mb])
                logits, hidden = common.forward(self.model, *sequences, config.temperature, hidden=True)
                logprobs = logprobs_of(logits, data.response[mb])
                values = self.value_head(hidden.float()).squeeze(-1)
                pg_loss, clipfrac, approxkl = policy_loss(
                    logprobs, data.logprobs[mb], data.advantages[mb], mask, config.cliprange
                )
                vf_loss, vf_clipfrac = value_loss(
                    values, data.values[mb], data.returns[mb], mask, config.cliprange_value
                )
                loss = pg_loss + config.vf_coef * vf_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                measured = {"loss/policy": pg_loss, "loss/value": vf_loss, "policy/clipfrac": clipfrac}
                measured.update({"policy/approxkl": approxkl, "val/clipfrac": vf_clipfrac})
                for name, value in measured.items():
                    totals[name] = totals.get(name, 0.0) + float(value.detach())
                count += 1
        stats = {name: total / count for name, total in totals.items()}
        stats["learning_rate"] = self.scheduler.get_last_lr()[0]
        return stats

    def train_step(self, prompts: list[common.RLPrompt]) -> dict:
        self.step += 1
        torch.manual_seed(self.config.seed * 1009 + self.step)
        data, stats = self.rollout(prompts)
        stats.update(self.update(data))
        self.kl.update(stats["objective/kl"], n_steps=data.response.shape[0])
        self.history.append({"step": self.step, "reward": stats["reward"], "kl": stats["objective/kl"]})
        return stats

    def save(self, out_dir: Path) -> str:
        """A checkpoint folder, written under a temporary name and renamed when complete."""
        folder = Path(out_dir) / CHECKPOINTS
        name = f"checkpoint-{self.step}"
        partial = folder / f"partial-{name}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        self.model.save_pretrained(partial / ("adapter" if self.peft else "model"))
        torch.save(self.value_head.state_dict(), partial / "value_head.pt")
        torch.save(self.optimizer.state_dict(), partial / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), partial / "scheduler.pt")
        state = {"step": self.step, "kl_controller": self.kl.state_dict(), "history": self.history}
        (partial / STATE_FILE).write_text(json.dumps(state))
        shutil.rmtree(folder / name, ignore_errors=True)
        os.replace(partial, folder / name)
        kept = sorted((p for p in folder.glob("checkpoint-*") if p.name[11:].isdigit()), key=lambda p: int(p.name[11:]))
        for old in kept[: -self.config.save_total_limit] if self.config.save_total_limit else []:
            shutil.rmtree(old, ignore_errors=True)
        return f"{CHECKPOINTS}/{name}"

    def load(self, folder: Path) -> None:
        folder = Path(folder)
        if self.peft:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(self.model, load_file(folder / "adapter" / "adapter_model.safetensors"))
        else:
            from transformers import AutoModelForCausalLM

            saved = AutoModelForCausalLM.from_pretrained(folder / "model", dtype=self.model.dtype)
            self.model.load_state_dict(saved.state_dict())
        self.value_head.load_state_dict(torch.load(folder / "value_head.pt", weights_only=True))
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
        self.scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
        state = json.loads((folder / STATE_FILE).read_text())
        self.step, self.history = state["step"], state["history"]
        self.kl.load_state_dict(state["kl_controller"])


def train(config, out_dir: Path, events, *, device: str, dtype: str) -> dict:
    from training.ml.rewards import load_heldout_reward, load_reward

    model, tokenizer = common.load_policy(config, device=device, dtype=dtype)
    ref_model = None
    if config.peft_method in ("full", "none"):
        ref_model = copy.deepcopy(model).eval().requires_grad_(False)
    reward = load_reward(config, device=device)
    prompts, eval_prompts = common.read_prompt_files(config, tokenizer)
    heldout = load_heldout_reward(config, device=device)
    evaluate = common.Evaluator(tokenizer, eval_prompts, reward, config, heldout=heldout, ref_model=ref_model)
    total = config.max_steps
    if total < 0:
        total = max(1, math.ceil(config.num_train_epochs * len(prompts) / config.rollout_batch_size))
    trainer = PPOTrainer(config, model, tokenizer, reward, ref_model=ref_model, total_steps=total)
    if checkpoint := resume_checkpoint(out_dir, state_file=STATE_FILE):
        trainer.load(Path(checkpoint))
        events.log(f"resumed from {Path(checkpoint).name} (step {trainer.step} of {total})")
    events.log(f"ppo: {len(prompts)} prompts, {total} steps of {config.rollout_batch_size} x {config.generations}")

    evaluations, before = {}, []
    if eval_prompts:
        evaluations["before"], before = common.evaluate_before(evaluate, model, events)
    events.progress(trainer.step, total)
    while trainer.step < total:
        indices = batch_for_step(len(prompts), config.rollout_batch_size, trainer.step + 1, config.seed)
        stats = trainer.train_step([prompts[i] for i in indices])
        if (config.logging_steps and trainer.step % config.logging_steps == 0) or trainer.step == total:
            for name, value in stats.items():
                if math.isfinite(value):
                    events.metric(name, value, step=trainer.step)
        if eval_prompts and config.eval_steps and trainer.step % config.eval_steps == 0 and trainer.step < total:
            for name, value in evaluate(model).items():
                events.metric(name, value, step=trainer.step)
        if config.save_steps and trainer.step % config.save_steps == 0:
            events.checkpoint(trainer.save(out_dir), step=trainer.step)
        events.progress(trainer.step, total)
    if eval_prompts:
        evaluations["after"] = common.evaluate_after(evaluate, model, before, out_dir, events, step=trainer.step)
    outputs = common.save_outputs(model, tokenizer, Path(out_dir), peft=ref_model is None)
    return {"outputs": outputs, "metrics": common.summary(trainer.history, evaluations, trainer.kl.value)}
