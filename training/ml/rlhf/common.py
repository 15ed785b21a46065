"""What the three algorithms share: prompts, the policy and its reference, sampling, the held-out
evaluation, the KL metric and the outputs.

One KL for all algorithms (``objective/kl``): the mean over completions of the summed per-token
``logp_policy - logp_reference`` (sampling temperature applied to both), i.e. the KL of whole
completions, the figure ``kl_target`` is about.
"""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from training.ml import guard
from training.ml.generation import format_prompt, prepare_tokenizer
from training.ml.hf_training import ADAPTER_DIR, MODEL_DIR, output, peft_config, read_jsonl
from training.ml.rewards import correlation, mean_interval
from training.ml.rlhf.ppo_math import logprobs_of


@dataclass(frozen=True)
class RLPrompt:
    prompt_id: object
    text: str  # as in the file (left-truncated to max_prompt_length tokens): what the reward reads
    query: str  # what the policy reads: the chat template's user turn, or the text itself


def read_prompts(path: str, tokenizer, max_prompt_length: int) -> list[RLPrompt]:
    """Prompts of a JSONL file; one longer than ``max_prompt_length`` tokens loses tokens from the left."""
    rows = read_jsonl(path, required=("prompt",))
    prompts = []
    for row in rows:
        text = str(row["prompt"])
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > max_prompt_length:
            text = tokenizer.decode(ids[-max_prompt_length:], skip_special_tokens=True)
        prompts.append(RLPrompt(row.get("prompt_id", len(prompts)), text, format_prompt(tokenizer, text)))
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def read_prompt_files(config, tokenizer) -> tuple[list[RLPrompt], list[RLPrompt]]:
    """The training prompts and the held-out ones (none without ``eval_file``)."""
    train = read_prompts(config.train_file, tokenizer, config.max_prompt_length)
    held_out = read_prompts(config.eval_file, tokenizer, config.max_prompt_length) if config.eval_file else []
    return train, held_out


