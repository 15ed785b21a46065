"""The arithmetic of PPO for language models, as pure functions on tensors (unit-tested by hand).

Shapes: ``(batch, response_tokens)``; ``mask`` is 1 on the tokens of a completion (through its first
eos) and 0 on the padding after it.
"""

import math

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of the masked values (the population one for a single value)."""
    mean = masked_mean(values, mask)
    count = mask.sum()
    variance = masked_mean((values - mean) ** 2, mask)
    return variance * count / (count - 1) if count > 1 else variance


def whiten(values: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True) -> torch.Tensor:
    """Masked standardization to unit variance (and zero mean when ``shift_mean``); padding stays 0."""
    mean, variance = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def logprobs_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of each token under its position's logits: ``(B, T, V), (B, T) -> (B, T)``."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's distribution: ``(B, T, V) -> (B, T)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def kl_penalized_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: ``-kl_coef * (logp - logp_ref)`` on every token, plus the score on the last one.

    Returns the rewards and the per-token KL estimate (``logp - logp_ref``, masked).
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016) over each completion's tokens.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` (V after the last token is 0);
    ``A_t = delta_t + gamma * lam * A_{t+1}``; returns ``(advantages, returns = advantages + values)``,
    both 0 on padding.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    length = rewards.shape[1]
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, cliprange: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: ``mean(max(-A r, -A clip(r, 1 - eps, 1 + eps)))``; also the fraction of
    tokens where the clip was active and ``approxkl = mean((logp - logp_old)^2) / 2``."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    approxkl = 0.5 * masked_mean((logprobs - old_logprobs) ** 2, mask)
    return loss, clipfrac, approxkl


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange_value: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss ``0.5 * mean(max((V - R)^2, (V_clipped - R)^2))`` and its clip fraction."""
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    losses, clipped_losses = (values - returns) ** 2, (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(losses, clipped_losses), mask)
    return loss, masked_mean((clipped_losses > losses).float(), mask)


def adaptive_kl_coef(kl_coef: float, kl: float, *, target: float, horizon: int, n_steps: int) -> float:
    """Ziegler et al. 2019: ``kl_coef * (1 + clip(kl / target - 1, -0.2, 0.2) * n_steps / horizon)``.

    ``kl`` is the measured KL of the last batch, ``n_steps`` the samples it held.
    """
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return kl_coef * (1.0 + error * n_steps / horizon)


class KLController:
    """The KL coefficient: fixed, or adaptive towards a target (``update`` after every batch)."""

    def __init__(self, kl_coef: float, *, adaptive: bool = False, target: float = 6.0, horizon: int = 10000):
        self.value, self.adaptive, self.target, self.horizon = kl_coef, adaptive, target, horizon

    def update(self, kl: float, n_steps: int) -> float:
        if self.adaptive and math.isfinite(kl):
            self.value = adaptive_kl_coef(self.value, kl, target=self.target, horizon=self.horizon, n_steps=n_steps)
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])

    @classmethod
    def from_config(cls, config) -> "KLController":
        return cls(
            config.kl_coef,
            adaptive=config.kl_controller == "adaptive",
            target=config.kl_target,
            horizon=config.kl_horizon,
        )
