"""The train-and-report flow the Trainer-based kinds (sft, dpo, reward_model) share. Pure ML: no Django.

:class:`TrainAndReport` runs it; a kind subclasses it and fills in the hooks::

    torch setup -> build (the kind: tokenizer, data, model, Trainer) -> log the trainable parameters
    -> resume from an earlier attempt's checkpoint, or evaluate_before -> train
    -> the metrics: train_loss, steps, the data's numbers, time, parameters, kind_metrics
    -> evaluate -> save_outputs (merged when merges_adapter) -> {"outputs": [...], "metrics": {...}}

Nothing here catches an exception: a failing hook ends the run before anything is saved, and the
command line reports it as the run's ``error`` event (exit 1).
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from training.ml.events import EventWriter
from training.ml.hf_training import resume_checkpoint, save_outputs, torch_setup


@dataclass
class Setup:
    """What a kind's ``build`` hands the flow."""

    trainer: Any  # a transformers Trainer, with the events callback
    tokenizer: Any  # saved beside the weights
    data_metrics: dict[str, int]  # the train split (rows or pairs, tokens, how many cut), reported after ``steps``


class TrainAndReport:
    """One run of a Trainer-based kind: :meth:`run` is the shared flow, the other methods its hooks.

    A kind sets ``task`` and writes :meth:`build`; the other hooks default to doing nothing extra.
    ``build`` may keep on ``self`` what the kind's later hooks read (its eval split, say).
    """

    task: ClassVar[str]  # the outputs' task: causal-lm, reward-model
    share_decimals: ClassVar[int] = 3  # of the trainable share in the parameters log line

    def __init__(self, config, out_dir: Path, events: EventWriter):
        self.config = config
        self.out_dir = Path(out_dir)
        self.events = events
        self.method = "full" if config.peft_method == "none" else config.peft_method

    def run(self) -> dict:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        setup = self.build(*torch_setup(self.config))
        trainable, total = parameter_counts(setup.trainer.model)
        share = f"{100 * trainable / total:.{self.share_decimals}f}"
        self.events.log(f"{self.method}: {trainable:,} trainable parameters of {total:,} ({share}%)")

        checkpoint = resume_checkpoint(self.out_dir)
        before: dict[str, Any] = {}
        if checkpoint:
            self.events.log(f"resuming from {Path(checkpoint).name} (an earlier attempt's checkpoint)")
        else:  # a resumed run is past "before training"
            before = self.evaluate_before(setup)
        train_started = time.monotonic()
        result = setup.trainer.train(resume_from_checkpoint=checkpoint)
        train_seconds = time.monotonic() - train_started

        metrics = {
            "train_loss": self.train_loss(setup, result, checkpoint),
            "steps": int(result.global_step),
            **setup.data_metrics,
            "train_seconds": round(train_seconds, 1),
            "trainable_params": trainable,
            "total_params": total,
            "peft_method": self.method,
            "learning_rate": self.config.learning_rate,
            **self.kind_metrics(result, train_seconds),
        }
        if checkpoint:
            metrics["resumed_from"] = Path(checkpoint).name
        metrics.update(before)
        metrics.update(self.evaluate(setup, metrics["steps"]))

        outputs = save_outputs(
            setup.trainer.model,
            setup.tokenizer,
            self.out_dir,
            task=self.task,
            method=self.method,
            merge=self.merges_adapter(),
        )
        self.events.log(f"saved {', '.join(o['dir'] for o in outputs)} in {self.out_dir}")
        return {"outputs": outputs, "metrics": metrics}

    # For the kinds' ``build``.

    def log_loaded(
        self, dtype: str, started: float, *, unit: str, train: int, tokens: int, evaluation: int | None
    ) -> None:
        """The line each kind logs once its model and data are in memory (``evaluation``: eval rows, if any)."""
        of_eval = f", {evaluation} eval {unit}" if evaluation else ""
        self.events.log(
            f"loaded {self.config.model_path} ({dtype}, {self.method}) and {train} train {unit} ({tokens} tokens)"
            f"{of_eval} in {time.monotonic() - started:.1f} s"
        )

    # The hooks.

    def build(self, device: str, dtype: str) -> Setup:
        """The tokenizer, the data sets, the model and its Trainer (with ``events_callback``)."""
        raise NotImplementedError

    def evaluate_before(self, setup: Setup) -> dict[str, Any]:
        """Metrics measured before the first step (not when the run resumes)."""
        return {}

    def train_loss(self, setup: Setup, result, checkpoint: str | None) -> float | None:
        """The reported ``train_loss``: the Trainer's mean over this attempt's steps."""
        return float(result.training_loss)

    def kind_metrics(self, result, train_seconds: float) -> dict[str, Any]:
        """The kind's own numbers of the attempt (its settings, say), reported after ``learning_rate``."""
        return {}

    def evaluate(self, setup: Setup, steps: int) -> dict[str, Any]:
        """Metrics measured after training, on the eval split."""
        return {}

    def merges_adapter(self) -> bool:
        """Whether trained adapters are also merged into ``out/model`` (a soft prompt cannot be)."""
        return self.method == "lora" and self.config.merge_adapter


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters of the model the Trainer trains (PEFT-wrapped or not)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
