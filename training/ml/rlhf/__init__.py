"""Run kind ``rlhf``: optimize a causal LM against a reward, with a KL penalty to the reference
(DESIGN.md, The ML: RLHF). Pure ML: no Django. Config: :class:`training.ml.rlhf_config.RLHFConfig`.

- ``ppo``: ours (:mod:`training.ml.rlhf.ppo`): LoRA policy, the reference is the model with its
  adapters disabled, a value head, GAE, clipped surrogate and value losses, minibatch epochs.
- ``rloo`` / ``grpo``: TRL's ``RLOOTrainer`` / ``GRPOTrainer`` (:mod:`training.ml.rlhf.trl_algorithms`)
  with ``beta = kl_coef > 0``, the reward passed as a reward function.

Every algorithm logs, per step: ``reward`` (mean score), ``objective/kl`` (mean over completions of
the summed per-token ``logp - logp_ref``), ``objective/kl_coef``, ``entropy``,
``completions/mean_length`` and ``reward/length_corr`` (reward vs completion length: length
hacking shows there); ppo adds ``loss/policy``, ``loss/value``, ``policy/clipfrac`` and more. With
an ``eval_file``, ``eval/reward``, ``eval/kl`` and ``eval/mean_length`` on the held-out prompts
(one completion each, a fixed seed) before training (step 0, the reference), every ``eval_steps``
and at the end; ``eval/heldout_reward`` when ``eval_reward_model_path`` re-scores them. The final
evaluation's completions go to ``out/eval_samples.jsonl``, best-scored first, each beside the
reference's completion and reward (an ``artifact`` event, kind ``rlhf_samples``): the best and worst
can go back to labelers as a comparison. ``eval/reward_gain`` is the mean gain prompt by prompt over
the reference, with its 95% interval (``eval/reward_gain_low`` .. ``_high``).

Outputs: ``out/adapter`` (LoRA) and the merged causal LM in ``out/model``; checkpoints in
``out/checkpoints`` (a run started again resumes from the newest). The result's metrics: reward and
KL at the first and last step, held-out reward before and after and the paired gain with its
interval, the final KL coefficient.
"""

from pathlib import Path


def run(config, out_dir: Path, events) -> dict:
    from training.ml.hf_training import torch_setup

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, dtype = torch_setup(config)
    if config.algorithm == "ppo":
        from training.ml.rlhf import ppo

        return ppo.train(config, out_dir, events, device=device, dtype=dtype)
    from training.ml.rlhf import trl_algorithms

    return trl_algorithms.train(config, out_dir, events, device=device, dtype=dtype)
