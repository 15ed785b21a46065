"""Generate K completions per prompt (DESIGN.md, The ML: Generation). Pure ML: no Django.

Input: ``prompts_file``, JSONL of ``{"prompt_id": ..., "prompt": "..."}`` (other keys are ignored).
Output, in ``out_dir``: ``completions.jsonl``, one line per prompt, appended after every batch::

    {"prompt_id": 7, "prompt_tokens": 41, "truncated": false,
     "completions": [{"text": "...", "seed": 107, "params": {...}, "tokens": 37, "finish_reason": "eos"}, ...]}

How it generates:
- The model is loaded in float32 (``gguf_file`` for a GGUF checkpoint in ``model_path``); the
  tokenizer pads on the left (a decoder-only model continues from the last position of every row),
  with the eos token as pad token when it has none.
- A tokenizer with a chat template gets the prompt as one user turn plus the generation prompt
  (SmolLM2-Instruct has one); otherwise the raw prompt is the input.
- Prompts longer than ``max_prompt_tokens`` (or than the context window minus ``max_new_tokens``)
  lose tokens from the left: the end of a prompt (the instruction, the question) matters most.
- ``batch_size`` prompts go through one ``generate`` call with ``num_return_sequences=k``.
- Seeds: prompt number i (0-based, in file order) records seed ``config.seed + i``; each batch
  seeds torch with the seed of its first prompt before sampling. The same config, file and batch
  size reproduce the same completions.
- Rerunning into an ``out_dir`` that already holds completions skips the prompts it has.

Events: log lines, ``progress`` (prompts done / total), a ``tokens_per_s`` metric per batch, an
``artifact`` event (kind ``completions``, the prompt ids of the batch) after every batch.
"""

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.configs import GenerateConfig
from training.ml.events import EventWriter

COMPLETIONS_FILE = "completions.jsonl"


@dataclass(frozen=True)
class Prompt:
    index: int  # position in the prompts file: the seed offset
    prompt_id: Any
    text: str


def read_prompts(path: str | Path) -> list[Prompt]:
    """The prompts of a JSONL file; a bad line raises ValueError naming the line and field."""
    prompts: list[Prompt] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected an object with prompt_id and prompt")
            if not isinstance(row.get("prompt"), str):
                raise ValueError(f"{path}, line {number}, field 'prompt': expected a string")
            prompt_id = row.get("prompt_id", len(prompts))
            key = json.dumps(prompt_id)
            if key in seen:
                raise ValueError(f"{path}, line {number}, field 'prompt_id': {prompt_id!r} appears twice")
            seen.add(key)
            prompts.append(Prompt(index=len(prompts), prompt_id=prompt_id, text=row["prompt"]))
    return prompts


def done_prompt_ids(path: Path) -> set[str]:
    """Prompt ids (as JSON) already in a completions file; a torn last line (a killed run) is cut off."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
    done = set()
    for line in data[:end].splitlines():
        if line.strip():
            done.add(json.dumps(json.loads(line)["prompt_id"]))
    return done


def resolve_device(device: str) -> str:
    """``auto`` is the first GPU when there is one, else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load(
    model_path: str,
    gguf_file: str | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    adapter_path: str | None = None,
):
    """Model (eval mode, on ``device``; with the PEFT adapter at ``adapter_path`` over it, if given)
    and a left-padding tokenizer that has a pad token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(model_path, **extra)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype), **extra)
    model.to(resolve_device(device))
    if adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_path)
    model.eval()
    prepare_tokenizer(tokenizer)
    return model, tokenizer


def prepare_tokenizer(tokenizer) -> None:
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token; batched generation needs one")
        tokenizer.pad_token = tokenizer.eos_token


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt as the model expects it: one user turn of the chat template, if it has one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    return prompt


def prompt_budget(model, config: GenerateConfig) -> int:
    """Prompt tokens kept: ``max_prompt_tokens``, less if the context window could not hold the rest."""
    window = getattr(model.config, "max_position_embeddings", None)
    budget = config.max_prompt_tokens
    if window:
        budget = min(budget, window - config.max_new_tokens)
    if budget < 1:
        raise ValueError(
            f"max_new_tokens ({config.max_new_tokens}) leaves no room for the prompt in the model's "
            f"context window of {window} tokens; lower max_new_tokens"
        )
    return budget


def encode(tokenizer, texts: list[str], *, max_prompt_tokens: int):
    """Left-padded, left-truncated input ids and attention mask, and each row's untruncated length."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    formatted = [format_prompt(tokenizer, t) for t in texts]
    # A chat template writes its own special tokens.
    full_lengths = [len(ids) for ids in tokenizer(formatted, add_special_tokens=not chat)["input_ids"]]
    batch = tokenizer(
        formatted,
        add_special_tokens=not chat,
        padding=True,
        truncation=True,
        max_length=max_prompt_tokens,
        return_tensors="pt",
    )
    return batch, full_lengths