def load_policy(config, *, device: str, dtype: str, trainable: bool = True):
    """Model and left-padding tokenizer; with ``peft_method: lora`` the model is a PeftModel whose
    disabled adapters are the reference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(config.model_path, **extra)
    prepare_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(config.model_path, dtype=getattr(torch, dtype), **extra)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    lora = peft_config(config, "CAUSAL_LM")
    if lora is not None and trainable:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
    return model.to(device), tokenizer


def stop_token_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = model.generation_config.eos_token_id
    ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    return ids


def sample(model, tokenizer, queries: list[str], config, *, greedy: bool = False):
    """Left-padded batched generation: ``(query_ids, query_mask, response_ids, response_mask)``.

    The response mask covers each completion through its first stop token; the tokens after it are
    replaced by the pad token.
    """
    from transformers import GenerationConfig

    chat = bool(getattr(tokenizer, "chat_template", None))
    # A chat template writes its own special tokens.
    batch = tokenizer(queries, add_special_tokens=not chat, padding=True, padding_side="left", return_tensors="pt")
    batch = batch.to(model.device)
    fields = {"max_new_tokens": config.max_new_tokens, "pad_token_id": tokenizer.pad_token_id, "do_sample": not greedy}
    fields["eos_token_id"] = sorted(stop_token_ids(model, tokenizer))
    if not greedy:
        fields.update(temperature=config.temperature, top_k=config.top_k or 0, top_p=config.top_p or 1.0)
    with torch.no_grad():
        out = model.generate(**batch, generation_config=GenerationConfig(**fields))
    response = out[:, batch["input_ids"].shape[1] :]
    mask = response_mask(response, stop_token_ids(model, tokenizer))
    response = response.masked_fill(mask == 0, tokenizer.pad_token_id)
    return batch["input_ids"], batch["attention_mask"], response, mask


def response_mask(response: torch.Tensor, stops: set[int]) -> torch.Tensor:
    """1 on every token through the first stop token (inclusive), 0 after it."""
    is_stop = torch.zeros_like(response, dtype=torch.bool)
    for token in stops:
        is_stop |= response == token
    before = torch.cumsum(is_stop.long(), dim=1) - is_stop.long()  # stops strictly before each position
    return (before == 0).long()


def decode(tokenizer, response: torch.Tensor, mask: torch.Tensor) -> list[str]:
    return [tokenizer.decode(row[m.bool()], skip_special_tokens=True) for row, m in zip(response, mask, strict=True)]


def forward(model, query, query_mask, response, mask, temperature: float, *, hidden: bool = False):
    """Response-token logits (divided by the temperature) and, if asked, the last hidden states at the
    positions that predict them."""
    ids = torch.cat([query, response], dim=1)
    attention = torch.cat([query_mask, mask], dim=1)
    positions = (attention.cumsum(1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=attention,
        position_ids=positions,
        output_hidden_states=hidden,
        logits_to_keep=response.shape[1] + 1,  # no logits for the prompt (a 49k vocabulary makes them big)
    )
    logits = out.logits[:, :-1] / temperature
    return logits, (out.hidden_states[-1][:, query.shape[1] - 1 : -1] if hidden else None)


@contextlib.contextmanager
def reference(model, ref_model=None):
    """The reference policy: ``ref_model`` when given, else ``model`` with its adapters disabled."""
    if ref_model is not None:
        yield ref_model
    else:
        with model.disable_adapter():
            yield model


def sequence_kl(model, ref_model, query, query_mask, response, mask, temperature: float) -> torch.Tensor:
    """Per-completion summed ``logp - logp_ref``."""
    with torch.no_grad():
        logits, _ = forward(model, query, query_mask, response, mask, temperature)
        logp = logprobs_of(logits, response)
        with reference(model, ref_model) as ref:
            ref_logits, _ = forward(ref, query, query_mask, response, mask, temperature)
        return ((logp - logprobs_of(ref_logits, response)) * mask).sum(1)


class Evaluator:
    """Held-out reward, KL and completion length: one completion per held-out prompt, sampled with a
    fixed seed (the same draws at every evaluation) or greedy. ``heldout`` (a second reward model)
    re-scores the same completions: a policy that hacks the training reward shows a gap there."""

    def __init__(self, tokenizer, prompts: list[RLPrompt], reward, config, *, heldout=None, ref_model=None):
        self.tokenizer, self.prompts, self.reward, self.config = tokenizer, prompts, reward, config
        self.heldout, self.ref_model = heldout, ref_model

    def __call__(self, model, *, use_reference: bool = False, samples: list | None = None) -> dict:
        """Metrics of ``model`` (of its reference with ``use_reference``); ``samples`` collects the
        completions with their scores."""
        config, tokenizer = self.config, self.tokenizer
        was_training = model.training
        model.eval()
        scores, heldout, kls, lengths, rows = [], [], [], [], []
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), contextlib.ExitStack() as stack:
            torch.manual_seed(config.seed)
            policy = stack.enter_context(reference(model, self.ref_model)) if use_reference else model
            for start in range(0, len(self.prompts), config.per_device_eval_batch_size):
                batch = self.prompts[start : start + config.per_device_eval_batch_size]
                query, query_mask, response, mask = sample(
                    policy, tokenizer, [p.query for p in batch], config, greedy=config.eval_greedy
                )
                texts = decode(tokenizer, response, mask)
                scores += self.reward.score([p.text for p in batch], texts)
                if self.heldout is not None:
                    heldout += self.heldout.score([p.text for p in batch], texts)
                lengths += mask.sum(1).tolist()
                if not use_reference:
                    kl = sequence_kl(model, self.ref_model, query, query_mask, response, mask, config.temperature)
                    kls += kl.tolist()
                for prompt, text in zip(batch, texts, strict=True):
                    rows.append({"prompt_id": prompt.prompt_id, "prompt": prompt.text, "completion": text})
        model.train(was_training)
        metrics = {"eval/reward": _mean(scores), "eval/mean_length": _mean(lengths)}
        if heldout:
            metrics["eval/heldout_reward"] = _mean(heldout)
        if not use_reference:
            metrics["eval/kl"] = _mean(kls)
        if samples is not None:
            samples += [{**row, "reward": score} for row, score in zip(rows, scores, strict=True)]
            for row, score in zip(samples[-len(rows) :] if rows else [], heldout, strict=False):
                row["heldout_reward"] = score  # the second reward model's view of the same completion
        return metrics


SAMPLES_FILE = guard.SAMPLES_FILE


def evaluate_before(evaluate, model, events) -> tuple[dict, list[dict]]:
    """The reference's held-out metrics (streamed at step 0) and its completions, kept so the final
    evaluation can be compared with them prompt by prompt."""
    samples: list[dict] = []
    metrics = evaluate(model, use_reference=True, samples=samples)
    for name, value in metrics.items():
        events.metric(name, value, step=0)
    return metrics, samples


def evaluate_after(evaluate, model, before: list[dict], out_dir: Path, events, *, step: int) -> dict:
    """The final held-out metrics, with the paired gain over ``before`` (the same prompts and seed);
    writes the completions, each beside the reference's, to ``out/eval_samples.jsonl``."""
    samples: list[dict] = []
    metrics = evaluate(model, samples=samples)
    if before:
        metrics.update(paired_gain([row["reward"] for row in before], [row["reward"] for row in samples]))
        for row, old in zip(samples, before, strict=True):
            row.update(reward_before=old["reward"], completion_before=old["completion"])
            if "heldout_reward" in old:
                row["heldout_reward_before"] = old["heldout_reward"]
    for name, value in metrics.items():
        events.metric(name, value, step=step)
    write_samples(out_dir, samples, events)
    return metrics


