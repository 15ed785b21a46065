"""The ``evaluate`` run kind: a table of metrics, prompt variants x generation configs (DESIGN.md,
The ML: Metrics). Pure ML: no Django. Config: :class:`training.ml.evaluate_config.EvaluateConfig`.

For each set (``data_file``, then ``offtask_file`` if given), each prompt variant and each generation
config, it generates one completion per row with the generation module's ``generate_batch`` (the
same prompt formatting, truncation and seeding as the ``generate`` kind; greedy by default) and
scores the completions against the references:

- ``rouge``: ROUGE-1/2/L/Lsum F-measures (stemmed), the mean over rows;
- ``bleu``: corpus BLEU by sacrebleu, in [0, 1];
- ``reward``: the mean score of the reward model on the decoded prompt + completion text
  (``training.ml.rewards.RewardModelScorer``, the scorer RLHF uses);
- ``kl``: how far the evaluated model moved from its base, on its own completions. Both models read
  the same tokens (the prompt as generation saw it, then the completion re-tokenized from its text,
  with the eos token when it stopped there). ``kl``: the mean over rows of the sum over completion tokens of
  ``log p_model(y_t) - log p_base(y_t)`` (the usual sample estimate of the sequence KL, as in RLHF);
  ``kl_per_token``: the same sum over all rows divided by their completion tokens;
  ``kl_full_per_token``: the exact KL between the two next-token distributions (over the whole
  vocabulary), averaged over completion tokens: never negative, meaningful under greedy decoding.
  All three are 0 when the model is its base.

Outputs in ``out_dir``:
- ``predictions.jsonl``: one line per set x variant x generation x row: ``{"set", "variant",
  "generation", "id", "prediction", "reference", "tokens", "finish_reason", "prompt_tokens",
  "truncated"}`` plus per-row ``rouge1``.. ``rougeLsum``, ``reward``, ``kl`` when computed;
- ``metrics.json``: ``{"table": [...], "summary": {...}}``; a table row is ``{"set", "variant",
  "generation", "rows", "mean_tokens", "rouge1", ..., "bleu", "reward", "kl", ...}``.

Events: ``metric`` events named ``METRIC/VARIANT/GENERATION`` (``offtask/METRIC/...`` for the
off-task set), ``progress`` over all generation batches, ``artifact`` events for both files.
The result: ``{"metrics": summary, "table": [...], "outputs": []}`` (nothing is registered). The
summary holds the first row's values (the main set's first variant and generation), the best row
by ROUGE-L (``best_variant``, ``best_generation``, ``best_rougeL``) and the off-task set's first
row as ``offtask_<metric>``.
"""

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.evaluate_config import EvaluateConfig
from training.ml.events import EventWriter
from training.ml.generation import Prompt, format_prompt, generate_batch, load, prompt_budget
from training.ml.hf_training import read_jsonl, write_json
from training.ml.metrics import ROUGE_TYPES, bleu, load_metric

PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"
TABLE_METRICS = (*ROUGE_TYPES, "bleu", "reward", "kl", "kl_per_token", "kl_full_per_token")


@dataclass(frozen=True)
class Row:
    id: Any
    reference: str | list[str]
    prompts: dict[str, str]


def read_rows(path: str, *, limit: int | None = None) -> list[Row]:
    """Rows of a ``{id, reference, prompts}`` file; a bad line raises ValueError naming it."""
    rows = []
    for number, raw in enumerate(read_jsonl(path, required=("reference", "prompts")), start=1):
        reference, prompts = raw["reference"], raw["prompts"]
        several = isinstance(reference, list) and all(isinstance(r, str) for r in reference)
        if not (isinstance(reference, str) or several):
            raise ValueError(f"{path}, row {number}, field 'reference': expected a string or a list of strings")
        if not isinstance(prompts, dict) or not prompts or not all(isinstance(p, str) for p in prompts.values()):
            raise ValueError(f"{path}, row {number}, field 'prompts': expected an object of variant name -> prompt")
        rows.append(Row(id=raw.get("id", number - 1), reference=reference, prompts=prompts))
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def variants_of(rows: list[Row], wanted: list[str], path: str) -> list[str]:
    names = list(wanted) or list(rows[0].prompts)
    for number, row in enumerate(rows, start=1):
        missing = [n for n in names if n not in row.prompts]
        if missing:
            raise ValueError(f"{path}, row {number}, field 'prompts': no variant {missing[0]!r}")
    return names


