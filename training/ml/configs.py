"""Run configs: plain dataclasses that import neither torch nor trl (the web process validates with
them; a test checks the import stays light). ``from_dict`` refuses unknown keys and bad values with
a ConfigError that names the field."""

import dataclasses
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar

from training.ml.kinds import CONFIGS_MODULE, ML_KINDS


class ConfigError(ValueError):
    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


MAX_TORCH_THREADS = 256  # a constant, not os.cpu_count(): the web validates for workers it cannot see
MAX_SEED = 2**32 - 1  # kinds add offsets to the seed; torch and numpy refuse seeds past 2**64 / 2**32
MAX_STEPS = 10_000_000
MAX_EPOCHS = 1000

# Knobs bounded wherever a kind has them, so a new kind with the field gets the bound too.
COMMON_BOUNDS: dict[str, tuple[int, int]] = {"torch_threads": (1, MAX_TORCH_THREADS), "seed": (0, MAX_SEED)}


WORKER_PATH = "worker_path"
# A field whose name ends so names a path on the workers, marked or not (tests check each is marked).
PATH_SUFFIXES = ("_path", "_file", "_dir", "_paths", "_files", "_dirs")


def worker_path(**kwargs: Any) -> Any:
    """A config field that names a file or folder on the workers: the API lets only platform admins
    set one by hand; everyone else names registry versions, snapshots and datasets in ``inputs``."""
    return field(metadata={WORKER_PATH: True}, **kwargs)


def worker_path_fields(config_class: type) -> frozenset[str]:
    """The fields of a config class that name worker paths: those marked with ``worker_path()``,
    and any whose name ends in a path suffix (so one added unmarked is still caught)."""
    fields = dataclasses.fields(config_class)
    return frozenset(f.name for f in fields if f.metadata.get(WORKER_PATH) or f.name.endswith(PATH_SUFFIXES))


