"""The ``cai_revise`` run config (light: no torch; the web process validates with it)."""

from dataclasses import dataclass
from typing import ClassVar

# A module import: training.ml.constitution may be what is being imported (it imports configs,
# which registers this module).
from training.ml import constitution
from training.ml.configs import BaseConfig, ConfigError, GenerateConfig, _check_device_dtype, worker_path

GENERATION_FIELDS = ("max_new_tokens", "temperature", "top_k", "top_p", "greedy", "batch_size", "max_prompt_tokens")


@dataclass(kw_only=True)
class CaiReviseConfig(BaseConfig):
    """The supervised stage of Constitutional AI: answer, then critique and revise under principles.

    ``prompts_file``: JSONL of ``{"prompt_id", "prompt"}`` (as ``generate`` reads it).
    ``principles``: the constitution, a list of ``{"key", "name", "critique_request",
    "revision_request", "choice_question"}`` (see :mod:`training.ml.constitution`); errors name the
    entry, e.g. ``principles[2].critique_request``. ``principle_keys``: sample only among these keys
    (default: all). ``sampling``: ``random`` (one principle per prompt per round, seeded by ``seed``,
    the prompt's position and the round) or ``cycle`` (the keys in order across prompts and rounds).
    ``rounds``: critique-revision rounds per prompt (1..8). The decoding fields mean what they mean
    for ``generate`` (one sample per prompt at every stage).
    """

    KIND: ClassVar[str] = "cai_revise"

    model_path: str = worker_path()
    prompts_file: str = worker_path()
    principles: list[dict]
    gguf_file: str | None = worker_path(default=None)
    rounds: int = 1
    principle_keys: list[str] | None = None
    sampling: str = "random"
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_k: int | None = 50
    top_p: float | None = 0.95
    greedy: bool = False
    batch_size: int = 8
    max_prompt_tokens: int = 1024
    seed: int = 0
    torch_threads: int | None = None  # None: the worker's default (the cores it owns)
    device: str = "auto"
    dtype: str = "float32"

    def validate(self) -> None:
        _check_device_dtype(self.device, self.dtype)
        if not self.prompts_file:
            raise ConfigError("prompts_file", "required: a JSONL file of {prompt_id, prompt} rows")
        constitution.validate_principles(self.principles)
        if not 1 <= self.rounds <= 8:
            raise ConfigError("rounds", f"must be 1..8, got {self.rounds}")
        if self.sampling not in constitution.SAMPLING:
            raise ConfigError("sampling", f"use one of {', '.join(constitution.SAMPLING)}, not {self.sampling!r}")
        if self.principle_keys is not None:
            if not isinstance(self.principle_keys, list) or not all(isinstance(k, str) for k in self.principle_keys):
                raise ConfigError("principle_keys", "expected a list of principle keys (or null for all)")
            if not self.principle_keys:
                raise ConfigError("principle_keys", "name at least one principle (or null for all)")
            if len(set(self.principle_keys)) != len(self.principle_keys):
                raise ConfigError("principle_keys", "a key is named twice")
            for key in self.principle_keys:
                constitution.check_principle_key(self.principles, key, "principle_keys")
        if not 1 <= self.max_prompt_tokens <= 131072:
            raise ConfigError("max_prompt_tokens", f"must be 1..131072, got {self.max_prompt_tokens}")
        self.generate_config()  # the decoding fields, checked as generate checks them

    def sampled_keys(self) -> list[str]:
        return list(self.principle_keys) if self.principle_keys else [p["key"] for p in self.principles]

    def generate_config(self) -> GenerateConfig:
        """The decoding settings of every stage (k=1); a bad value's ConfigError names this config's field."""
        return GenerateConfig.from_dict(
            {
                "model_path": self.model_path,
                "prompts_file": self.prompts_file,
                "gguf_file": self.gguf_file,
                "k": 1,
                "seed": self.seed,
                "torch_threads": self.torch_threads,
                "device": self.device,
                "dtype": self.dtype,
                **{name: getattr(self, name) for name in GENERATION_FIELDS},
            }
        )


CONFIG = CaiReviseConfig
