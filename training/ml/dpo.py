"""The ``dpo`` run kind: direct preference optimization with TRL's ``DPOTrainer`` straight from a
snapshot's pair files (DESIGN.md, The ML: DPO). Pure ML: no Django.

Input: ``train.jsonl`` (and ``eval.jsonl``) of a snapshot: ``prompt``, ``chosen``, ``rejected`` (the
completions alone). Config: :class:`training.ml.dpo_config.DPOConfig`.

How it trains:
- Each pair is tokenized here, the way generation sees it: the prompt through
  :func:`training.ml.generation.format_prompt` (one user turn of the chat template, with the
  generation prompt, when the tokenizer has one: SmolLM2-Instruct), each completion's tokens then
  the eos token (``<|im_end|>`` for SmolLM2-Instruct, the end of the assistant turn). TRL 1.16
  would do this from text too, but only truncates with ``keep_start`` (the prompt kept, completions
  cut, a pair whose prompt fills ``max_length`` dropped): here the prompt loses tokens from the left
  instead, and completions are cut only when they alone do not fit. TRL gets ``prompt_ids``,
  ``chosen_ids``, ``rejected_ids`` and uses them as they are.
- LoRA (default): the reference model is the same model with its adapters disabled (TRL does this
  when given a ``peft_config``). Full fine-tuning: a second frozen copy is the reference.
- Checkpoints every ``save_steps`` in ``out/checkpoints``; a run started again on the same folder
  resumes from the newest (a ``log`` event says so).
- Metrics: TRL's ``rewards/accuracies`` (the share of eval pairs whose implicit reward
  ``beta * log(pi / pi_ref)`` is higher for the chosen completion), ``rewards/margins`` and the loss
  on the eval split, before training (``eval_before``) and after it.

Outputs: ``out/adapter`` (LoRA, role ``adapter``) and ``out/model`` (task ``causal-lm``; role
``merged`` with LoRA, ``full`` otherwise), each with the tokenizer.
"""

import time
from pathlib import Path
from typing import Any

from training.ml.dpo_config import DPOConfig
from training.ml.events import EventWriter
from training.ml.generation import format_prompt
from training.ml.hf_training import events_callback, gguf_kwargs, peft_config, read_jsonl, trainer_args
from training.ml.train_report import Setup, TrainAndReport

TASK = "causal-lm"
EVAL_METRICS = {  # TRL's eval log name -> ours
    "eval_rewards/accuracies": "eval_rewards_accuracy",
    "eval_rewards/margins": "eval_rewards_margin",
    "eval_rewards/chosen": "eval_rewards_chosen",
    "eval_rewards/rejected": "eval_rewards_rejected",
    "eval_loss": "eval_loss",
}


def load_tokenizer(config: DPOConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model_path, **gguf_kwargs(config))
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer of {config.model_path} has no eos token; each completion ends with it")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenize_pair(
    tokenizer, prompt: str, chosen: str, rejected: str, *, max_length: int, max_prompt_length: int | None = None
) -> tuple[dict, bool]:
    """``{"prompt_ids", "chosen_ids", "rejected_ids"}`` fitted into ``max_length``; and whether it was cut."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    prompt_ids = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=not chat)["input_ids"]
    if chat:  # the generation prompt ends the line: the reply starts the next
        chosen, rejected = chosen.lstrip(), rejected.lstrip()
    eos = tokenizer.eos_token_id
    chosen_ids = [*tokenizer(chosen, add_special_tokens=False)["input_ids"], eos]
    rejected_ids = [*tokenizer(rejected, add_special_tokens=False)["input_ids"], eos]
    # A bos token the tokenizer put first stays first when the prompt loses tokens.
    keep = 1 if not chat and prompt_ids and prompt_ids[0] == tokenizer.bos_token_id else 0

    def left_cut(ids: list[int], room: int) -> list[int]:
        if len(ids) <= room:
            return ids
        return [*ids[:keep], *ids[len(ids) - max(room - keep, 0) :]] if room > keep else ids[:room]

    cut = False
    if max_prompt_length is not None and len(prompt_ids) > max_prompt_length:
        prompt_ids, cut = left_cut(prompt_ids, max_prompt_length), True
    longest = max(len(chosen_ids), len(rejected_ids))
    if len(prompt_ids) + longest > max_length:
        cut = True
        # Keep whole completions when they fit beside some prompt; otherwise half the room each.
        room = max(max_length - longest, min(len(prompt_ids), max_length // 2))
        prompt_ids = left_cut(prompt_ids, room)
        chosen_ids = chosen_ids[: max_length - len(prompt_ids)]
        rejected_ids = rejected_ids[: max_length - len(prompt_ids)]
    return {"prompt_ids": prompt_ids, "chosen_ids": chosen_ids, "rejected_ids": rejected_ids}, cut


def read_pairs(path: str, tokenizer, config: DPOConfig) -> tuple[list[dict], int]:
    """The tokenized pairs of a pair file and how many were cut to fit ``max_length``."""
    rows = read_jsonl(path, required=("prompt", "chosen", "rejected"))
    if not rows:
        raise ValueError(f"{path} has no rows")
    examples, cut = [], 0
    for number, row in enumerate(rows, start=1):
        for name in ("prompt", "chosen", "rejected"):
            if not isinstance(row[name], str):
                raise ValueError(f"{path}, row {number}, field {name!r}: expected a string")
        example, was_cut = tokenize_pair(
            tokenizer,
            row["prompt"],
            row["chosen"],
            row["rejected"],
            max_length=config.max_length,
            max_prompt_length=config.max_prompt_length,
        )
        examples.append(example)
        cut += was_cut
    return examples, cut


def load_models(config: DPOConfig, dtype: str, method: str):
    """The policy and its reference: with LoRA None (TRL uses the policy with its adapters disabled),
    for full fine-tuning a second, frozen copy."""
    import torch
    from transformers import AutoModelForCausalLM

    def load():
        return AutoModelForCausalLM.from_pretrained(
            config.model_path, dtype=getattr(torch, dtype), **gguf_kwargs(config)
        )

    policy = load()
    # The copy is loaded here (not by TRL from the config's name) so a GGUF base works too.
    return policy, load() if method == "full" else None


def _trainer_class():
    from trl import DPOTrainer
    from trl.data_utils import get_dataset_column_names

    class PretokenizedDPOTrainer(DPOTrainer):
        """TRL's DPOTrainer that takes our ``prompt_ids``/``chosen_ids``/``rejected_ids`` as they are."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in get_dataset_column_names(dataset):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PretokenizedDPOTrainer


