"""Every run kind, declared once: what it reads, how its inputs resolve, where it runs, what it
leaves behind. The API (``POST /api/runs/``, ``GET /api/runs/kinds/``), the start form (which reads
that endpoint) and the runner all read ``KINDS``.

The ML side of a kind (the module that runs it, its config class) is ``training.ml.kinds.ML_KINDS``,
which the pure ``training.ml`` package reads; a spec here builds on it (``config_class``), and
``RunKind``'s choices name the same kinds in the same order (tests/training/test_kinds.py).

Adding a kind: its config module and run module, a line in ``ML_KINDS``, a member of ``RunKind``
(and its migration), and a ``KindSpec`` below.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models_registry.models import Task
from training.ml.configs import BaseConfig, available_configs
from training.models import TrainingRun
from training.services import cai, run_inputs
from training.services.generation import CompletionsIngest
from training.services.run_outputs import OutputsRegistrar
from training.services.side_by_side import SamplesIngest
from training.tasks import QUEUE_GPU

# resolve(resolved, inputs, config, project, base_version): fills a run_inputs.Resolved, 400s name the field.
Resolver = Callable[[run_inputs.Resolved, dict, dict, Any, Any], None]
# handler(run, folder) -> None or an object with ``on_artifact(event)`` and ``finish(result=, succeeded=)
# -> dict`` (merged into the run's outputs; an exception fails the run).
HandlerFactory = Callable[[TrainingRun, Path], Any]


@dataclass(frozen=True)
class KindSpec:
    kind: str
    # What ``inputs`` may name; none (and no resolver): started by its own service (generate).
    inputs: tuple[str, ...] = ()
    resolve: Resolver | None = None
    base_tasks: tuple[str, ...] = (Task.CAUSAL_LM,)  # what inputs.base_version may be
    base_adapter_ok: bool = False  # an adapter version as base_version (over its base)
    always_filled: tuple[str, ...] = ()  # config fields the platform fills whatever the inputs
    output_task: str | None = None  # registers its outputs (as models of this task) in inputs.output_model
    handler: HandlerFactory | None = None  # stores its output as it arrives and when it ends
    queue: str = QUEUE_GPU  # every kind loads a model: GPU workers (one process per GPU, prefetch 1)
    multi_gpu: bool = False  # trains with a (TRL) Trainer: spreads over the worker's GPUs via accelerate
    hints: dict[str, str] = field(default_factory=dict)  # what an input means for this kind (the form)
    inputs_note: str = ""  # how the inputs combine (one or the other), shown above them in the form
    common_config: tuple[str, ...] = ()  # the config fields the form shows up front (the rest: "Advanced")
    # The scalar metrics its result reports (``outputs.result.metrics``), which a sweep may rank trials
    # by; those that are also metric events during the run (with a step) feed a sweep's pruner.
    metrics: tuple[str, ...] = ()

    @property
    def config_class(self) -> type[BaseConfig] | None:
        """Its config class (``training.ml``), None while the kind's config module is not built."""
        return available_configs().get(self.kind)

    def version_tasks(self) -> dict[str, list[str]]:
        """The registry tasks each of its version inputs accepts (the resolver refuses the others)."""
        tasks = {
            "base_version": self.base_tasks,
            "reward_version": run_inputs.REWARD_TASKS,
            "kl_base_version": run_inputs.KL_BASE_TASKS,
        }
        return {name: [str(t) for t in tasks[name]] for name in self.inputs if name in tasks}

    @property
    def startable(self) -> bool:
        """Started through ``POST /api/runs/`` (generate runs start from a project's generate endpoint)."""
        return self.resolve is not None


def _generate_handler(run: TrainingRun, folder: Path):
    """A side-by-side evaluation's samples, or a project's new comparisons, as they arrive."""
    return SamplesIngest.for_run(run, folder) or CompletionsIngest.for_run(run, folder)


_PAIRS_HINTS = {
    "snapshot": "A ready snapshot of this project. Leave empty to learn a cai_run instead.",
    "cai_run": "Instead of a snapshot: the pairs of a succeeded cai_revise run (each revision over its first answer).",
}

_TRAINING_COMMON = ("learning_rate", "num_train_epochs", "max_steps", "peft_method", "lora_r")
_PAIRS_NOTE = (
    "Pairs: a ready snapshot, or a cai_run (each revision preferred over its first answer) — one or the other."
)

