"""What the Trainer-based kinds (sft, reward_model, dpo, rlhf via TRL) share. Pure ML: no Django.

- ``trainer_args(config, out_dir)``: the keyword arguments every TRL ``*Config`` takes, from a
  :class:`~training.ml.configs.TrainConfig`, with CPU-friendly settings (no bf16, no gradient
  checkpointing, ``use_cpu``) unless the run is on a GPU; checkpoints in ``out/checkpoints``.
- ``EventsCallback(events)``: a ``TrainerCallback`` that turns the Trainer's logs into ``metric``
  events, steps into ``progress`` and saves into ``checkpoint`` events.
- ``resume_checkpoint(out_dir)``: the newest complete checkpoint of an earlier attempt, or None.
- ``torch_setup(config)``: threads and seed; ``resolve_dtype``; ``read_jsonl`` with line-numbered errors.
- ``peft_config(config, task_type)``: LoRA / prompt tuning from :class:`~training.ml.configs.PeftOptions`.
- ``gguf_kwargs(config)``: the ``from_pretrained`` keywords that read a GGUF file when the config names one.
- ``save_outputs``: writes what the platform registers (the output convention below).

Output convention (the platform registers these after a successful run): the final model goes to
``out/model`` (a plain Hugging Face folder, full weights: merged when the run trained adapters);
adapters go to ``out/adapter``. A kind's ``run`` returns ``{"outputs": [...], "metrics": {...}}``
where each output is ``{"dir": "model", "task": "causal-lm" | "reward-model" | ..., "role":
"merged" | "full" | "adapter"}``.
"""

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from training.ml.configs import ConfigError, TrainConfig
from training.ml.events import EventWriter

CHECKPOINTS = "checkpoints"
MODEL_DIR = "model"
ADAPTER_DIR = "adapter"