def load_model(config: EvaluateConfig):
    """The evaluated model (with its adapter, if any) and a left-padding tokenizer for generation."""
    return load(config.model_path, device=config.device, dtype=config.dtype, adapter_path=config.adapter_path)


def _completion_ids(tokenizer, completion: dict) -> list[int]:
    ids = tokenizer(completion["text"], add_special_tokens=False)["input_ids"]
    if completion["finish_reason"] == "eos" and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


def _kept_log_probs(model, ids, mask, keep: int, *, positions: bool):
    """Log-softmax over the vocabulary at the last ``keep`` positions."""
    import torch

    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    if positions:
        kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    try:
        logits = model(**kwargs, logits_to_keep=keep).logits
    except TypeError:  # a model without logits_to_keep
        logits = model(**kwargs).logits
    return torch.log_softmax(logits[:, -keep:].float(), dim=-1)


def kl_to_base(model, base, tokenizer, prompts: list[str], completions: list[list[int]], *, max_prompt_tokens: int):
    """Per row: (sum of log-ratio over completion tokens, exact per-position KL summed, tokens).

    ``base`` None: the model with its adapter disabled. Rows are left-padded as one sequence each
    (prompt then completion), so every completion ends at the right edge and only the last
    positions' logits are kept.
    """
    import torch

    chat = bool(getattr(tokenizer, "chat_template", None))
    prompt_ids = [
        tokenizer(format_prompt(tokenizer, p), add_special_tokens=not chat)["input_ids"][-max_prompt_tokens:]
        for p in prompts
    ]
    results = []
    longest = max((len(c) for c in completions), default=0)
    if longest == 0:
        return [(0.0, 0.0, 0)] * len(prompts)
    sequences = [p + c for p, c in zip(prompt_ids, completions, strict=True)]
    width = max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=model.device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=model.device)
    keep = longest + 1  # position t's logits predict token t + 1
    prompt_learning = bool(getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False))
    with torch.inference_mode():
        log_p = _kept_log_probs(model, ids, mask, keep, positions=not prompt_learning)[:, :-1]
        if base is None:
            with model.disable_adapter():
                log_q = _kept_log_probs(model, ids, mask, keep, positions=True)[:, :-1]
        else:
            if base.config.vocab_size != model.config.vocab_size:
                raise ValueError(
                    f"the base model's vocabulary ({base.config.vocab_size}) is not the evaluated model's "
                    f"({model.config.vocab_size}); KL needs the same tokenizer"
                )
            log_q = _kept_log_probs(base, ids.to(base.device), mask.to(base.device), keep, positions=True)[:, :-1]
            log_q = log_q.to(log_p.device)
        size = min(log_p.shape[-1], log_q.shape[-1])  # padded embedding matrices may differ in width
        log_p, log_q = log_p[..., :size], log_q[..., :size]
        full = (log_p.exp() * (log_p - log_q)).sum(-1)  # [rows, longest]
        for i, completion in enumerate(completions):
            n = len(completion)
            if n == 0:
                results.append((0.0, 0.0, 0))
                continue
            span = slice(longest - n, longest)
            targets = torch.tensor(completion, device=log_p.device).unsqueeze(-1)
            ratio = (log_p[i, span].gather(-1, targets) - log_q[i, span].gather(-1, targets)).sum()
            results.append((float(ratio), float(full[i, span].sum()), n))
    return results


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def run(config: EvaluateConfig, out_dir: Path, events: EventWriter) -> dict:
    import torch

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric_names = config.metric_names()
    generations = config.generation_configs()
    sets = [("main", config.data_file)] + ([("offtask", config.offtask_file)] if config.offtask_file else [])
    data = {}
    for set_name, path in sets:
        rows = read_rows(path, limit=config.limit)
        data[set_name] = (rows, variants_of(rows, config.variants, path))

    started = time.monotonic()
    model, tokenizer = load_model(config)
    loaded = [f"{config.model_path}{f' + adapter {config.adapter_path}' if config.adapter_path else ''}"]
    base = None
    if "kl" in metric_names and config.base_model_path:
        base, _ = load(config.base_model_path, device=config.device, dtype=config.dtype)
        loaded.append(f"base {config.base_model_path}")
    reward = None
    if "reward" in metric_names:
        from training.ml.rewards import RewardModelScorer

        reward = RewardModelScorer(
            config.reward_model_path,
            device=str(model.device),
            max_length=config.reward_max_length,
            batch_size=config.reward_batch_size,
        )
        loaded.append(f"reward model {config.reward_model_path}")
    if "rouge" in metric_names:
        load_metric("rouge")
    if "bleu" in metric_names:
        load_metric("bleu")
    events.log(f"loaded {', '.join(loaded)} on {model.device} in {time.monotonic() - started:.1f} s")

    total = sum(math.ceil(len(rows) / config.batch_size) * len(variants) for rows, variants in data.values())
    progress = _Progress(events, total * len(generations))
    table: list[dict] = []
    scorers = _Scorers(model, tokenizer, base, reward, metric_names)
    with open(out_dir / PREDICTIONS_FILE, "w", encoding="utf-8") as predictions:
        for set_name, (rows, variants) in data.items():
            for variant in variants:
                for gen_name, gen_config in generations:
                    entry, lines = _evaluate_pass(scorers, rows, variant, gen_config, config.batch_size, progress)
                    entry = {"set": set_name, "variant": variant, "generation": gen_name, **entry}
                    for line in lines:
                        record = {"set": set_name, "variant": variant, "generation": gen_name, **line}
                        predictions.write(json.dumps(record, ensure_ascii=False) + "\n")
                    predictions.flush()
                    table.append(entry)
                    prefix = "offtask/" if set_name == "offtask" else ""
                    for name in TABLE_METRICS:
                        if name in entry:
                            events.metric(f"{prefix}{name}/{variant}/{gen_name}", entry[name])
                    events.log(
                        f"{set_name} {variant} / {gen_name}: "
                        + ", ".join(f"{k} {entry[k]:.4f}" for k in TABLE_METRICS if k in entry)
                        + f" ({entry['seconds']} s)"
                    )
    events.artifact("predictions", PREDICTIONS_FILE, count=sum(t["rows"] for t in table))
    summary = _summary(table)
    write_json(out_dir / METRICS_FILE, {"table": table, "summary": summary, "metrics": metric_names})
    events.artifact("metrics", METRICS_FILE, rows=len(table))
    return {"metrics": summary, "table": table, "outputs": []}


