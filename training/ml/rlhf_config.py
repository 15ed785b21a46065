"""Config of the ``rlhf`` run kind (light: no torch). See :mod:`training.ml.rlhf` for what it does.

A step is one rollout for every algorithm: ``rollout_batch_size`` prompts from ``train_file``, each
sampled ``num_generations`` times (1 for ppo, 4 for rloo/grpo unless set), scored by the reward,
then optimized on in minibatches of ``mini_batch_size`` sequences for ``ppo_epochs`` passes.
``max_steps`` counts steps (``-1``: ``num_train_epochs`` passes over the prompts). For rloo/grpo
TRL counts one optimizer step per pass, so its step numbers are steps x ``ppo_epochs``.
``per_device_train_batch_size`` is not used (``mini_batch_size`` says it); the evaluation samples
``per_device_eval_batch_size`` prompts at a time.

The reward is either ``reward_model_path`` (a sequence-classification folder with its own
tokenizer: it scores the decoded prompt + completion text) or ``reward_function``, a rule from
:mod:`training.ml.rewards` (``length:N``, ``contains:WORD``, ``keyword_count:WORD``,
``char_fraction:CHARS``) for tests and demos. ``reward_stop_strings``: the reward reads each
completion only up to the first of them (``["Human:"]`` for HH-style dialogues).
``eval_reward_model_path``, a second reward model, re-scores the held-out completions (a policy
hacking the training reward shows a gap there).

The KL penalty to the reference (the model with adapters disabled) is always on: ``kl_coef`` (beta)
must be > 0 for every algorithm. ``kl_controller: adaptive`` moves it towards ``kl_target`` (the
summed per-token KL of a completion) over ``kl_horizon`` samples (Ziegler et al. 2019).
PPO-only knobs: ``cliprange_value``, ``vf_coef``, ``gamma``, ``lam``, ``whiten_rewards``.
"""

from dataclasses import dataclass
from typing import ClassVar

from training.ml.configs import ConfigError, PeftOptions, TrainConfig, worker_path
from training.ml.rewards import parse_reward_function

ALGORITHMS = ("ppo", "rloo", "grpo")
KL_CONTROLLERS = ("fixed", "adaptive")


