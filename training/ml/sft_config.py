"""The ``sft`` run config (light: no torch, no trl; the web process validates with it)."""

from dataclasses import dataclass
from typing import ClassVar

from training.ml.configs import ConfigError, PeftOptions, TrainConfig, worker_path

# Learning rates that work for each method when the config leaves ``learning_rate`` unset: adapters
# and soft prompts need far larger steps than full fine-tuning.
DEFAULT_LEARNING_RATES = {"lora": 2e-4, "prompt_tuning": 3e-2, "full": 2e-5, "none": 2e-5}


@dataclass(kw_only=True)
class SFTConfig(PeftOptions, TrainConfig):
    """Supervised fine-tuning of a causal LM on prompt -> completion pairs (TRL ``SFTTrainer``).

    ``train_file`` (and the optional ``eval_file``): JSONL of ``{"prompt": ..., "completion": ...}``
    (other keys are ignored). The prompt is formatted as generation formats it: one user turn of the
    tokenizer's chat template when it has one (the completion is then the assistant's reply, its
    leading whitespace dropped), the raw prompt otherwise; the completion ends with the eos token.
    A pair longer than ``max_length`` tokens loses prompt tokens from the left (as generation does),
    the completion only when it alone does not fit.

    ``completion_only_loss`` (default true): the loss counts completion tokens only. ``peft_method``
    and its fields come from :class:`~training.ml.configs.PeftOptions`; ``learning_rate`` unset
    (null) means the method's default (LoRA 2e-4, prompt tuning 3e-2, full 2e-5). ``merge_adapter``
    (LoRA): also write the merged full weights to ``out/model``. Prompt tuning has nothing to merge:
    its run writes only ``out/adapter``.
    """

    KIND: ClassVar[str] = "sft"

    train_file: str = worker_path()
    eval_file: str | None = worker_path(default=None)
    learning_rate: float | None = None
    completion_only_loss: bool = True
    merge_adapter: bool = True

    def validate(self) -> None:
        self.validate_peft()
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.peft_method]
        super().validate()
        if not self.train_file:
            raise ConfigError("train_file", "required: a JSONL file of {prompt, completion} rows")
        if self.eval_steps > 0 and not self.eval_file:
            raise ConfigError("eval_steps", "evaluating every eval_steps needs an eval_file")


CONFIG = SFTConfig