@dataclass
class _Progress:
    events: EventWriter
    total: int
    done: int = 0

    def __post_init__(self):
        self.events.progress(self.done, self.total)

    def step(self) -> None:
        self.done += 1
        self.events.progress(self.done, self.total)


@dataclass
class _Scorers:
    model: Any
    tokenizer: Any
    base: Any  # None: the model with its adapter disabled (when kl is asked for)
    reward: Any
    metric_names: list[str]


def _evaluate_pass(scorers: _Scorers, rows: list[Row], variant: str, gen_config, batch_size: int, progress):
    """One variant x generation config over a set: its table entry and its prediction lines."""
    started = time.monotonic()
    budget = prompt_budget(scorers.model, gen_config)
    lines: list[dict] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        prompts = [Prompt(index=start + i, prompt_id=r.id, text=r.prompts[variant]) for i, r in enumerate(batch)]
        generated, _ = generate_batch(scorers.model, scorers.tokenizer, prompts, gen_config, max_prompt_tokens=budget)
        scores = _batch_scores(scorers, prompts, generated, budget)
        for row, line, extra in zip(batch, generated, scores, strict=True):
            completion = line["completions"][0]
            lines.append(
                {
                    "id": row.id,
                    "prediction": completion["text"],
                    "reference": row.reference,
                    "tokens": completion["tokens"],
                    "finish_reason": completion["finish_reason"],
                    "prompt_tokens": line["prompt_tokens"],
                    "truncated": line["truncated"],
                    **extra,
                }
            )
        progress.step()
    entry = _table_entry(lines, scorers.metric_names)
    entry["seconds"] = round(time.monotonic() - started, 1)
    return entry, lines


