"""Prompt templates with ``{field}`` placeholders (pure Python, no Django).

A template is literal text with ``{field}`` placeholders; ``{{`` and ``}}`` write literal braces.
Templates are user input, so only bare field names are accepted: attribute access (``{a.b}``),
indexing (``{a[0]}``), conversions (``{a!r}``), format specs (``{a:>10}``) and positional fields
(``{}``) are refused, because ``str.format`` with them walks object attributes (the classic
format-string attack: ``{row.__class__.__init__.__globals__}``). Rendering never calls
``str.format``: the parsed template is filled in by plain substitution.

Few-shot prompts follow the FLAN-T5 DialogSum walkthrough: each example is rendered with
``example_text`` (which defaults to ``text``), the examples and then the query (rendered with
``text``) are joined by ``example_separator``. No examples is zero-shot, one is one-shot, several
are few-shot.
"""

import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_EXAMPLE_SEPARATOR = "\n\n\n"

_FORBIDDEN_IN_NAME = ".[]"


class TemplateError(ValueError):
    """A template or its data is unusable. ``field`` names the placeholder when one is at fault;
    ``example`` is the 0-based index of the few-shot example at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None, example: int | None = None):
        super().__init__(message)
        self.message, self.field, self.example = message, field, example


@dataclass(frozen=True)
class Placeholder:
    name: str


Segment = str | Placeholder


def parse(text: str) -> tuple[Segment, ...]:
    """Split a template into literal strings and placeholders, refusing anything but ``{name}``."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(
            f"unbalanced braces ({exc}); write {{{{ and }}}} for literal braces, {{field}} for a field"
        ) from None
    segments: list[Segment] = []
    for literal, name, spec, conversion in parts:
        if literal:
            segments.append(literal)
        if name is None:
            continue
        shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
        if name == "":
            raise TemplateError(f"placeholder {shown} has no field name; write {{field}}")
        if any(ch in name for ch in _FORBIDDEN_IN_NAME):
            raise TemplateError(
                f"placeholder {shown} uses attribute or index access, which templates do not allow; "
                "write a plain {field}",
                field=name,
            )
        if conversion:
            raise TemplateError(
                f"placeholder {shown} uses a conversion (!{conversion}), which is not allowed", field=name
            )
        if spec:
            raise TemplateError(f"placeholder {shown} uses a format spec (:{spec}), which is not allowed", field=name)
        if name != name.strip():
            raise TemplateError(
                f"placeholder {shown} has spaces around the field name; write {{{name.strip()}}}", field=name
            )
        segments.append(Placeholder(name))
    return tuple(segments)


def placeholders(text: str | Sequence[Segment]) -> list[str]:
    """The distinct field names a template uses, in order of first appearance."""
    segments = parse(text) if isinstance(text, str) else text
    return list(dict.fromkeys(s.name for s in segments if isinstance(s, Placeholder)))


def check_fields(text: str, known: Iterable[str]) -> None:
    """Every placeholder must name a known field; the error names it and lists the known ones."""
    known = list(known)
    for name in placeholders(text):
        if name not in known:
            listed = ", ".join(known) if known else "(none)"
            raise TemplateError(f"unknown field {name!r} in placeholder {{{name}}}; known fields: {listed}", field=name)


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"field {name!r} is a {type(value).__name__}, not text or a number", field=name)


def render(text: str | Sequence[Segment], values: Mapping[str, Any]) -> str:
    """Fill the placeholders from ``values``; a missing (or null) field is an error naming it."""
    segments = parse(text) if isinstance(text, str) else text
    out: list[str] = []
    for segment in segments:
        if isinstance(segment, str):
            out.append(segment)
            continue
        value = values.get(segment.name)
        if value is None:
            raise TemplateError(f"the row has no field {segment.name!r}", field=segment.name)
        out.append(_as_text(segment.name, value))
    return "".join(out)


def check_examples(examples: Sequence[Mapping[str, Any]], example_text: str) -> None:
    """Every example must carry every field ``example_text`` names; the error names the example and field."""
    needed = placeholders(example_text)
    for i, example in enumerate(examples):
        for name in needed:
            if example.get(name) is None:
                raise TemplateError(
                    f"examples[{i}] lacks field {name!r}, which the example text uses", field=name, example=i
                )
            _as_text(name, example[name])


def render_prompt(
    *,
    text: str,
    row: Mapping[str, Any],
    examples: Sequence[Mapping[str, Any]] = (),
    example_text: str = "",
    example_separator: str = DEFAULT_EXAMPLE_SEPARATOR,
) -> str:
    """Zero-, one- or few-shot prompt: the rendered examples, then the rendered query, joined by the separator."""
    query = parse(text)
    shot = parse(example_text) if example_text else query
    parts = []
    for i, example in enumerate(examples):
        try:
            parts.append(render(shot, example))
        except TemplateError as exc:
            raise TemplateError(f"examples[{i}]: {exc.message}", field=exc.field, example=i) from None
    parts.append(render(query, row))
    return example_separator.join(parts)


_PIECES = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """A rough, tokenizer-free token count: the larger of one token per word or punctuation mark and
    one token per 4 characters (the usual rule of thumb for English BPE vocabularies). Meant for
    "will this fit the context window" warnings, not for billing."""
    return max(len(_PIECES.findall(text)), math.ceil(len(text) / 4))
