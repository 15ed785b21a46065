"""Rewards for RLHF: rule-based rewards whose truth is known (tests, demos) and a reward-model scorer.

Every reward is ``score(prompts, completions) -> list[float]`` on decoded text. This module is light
(the config validates ``reward_function`` with it); the reward model's torch imports are local.

Rule-based rewards, named ``NAME:ARGUMENT`` in ``reward_function``:

- ``length:N``: ``-|words - N| / N``, the negative distance of the completion's word count to N;
- ``contains:WORD``: 1 when the completion contains WORD (case-insensitive), else 0;
- ``keyword_count:WORD``: how many times WORD occurs in the completion (case-insensitive);
- ``char_fraction:CHARS``: the fraction of the completion's characters that are among CHARS.

The reward model is a sequence-classification folder with its own tokenizer: it reads
``reward_text(prompt, completion)`` (left-truncated: the end of a dialogue decides) and its first
logit is the score.

With ``reward_stop_strings`` a reward reads each completion only up to the first of them: an HH
reward model never saw a reply that goes on to write the user's next ``Human:`` turn, and a policy
that learns to write one games it (seen in ``bench/rlhf.py``).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def _length(argument: str) -> Callable[[str], float]:
    target = int(argument) if argument.isdigit() else 0
    if target < 1:
        raise ValueError(f"length takes a positive word count (length:20), not {argument!r}")
    return lambda text: -abs(len(text.split()) - target) / target


def _contains(argument: str) -> Callable[[str], float]:
    word = _word(argument, "contains")
    return lambda text: float(word in text.lower())


def _keyword_count(argument: str) -> Callable[[str], float]:
    word = _word(argument, "keyword_count")
    return lambda text: float(text.lower().count(word))


def _char_fraction(argument: str) -> Callable[[str], float]:
    if not argument:
        raise ValueError("char_fraction takes the characters to count (char_fraction:e)")
    chars = set(argument)
    return lambda text: sum(c in chars for c in text) / len(text) if text else 0.0


def _word(argument: str, name: str) -> str:
    if not argument.strip():
        raise ValueError(f"{name} takes a word ({name}:please)")
    return argument.strip().lower()


RULES: dict[str, Callable[[str], Callable[[str], float]]] = {
    "length": _length,
    "contains": _contains,
    "keyword_count": _keyword_count,
    "char_fraction": _char_fraction,
}


@dataclass(frozen=True)
class RuleReward:
    spec: str
    rule: Callable[[str], float]

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return [self.rule(text) for text in completions]


def parse_reward_function(spec: str) -> RuleReward:
    """``NAME:ARGUMENT`` as a reward; ValueError says what is wrong."""
    name, _, argument = spec.partition(":")
    if name not in RULES:
        raise ValueError(f"unknown reward function {name!r}; use one of {', '.join(f'{n}:...' for n in RULES)}")
    return RuleReward(spec, RULES[name](argument))


def reward_text(prompt: str, completion: str) -> str:
    """What a reward model reads: the prompt, then the completion (a space between them when neither has one)."""
    if not prompt or prompt[-1].isspace() or not completion or completion[0].isspace():
        return prompt + completion
    return prompt + " " + completion


class RewardModelScorer:
    """A sequence-classification reward model and its own tokenizer, scoring decoded text."""

    def __init__(self, path: str, *, device: str = "cpu", max_length: int = 512, batch_size: int = 16):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.truncation_side = "left"
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"the reward model's tokenizer ({path}) has neither a pad nor an eos token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{path} has {self.model.config.num_labels} labels; a reward model has one")
        if self.model.config.pad_token_id is None:  # decoder classifiers find the last token by the pad id
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(device).eval().requires_grad_(False)
        limit = getattr(self.tokenizer, "model_max_length", None) or max_length
        self.max_length = min(max_length, limit)
        self.batch_size = batch_size

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        import torch

        texts = [reward_text(p, c) for p, c in zip(prompts, completions, strict=True)]
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.model.device)
            with torch.inference_mode():
                scores.extend(self.model(**batch).logits[:, 0].float().tolist())
        return scores


def cut_at(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any of ``stops`` (all of it when none occurs)."""
    ends = [index for stop in stops if (index := text.find(stop)) >= 0]
    return text[: min(ends)] if ends else text


@dataclass(frozen=True)
class StopAt:
    """A reward that reads each completion only up to the first of ``stops``."""

    reward: object
    stops: tuple[str, ...]

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return self.reward.score(prompts, [cut_at(text, self.stops) for text in completions])


def _stopped(reward, config):
    return StopAt(reward, tuple(config.reward_stop_strings)) if config.reward_stop_strings else reward


def load_reward(config, *, device: str = "cpu"):
    """The reward of an rlhf config: its rule, or its reward model loaded on ``device``."""
    if config.reward_function:
        return _stopped(parse_reward_function(config.reward_function), config)
    scorer = RewardModelScorer(
        config.reward_model_path,
        device=device,
        max_length=config.reward_max_length,
        batch_size=config.reward_batch_size,
    )
    return _stopped(scorer, config)


def load_heldout_reward(config, *, device: str = "cpu"):
    """The config's ``eval_reward_model_path`` (a second reward model re-scoring the evaluation), or None."""
    if not config.eval_reward_model_path:
        return None
    scorer = RewardModelScorer(
        config.eval_reward_model_path,
        device=device,
        max_length=config.reward_max_length,
        batch_size=config.reward_batch_size,
    )
    return _stopped(scorer, config)


def mean_interval(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the half-width of its 95% interval (normal approximation; None for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, 1.96 * sd / math.sqrt(n)


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant (reward vs completion length: length hacking)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy)