@dataclass
class RLHFConfig(PeftOptions, TrainConfig):
    """RLHF of a causal LM against a reward model (or a rule reward) with a KL penalty to its reference:
    ``algorithm`` ppo (ours), rloo or grpo (TRL); LoRA policy, the reference is the adapters off.
    """

    KIND: ClassVar[str] = "rlhf"

    algorithm: str = "ppo"
    train_file: str = worker_path(default="")
    eval_file: str | None = worker_path(default=None)
    reward_model_path: str | None = worker_path(default=None)
    reward_function: str | None = None
    eval_reward_model_path: str | None = worker_path(default=None)
    reward_stop_strings: list[str] | None = None
    reward_max_length: int = 512
    reward_batch_size: int = 16
    kl_coef: float = 0.05
    kl_controller: str = "fixed"
    kl_target: float = 6.0
    kl_horizon: int = 10000
    rollout_batch_size: int = 8
    num_generations: int | None = None
    mini_batch_size: int = 8
    ppo_epochs: int | None = None
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    whiten_rewards: bool = False
    max_grad_norm: float = 1.0
    max_prompt_length: int = 256
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    eval_greedy: bool = False
    logging_steps: int = 1
    save_steps: int = 20

    @property
    def generations(self) -> int:
        """Completions per prompt: ``num_generations``, or 1 for ppo and 4 for rloo/grpo."""
        if self.num_generations is not None:
            return self.num_generations
        return 1 if self.algorithm == "ppo" else 4

    @property
    def epochs(self) -> int:
        """Optimization passes over each rollout: ``ppo_epochs``, or 4 for ppo and 1 for rloo/grpo."""
        if self.ppo_epochs is not None:
            return self.ppo_epochs
        return 4 if self.algorithm == "ppo" else 1

    def validate(self) -> None:
        super().validate()
        self.validate_peft()
        if self.algorithm not in ALGORITHMS:
            raise ConfigError("algorithm", f"use one of {', '.join(ALGORITHMS)}, not {self.algorithm!r}")
        if self.peft_method == "prompt_tuning":
            raise ConfigError("peft_method", "rlhf trains LoRA adapters (lora) or every weight (full)")
        if not self.train_file:
            raise ConfigError("train_file", "required: a JSONL file of {prompt_id, prompt}")
        self._validate_reward()
        self._validate_kl()
        self._validate_batches()
        self._validate_ppo()
        self._validate_sampling()

    def _validate_reward(self) -> None:
        if bool(self.reward_model_path) == bool(self.reward_function):
            raise ConfigError("reward_model_path", "give either reward_model_path or reward_function (one of them)")
        if self.reward_function:
            try:
                parse_reward_function(self.reward_function)
            except ValueError as exc:
                raise ConfigError("reward_function", str(exc)) from None
        stops = self.reward_stop_strings
        if stops is not None:
            if not isinstance(stops, list) or len(stops) > 16:
                raise ConfigError("reward_stop_strings", "must be a list of at most 16 strings")
            for index, stop in enumerate(stops):
                if not isinstance(stop, str) or not stop or len(stop) > 256:
                    raise ConfigError(
                        f"reward_stop_strings[{index}]", f"must be a string of 1..256 characters, got {stop!r:.60}"
                    )
        if not 8 <= self.reward_max_length <= 131072:
            raise ConfigError("reward_max_length", f"must be 8..131072, got {self.reward_max_length}")
        if not 1 <= self.reward_batch_size <= 4096:
            raise ConfigError("reward_batch_size", f"must be 1..4096, got {self.reward_batch_size}")

    def _validate_kl(self) -> None:
        if not self.kl_coef > 0:
            raise ConfigError(
                "kl_coef",
                f"must be > 0, got {self.kl_coef}: every algorithm keeps a KL penalty to the reference model "
                "(TRL's GRPO default of beta = 0 drops it, and the policy is then free to drift and hack the reward)",
            )
        if self.kl_controller not in KL_CONTROLLERS:
            raise ConfigError("kl_controller", f"use one of {', '.join(KL_CONTROLLERS)}, not {self.kl_controller!r}")
        if not self.kl_target > 0:
            raise ConfigError("kl_target", f"must be > 0, got {self.kl_target}")
        if not 1 <= self.kl_horizon <= 100_000_000:
            raise ConfigError("kl_horizon", f"must be 1..100000000, got {self.kl_horizon}")

    def _validate_batches(self) -> None:
        if self.gradient_accumulation_steps != 1:
            raise ConfigError("gradient_accumulation_steps", "must be 1 for rlhf: rollout_batch_size / mini_batch_size")
        if not 1 <= self.rollout_batch_size <= 4096:
            raise ConfigError("rollout_batch_size", f"must be 1..4096, got {self.rollout_batch_size}")
        if self.num_generations is not None and not 1 <= self.num_generations <= 64:
            raise ConfigError("num_generations", f"must be 1..64, got {self.num_generations}")
        if self.algorithm != "ppo" and self.generations < 2:
            raise ConfigError("num_generations", f"{self.algorithm} compares completions of a prompt: must be >= 2")
        rollout = self.rollout_batch_size * self.generations
        if not 1 <= self.mini_batch_size <= rollout:
            raise ConfigError("mini_batch_size", f"must be 1..{rollout} (the sequences of a rollout)")
        if rollout % self.mini_batch_size:
            raise ConfigError(
                "mini_batch_size",
                f"must divide the {rollout} sequences of a rollout (rollout_batch_size x num_generations)",
            )
        if self.ppo_epochs is not None and not 1 <= self.ppo_epochs <= 100:
            raise ConfigError("ppo_epochs", f"must be 1..100, got {self.ppo_epochs}")

    def _validate_ppo(self) -> None:
        if not 0 < self.cliprange <= 1:
            raise ConfigError("cliprange", f"must be in (0, 1], got {self.cliprange}")
        if not self.cliprange_value > 0:
            raise ConfigError("cliprange_value", f"must be > 0, got {self.cliprange_value}")
        if self.vf_coef < 0:
            raise ConfigError("vf_coef", f"must be >= 0, got {self.vf_coef}")
        for name in ("gamma", "lam"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(name, f"must be in [0, 1], got {getattr(self, name)}")
        if not self.max_grad_norm > 0:
            raise ConfigError("max_grad_norm", f"must be > 0, got {self.max_grad_norm}")

    def _validate_sampling(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError("max_new_tokens", f"must be 1..4096, got {self.max_new_tokens}")
        if not 1 <= self.max_prompt_length <= 131072:
            raise ConfigError("max_prompt_length", f"must be 1..131072, got {self.max_prompt_length}")
        if not self.temperature > 0:
            raise ConfigError("temperature", f"must be > 0 (rollouts sample), got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError("top_p", f"must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError("top_k", f"must be >= 1, got {self.top_k}")


CONFIG = RLHFConfig
