"""The ``reward_model`` run config (light: no torch, no trl; the web process validates with it)."""

import string
from dataclasses import dataclass
from typing import ClassVar

from training.ml.configs import ConfigError, PeftOptions, TrainConfig, worker_path

# Learning rates when the config leaves ``learning_rate`` unset. ``full``: all-MiniLM-L6-v2 on the
# HH-RLHF harmless pairs (bench/reward_model.py), 2 epochs, max_length 256: 3e-5 held out 0.654,
# 5e-5 0.622 (it overfits in the second epoch); on bench/reward_quality.py's train/dev/test split (1,100
# train pairs) 3e-5 gives dev 0.649, test 0.624 (5e-5, 1 epoch: dev 0.682, test 0.578; one seed, within
# dev noise: 3e-5 kept). LoRA needs larger steps: 5e-4 (r16/alpha32, all-linear)
# with SmolLM2-135M-Instruct, max_length 128, ~0.55 epoch gives dev 0.669, test 0.585 (not tuned further:
# ~60 s/step on the shared 2-core CPU).
DEFAULT_LEARNING_RATES = {"full": 3e-5, "none": 3e-5, "lora": 5e-4}
REWARD_PEFT_METHODS = ("full", "none", "lora")


@dataclass(kw_only=True)
class RewardModelConfig(PeftOptions, TrainConfig):
    """A Bradley-Terry reward model (TRL ``RewardTrainer``) on a snapshot's pair files.

    ``train_file`` (and the optional ``eval_file``): JSONL rows with ``prompt``, ``chosen`` and
    ``rejected`` (the completions alone, as a snapshot writes them), optionally ``margin`` and
    ``weight``. Each side is scored as one text: with ``prompt_template`` unset (null), the prompt,
    then the completion, a space between them when neither has one -- exactly the text the ``rlhf``
    and ``evaluate`` kinds score with the trained model (``training.ml.rewards.reward_text``); a
    template (``"{prompt}\\n{completion}"``) joins them otherwise. A text longer than ``max_length``
    tokens loses tokens from the left (the special tokens the tokenizer adds are kept): nothing is
    dropped.

    ``model_path``: any model ``AutoModelForSequenceClassification`` loads with one label -- a causal
    LM (Llama, SmolLM2: the score head is new, the last non-pad token is scored) or an encoder (BERT,
    all-MiniLM-L6-v2: the classifier head is new). ``peft_method``: ``full`` (default, right for small
    encoders) or ``lora`` (adapters plus the trainable head; ``out/model`` gets the merged weights).
    ``learning_rate`` unset means the method's default (full 3e-5, LoRA 5e-4). The defaults (2 epochs,
    max_length 256, warmup 0.1, batch 8) reach 0.65 held-out pairwise accuracy with all-MiniLM-L6-v2 on
    the HH-RLHF harmless sample (1,259 train pairs).

    ``margin``: subtract the pair's ``margin`` column inside the loss
    (``-logsigmoid(r_chosen - r_rejected - margin)``). ``use_weights``: weight each pair's loss by its
    ``weight`` column (TRL ignores it), normalized to mean 1 over the file so the learning rate keeps
    its meaning. ``center_rewards_coefficient``: TRL's penalty that keeps rewards centred on zero
    (0.01 is the usual value). ``append_eos``: end each text with the eos token as TRL does for raw
    text (off: the rlhf scorer does not add it).
    """

    KIND: ClassVar[str] = "reward_model"

    train_file: str = worker_path()
    eval_file: str | None = worker_path(default=None)
    peft_method: str = "full"
    learning_rate: float | None = None
    num_train_epochs: float = 2.0
    max_length: int = 256
    warmup_ratio: float = 0.1
    margin: bool = False
    use_weights: bool = True
    center_rewards_coefficient: float | None = None
    prompt_template: str | None = None
    append_eos: bool = False

    def validate(self) -> None:
        self.validate_peft()
        if self.peft_method not in REWARD_PEFT_METHODS:
            raise ConfigError(
                "peft_method",
                f"a reward model trains with {', '.join(REWARD_PEFT_METHODS)}, not {self.peft_method!r} "
                "(its merged weights must be a plain model folder)",
            )
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.peft_method]
        super().validate()
        if not self.train_file:
            raise ConfigError("train_file", "required: a JSONL file of {prompt, chosen, rejected} rows")
        if self.eval_steps > 0 and not self.eval_file:
            raise ConfigError("eval_steps", "evaluating every eval_steps needs an eval_file")
        if self.center_rewards_coefficient is not None and not 0 <= self.center_rewards_coefficient <= 10:
            raise ConfigError(
                "center_rewards_coefficient",
                f"must be in [0, 10] (0.01 is usual), got {self.center_rewards_coefficient}",
            )
        if self.prompt_template is not None:
            check_template(self.prompt_template)


MAX_TEMPLATE_CHARS = 10_000


def check_template(template: str) -> None:
    """A template names ``{completion}`` once and ``{prompt}`` at most once, and nothing else: no
    attribute or index access (``{prompt.__class__}``, ``{prompt[0]}``), no conversion (``!r``) and
    no format spec (``{prompt:>99999999}`` would build a huge string in the worker)."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ConfigError("prompt_template", f"at most {MAX_TEMPLATE_CHARS:,} characters, got {len(template):,}")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError("prompt_template", f"not a valid template: {exc}") from None
    for name, spec, conversion in fields:
        if name not in ("prompt", "completion"):
            raise ConfigError("prompt_template", f"unknown placeholder {{{name}}}; use {{prompt}} and {{completion}}")
        if spec or conversion:
            written = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(
                "prompt_template", f"placeholder {written} has a conversion or format spec; write {{{name}}} alone"
            )
    names = [name for name, _, _ in fields]
    if names.count("completion") != 1 or names.count("prompt") > 1:
        raise ConfigError("prompt_template", "must contain {completion} once and {prompt} at most once")


CONFIG = RewardModelConfig