@dataclass
class BaseConfig:
    KIND: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise ConfigError("config", "must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(unknown[0], f"unknown option; {cls.KIND} takes {', '.join(sorted(names))}")
        for f in dataclasses.fields(cls):
            if f.name in data:
                _check_type(f, data[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f.name, "required")
        config = cls(**data)
        config.check_common_bounds()
        config.validate()
        return config

    def check_common_bounds(self) -> None:
        for name, (low, high) in COMMON_BOUNDS.items():
            value = getattr(self, name, None)
            if value is not None and not low <= value <= high:
                default = " (or null for the worker's default)" if name == "torch_threads" else ""
                raise ConfigError(name, f"must be {low}..{high}{default}, got {value}")

    def validate(self) -> None:
        """Cross-field checks; raise ConfigError naming the field."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_type(f: dataclasses.Field, value: Any) -> None:
    expected = f.type.__name__ if isinstance(f.type, type) else str(f.type)
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "int | None": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
        "float | None": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
        "str | None": lambda v: v is None or isinstance(v, str),
        "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "dict": lambda v: isinstance(v, dict),
    }
    check = checks.get(expected)
    if check is not None and not check(value):
        raise ConfigError(f.name, f"expected {expected}, got {type(value).__name__} {value!r:.40}")


DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class GenerateConfig(BaseConfig):
    """Generate K completions for each prompt of ``prompts_file`` (JSONL ``{prompt_id, prompt}``) with
    ``model_path`` (and ``adapter_path``, a PEFT adapter folder as ``sft`` writes, over it)."""

    KIND: ClassVar[str] = "generate"

    model_path: str = worker_path()
    prompts_file: str = worker_path()
    gguf_file: str | None = worker_path(default=None)
    adapter_path: str | None = worker_path(default=None)
    k: int = 2
    max_new_tokens: int = 128
    temperature: float = 0.8
    top_k: int | None = 50
    top_p: float | None = 0.95
    greedy: bool = False
    batch_size: int = 8
    max_prompt_tokens: int = 1024
    seed: int = 0
    torch_threads: int | None = None  # None: the worker's default (the cores it owns)
    device: str = "auto"
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        _check_device_dtype(self.device, self.dtype)
        if self.adapter_path and self.gguf_file:
            raise ConfigError("adapter_path", "an adapter goes over a Hugging Face folder, not a GGUF file")
        if not 1 <= self.k <= 9:
            raise ConfigError("k", f"must be 1..9, got {self.k}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError("max_new_tokens", f"must be 1..4096, got {self.max_new_tokens}")
        if not self.greedy and self.temperature <= 0:
            raise ConfigError("temperature", "must be > 0 when sampling (set greedy: true for greedy decoding)")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError("top_p", f"must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError("top_k", f"must be >= 1, got {self.top_k}")
        if self.greedy and self.k > 1:
            raise ConfigError("greedy", "greedy decoding gives K identical completions; sample (greedy: false) or k: 1")
        if not 1 <= self.batch_size <= 512:
            raise ConfigError("batch_size", f"must be 1..512, got {self.batch_size}")
        if not 1 <= self.max_prompt_tokens <= 131072:
            raise ConfigError("max_prompt_tokens", f"must be 1..131072, got {self.max_prompt_tokens}")


PEFT_METHODS = ("lora", "prompt_tuning", "full", "none")


@dataclass
class TrainConfig(BaseConfig):
    """What every training kind shares (TRL/transformers Trainer settings with CPU-friendly defaults).

    ``model_path`` is a Hugging Face folder on the worker (the platform fills it from the run's
    ``inputs.base_version``). ``max_steps`` > 0 overrides ``num_train_epochs``. Checkpoints every
    ``save_steps`` (0: only at the end) go to ``out/checkpoints``; a run started again on the same
    folder resumes from the newest one. ``dtype`` ``auto`` is bfloat16 on a GPU that supports it,
    float32 on the CPU (TRL's bf16 default is wrong there); gradient checkpointing is off unless asked.
    """

    model_path: str = worker_path()
    gguf_file: str | None = worker_path(default=None)
    learning_rate: float = 5e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    max_length: int = 512
    logging_steps: int = 5
    eval_steps: int = 0
    save_steps: int = 50
    save_total_limit: int = 2
    gradient_checkpointing: bool = False
    seed: int = 0
    torch_threads: int | None = None  # None: the worker's default (the cores it owns)
    device: str = "auto"
    dtype: str = "auto"

    def validate(self) -> None:
        _check_device_dtype(self.device, self.dtype, dtypes=("auto", *DTYPES))
        if self.learning_rate <= 0 or self.learning_rate > 1:
            raise ConfigError("learning_rate", f"must be in (0, 1], got {self.learning_rate}")
        if self.max_steps == 0 or self.max_steps < -1 or self.max_steps > MAX_STEPS:
            raise ConfigError("max_steps", f"must be -1 (use num_train_epochs) or 1..{MAX_STEPS}, got {self.max_steps}")
        if self.max_steps == -1 and not 0 < self.num_train_epochs <= MAX_EPOCHS:
            raise ConfigError("num_train_epochs", f"must be in (0, {MAX_EPOCHS}], got {self.num_train_epochs}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if not 1 <= getattr(self, name) <= 4096:
                raise ConfigError(name, f"must be 1..4096, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        if not 8 <= self.max_length <= 131072:
            raise ConfigError("max_length", f"must be 8..131072, got {self.max_length}")
        for name in ("logging_steps", "eval_steps", "save_steps", "save_total_limit"):
            if not 0 <= getattr(self, name) <= MAX_STEPS:
                raise ConfigError(name, f"must be 0..{MAX_STEPS}, got {getattr(self, name)}")


@dataclass
class PeftOptions:
    """PEFT fields for a kind that trains a causal LM: ``class C(PeftOptions, TrainConfig)`` (this order).

    ``lora``: adapters (r, alpha, dropout, target modules; ``all-linear`` by default) saved, plus
    merged weights; ``prompt_tuning``: ``num_virtual_tokens`` soft prompt tokens; ``full``: every
    weight; ``none`` means ``full``.
    """

    peft_method: str = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    num_virtual_tokens: int = 20
    prompt_tuning_init_text: str | None = None

    def validate_peft(self) -> None:
        if self.peft_method not in PEFT_METHODS:
            raise ConfigError("peft_method", f"use one of {', '.join(PEFT_METHODS)}, not {self.peft_method!r}")
        if not 1 <= self.lora_r <= 1024:
            raise ConfigError("lora_r", f"must be 1..1024, got {self.lora_r}")
        if not 1 <= self.lora_alpha <= 65536:
            raise ConfigError("lora_alpha", f"must be 1..65536, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError("lora_dropout", f"must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise ConfigError("lora_target_modules", "name at least one module (or all-linear)")
        if not 1 <= self.num_virtual_tokens <= 512:
            raise ConfigError("num_virtual_tokens", f"must be 1..512, got {self.num_virtual_tokens}")


def _check_device_dtype(device: str, dtype: str, *, dtypes: tuple[str, ...] = DTYPES) -> None:
    if device != "auto" and device != "cpu" and not device.startswith("cuda"):
        raise ConfigError("device", f"use auto, cpu, cuda or cuda:N, not {device!r}")
    if dtype not in dtypes:
        raise ConfigError("dtype", f"use one of {', '.join(dtypes)}, not {dtype!r}")


CONFIGS: dict[str, type[BaseConfig]] = {GenerateConfig.KIND: GenerateConfig}
# Each other kind's config class lives in its own light module (no torch), named in ML_KINDS.
KIND_CONFIG_MODULES = {kind: ml.config_module for kind, ml in ML_KINDS.items() if ml.config_module != CONFIGS_MODULE}


def _register_kind_configs() -> None:
    for kind, module_name in KIND_CONFIG_MODULES.items():
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a kind not built yet: the API says it is not available
        # A kind module imported before this one is still half-initialized here (no CONFIG yet):
        # config_for registers it on first use.
        if hasattr(module, "CONFIG"):
            CONFIGS[kind] = module.CONFIG


def available_configs() -> dict[str, type[BaseConfig]]:
    """Every kind's config class (registering any whose module was half-imported at first)."""
    if len(CONFIGS) < 1 + len(KIND_CONFIG_MODULES):
        _register_kind_configs()
    return CONFIGS


def config_for(kind: str, data: dict[str, Any]) -> BaseConfig:
    if kind not in available_configs():
        raise ConfigError("kind", f"unknown run kind {kind!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[kind].from_dict(data)


_register_kind_configs()  # at the end: the kind modules import this module's classes
