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

import time
from pathlib import Path

from training.ml.events import EventWriter
from training.ml.generation import format_prompt
from training.ml.hf_training import events_callback, gguf_kwargs, peft_config, read_jsonl, torch_setup, trainer_args
from training.ml.sft_config import SFTConfig
from training.ml.train_report import Setup, TrainAndReport

TASK = "causal-lm"


def load_tokenizer(config: SFTConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model_path, **gguf_kwargs(config))
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


class SFTRun(TrainAndReport):
    task = TASK

    def build(self, device: str, dtype: str) -> Setup:
        import torch
        import trl
        from transformers import AutoModelForCausalLM
        from trl import SFTTrainer

        config, events = self.config, self.events
        started = time.monotonic()
        tokenizer = load_tokenizer(config)
        train_dataset, train_tokens = _dataset(tokenizer, config.train_file, config, events)
        eval_dataset = _dataset(tokenizer, config.eval_file, config, events)[0] if config.eval_file else None
        model = AutoModelForCausalLM.from_pretrained(
            config.model_path, dtype=getattr(torch, dtype), **gguf_kwargs(config)
        )
        self.log_loaded(
            dtype,
            started,
            unit="rows",
            train=len(train_dataset),
            tokens=train_tokens,
            evaluation=len(eval_dataset) if eval_dataset is not None else None,
        )
        args = trl.SFTConfig(
            **trainer_args(
                config,
                self.out_dir,
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
        return Setup(trainer, tokenizer, {"train_rows": len(train_dataset), "train_tokens": train_tokens})

    def train_loss(self, setup: Setup, result, checkpoint: str | None) -> float | None:
        """The mean loss of this attempt's steps (the Trainer's); an attempt that resumed at the last
        checkpoint trains no step, so it reports the mean of the losses logged before."""
        start = int(Path(checkpoint).name.rpartition("-")[2]) if checkpoint else 0
        if result.global_step > start:
            return float(result.training_loss)
        logged = [entry["loss"] for entry in setup.trainer.state.log_history if "loss" in entry]
        return float(sum(logged) / len(logged)) if logged else None

    def evaluate(self, setup: Setup, steps: int) -> dict[str, float]:
        if setup.trainer.eval_dataset is None:
            return {}
        evaluation = setup.trainer.evaluate()  # the events callback emits it as a metric event
        return {"eval_loss": float(evaluation["eval_loss"])}


def build_trainer(config: SFTConfig, out_dir: Path, events: EventWriter) -> Setup:
    """The tokenizer, the tokenized data sets, the model (with its PEFT wrapper) and the SFTTrainer,
    as a run builds them (without training: the tests read its batches)."""
    return SFTRun(config, out_dir, events).build(*torch_setup(config))


def run(config: SFTConfig, out_dir: Path, events: EventWriter) -> dict:
    return SFTRun(config, out_dir, events).run()
