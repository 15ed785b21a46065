"""RLOO and GRPO from TRL 1.16 (``RLOOTrainer``, ``GRPOTrainer``), with the KL penalty kept on.

How the config maps onto TRL: ``beta = kl_coef`` (> 0: TRL's GRPO default of 0 is refused by the
config); each step generates ``rollout_batch_size`` prompts x ``num_generations`` completions
(``generation_batch_size``), split into micro-batches of ``mini_batch_size`` whose gradients are
accumulated into one optimizer step, ``ppo_epochs`` times (``num_iterations``): TRL's step numbers
are steps x ``ppo_epochs``. ``cliprange`` is TRL's ``epsilon``. LoRA goes in as ``peft_config``
(the reference is the model with the adapters disabled); dropout is off.

The reward goes in as a reward function (:class:`RewardFunction`): it scores the decoded text (a
reward model reads it with its own tokenizer) and logs the reward/length correlation.

One KL estimator for all algorithms: ``logp - logp_ref`` of the sampled tokens. RLOO logs it as
``kl``; GRPO's own ``kl`` is the ``k3`` estimator ``exp(r) - r - 1`` its loss uses, so our GRPO
subclass logs the sampled-token one beside it (``k3`` goes on as ``objective/kl_k3_per_token``).
:class:`RLHFCallback` reports it as ``objective/kl``, times the mean completion length (the summed
KL of a completion, as PPO reports; exact for one generation per log), runs the adaptive KL
controller on it (setting the trainer's ``beta``), the held-out evaluation every ``eval_steps``, and
the events.
"""

import json
import math
from pathlib import Path

from training.ml.hf_training import events_callback, resume_checkpoint, trainer_args
from training.ml.rewards import correlation, load_heldout_reward, load_reward
from training.ml.rlhf import common
from training.ml.rlhf.ppo_math import KLController

RENAMED = {"clip_ratio/region_mean": "policy/clipfrac"}
NEXT_KL_COEF = "kl_controller/next_kl_coef"  # kept in the Trainer's log history (resume), not an event
SAMPLED_KL = "kl_sampled"


class RewardFunction:
    """A TRL reward function around a reward: ``(prompts, completions, ...) -> list[float]``."""

    def __init__(self, reward):
        self.reward = reward
        self.__name__ = "reward"  # TRL names its metrics after it: rewards/reward/mean

    def __call__(self, prompts, completions, completion_ids=None, raw_prompt=None, log_metric=None, **kwargs):
        texts = [_text(c) for c in completions]
        sources = raw_prompt if raw_prompt is not None else [_text(p, role="user") for p in prompts]
        scores = self.reward.score(sources, texts)
        if log_metric is not None and completion_ids is not None:
            log_metric("reward/length_corr", correlation(scores, [float(len(ids)) for ids in completion_ids]))
        return scores


def _text(value, role: str = "assistant") -> str:
    """A plain prompt/completion, or the content of the last ``role`` message of a conversational one."""
    if isinstance(value, str):
        return value
    return next((m["content"] for m in reversed(value) if m["role"] == role), value[-1]["content"])


def _callback_class():
    from transformers import TrainerCallback

    class RLHFCallback(TrainerCallback):
        """TRL's logs in the common metric names, the adaptive KL controller, held-out evaluation, events."""

        def __init__(self, events, controller: KLController, *, samples_per_log: int, evaluate=None, eval_every=0):
            self.inner = events_callback(events)
            self.events, self.controller, self.samples_per_log = events, controller, samples_per_log
            self.evaluate, self.eval_every = evaluate, eval_every
            self.trainer = None  # set once the trainer exists: the controller sets its beta

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs if logs is not None else {}
            for old, new in RENAMED.items():
                if old in logs:
                    logs[new] = logs.pop(old)
            if logs.get(SAMPLED_KL) is not None:  # grpo: the sampled-token estimator, as the others
                logs["objective/kl_k3_per_token"] = logs.pop("kl", None)
                logs["kl"] = logs.pop(SAMPLED_KL)
            if logs.get("kl") is not None and logs.get("completions/mean_length") is not None:
                logs["objective/kl_per_token"] = logs.pop("kl")
                logs["objective/kl"] = logs["objective/kl_per_token"] * logs["completions/mean_length"]
                logs["objective/kl_coef"] = self.controller.value
                self.trainer.beta = self.controller.update(logs["objective/kl"], n_steps=self.samples_per_log)
                if state.log_history and state.log_history[-1].get("step") == state.global_step:
                    extra = {k: logs[k] for k in ("objective/kl", "objective/kl_per_token", "objective/kl_coef")}
                    state.log_history[-1].update(extra, **{NEXT_KL_COEF: self.controller.value})
            self.inner.on_log(args, state, control, logs=logs, **kwargs)

        def on_step_end(self, args, state, control, **kwargs):
            self.inner.on_step_end(args, state, control, **kwargs)
            step = state.global_step
            if self.evaluate and self.eval_every and step % self.eval_every == 0 and step < state.max_steps:
                for name, value in self.evaluate(kwargs["model"]).items():
                    self.events.metric(name, value, step=step)

        def on_save(self, args, state, control, **kwargs):
            self.inner.on_save(args, state, control, **kwargs)

    return RLHFCallback


def _trainer_classes(algorithm: str):
    if algorithm == "rloo":
        from trl import RLOOConfig, RLOOTrainer

        return RLOOConfig, RLOOTrainer
    from trl import GRPOConfig

    return GRPOConfig, _grpo_class()