def paired_gain(before: list[float], after: list[float]) -> dict:
    """Mean held-out reward gain, prompt by prompt, with a 95% interval (normal approximation): the
    rise is beyond sampling noise when the interval lies above 0. Pairing removes the prompt-to-prompt
    spread, which is far larger than the gain on a small held-out set."""
    mean, half = mean_interval([a - b for b, a in zip(before, after, strict=True)])
    if half is None:
        return {"eval/reward_gain": mean}
    return {"eval/reward_gain": mean, "eval/reward_gain_low": mean - half, "eval/reward_gain_high": mean + half}


def write_samples(out_dir: Path, samples: list[dict], events) -> None:
    """The final evaluation's completions, best-scored first: the best and the worst can go back to
    labelers as a comparison (does the reward model agree with people at the extremes?)."""
    rows = sorted(samples, key=lambda row: row["reward"], reverse=True)
    path = Path(out_dir) / SAMPLES_FILE
    path.write_text("".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))
    events.artifact("rlhf_samples", SAMPLES_FILE, count=len(rows))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def rollout_stats(scores: list[float], lengths: list[float]) -> dict:
    """Reward and length of a batch, and their correlation (reward hacking via length shows here)."""
    return {
        "reward": _mean(scores),
        "completions/mean_length": _mean(lengths),
        "reward/length_corr": correlation(scores, lengths),
    }


def save_outputs(model, tokenizer, out_dir: Path, *, peft: bool) -> list[dict]:
    """``out/adapter`` (LoRA) and the merged (or full) causal LM in ``out/model``."""
    outputs = []
    if peft:
        model.save_pretrained(out_dir / ADAPTER_DIR)
        tokenizer.save_pretrained(out_dir / ADAPTER_DIR)
        outputs.append(output(ADAPTER_DIR, "causal-lm", "adapter"))
        model = model.merge_and_unload()
    model.save_pretrained(out_dir / MODEL_DIR)
    tokenizer.save_pretrained(out_dir / MODEL_DIR)
    outputs.insert(0, output(MODEL_DIR, "causal-lm", "merged" if peft else "full"))
    return outputs


def summary(history: list[dict], evaluations: dict, kl_coef: float) -> dict:
    """A run's result metrics: reward and KL at the first and last step, the held-out reward before and
    after (and the paired gain with its 95% interval), the final KL coefficient."""
    metrics: dict = {"steps": history[-1]["step"] if history else 0, "kl_coef_final": kl_coef}
    if history:
        metrics.update(
            reward_first=history[0]["reward"],
            reward_final=history[-1]["reward"],
            kl_final=history[-1]["kl"],
        )
    for when in ("before", "after"):
        if when in evaluations:
            metrics[f"eval_reward_{when}"] = evaluations[when]["eval/reward"]
            metrics[f"eval_length_{when}"] = evaluations[when]["eval/mean_length"]
            if "eval/heldout_reward" in evaluations[when]:
                metrics[f"eval_heldout_reward_{when}"] = evaluations[when]["eval/heldout_reward"]
    if "after" in evaluations:
        after = evaluations["after"]
        metrics["eval_kl_after"] = after["eval/kl"]
        for name in ("reward_gain", "reward_gain_low", "reward_gain_high"):  # scalars: the registry keeps them
            if f"eval/{name}" in after:
                metrics[f"eval_{name}"] = after[f"eval/{name}"]
    return metrics