_SPECS = (
    KindSpec(kind="generate", handler=_generate_handler),
    KindSpec(
        kind="sft",
        inputs_note="Training data: a dataset and its target field (prompts rendered by the template), or a cai_run "
        "(a cai_revise run's revisions) — one or the other.",
        common_config=_TRAINING_COMMON,
        inputs=("base_version", "dataset", "template", "target_field", "cai_run", "limit", "output_model"),
        resolve=cai.cai_run_or(run_inputs.sft_files),
        output_task=Task.CAUSAL_LM,
        handler=OutputsRegistrar.for_run,
        multi_gpu=True,
        metrics=("eval_loss", "train_loss"),  # eval_loss with an eval split (events every eval_steps)
        hints={
            "dataset": "With a target field: the rows rendered by the template are the prompts. "
            "Leave empty to learn a cai_run instead.",
            "cai_run": "Instead of a dataset: learn the final revisions of a succeeded cai_revise run.",
            "limit": "At most this many dataset rows. Empty: all.",
        },
    ),
    KindSpec(
        kind="reward_model",
        inputs_note=_PAIRS_NOTE,
        common_config=_TRAINING_COMMON,
        inputs=("base_version", "snapshot", "cai_run", "output_model"),
        resolve=cai.cai_run_or(run_inputs.snapshot_pairs),
        base_tasks=(Task.CAUSAL_LM, Task.CLASSIFIER, Task.REWARD_MODEL),
        output_task=Task.REWARD_MODEL,
        handler=OutputsRegistrar.for_run,
        multi_gpu=True,
        metrics=("eval_accuracy", "eval_mean_margin", "train_loss"),
        hints={"base_version": "The model to start from: a causal LM, classifier or reward model.", **_PAIRS_HINTS},
    ),
    KindSpec(
        kind="rlhf",
        inputs_note="Rewards: a reward model version, or a rule reward named in the config's reward_function.",
        common_config=("algorithm", "kl_coef", *_TRAINING_COMMON),
        inputs=("base_version", "dataset", "template", "reward_version", "limit", "output_model"),
        resolve=run_inputs.rlhf_prompts,
        output_task=Task.CAUSAL_LM,
        handler=OutputsRegistrar.for_run,
        multi_gpu=True,
        metrics=(  # training.ml.rlhf.common.summary
            "eval_reward_after",
            "eval_heldout_reward_after",
            "eval_reward_gain",
            "eval_kl_after",
            "reward_final",
            "kl_final",
        ),
        hints={
            "dataset": "Its train (and eval) rows, rendered by the template, are the prompts.",
            "reward_version": "Required unless the config's reward_function names a rule reward.",
        },
    ),
    KindSpec(
        kind="dpo",
        inputs_note=_PAIRS_NOTE,
        common_config=(*_TRAINING_COMMON, "beta"),
        inputs=("base_version", "snapshot", "cai_run", "output_model"),
        resolve=cai.cai_run_or(run_inputs.snapshot_pairs),
        output_task=Task.CAUSAL_LM,
        handler=OutputsRegistrar.for_run,
        multi_gpu=True,
        metrics=(  # training.ml.dpo.EVAL_METRICS, with an eval split
            "eval_rewards_accuracy",
            "eval_rewards_margin",
            "eval_loss",
            "eval_rewards_chosen",
            "eval_rewards_rejected",
            "train_loss",
        ),
        hints=_PAIRS_HINTS,
    ),
    KindSpec(
        kind="cai_revise",
        inputs_note="Prompts: a dataset (with a template), or, with no dataset, the project's comparison prompts.",
        common_config=("rounds", "principle_keys", "max_new_tokens"),
        inputs=("base_version", "constitution", "dataset", "template", "split", "limit", "then_sft"),
        resolve=cai.revise,
        always_filled=("prompts_file",),
        handler=cai.CaiResults.for_run,
        metrics=("share_changed", "mean_final_chars", "sft_rows", "pairs"),
        hints={
            "base_version": "The model that answers, critiques and revises.",
            "dataset": "Optional: revise answers to this dataset's rows. Empty: the project's comparison prompts.",
            "template": "Only with a dataset. Empty: the project's default template.",
            "split": "Default: train with a dataset, every split without.",
            "limit": "At most this many prompts. Empty: all.",
        },
    ),
    KindSpec(
        kind="ai_feedback",
        inputs_note="It labels the project's non-gold comparisons that have no AI label yet.",
        common_config=("principle", "both_orders"),
        inputs=("base_version", "constitution", "split", "limit"),
        resolve=cai.feedback,
        always_filled=("comparisons_file",),
        handler=cai.CaiResults.for_run,
        metrics=("order_consistency", "position_bias", "mean_confidence", "ties"),
        hints={
            "base_version": "The AI labeler: a causal LM that judges pairs of completions.",
            "split": "Optional: only comparisons of this split.",
            "limit": "At most this many comparisons. Empty: all that have no AI label yet.",
        },
    ),
    KindSpec(
        kind="evaluate",
        common_config=("max_new_tokens", "generations", "metrics"),
        inputs=(
            "base_version",
            "dataset",
            "split",
            "reference_field",
            "templates",
            "reward_version",
            "kl_base_version",
            "limit",
        ),
        resolve=run_inputs.evaluation_rows,
        base_adapter_ok=True,
        handler=OutputsRegistrar.for_run,
        # training.ml.evaluate's summary: the first variant x generation's row, and the best ROUGE-L.
        metrics=(
            "rouge1",
            "rouge2",
            "rougeL",
            "rougeLsum",
            "bleu",
            "reward",
            "kl",
            "kl_per_token",
            "kl_full_per_token",
            "best_rougeL",
        ),
        hints={
            "base_version": "The version to evaluate (an adapter version is fine).",
            "split": "Default: test.",
            "dataset": "The rows to evaluate on, with their reference answers.",
        },
    ),
)
KINDS: dict[str, KindSpec] = {spec.kind: spec for spec in _SPECS}


def kind_spec(kind: str) -> KindSpec | None:
    return KINDS.get(kind)


def filled_fields(spec: KindSpec) -> frozenset[str]:
    """The config fields the platform fills for a run of this kind (from the inputs it takes, and always)."""
    from_inputs = (name for given, names in run_inputs.FILLS.items() if given in spec.inputs for name in names)
    return frozenset(from_inputs) | frozenset(spec.always_filled)
