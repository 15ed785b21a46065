"""What a valid list of constitution principles is: the one rule set that the API (a project's
Constitution, ``labeling.principles``) and the run configs (``training.ml.constitution``, which
raises its ``ConfigError`` with the same field and message) both apply, so a constitution the API
saved is a valid run config and the reverse.

A principle is ``{key, name, critique_request, revision_request, choice_question}``, all non-empty
strings of at most :data:`MAX_TEXT` characters, ``key`` a slug unique in its list: the critique and
revision requests drive the supervised stage (answer -> critique -> revision), the choice question
the AI labeler of the RL stage ("which of these answers is ...?").
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
    """Raise PrincipleError at the first problem: not a non-empty list, too many, a missing or empty
    field, an unknown field, a text too long, a key that is not a slug, or a key used twice."""
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
