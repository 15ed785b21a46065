"""Run configs: plain dataclasses that import neither torch nor trl (the web process validates with
them; a test checks the import stays light). ``from_dict`` refuses unknown keys and bad values with
a ConfigError that names the field."""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


class ConfigError(ValueError):
    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


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
        config.validate()
        return config

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
    """Generate K completions for each prompt of ``prompts_file`` (JSONL ``{prompt_id, prompt}``)."""

    KIND: ClassVar[str] = "generate"

    model_path: str
    prompts_file: str
    gguf_file: str | None = None
    k: int = 2
    max_new_tokens: int = 128
    temperature: float = 0.8
    top_k: int | None = 50
    top_p: float | None = 0.95
    greedy: bool = False
    batch_size: int = 8
    max_prompt_tokens: int = 1024
    seed: int = 0
    torch_threads: int | None = 1
    device: str = "auto"
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError("device", f"use auto, cpu, cuda or cuda:N, not {self.device!r}")
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", f"use one of {', '.join(DTYPES)}, not {self.dtype!r}")
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


CONFIGS: dict[str, type[BaseConfig]] = {GenerateConfig.KIND: GenerateConfig}


def config_for(kind: str, data: dict[str, Any]) -> BaseConfig:
    if kind not in CONFIGS:
        raise ConfigError("kind", f"unknown run kind {kind!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[kind].from_dict(data)
