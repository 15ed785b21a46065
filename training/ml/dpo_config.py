"""The ``dpo`` run config (light: no torch, no trl; the web process validates with it)."""

from dataclasses import dataclass
from typing import ClassVar

from training.ml.configs import ConfigError, PeftOptions, TrainConfig, worker_path

# The loss types of TRL 1.16's DPOTrainer (``DPOConfig.loss_type``).
LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)
DPO_PEFT_METHODS = ("lora", "full", "none")
# Learning rates when the config leaves ``learning_rate`` unset: DPO moves the policy away from the
# reference slowly; adapters need larger steps than full fine-tuning (TRL's default is 1e-6).
DEFAULT_LEARNING_RATES = {"lora": 5e-5, "full": 1e-6, "none": 1e-6}


@dataclass(kw_only=True)
class DPOConfig(PeftOptions, TrainConfig):
    """Direct preference optimization of a causal LM (TRL ``DPOTrainer``) on a snapshot's pair files.

    ``train_file`` (and the optional ``eval_file``): JSONL rows with ``prompt``, ``chosen``,
    ``rejected`` (the completions alone), as a snapshot writes them; other columns are ignored.
    The prompt is formatted as generation formats it (one user turn of the chat template when the
    tokenizer has one); each completion ends with the eos token. A pair longer than ``max_length``
    loses prompt tokens from the left (``max_prompt_length``, if set, caps the prompt first); the
    completions are cut from the right only when they alone do not fit.

    ``peft_method``: ``lora`` (default: the reference model is the same model with its adapters
    off, nothing is loaded twice) or ``full`` (a second, frozen copy is the reference).
    ``learning_rate`` unset means the method's default (LoRA 5e-5, full 1e-6). ``beta``: the
    strength of the pull towards the reference (TRL's default 0.1; > 0). ``loss_type``: one of
    TRL's DPO losses; ``label_smoothing`` is the flip probability of ``robust`` (< 0.5) and the
    epsilon of ``exo_pair`` (> 0 required there). ``eval_before``: evaluate the eval split before
    training too (policy == reference then, so its preference accuracy is 0 and its loss log 2: a
    check, not a baseline). ``merge_adapter`` (LoRA): also write the merged weights to ``out/model``.
    """

    KIND: ClassVar[str] = "dpo"

    train_file: str = worker_path()
    eval_file: str | None = worker_path(default=None)
    peft_method: str = "lora"
    learning_rate: float | None = None
    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    max_length: int = 512
    max_prompt_length: int | None = None
    eval_before: bool = True
    merge_adapter: bool = True

    def validate(self) -> None:
        self.validate_peft()
        if self.peft_method not in DPO_PEFT_METHODS:
            raise ConfigError("peft_method", f"DPO trains with {', '.join(DPO_PEFT_METHODS)}, not {self.peft_method!r}")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.peft_method]
        super().validate()
        if not self.train_file:
            raise ConfigError("train_file", "required: a JSONL file of {prompt, chosen, rejected} rows")
        if self.eval_steps > 0 and not self.eval_file:
            raise ConfigError("eval_steps", "evaluating every eval_steps needs an eval_file")
        if not self.beta > 0:
            raise ConfigError("beta", f"must be > 0 (the pull towards the reference model), got {self.beta}")
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError("loss_type", f"use one of {', '.join(LOSS_TYPES)}, not {self.loss_type!r}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ConfigError("label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing}")
        if self.loss_type == "exo_pair" and self.label_smoothing == 0:
            raise ConfigError("label_smoothing", "exo_pair needs label_smoothing > 0 (the EXO paper uses 1e-3)")
        if self.max_prompt_length is not None and not 1 <= self.max_prompt_length < self.max_length:
            raise ConfigError(
                "max_prompt_length", f"must be 1..max_length-1 ({self.max_length - 1}), got {self.max_prompt_length}"
            )


CONFIG = DPOConfig
