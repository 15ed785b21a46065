"""The ML side of each run kind, declared once: the module that runs it and the module of its config
class. Pure data (no Django, no torch): ``training.ml.cli`` and ``training.ml.configs`` read it, and
the platform's registry (``training.kinds``) builds each kind's spec on it; a test checks both name
the same kinds, in ``RunKind``'s order."""

from typing import NamedTuple


class MLKind(NamedTuple):
    run_module: str  # has ``run(config, out_dir, events) -> dict`` (may import torch)
    config_module: str  # has ``CONFIG``, the kind's config class (light: no torch)


CONFIGS_MODULE = "training.ml.configs"  # generate's config class lives in configs itself

ML_KINDS: dict[str, MLKind] = {
    "generate": MLKind("training.ml.generation", CONFIGS_MODULE),
    "sft": MLKind("training.ml.sft", "training.ml.sft_config"),
    "reward_model": MLKind("training.ml.reward_model", "training.ml.reward_model_config"),
    "rlhf": MLKind("training.ml.rlhf", "training.ml.rlhf_config"),
    "dpo": MLKind("training.ml.dpo", "training.ml.dpo_config"),
    "cai_revise": MLKind("training.ml.cai_revise", "training.ml.cai_revise_config"),
    "ai_feedback": MLKind("training.ml.ai_feedback", "training.ml.ai_feedback_config"),
    "evaluate": MLKind("training.ml.evaluate", "training.ml.evaluate_config"),
}
