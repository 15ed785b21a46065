"""The ``reward_model`` run kind: a Bradley-Terry reward model with TRL's ``RewardTrainer``
(DESIGN.md, The ML: Reward model). Pure ML: no Django.

Input: a snapshot's ``train.jsonl`` (and ``eval.jsonl``): ``prompt``, ``chosen``, ``rejected`` (the
completions alone), ``margin``, ``weight`` (other columns are ignored). Config:
:class:`training.ml.reward_model_config.RewardModelConfig`.

How it trains:
- The model is ``AutoModelForSequenceClassification`` with one label, loaded from ``model_path``: a
  causal LM gets a new ``score`` head (its pad token, the eos token when it has none, tells the
  model which token is last), an encoder (BERT, all-MiniLM-L6-v2) a new ``classifier`` head. A GGUF
  checkpoint (``gguf_file``, e.g. SmolLM2-135M-Instruct) is de-quantized on load and trained as a
  plain float model (transformers' Trainer refuses a model still marked GGUF-quantized).
- Each side of a pair is one text (prompt + completion, see the config) tokenized here into
  ``chosen_ids``/``rejected_ids``, the pre-tokenized columns TRL 1.16 reads as they are. A text
  longer than ``max_length`` (capped at the model's position window) keeps its *end*: tokens go
  from the left, the tokenizer's own special tokens ([CLS] ... [SEP], bos) stay. TRL would drop such
  pairs (HH pairs differ only in the last reply, the end matters); here none is dropped.
- The loss is TRL's ``-logsigmoid(r_chosen - r_rejected [- margin])`` (+ the centring term), each
  pair's term multiplied by its weight (normalized to mean 1) when ``use_weights``; TRL's collator
  passes ``margin`` and ours adds ``weight``.
- Checkpoints every ``save_steps`` in ``out/checkpoints``; a run started again on the same folder
  resumes from the newest (a ``log`` event says so). TRL logs loss, accuracy and margin of each
  logging window (``metric`` events); ``eval_*`` every ``eval_steps`` if > 0.
- At the end, the pairwise accuracy on ``eval_file`` (the share of pairs whose chosen text scores
  strictly higher than the rejected one), computed here with the model in eval mode, batched by
  length, and the mean reward margin: ``eval_accuracy``, ``eval_mean_margin``.

Outputs: ``out/model`` (task ``reward-model``; role ``full``, or ``merged`` with LoRA, whose
adapters also go to ``out/adapter``), with the tokenizer. It loads with
``AutoModelForSequenceClassification.from_pretrained`` and scores with
:class:`training.ml.rewards.RewardModelScorer`, which reads the same text.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.ml.events import EventWriter
from training.ml.hf_training import events_callback, gguf_kwargs, peft_config, read_jsonl, trainer_args
from training.ml.reward_model_config import RewardModelConfig
from training.ml.rewards import reward_text
from training.ml.train_report import Setup, TrainAndReport

TASK = "reward-model"
HEAD_NAMES = ("score", "classifier")  # the new head of a causal LM / of an encoder (BERT)


def load_tokenizer(config: RewardModelConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model_path, **gguf_kwargs(config))
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer of {config.model_path} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"
    return tokenizer


class TextEncoder:
    """Texts -> token ids no longer than ``max_length``: the end of the text kept, the special tokens too.

    The tokenizer's special-token layout (``[CLS] x [SEP]``, ``<s> x``, nothing) is read once from a
    probe; a long text loses its first content tokens, like ``truncation_side="left"`` does.
    """

    def __init__(self, tokenizer, max_length: int, *, append_eos: bool = False):
        probe = "a b c"
        full = tokenizer(probe)["input_ids"]
        plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
        start = next((k for k in range(len(full) - len(plain) + 1) if full[k : k + len(plain)] == plain), None)
        if start is None:  # an unusual tokenizer: no special tokens around the text
            start, full = 0, plain
        self.prefix = full[:start]
        self.suffix = full[start + len(plain) :]
        if append_eos and tokenizer.eos_token_id is not None and self.suffix[-1:] != [tokenizer.eos_token_id]:
            self.suffix = [*self.suffix, tokenizer.eos_token_id]
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.room = max_length - len(self.prefix) - len(self.suffix)
        if self.room < 1:
            raise ValueError(f"max_length {max_length} leaves no room beside the tokenizer's special tokens")

    def encode(self, texts: list[str]) -> tuple[list[list[int]], int]:
        """Token ids of each text and how many texts were cut."""
        ids = self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        cut = sum(len(x) > self.room for x in ids)
        return [[*self.prefix, *x[max(len(x) - self.room, 0) :], *self.suffix] for x in ids], cut


def pair_texts(row: dict, template: str | None) -> tuple[str, str]:
    """The chosen and the rejected text of a pair row, as the model reads them."""
    if template is None:
        return reward_text(row["prompt"], row["chosen"]), reward_text(row["prompt"], row["rejected"])
    return (
        template.format(prompt=row["prompt"], completion=row["chosen"]),
        template.format(prompt=row["prompt"], completion=row["rejected"]),
    )


def _number(value: Any, path: str, number: int, name: str, *, minimum: float | None = None) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value or abs(value) == float("inf"):
        raise ValueError(f"{path}, row {number}, field {name!r}: expected a number, got {value!r:.40}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{path}, row {number}, field {name!r}: must be >= {minimum}, got {value}")
    return float(value)


@dataclass
class Pairs:
    examples: list[dict]  # chosen_ids, rejected_ids (+ margin, weight)
    cut: int  # texts that lost tokens from the left
    tokens: int


def read_pairs(path: str, encoder: TextEncoder, config: RewardModelConfig) -> Pairs:
    """The tokenized pairs of a pair file (margin / weight columns when the config uses them)."""
    rows = read_jsonl(path, required=("prompt", "chosen", "rejected"))
    if not rows:
        raise ValueError(f"{path} has no rows")
    chosen, rejected = [], []
    for number, row in enumerate(rows, start=1):
        for name in ("prompt", "chosen", "rejected"):
            if not isinstance(row[name], str):
                raise ValueError(f"{path}, row {number}, field {name!r}: expected a string")
        c, r = pair_texts(row, config.prompt_template)
        chosen.append(c)
        rejected.append(r)
    chosen_ids, cut_c = encoder.encode(chosen)
    rejected_ids, cut_r = encoder.encode(rejected)
    examples = [{"chosen_ids": c, "rejected_ids": r} for c, r in zip(chosen_ids, rejected_ids, strict=True)]
    if config.margin:
        for number, (row, example) in enumerate(zip(rows, examples, strict=True), start=1):
            example["margin"] = _number(row.get("margin"), path, number, "margin")
    if config.use_weights:
        weights = [_number(row.get("weight", 1.0), path, n, "weight", minimum=0) for n, row in enumerate(rows, 1)]
        mean = sum(weights) / len(weights)
        if mean <= 0:
            raise ValueError(f"{path}: every pair has weight 0")
        for example, weight in zip(examples, weights, strict=True):
            example["weight"] = weight / mean
    tokens = sum(len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in examples)
    return Pairs(examples, cut_c + cut_r, tokens)


def load_model(config: RewardModelConfig, tokenizer, dtype: str):
    """A one-label sequence classifier from ``model_path`` (its head new when the folder has none)."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    with suppress_seqcls_warning():
        model = AutoModelForSequenceClassification.from_pretrained(
            config.model_path,
            num_labels=1,
            dtype=getattr(torch, dtype),
            ignore_mismatched_sizes=True,
            **gguf_kwargs(config),
        )
    if config.gguf_file:
        model = _without_gguf_marks(model, getattr(torch, dtype))
    model.config.pad_token_id = tokenizer.pad_token_id  # decoder classifiers score the last non-pad token
    return model