def generation_params(config: GenerateConfig) -> dict:
    """What each completion records about how it was sampled."""
    params: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "do_sample": not config.greedy}
    if not config.greedy:
        params.update(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)
    return params


def _generation_config(config: GenerateConfig, tokenizer):
    from transformers import GenerationConfig

    fields: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "num_return_sequences": config.k,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "do_sample": not config.greedy,
    }
    if not config.greedy:
        # top_k 0 / top_p 1.0 switch those filters off (None would fall back to library defaults).
        fields.update(temperature=config.temperature, top_k=config.top_k or 0, top_p=config.top_p or 1.0)
    return GenerationConfig(**fields)


def _decode(tokenizer, ids, pad_id: int, eos_id: int | None) -> tuple[str, int, str]:
    """Text, generated token count (through the first eos) and finish reason of one row's new tokens."""
    tokens = ids.tolist()
    count, reason = len(tokens), "length"
    for position, token in enumerate(tokens):
        if token == eos_id:
            count, reason = position + 1, "eos"
            break
    # Pads after eos are not part of the answer (pad may equal eos).
    while reason == "length" and count and tokens[count - 1] == pad_id and pad_id != eos_id:
        count -= 1
    return tokenizer.decode(tokens[:count], skip_special_tokens=True), count, reason


def generate_batch(model, tokenizer, prompts: list[Prompt], config: GenerateConfig, *, max_prompt_tokens: int):
    """One batch: a completions line per prompt (K completions each) and the tokens generated."""
    import torch

    batch, full_lengths = encode(tokenizer, [p.text for p in prompts], max_prompt_tokens=max_prompt_tokens)
    batch = batch.to(model.device)
    width = batch["input_ids"].shape[1]
    torch.manual_seed(config.seed + prompts[0].index)
    with torch.inference_mode():
        output = model.generate(**batch, generation_config=_generation_config(config, tokenizer))
    new = output[:, width:]
    params = generation_params(config)
    lines, generated = [], 0
    for i, prompt in enumerate(prompts):
        completions = []
        for j in range(config.k):
            text, count, reason = _decode(
                tokenizer, new[i * config.k + j], tokenizer.pad_token_id, tokenizer.eos_token_id
            )
            generated += count
            completions.append(
                {
                    "text": text,
                    "seed": config.seed + prompt.index,
                    "params": params,
                    "tokens": count,
                    "finish_reason": reason,
                }
            )
        kept = int(batch["attention_mask"][i].sum())
        lines.append(
            {
                "prompt_id": prompt.prompt_id,
                "prompt_tokens": kept,
                "truncated": kept < full_lengths[i],
                "completions": completions,
            }
        )
    return lines, generated


def _batches(items: list[Prompt], size: int) -> Iterator[list[Prompt]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run(config: GenerateConfig, out_dir: Path, events: EventWriter) -> dict:
    """Generate for every prompt not yet in ``out_dir/completions.jsonl``; returns a summary."""
    import torch

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts = read_prompts(config.prompts_file)
    target = out_dir / COMPLETIONS_FILE
    done = done_prompt_ids(target)
    todo = [p for p in prompts if json.dumps(p.prompt_id) not in done]
    if done:
        events.log(f"{len(prompts) - len(todo)} of {len(prompts)} prompts already have completions; skipping them")

    started = time.monotonic()
    model, tokenizer = load(
        config.model_path, config.gguf_file, device=config.device, dtype=config.dtype, adapter_path=config.adapter_path
    )
    source = f"{config.model_path} / {config.gguf_file}" if config.gguf_file else config.model_path
    source += f" + adapter {config.adapter_path}" if config.adapter_path else ""
    events.log(f"loaded {source} on {model.device} ({config.dtype}) in {time.monotonic() - started:.1f} s")
    budget = prompt_budget(model, config)

    total, finished, generated_all, truncated = len(prompts), len(prompts) - len(todo), 0, 0
    events.progress(finished, total)
    with open(target, "a", encoding="utf-8") as handle:
        for number, batch in enumerate(_batches(todo, config.batch_size)):
            batch_started = time.monotonic()
            lines, generated = generate_batch(model, tokenizer, batch, config, max_prompt_tokens=budget)
            seconds = time.monotonic() - batch_started
            for line in lines:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            finished += len(batch)
            generated_all += generated
            truncated += sum(line["truncated"] for line in lines)
            events.artifact("completions", COMPLETIONS_FILE, count=finished, prompt_ids=[p.prompt_id for p in batch])
            events.metric("tokens_per_s", generated / seconds if seconds > 0 else 0.0, step=number)
            events.progress(finished, total)
    if truncated:
        events.log(f"{truncated} prompts were longer than {budget} tokens and lost tokens from the left", "warning")
    return {
        "prompts": total,
        "generated": len(todo),
        "tokens": generated_all,
        "truncated": truncated,
        "file": COMPLETIONS_FILE,
    }