def _evaluate(trainer) -> dict[str, float]:
    measured = trainer.evaluate()  # the events callback emits them as metric events
    return {ours: float(measured[theirs]) for theirs, ours in EVAL_METRICS.items() if theirs in measured}


class DPORun(TrainAndReport):
    task = TASK
    evaluation: list[dict] | None = None  # the tokenized eval pairs

    def build(self, device: str, dtype: str) -> Setup:
        import trl
        from datasets import Dataset

        config, events = self.config, self.events
        started = time.monotonic()
        tokenizer = load_tokenizer(config)
        train, train_cut = read_pairs(config.train_file, tokenizer, config)
        evaluation, eval_cut = read_pairs(config.eval_file, tokenizer, config) if config.eval_file else (None, 0)
        for name, cut, rows in (("train", train_cut, train), ("eval", eval_cut, evaluation)):
            if cut:
                events.log(
                    f"{cut} of {len(rows)} {name} pairs were longer than max_length {config.max_length} tokens and "
                    "lost prompt tokens from the left (no pair dropped)",
                    "warning",
                )
        model, reference = load_models(config, dtype, self.method)
        train_tokens = sum(len(e["prompt_ids"]) * 2 + len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in train)
        self.log_loaded(
            dtype,
            started,
            unit="pairs",
            train=len(train),
            tokens=train_tokens,
            evaluation=len(evaluation) if evaluation else None,
        )

        args = trl.DPOConfig(
            **trainer_args(
                config,
                self.out_dir,
                device=device,
                dtype=dtype,
                max_length=config.max_length,
                beta=config.beta,
                loss_type=[config.loss_type],
                label_smoothing=config.label_smoothing,
            )
        )
        trainer = _trainer_class()(
            model=model,
            ref_model=reference,
            args=args,
            train_dataset=Dataset.from_list(train),
            eval_dataset=Dataset.from_list(evaluation) if evaluation else None,
            processing_class=tokenizer,
            peft_config=peft_config(config, "CAUSAL_LM"),
            callbacks=[events_callback(events)],
        )
        self.evaluation = evaluation
        data = {"train_pairs": len(train), "train_pairs_cut": train_cut, "train_tokens": train_tokens}
        return Setup(trainer, tokenizer, data)

    def evaluate_before(self, setup: Setup) -> dict[str, Any]:
        if not (self.evaluation and self.config.eval_before):
            return {}
        before = _evaluate(setup.trainer)
        self.events.log(f"before training: eval preference accuracy {before.get('eval_rewards_accuracy', 0):.3f}")
        return {f"{name}_before": value for name, value in before.items()}

    def kind_metrics(self, result, train_seconds: float) -> dict[str, Any]:
        return {
            "seconds_per_step": round(train_seconds / max(result.global_step, 1), 2),
            "beta": self.config.beta,
            "loss_type": self.config.loss_type,
        }

    def evaluate(self, setup: Setup, steps: int) -> dict[str, Any]:
        if not self.evaluation:
            return {}
        after = _evaluate(setup.trainer)
        self.events.log(
            f"after training: eval preference accuracy {after.get('eval_rewards_accuracy', 0):.3f}, "
            f"reward margin {after.get('eval_rewards_margin', 0):.4f}"
        )
        return {**after, "eval_pairs": len(self.evaluation)}


def run(config: DPOConfig, out_dir: Path, events: EventWriter) -> dict:
    return DPORun(config, out_dir, events).run()