def _without_gguf_marks(model, dtype):
    """The same weights (de-quantized on load) in a model not marked as GGUF-quantized.

    transformers flags a GGUF-loaded model as quantized: the ``Trainer`` refuses to train it and
    ``save_pretrained`` to save it. The weights move into a model built from the config without its
    ``quantization_config`` (as ``training.ml.convert.gguf_to_hf_folder`` does), the new head included.
    """
    import copy

    from transformers import AutoModelForSequenceClassification

    plain_config = copy.deepcopy(model.config)
    if hasattr(plain_config, "quantization_config"):
        del plain_config.quantization_config
    state = model.state_dict()
    del model
    plain = AutoModelForSequenceClassification.from_config(plain_config, dtype=dtype)
    plain.load_state_dict(state, strict=True)
    return plain


def _trainer_class():
    import torch
    from trl import RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    @dataclass
    class WeightedPairCollator(DataCollatorForPreference):
        """TRL's collator (chosen rows, then rejected rows; ``margin``) plus the ``weight`` column."""

        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            batch = super().torch_call(examples)
            if "weight" in examples[0]:
                batch["weight"] = torch.tensor([e["weight"] for e in examples], dtype=torch.float)
            return batch

    class WeightedRewardTrainer(RewardTrainer):
        """TRL's loss and metrics; with a ``weight`` column each pair's loss term is weighted."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weight = inputs.pop("weight", None)
            if weight is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            _, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            difference = chosen - rejected
            if "margin" in inputs:
                difference = difference - inputs["margin"]
            loss = (-torch.nn.functional.logsigmoid(difference) * weight.to(difference.dtype)).mean()
            if self.args.center_rewards_coefficient is not None:
                loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
            return (loss, outputs) if return_outputs else loss

    return WeightedRewardTrainer, WeightedPairCollator


def score(model, sequences: list[list[int]], *, pad_token_id: int, batch_size: int) -> list[float]:
    """The reward of each token sequence: eval mode, no gradients, batches of similar lengths."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    scores = [0.0] * len(sequences)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [sequences[i] for i in order[start : start + batch_size]]
            width = max(len(s) for s in batch)
            input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention_mask[row, : len(ids)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
            for i, value in zip(order[start : start + batch_size], logits[:, 0].float().tolist(), strict=True):
                scores[i] = value
    return scores


def pairwise_accuracy(model, examples: list[dict], *, pad_token_id: int, batch_size: int) -> dict[str, float]:
    """``accuracy`` (chosen strictly above rejected) and ``mean_margin`` of the pairs."""
    n = len(examples)
    scores = score(
        model,
        [e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples],
        pad_token_id=pad_token_id,
        batch_size=batch_size,
    )
    chosen, rejected = scores[:n], scores[n:]
    return {
        "accuracy": sum(c > r for c, r in zip(chosen, rejected, strict=True)) / n,
        "mean_margin": sum(c - r for c, r in zip(chosen, rejected, strict=True)) / n,
        "mean_reward": sum(scores) / len(scores),
    }


class RewardModelRun(TrainAndReport):
    task = TASK
    share_decimals = 2
    max_length: int  # the config's, capped at the model's position window
    evaluation: Pairs | None = None

    def build(self, device: str, dtype: str) -> Setup:
        from datasets import Dataset
        from trl import RewardConfig

        config, events = self.config, self.events
        started = time.monotonic()
        tokenizer = load_tokenizer(config)
        model = load_model(config, tokenizer, dtype)
        self.max_length = _within_window(config.max_length, model, events)
        encoder = TextEncoder(tokenizer, self.max_length, append_eos=config.append_eos)
        train = read_pairs(config.train_file, encoder, config)
        self.evaluation = read_pairs(config.eval_file, encoder, config) if config.eval_file else None
        for name, pairs in (("train", train), ("eval", self.evaluation)):
            if pairs is not None and pairs.cut:
                events.log(
                    f"{pairs.cut} of {2 * len(pairs.examples)} {name} texts were longer than {self.max_length} tokens "
                    "and lost tokens from the left (no pair dropped)",
                    "warning",
                )
        self.log_loaded(
            dtype,
            started,
            unit="pairs",
            train=len(train.examples),
            tokens=train.tokens,
            evaluation=len(self.evaluation.examples) if self.evaluation is not None else None,
        )

        trainer_class, collator_class = _trainer_class()
        args = RewardConfig(
            **trainer_args(
                config,
                self.out_dir,
                device=device,
                dtype=dtype,
                max_length=None,  # already fitted: TRL's length filter would only drop pairs
                center_rewards_coefficient=config.center_rewards_coefficient,
            )
        )
        head = next((name for name in HEAD_NAMES if hasattr(model, name)), None)
        evaluated_in_training = self.evaluation is not None and config.eval_steps > 0
        trainer = trainer_class(
            model=model,
            args=args,
            data_collator=collator_class(pad_token_id=tokenizer.pad_token_id),
            train_dataset=Dataset.from_list(train.examples),
            eval_dataset=Dataset.from_list(self.evaluation.examples) if evaluated_in_training else None,
            processing_class=tokenizer,
            peft_config=peft_config(config, "SEQ_CLS", modules_to_save=[head] if head else None),
            callbacks=[events_callback(events)],
        )
        data = {"train_pairs": len(train.examples), "train_tokens": train.tokens, "train_texts_cut": train.cut}
        return Setup(trainer, tokenizer, data)

    def kind_metrics(self, result, train_seconds: float) -> dict[str, Any]:
        return {"max_length": self.max_length}

    def evaluate(self, setup: Setup, steps: int) -> dict[str, Any]:
        """The pairwise accuracy and mean margin on the eval split, scored here (see the module docstring)."""
        if self.evaluation is None:
            return {}
        eval_started = time.monotonic()
        measured = pairwise_accuracy(
            setup.trainer.model,
            self.evaluation.examples,
            pad_token_id=setup.tokenizer.pad_token_id,
            batch_size=self.config.per_device_eval_batch_size,
        )
        for name in ("accuracy", "mean_margin"):
            self.events.metric(f"eval_{name}", measured[name], step=steps)
        pairs = len(self.evaluation.examples)
        self.events.log(
            f"eval: pairwise accuracy {measured['accuracy']:.3f} on {pairs} pairs, "
            f"mean margin {measured['mean_margin']:.3f} ({time.monotonic() - eval_started:.1f} s)"
        )
        eval_metrics = {f"eval_{name}": value for name, value in measured.items()}
        return {**eval_metrics, "eval_pairs": pairs, "eval_texts_cut": self.evaluation.cut}

    def merges_adapter(self) -> bool:
        return True  # the merged folder is what a reward model registers (its config has no merge_adapter)


def _within_window(max_length: int, model, events: EventWriter) -> int:
    """``max_length``, capped at the model's position window (with a warning)."""
    window = getattr(model.config, "max_position_embeddings", None)
    if window and window < max_length:
        events.log(f"max_length {max_length} is beyond the model's {window} positions: using {window}", "warning")
        return window
    return max_length


def run(config: RewardModelConfig, out_dir: Path, events: EventWriter) -> dict:
    return RewardModelRun(config, out_dir, events).run()
