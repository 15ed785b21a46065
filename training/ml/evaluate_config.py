"""The ``evaluate`` run config (light: no torch; the web process validates with it)."""

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from training.ml.configs import BaseConfig, ConfigError, GenerateConfig, _check_device_dtype, worker_path

METRICS = ("rouge", "bleu", "reward", "kl")
GENERATION_KEYS = ("name", "max_new_tokens", "greedy", "temperature", "top_p", "top_k")
SAMPLING_KEYS = ("temperature", "top_p", "top_k")
NAME_RE = re.compile(r"^[A-Za-z0-9_.=+-]{1,64}$")
# Every variant runs under every generation config: the table (and the run) grows with the product.
MAX_VARIANTS = 64
MAX_GENERATIONS = 32


def _default_generations() -> list[dict]:
    return [{"name": "greedy", "greedy": True}]


@dataclass(kw_only=True)
class EvaluateConfig(BaseConfig):
    """Score a model on a data set under prompt variants x generation configs (a table of metrics).

    ``data_file`` (and ``offtask_file``, for forgetting: the same metrics on an off-task set): JSONL
    of ``{"id", "reference", "prompts": {"<variant>": "<rendered prompt>", ...}}`` (the platform
    renders its templates; ``reference`` is a string or a list of strings). ``variants``: which
    prompt variants to run (default: all of the first row's). ``limit``: the first N rows of each file.

    The model is ``model_path``, or ``adapter_path`` (a PEFT adapter folder, as ``sft`` writes) over
    it. ``generations``: a list of decoding configs, each ``{"name", "max_new_tokens", "greedy",
    "temperature", "top_p", "top_k"}`` (all optional; greedy unless a sampling key is given;
    ``max_new_tokens`` defaults to the top-level one); errors name the entry, e.g.
    ``generations[1].temperature``.

    ``metrics`` (default: rouge and bleu, plus reward when ``reward_model_path`` is given, plus kl
    when there is a base to compare with): ``rouge`` (ROUGE-1/2/L/Lsum), ``bleu``, ``reward`` (the
    mean score of ``reward_model_path``, a sequence-classification folder with its own tokenizer, on
    the decoded prompt + completion text), ``kl`` (to ``base_model_path``; without one, an
    ``adapter_path`` model is compared with the same model with its adapter disabled).
    """

    KIND: ClassVar[str] = "evaluate"

    model_path: str = worker_path()
    data_file: str = worker_path()
    adapter_path: str | None = worker_path(default=None)
    base_model_path: str | None = worker_path(default=None)
    reward_model_path: str | None = worker_path(default=None)
    offtask_file: str | None = worker_path(default=None)
    variants: list[str] = field(default_factory=list)
    generations: list = field(default_factory=_default_generations)
    metrics: list[str] = field(default_factory=list)
    max_new_tokens: int = 128
    max_prompt_tokens: int = 1024
    limit: int | None = None
    batch_size: int = 8
    reward_max_length: int = 512
    reward_batch_size: int = 16
    seed: int = 0
    torch_threads: int | None = None  # None: the worker's default (the cores it owns)
    device: str = "auto"
    dtype: str = "float32"

    def validate(self) -> None:
        _check_device_dtype(self.device, self.dtype)
        if not self.data_file:
            raise ConfigError("data_file", "required: a JSONL file of {id, reference, prompts} rows")
        if not 1 <= self.batch_size <= 512:
            raise ConfigError("batch_size", f"must be 1..512, got {self.batch_size}")
        if not 1 <= self.reward_batch_size <= 512:
            raise ConfigError("reward_batch_size", f"must be 1..512, got {self.reward_batch_size}")
        if not 8 <= self.reward_max_length <= 131072:
            raise ConfigError("reward_max_length", f"must be 8..131072, got {self.reward_max_length}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError("max_new_tokens", f"must be 1..4096, got {self.max_new_tokens}")
        if not 1 <= self.max_prompt_tokens <= 131072:
            raise ConfigError("max_prompt_tokens", f"must be 1..131072, got {self.max_prompt_tokens}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit", f"must be >= 1 (or null for every row), got {self.limit}")
        if len(self.variants) > MAX_VARIANTS:
            raise ConfigError("variants", f"at most {MAX_VARIANTS} prompt variants, got {len(self.variants)}")
        if len(set(self.variants)) != len(self.variants):
            raise ConfigError("variants", "a variant is named twice")
        self.generation_configs()  # validates every entry
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ConfigError("metrics", f"unknown metric {unknown[0]!r}; use {', '.join(METRICS)}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ConfigError("metrics", "a metric is named twice")
        if "reward" in self.metrics and not self.reward_model_path:
            raise ConfigError("metrics", "reward needs reward_model_path (a sequence-classification model folder)")
        if "kl" in self.metrics and not self.has_kl_base:
            raise ConfigError(
                "metrics", "kl needs base_model_path (or adapter_path: the base is the model without its adapter)"
            )

    @property
    def has_kl_base(self) -> bool:
        return bool(self.base_model_path or self.adapter_path)

    def metric_names(self) -> list[str]:
        """The metrics asked for, or the defaults for what the config gives (see the class docstring)."""
        if self.metrics:
            return list(self.metrics)
        names = ["rouge", "bleu"]
        if self.reward_model_path:
            names.append("reward")
        if self.has_kl_base:
            names.append("kl")
        return names

    def generation_configs(self) -> list[tuple[str, GenerateConfig]]:
        """``(name, GenerateConfig)`` for each entry of ``generations``; ConfigError names the entry's field."""
        if not isinstance(self.generations, list) or not self.generations:
            raise ConfigError("generations", "expected a non-empty list of generation configs")
        if len(self.generations) > MAX_GENERATIONS:
            raise ConfigError(
                "generations", f"at most {MAX_GENERATIONS} generation configs, got {len(self.generations)}"
            )
        configs, names = [], set()
        for i, entry in enumerate(self.generations):
            where = f"generations[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(where, 'expected an object such as {"greedy": true, "max_new_tokens": 128}')
            unknown = sorted(set(entry) - set(GENERATION_KEYS))
            if unknown:
                raise ConfigError(f"{where}.{unknown[0]}", f"unknown option; use {', '.join(GENERATION_KEYS)}")
            sampling = [k for k in SAMPLING_KEYS if entry.get(k) is not None]
            greedy = entry.get("greedy", not sampling)
            if greedy is True and sampling:
                raise ConfigError(f"{where}.{sampling[0]}", "greedy decoding does not sample; set greedy: false")
            name = entry.get("name", _default_name(entry, greedy))
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise ConfigError(f"{where}.name", "1-64 letters, digits or _ . = + - (it names metrics)")
            if name in names:
                raise ConfigError(f"{where}.name", f"{name!r} names two generation configs")
            names.add(name)
            options: dict[str, Any] = {k: v for k, v in entry.items() if k != "name"}
            options.setdefault("greedy", greedy)
            options.setdefault("max_new_tokens", self.max_new_tokens)
            try:
                generate = GenerateConfig.from_dict(
                    {
                        "model_path": self.model_path,
                        "prompts_file": self.data_file,
                        "k": 1,
                        "batch_size": self.batch_size,
                        "max_prompt_tokens": self.max_prompt_tokens,
                        "seed": self.seed,
                        "torch_threads": self.torch_threads,
                        "device": self.device,
                        "dtype": self.dtype,
                        **options,
                    }
                )
            except ConfigError as exc:
                raise ConfigError(f"{where}.{exc.field}", exc.message) from None
            configs.append((name, generate))
        return configs


def _default_name(entry: dict, greedy: bool) -> str:
    if greedy:
        return "greedy"
    short = {"temperature": "t", "top_p": "p", "top_k": "k"}
    parts = [f"{short[key]}{entry[key]}" for key in SAMPLING_KEYS if entry.get(key) is not None]
    return "sample" + ("_" + "_".join(parts) if parts else "")


CONFIG = EvaluateConfig