def _grpo_class():
    import torch
    from trl import GRPOTrainer

    class SampledKLGRPOTrainer(GRPOTrainer):
        """TRL's GRPO, also logging ``logp - logp_ref`` of the sampled tokens (:data:`SAMPLED_KL`)."""

        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
            if kwargs.get("compute_entropy"):  # the loss's own call: the policy's log-probs now
                self._loss_logps = result[0]
            return result

        def _compute_loss(self, model, inputs):
            loss = super()._compute_loss(model, inputs)
            if inputs.get("ref_per_token_logps") is not None:
                # The tokens were sampled from the policy as it was at generation (TRL keeps its
                # log-probs when it takes several passes over a rollout; in one pass they are now's).
                sampled = inputs.get("old_per_token_logps")
                sampled = self._loss_logps.detach() if sampled is None else sampled
                mask = inputs["completion_mask"]
                stats = torch.stack([((sampled - inputs["ref_per_token_logps"]) * mask).sum(), mask.sum().float()])
                stats = self.accelerator.reduce(stats, reduction="sum")
                mode = "train" if self.model.training else "eval"
                self._metrics[mode][SAMPLED_KL].append((stats[0] / stats[1].clamp(min=1.0)).item())
            return loss

    return SampledKLGRPOTrainer


def _controller_at(checkpoint: str | None, controller: KLController) -> None:
    """The adaptive KL coefficient where a resumed run left it (from the checkpoint's log history)."""
    if not checkpoint:
        return
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    values = [entry[NEXT_KL_COEF] for entry in state.get("log_history", []) if NEXT_KL_COEF in entry]
    if values:
        controller.value = values[-1]


def train(config, out_dir: Path, events, *, device: str, dtype: str) -> dict:
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback

    from training.ml.hf_training import peft_config

    model, tokenizer = common.load_policy(config, device=device, dtype=dtype, trainable=False)
    reward = load_reward(config, device=device)
    prompts, eval_prompts = common.read_prompt_files(config, tokenizer)
    if len(prompts) < config.rollout_batch_size:
        raise ValueError(f"{config.train_file}: {len(prompts)} prompts, fewer than rollout_batch_size")
    chat = bool(getattr(tokenizer, "chat_template", None))
    dataset = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": p.text}] if chat else p.text, "raw_prompt": p.text} for p in prompts]
    )
    steps = config.max_steps
    if steps < 0:
        steps = max(1, math.ceil(config.num_train_epochs * len(prompts) / config.rollout_batch_size))
    epochs, rollout = config.epochs, config.rollout_batch_size * config.generations
    config_class, trainer_class = _trainer_classes(config.algorithm)
    args = config_class(
        **trainer_args(
            config,
            out_dir,
            device=device,
            dtype=dtype,
            per_device_train_batch_size=config.mini_batch_size,
            gradient_accumulation_steps=rollout // config.mini_batch_size,
            max_steps=steps * epochs,
            logging_steps=max(config.logging_steps, 1) * epochs,
            save_steps=max(config.save_steps, 1) * epochs,
            eval_strategy="no",
            max_grad_norm=config.max_grad_norm,
        ),
        num_generations=config.generations,
        max_completion_length=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k or 0,
        top_p=config.top_p or 1.0,
        beta=config.kl_coef,
        num_iterations=epochs,
        epsilon=config.cliprange,
        disable_dropout=True,
    )
    controller = KLController.from_config(config)
    heldout = load_heldout_reward(config, device=device)
    evaluate = common.Evaluator(tokenizer, eval_prompts, reward, config, heldout=heldout)
    callback = _callback_class()(
        events,
        controller,
        samples_per_log=rollout * max(config.logging_steps, 1),
        evaluate=evaluate if eval_prompts else None,
        eval_every=config.eval_steps * epochs,
    )
    lora = peft_config(config, "CAUSAL_LM")
    trainer = trainer_class(
        model=model,
        reward_funcs=RewardFunction(reward),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=lora,
    )
    callback.trainer = trainer
    trainer.remove_callback(PrinterCallback)  # the logs are events already: no dicts printed on stdout
    evaluate.ref_model = None if lora is not None else trainer.ref_model  # full: TRL's own copy
    checkpoint = resume_checkpoint(out_dir)
    _controller_at(checkpoint, controller)
    trainer.beta = controller.value
    if checkpoint:
        events.log(f"resuming from {Path(checkpoint).name}")
    shape = f"{steps} steps of {config.rollout_batch_size} x {config.generations}"
    events.log(f"{config.algorithm}: {len(prompts)} prompts, {shape}, beta {controller.value:g}")

    evaluations, before = {}, []
    if eval_prompts:
        evaluations["before"], before = common.evaluate_before(evaluate, trainer.model, events)
    trainer.train(resume_from_checkpoint=checkpoint)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if eval_prompts:
        step = trainer.state.global_step
        evaluations["after"] = common.evaluate_after(evaluate, model, before, out_dir, events, step=step)
    history = [
        {"step": entry["step"], "reward": entry["reward"], "kl": entry["objective/kl"]}
        for entry in trainer.state.log_history
        if "reward" in entry and "objective/kl" in entry
    ]
    outputs = common.save_outputs(model, tokenizer, Path(out_dir), peft=lora is not None)
    return {"outputs": outputs, "metrics": common.summary(history, evaluations, controller.value)}