def gguf_kwargs(config) -> dict:
    """``{"gguf_file": ...}`` for ``from_pretrained`` when the config names a GGUF file, else nothing."""
    return {"gguf_file": config.gguf_file} if config.gguf_file else {}


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto``: bfloat16 on a GPU that has it, else float32 (CPU bf16 is slow and lossy)."""
    import torch

    if dtype != "auto":
        return dtype
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


def torch_setup(config: TrainConfig) -> tuple[str, str]:
    """Threads and seeds for the run; returns (device, dtype) resolved."""
    import torch
    from transformers import set_seed

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    set_seed(config.seed)
    device = resolve_device(config.device)
    return device, resolve_dtype(config.dtype, device)


def trainer_args(config: TrainConfig, out_dir: Path, *, device: str, dtype: str, **overrides: Any) -> dict:
    """Keyword arguments for a TRL ``*Config`` (they all extend ``TrainingArguments``)."""
    args: dict[str, Any] = {
        "output_dir": str(Path(out_dir) / CHECKPOINTS),
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "per_device_eval_batch_size": config.per_device_eval_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "warmup_steps": config.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio (warmup_ratio is gone)
        "weight_decay": config.weight_decay,
        "lr_scheduler_type": config.lr_scheduler_type,
        "logging_steps": max(config.logging_steps, 1),
        "save_strategy": "steps" if config.save_steps > 0 else "no",
        "save_total_limit": config.save_total_limit or None,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": [],
        "bf16": dtype == "bfloat16",
        "fp16": dtype == "float16",
        "activation_checkpointing": config.gradient_checkpointing,  # transformers 5's name
        "use_cpu": device == "cpu",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "remove_unused_columns": False,
    }
    if config.save_steps > 0:
        args["save_steps"] = config.save_steps
    if config.eval_steps > 0:
        args["eval_strategy"] = "steps"
        args["eval_steps"] = config.eval_steps
    args.update(overrides)
    return args


def resume_checkpoint(out_dir: Path, *, state_file: str = "trainer_state.json") -> str | None:
    """The newest complete checkpoint an earlier attempt of this run left (resume from it), or None.

    An attempt killed while saving leaves a checkpoint folder without its ``state_file`` (the
    Trainer writes ``trainer_state.json`` last): that one is skipped for the one before.
    """
    folder = Path(out_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    steps = {}
    for path in folder.glob("checkpoint-*"):
        if path.is_dir() and path.name.removeprefix("checkpoint-").isdigit():
            steps[int(path.name.removeprefix("checkpoint-"))] = path
    for step in sorted(steps, reverse=True):
        try:
            json.loads((steps[step] / state_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return str(steps[step])
    return None


def _events_callback_class():
    from transformers import TrainerCallback

    class EventsCallback(TrainerCallback):
        """Trainer logs -> metric events; steps -> progress; saves -> checkpoint events."""

        def __init__(self, events: EventWriter):
            self.events = events

        def on_step_end(self, args, state, control, **kwargs):
            self.events.progress(state.global_step, state.max_steps or None)

        def on_log(self, args, state, control, logs=None, **kwargs):
            for name, value in (logs or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    self.events.metric(name, value, step=state.global_step)

        def on_save(self, args, state, control, **kwargs):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.events.checkpoint(f"{CHECKPOINTS}/{path.name}", step=state.global_step)

    return EventsCallback


def events_callback(events: EventWriter):
    return _events_callback_class()(events)


def peft_config(config, task_type: str, *, tokenizer_path: str | None = None, modules_to_save: list[str] | None = None):
    """A PEFT config for ``config.peft_method`` (None for full fine-tuning). ``task_type``: CAUSAL_LM or SEQ_CLS."""
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit

    method = config.peft_method
    if method in ("full", "none"):
        return None
    if method == "lora":
        targets = config.lora_target_modules
        return LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules="all-linear" if targets == ["all-linear"] else targets,
            task_type=task_type,
            modules_to_save=modules_to_save,
        )
    if method == "prompt_tuning":
        init = {}
        if config.prompt_tuning_init_text:
            init = {
                "prompt_tuning_init": PromptTuningInit.TEXT,
                "prompt_tuning_init_text": config.prompt_tuning_init_text,
                "tokenizer_name_or_path": tokenizer_path or config.model_path,
            }
        return PromptTuningConfig(task_type=task_type, num_virtual_tokens=config.num_virtual_tokens, **init)
    raise ConfigError("peft_method", f"unknown method {method!r}")


def read_jsonl(path: str | Path, *, required: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a JSONL file; a bad line raises ValueError naming the file, line and field."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object")
            for name in required:
                if name not in row:
                    raise ValueError(f"{path}, line {number}, field {name!r}: missing")
            rows.append(row)
    return rows


def write_json(path: Path, data: Any) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def output(dir_name: str, task: str, role: str, **extra: Any) -> dict:
    """One entry of a run result's ``outputs`` (see the module docstring)."""
    return {"dir": dir_name, "task": task, "role": role, **extra}


def _emptied(folder: Path) -> Path:
    """``folder`` with what an earlier attempt left there gone."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def save_outputs(model, tokenizer, out_dir: Path, *, task: str, method: str, merge: bool) -> list[dict]:
    """The trained model's folders, each with the tokenizer, and their ``outputs`` entries.

    ``full``: ``out/model`` (role ``full``). Adapters (``lora``, ``prompt_tuning``): ``out/adapter``
    (role ``adapter``) and, with ``merge``, the adapters merged into the base in ``out/model``
    (role ``merged``).
    """
    model.eval()
    if method == "full":
        folder = _emptied(out_dir / MODEL_DIR)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return [output(MODEL_DIR, task, "full")]
    adapter = _emptied(out_dir / ADAPTER_DIR)
    model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    outputs = [output(ADAPTER_DIR, task, "adapter", peft_method=method)]
    if merge:
        folder = _emptied(out_dir / MODEL_DIR)
        merged = model.merge_and_unload()
        merged.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        outputs.append(output(MODEL_DIR, task, "merged"))
    return outputs
