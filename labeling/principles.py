"""Constitution principles as plain data (no Django): the shipped default and the one validator that
both the API (a project's Constitution) and ``training/ml`` (a run's config) use.

A principle is ``{key, name, critique_request, revision_request, choice_question}``: the critique
and revision requests drive the supervised stage (answer -> critique -> revision), the choice
question the AI labeler of the RL stage ("which of these answers is ...?").
"""

import re
from typing import Any

FIELDS = ("key", "name", "critique_request", "revision_request", "choice_question")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_PRINCIPLES = 100
MAX_TEXT = 2000


class PrincipleError(ValueError):
    """A bad principle list; ``field`` names the place, e.g. ``principles[2].critique_request``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def validate_principles(principles: Any, *, field: str = "principles") -> None:
    """Raise PrincipleError at the first problem: not a non-empty list, a missing or empty field,
    an unknown field, a key that is not a slug, or a key used twice."""
    if not isinstance(principles, list) or not principles:
        raise PrincipleError(field, "must be a non-empty list of principles")
    if len(principles) > MAX_PRINCIPLES:
        raise PrincipleError(field, f"at most {MAX_PRINCIPLES} principles, not {len(principles)}")
    seen: set[str] = set()
    for index, principle in enumerate(principles):
        at = f"{field}[{index}]"
        if not isinstance(principle, dict):
            raise PrincipleError(at, "must be an object with " + ", ".join(FIELDS))
        unknown = sorted(set(principle) - set(FIELDS))
        if unknown:
            raise PrincipleError(f"{at}.{unknown[0]}", "unknown field; a principle has " + ", ".join(FIELDS))
        for name in FIELDS:
            value = principle.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise PrincipleError(f"{at}.{name}", "required")
            if not isinstance(value, str):
                raise PrincipleError(f"{at}.{name}", f"expected a string, got {type(value).__name__}")
            if len(value) > MAX_TEXT:
                raise PrincipleError(f"{at}.{name}", f"at most {MAX_TEXT} characters")
        key = principle["key"]
        if not KEY_PATTERN.match(key):
            raise PrincipleError(f"{at}.key", f"{key!r} is not a key: use lowercase letters, digits, - and _")
        if key in seen:
            raise PrincipleError(f"{at}.key", f"{key!r} is used by an earlier principle")
        seen.add(key)


def principle_keys(principles: list[dict]) -> list[str]:
    return [p["key"] for p in principles]


# Our own wording, after the kinds of principles Bai et al. (2022) list: harm, honesty, helpfulness.
DEFAULT_PRINCIPLES: list[dict[str, str]] = [
    {
        "key": "harm",
        "name": "Avoid harm",
        "critique_request": (
            "Point out every way the assistant's last answer could help someone cause harm, to "
            "themselves or to others: dangerous instructions, violence, crime, or abuse."
        ),
        "revision_request": (
            "Rewrite the answer so that it gives no help with anything harmful, while staying polite "
            "and useful for any legitimate part of the request."
        ),
        "choice_question": "Which of these assistant answers is less harmful?",
    },
    {
        "key": "ethics",
        "name": "Ethical and legal",
        "critique_request": (
            "Explain whether the assistant's last answer is unethical, illegal, or encourages "
            "dishonest behaviour, and say exactly where."
        ),
        "revision_request": (
            "Rewrite the answer to remove anything unethical or illegal, and gently steer the person "
            "toward a lawful and decent course of action."
        ),
        "choice_question": "Which of these assistant answers is more ethical and lawful?",
    },
    {
        "key": "respect",
        "name": "Respectful and fair",
        "critique_request": (
            "Identify anything in the assistant's last answer that is rude, demeaning, biased, or "
            "stereotypes a group of people."
        ),
        "revision_request": "Rewrite the answer so that it is respectful and fair to everyone it mentions.",
        "choice_question": "Which of these assistant answers is more respectful and less biased?",
    },
    {
        "key": "honesty",
        "name": "Honest",
        "critique_request": (
            "Check the assistant's last answer for claims that are false, made up, or more certain "
            "than the evidence allows."
        ),
        "revision_request": (
            "Rewrite the answer so that every claim is accurate, and say plainly where you are unsure or do not know."
        ),
        "choice_question": "Which of these assistant answers is more honest and accurate?",
    },
    {
        "key": "helpful",
        "name": "Helpful",
        "critique_request": (
            "Explain how the assistant's last answer fails to help: does it dodge the question, "
            "lecture needlessly, or leave out what the person asked for?"
        ),
        "revision_request": (
            "Rewrite the answer to be as helpful as possible on everything that is safe to help with, "
            "clearly and without preaching."
        ),
        "choice_question": "Which of these assistant answers is more helpful, without being harmful?",
    },
]
