"""A constitution's principles as the ``cai_revise`` and ``ai_feedback`` kinds use them: validation
(the rules of ``contracts.principles``, which the API applies too), sampling, the AI labeler's
question. Light: no torch.

A principle is ``{"key", "name", "critique_request", "revision_request", "choice_question"}``, all
non-empty strings, ``key`` a slug unique in its constitution. ``critique_request`` and
``revision_request`` drive the supervised stage (Bai et al. 2022, "Constitutional AI"); the
``choice_question`` is what the AI labeler answers with (A) or (B) in the RL stage.
"""

import random
from collections.abc import Sequence

from contracts import principles as rules
from training.ml.configs import ConfigError

SAMPLING = ("random", "cycle")

# Three principles from the paper's constitution (its appendix C), for demos and benchmarks.
EXAMPLE_PRINCIPLES = [
    {
        "key": "harmful",
        "name": "Harmful content",
        "critique_request": "Identify specific ways in which the assistant's last response is harmful, unethical, "
        "racist, sexist, toxic, dangerous, or illegal.",
        "revision_request": "Please rewrite the assistant response to remove any and all harmful, unethical, "
        "racist, sexist, toxic, dangerous, or illegal content.",
        "choice_question": "Please choose the response that is the most helpful, honest, and harmless.",
    },
    {
        "key": "harm-to-others",
        "name": "Harm to the human or others",
        "critique_request": "Explain ways in which the assistant's preceding response may be harmful to either "
        "the human or others. For example, if the assistant says anything that encourages dangerous or illegal "
        "activity, make sure to point it out.",
        "revision_request": "Please rewrite the assistant response to remove any and all harmful content, "
        "including anything dangerous, illegal, racist, sexist or socially biased.",
        "choice_question": "Which of these assistant responses is less harmful? Choose the response that a "
        "wise, ethical, polite and friendly person would more likely say.",
    },
    {
        "key": "offensive",
        "name": "Offensive content and assumptions",
        "critique_request": "Discuss whether the assistant said anything that may be interpreted as offensive or "
        "harmful. If possible, also point out any harmful assumptions in the human's dialogue.",
        "revision_request": "Please write a new version of the assistant's response that removes offensive and "
        "harmful content, and politely addresses any problematic assumptions from the human.",
        "choice_question": "Choose the assistant response that is as harmless and ethical as possible. Do NOT "
        "choose responses that are toxic, racist, or sexist, or that encourage or support illegal, violent, or "
        "unethical behavior.",
    },
]


def validate_principles(principles, field: str = "principles") -> None:
    """Raise ConfigError naming the first bad entry's field, e.g. ``principles[2].critique_request``,
    with the message of ``contracts.principles`` (so the API and a run config judge alike)."""
    try:
        rules.validate_principles(principles, field=field)
    except rules.PrincipleError as exc:
        raise ConfigError(exc.field, exc.message) from None


def check_principle_key(principles: list[dict], key: str, field: str) -> None:
    known = rules.principle_keys(principles)
    if key not in known:
        raise ConfigError(field, f"no principle {key!r}; the principles are {', '.join(known)}")


class PrincipleSampler:
    """Which principle applies where; independent of batching and of resuming (a pure function of
    the seed and the position), so a rerun picks the same principles.

    ``random``: a generator seeded by ``(seed, *position)`` picks uniformly among ``keys``;
    ``cycle``: the keys in order, position ``(item, round)`` taking ``keys[(item * rounds + round) % n]``.
    """

    def __init__(self, keys: Sequence[str], mode: str = "random", *, seed: int = 0, rounds: int = 1):
        if not keys:
            raise ValueError("no principle to sample from")
        if mode not in SAMPLING:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING)}, not {mode!r}")
        self.keys, self.mode, self.seed, self.rounds = list(keys), mode, seed, rounds

    def pick(self, item: int, round_: int = 0) -> str:
        if self.mode == "cycle":
            return self.keys[(item * self.rounds + round_) % len(self.keys)]
        # A string seed is hashed (sha512) by random: stable across processes, unlike hash().
        return random.Random(f"{self.seed}:{item}:{round_}").choice(self.keys)


CONVERSATION_HEADER = "Consider the following conversation between a human and an assistant:\n"
ANSWER_PREFIX = "The answer is: ("


def choice_question_text(conversation: str, question: str, a: str, b: str) -> str:
    """The multiple-choice question of the AI labeler (Bai et al.), without the answer prefix."""
    return f"{CONVERSATION_HEADER}{conversation}\n{question}\nOptions:\n(A) {a}\n(B) {b}\n"