def _batch_scores(scorers: _Scorers, prompts: list[Prompt], generated: list[dict], budget: int) -> list[dict]:
    """Per-row reward and KL of one generated batch (ROUGE and BLEU come per pass)."""
    scores: list[dict] = [{} for _ in prompts]
    texts = [line["completions"][0]["text"] for line in generated]
    if scorers.reward is not None:
        for entry, value in zip(scores, scorers.reward.score([p.text for p in prompts], texts), strict=True):
            entry["reward"] = value
    if "kl" in scorers.metric_names:
        completions = [_completion_ids(scorers.tokenizer, line["completions"][0]) for line in generated]
        kls = kl_to_base(
            scorers.model,
            scorers.base,
            scorers.tokenizer,
            [p.text for p in prompts],
            completions,
            max_prompt_tokens=budget,
        )
        for entry, (ratio, full, tokens) in zip(scores, kls, strict=True):
            entry.update(kl=ratio, kl_full=full, kl_tokens=tokens)
    return scores


def _table_entry(lines: list[dict], metric_names: list[str]) -> dict:
    entry: dict[str, Any] = {
        "rows": len(lines),
        "mean_tokens": _mean([line["tokens"] for line in lines]),
    }
    predictions = [line["prediction"] for line in lines]
    references = [line["reference"] for line in lines]
    if "rouge" in metric_names:
        per_row = load_metric("rouge").compute(predictions=predictions, references=references, use_aggregator=False)
        for name in ROUGE_TYPES:
            for line, value in zip(lines, per_row[name], strict=True):
                line[name] = float(value)
            entry[name] = _mean([float(v) for v in per_row[name]])
    if "bleu" in metric_names:
        entry["bleu"] = float(bleu(predictions, references)["bleu"])
    if "reward" in metric_names:
        entry["reward"] = _mean([line["reward"] for line in lines])
    if "kl" in metric_names:
        tokens = sum(line["kl_tokens"] for line in lines)
        entry["kl"] = _mean([line["kl"] for line in lines])
        entry["kl_per_token"] = sum(line["kl"] for line in lines) / tokens if tokens else 0.0
        entry["kl_full_per_token"] = sum(line.pop("kl_full") for line in lines) / tokens if tokens else 0.0
        for line in lines:
            line.pop("kl_tokens")
    return entry


def _summary(table: list[dict]) -> dict:
    main = [t for t in table if t["set"] == "main"]
    first = main[0]
    summary: dict[str, Any] = {"variant": first["variant"], "generation": first["generation"], "rows": first["rows"]}
    summary.update({k: first[k] for k in TABLE_METRICS if k in first})
    if "rougeL" in first and len(main) > 1:
        best = max(main, key=lambda t: t["rougeL"])
        summary.update(best_variant=best["variant"], best_generation=best["generation"], best_rougeL=best["rougeL"])
    offtask = [t for t in table if t["set"] == "offtask"]
    if offtask:
        summary.update({f"offtask_{k}": offtask[0][k] for k in TABLE_METRICS if k in offtask[0]})
    return summary
