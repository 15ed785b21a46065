"""The ``ai_feedback`` run config (light: no torch; the web process validates with it)."""

from dataclasses import dataclass
from typing import ClassVar

# A module import: training.ml.constitution may be what is being imported (it imports configs,
# which registers this module).
from training.ml import constitution
from training.ml.configs import BaseConfig, ConfigError, _check_device_dtype, worker_path


@dataclass(kw_only=True)
class AiFeedbackConfig(BaseConfig):
    """An AI labeler (RLAIF): rank each comparison's completions under a constitution's principle.

    ``comparisons_file``: JSONL of ``{"comparison_id", "prompt", "completions": [{"id", "text"}, ...]}``
    with two or more completions. ``principles``: the constitution (see
    :mod:`training.ml.constitution`); ``principle``: always this key's choice question, or null to
    sample one per comparison (seeded by ``seed`` and the comparison's position). ``both_orders``:
    ask each pair in both orders and average, which cancels the model's preference for a position.
    ``max_length``: tokens per question; a longer one loses conversation text from the left (the
    question and the options are kept). ``use_chat_template``: ask in a user turn of the tokenizer's
    chat template (when it has one) with the assistant's answer prefilled.
    """

    KIND: ClassVar[str] = "ai_feedback"

    model_path: str = worker_path()
    comparisons_file: str = worker_path()
    principles: list[dict]
    gguf_file: str | None = worker_path(default=None)
    principle: str | None = None
    both_orders: bool = True
    batch_size: int = 8
    max_length: int = 1024
    use_chat_template: bool = True
    seed: int = 0
    torch_threads: int | None = None  # None: the worker's default (the cores it owns)
    device: str = "auto"
    dtype: str = "float32"

    def validate(self) -> None:
        _check_device_dtype(self.device, self.dtype)
        if not self.comparisons_file:
            raise ConfigError("comparisons_file", "required: a JSONL file of {comparison_id, prompt, completions} rows")
        constitution.validate_principles(self.principles)
        if self.principle is not None:
            constitution.check_principle_key(self.principles, self.principle, "principle")
        if not 1 <= self.batch_size <= 512:
            raise ConfigError("batch_size", f"must be 1..512, got {self.batch_size}")
        if not 16 <= self.max_length <= 131072:
            raise ConfigError("max_length", f"must be 16..131072, got {self.max_length}")


CONFIG = AiFeedbackConfig
