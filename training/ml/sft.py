"""The ``sft`` run kind: supervised fine-tuning with TRL's ``SFTTrainer`` (DESIGN.md, The ML: SFT).

Input: ``train_file`` (and optionally ``eval_file``), JSONL of ``{"prompt": ..., "completion": ...}``.
Config: :class:`training.ml.sft_config.SFTConfig`.

How it trains:
- Each pair is tokenized here, the way generation will see it: the prompt through
  :func:`training.ml.generation.format_prompt` (one user turn of the chat template, with the
  generation prompt, when the tokenizer has one) and tokenized alone, then the completion's tokens
  and the eos token (for SmolLM2-Instruct that is ``<|im_end|>``, the end of the assistant's turn,
  so the tuned model stops where generation stops). Prompt and completion are tokenized apart, so
  the model learns to continue exactly the prompt tokens it is given at generation time.
- A pair longer than ``max_length`` loses prompt tokens from the left (generation truncates prompts
  the same way); the completion is cut (from the right) only when it alone does not fit.
- TRL gets the tokenized rows (``input_ids`` + ``completion_mask``) and builds the labels: with
  ``completion_only_loss`` the prompt positions are -100, so only completion tokens count.
- PEFT: ``lora`` (adapters on all linear layers by default), ``prompt_tuning`` (soft prompt of
  ``num_virtual_tokens``) or ``full`` (``none``); see :func:`training.ml.hf_training.peft_config`.
- Checkpoints every ``save_steps`` in ``out/checkpoints``; a run started again on the same folder
  resumes from the newest (a ``log`` event says so). ``eval_loss`` on ``eval_file`` every
  ``eval_steps`` (if > 0) and at the end.

Outputs (``hf_training`` convention; each folder has the tokenizer beside the weights):
- ``lora``: ``out/adapter`` (role ``adapter``) and, with ``merge_adapter``, ``out/model`` (the
  adapters merged into the base weights, role ``merged``: a plain ``from_pretrained`` folder).
- ``prompt_tuning``: ``out/adapter`` only (role ``adapter``): a soft prompt cannot be merged.
- ``full``: ``out/model`` (role ``full``).

An adapter folder is loaded over its base model::

    from peft import PeftModel
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), "out/adapter")

:func:`training.ml.evaluate.load_model` does this (``evaluate`` takes ``adapter_path``), and
generating from a prompt-tuned model works with the generation module's ``generate_batch`` on it.
``adapter_config.json`` records the base's path at training time (``base_model_name_or_path``).
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.events import EventWriter
from training.ml.generation import format_prompt
from training.ml.hf_training import (
    ADAPTER_DIR,
    MODEL_DIR,
    events_callback,
    output,
    peft_config,
    read_jsonl,
    resume_checkpoint,
    torch_setup,
    trainer_args,
)
from training.ml.sft_config import SFTConfig

TASK = "causal-lm"


def load_tokenizer(config: SFTConfig):
    from transformers import AutoTokenizer

    extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(config.model_path, **extra)
    if tokenizer.eos_token_id is None:
        raise ValueError(
            f"the tokenizer of {config.model_path} has no eos token; SFT teaches the model to stop with it"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenize_pair(tokenizer, prompt: str, completion: str, *, max_length: int) -> tuple[dict, bool]:
    """``{"input_ids", "completion_mask"}`` of one pair, fitted into ``max_length``; and whether it was cut."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    prompt_ids = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=not chat)["input_ids"]
    if chat:
        completion = completion.lstrip()  # the generation prompt ends the line: the reply starts the next
    completion_ids = [*tokenizer(completion, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    cut = len(prompt_ids) + len(completion_ids) > max_length
    if cut:
        # Keep the whole completion when it fits beside some prompt; otherwise half the room each.
        room = max(max_length - len(completion_ids), min(len(prompt_ids), max_length // 2))
        prompt_ids = prompt_ids[len(prompt_ids) - room :] if room else []
        completion_ids = completion_ids[: max_length - len(prompt_ids)]
    ids = [*prompt_ids, *completion_ids]
    return {"input_ids": ids, "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids)}, cut


def tokenize_rows(tokenizer, rows: list[dict], *, max_length: int, path: str) -> tuple[list[dict], int]:
    """Tokenized rows of a ``{prompt, completion}`` file and how many were cut to ``max_length``."""
    examples, cut = [], 0
    for number, row in enumerate(rows, start=1):
        for name in ("prompt", "completion"):
            if not isinstance(row[name], str):
                raise ValueError(f"{path}, row {number}, field {name!r}: expected a string")
        if not row["completion"].strip():
            raise ValueError(f"{path}, row {number}, field 'completion': empty")
        example, was_cut = tokenize_pair(tokenizer, row["prompt"], row["completion"], max_length=max_length)
        examples.append(example)
        cut += was_cut
    return examples, cut


def _dataset(tokenizer, path: str, config: SFTConfig, events: EventWriter):
    from datasets import Dataset

    rows = read_jsonl(path, required=("prompt", "completion"))
    if not rows:
        raise ValueError(f"{path} has no rows")
    examples, cut = tokenize_rows(tokenizer, rows, max_length=config.max_length, path=path)
    if cut:
        events.log(
            f"{cut} of {len(rows)} rows of {Path(path).name} were longer than max_length {config.max_length} tokens "
            "and lost prompt tokens from the left",
            "warning",
        )
    return Dataset.from_list(examples), sum(len(e["input_ids"]) for e in examples)


def _replace_folder(folder: Path) -> Path:
    """An empty ``folder`` (what an earlier attempt left there goes)."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


@dataclass
class Setup:
    trainer: Any
    tokenizer: Any
    method: str  # lora | prompt_tuning | full
    train_rows: int
    train_tokens: int
    trainable_params: int
    total_params: int


def build_trainer(config: SFTConfig, out_dir: Path, events: EventWriter) -> Setup:
    """The tokenizer, the tokenized data sets, the model (with its PEFT wrapper) and the SFTTrainer."""
    import torch
    import trl
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    device, dtype = torch_setup(config)
    method = "full" if config.peft_method == "none" else config.peft_method
    started = time.monotonic()
    tokenizer = load_tokenizer(config)
    train_dataset, train_tokens = _dataset(tokenizer, config.train_file, config, events)
    eval_dataset = _dataset(tokenizer, config.eval_file, config, events)[0] if config.eval_file else None
    extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(config.model_path, dtype=getattr(torch, dtype), **extra)
    events.log(
        f"loaded {config.model_path} ({dtype}, {method}) and {len(train_dataset)} train rows "
        f"({train_tokens} tokens){f', {len(eval_dataset)} eval rows' if eval_dataset is not None else ''} "
        f"in {time.monotonic() - started:.1f} s"
    )
    args = trl.SFTConfig(
        **trainer_args(
            config,
            out_dir,
            device=device,
            dtype=dtype,
            max_length=config.max_length,
            completion_only_loss=config.completion_only_loss,
        )
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config(config, "CAUSAL_LM", tokenizer_path=config.model_path),
        callbacks=[events_callback(events)],
    )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    events.log(f"{method}: {trainable:,} trainable parameters of {total:,} ({100 * trainable / total:.3f}%)")
    return Setup(trainer, tokenizer, method, len(train_dataset), train_tokens, trainable, total)


def run(config: SFTConfig, out_dir: Path, events: EventWriter) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = build_trainer(config, out_dir, events)
    trainer = setup.trainer

    checkpoint = resume_checkpoint(out_dir)
    if checkpoint:
        events.log(f"resuming from {Path(checkpoint).name} (an earlier attempt's checkpoint)")
    train_started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = time.monotonic() - train_started

    metrics = {
        "train_loss": _train_loss(trainer, result, checkpoint),
        "steps": int(result.global_step),
        "train_rows": setup.train_rows,
        "train_tokens": setup.train_tokens,
        "train_seconds": round(train_seconds, 1),
        "trainable_params": setup.trainable_params,
        "total_params": setup.total_params,
        "peft_method": setup.method,
        "learning_rate": config.learning_rate,
    }
    if checkpoint:
        metrics["resumed_from"] = Path(checkpoint).name
    if trainer.eval_dataset is not None:
        evaluation = trainer.evaluate()
        metrics["eval_loss"] = float(evaluation["eval_loss"])  # the callback emitted it as a metric event

    outputs = _save(trainer, setup.tokenizer, config, out_dir, setup.method)
    events.log(f"saved {', '.join(o['dir'] for o in outputs)} in {out_dir}")
    return {"outputs": outputs, "metrics": metrics}


def _train_loss(trainer, result, checkpoint: str | None) -> float | None:
    """The mean loss of this attempt's steps (the Trainer's); an attempt that resumed at the last
    checkpoint trains no step, so it reports the mean of the losses logged before."""
    start = int(Path(checkpoint).name.rpartition("-")[2]) if checkpoint else 0
    if result.global_step > start:
        return float(result.training_loss)
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return float(sum(logged) / len(logged)) if logged else None


def _save(trainer, tokenizer, config: SFTConfig, out_dir: Path, method: str) -> list[dict]:
    model = trainer.model
    model.eval()
    if method == "full":
        folder = _replace_folder(out_dir / MODEL_DIR)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return [output(MODEL_DIR, TASK, "full")]
    adapter = _replace_folder(out_dir / ADAPTER_DIR)
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    outputs = [output(ADAPTER_DIR, TASK, "adapter", peft_method=method)]
    if method == "lora" and config.merge_adapter:
        folder = _replace_folder(out_dir / MODEL_DIR)
        merged = model.merge_and_unload()
        merged.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        outputs.append(output(MODEL_DIR, TASK, "merged"))
    return outputs
