"""Prompt templates: create, update, delete and preview. Placeholders are checked by ``labeling.templating``."""

import math
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from common.exceptions import ServiceError
from labeling import templating
from labeling.models import Dataset, Project, PromptRow, PromptTemplate

MAX_EXAMPLES = 64
DEFAULT_CONTEXT_WINDOW = 2048


def _template_error(exc: templating.TemplateError, *, key: str) -> ServiceError:
    return ServiceError(f"{key}: {exc.message}", errors={key: [exc.message]})


def _check_examples_shape(examples: Any) -> list[dict]:
    if not isinstance(examples, list):
        raise ServiceError("examples: must be a list of objects.", errors={"examples": ["Must be a list of objects."]})
    if len(examples) > MAX_EXAMPLES:
        message = f"at most {MAX_EXAMPLES} examples, got {len(examples)}"
        raise ServiceError(f"examples: {message}", errors={"examples": [message]})
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            message = f"examples[{i}] must be an object of field values, got {type(example).__name__}"
            raise ServiceError(f"examples: {message}", errors={"examples": [message]})
        for field, value in example.items():
            if isinstance(value, dict | list) or (isinstance(value, float) and not math.isfinite(value)):
                message = f"examples[{i}] field {field!r} must be a string, number or boolean"
                raise ServiceError(f"examples: {message}", errors={"examples": [message]})
    return examples


def _validate(*, text: str, example_text: str, examples: list, dataset: Dataset | None, project: Project) -> None:
    try:
        templating.parse(text)
    except templating.TemplateError as exc:
        raise _template_error(exc, key="text") from None
    if example_text:
        try:
            templating.parse(example_text)
        except templating.TemplateError as exc:
            raise _template_error(exc, key="example_text") from None
    if dataset is not None:
        if dataset.project_id != project.id:
            message = f"dataset {dataset.id} is not in project {project.id}"
            raise ServiceError(f"dataset: {message}", errors={"dataset": [message]})
        try:
            templating.check_fields(text, dataset.fields)
        except templating.TemplateError as exc:
            raise _template_error(exc, key="text") from None
    _check_examples_shape(examples)
    try:
        templating.check_examples(examples, example_text or text)
    except templating.TemplateError as exc:
        raise _template_error(exc, key="examples") from None


def _check_name(*, project: Project, name: str, exclude_id: int | None = None) -> None:
    taken = PromptTemplate.objects.filter(project=project, name=name)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise ServiceError(f"A template named {name!r} already exists.", errors={"name": [f"{name!r} is taken."]})


def _set_default(*, project: Project, template: PromptTemplate | None) -> None:
    project = Project.objects.select_for_update().get(pk=project.pk)
    project.prompt_template = template
    project.save(update_fields=["prompt_template", "updated_at"])


@transaction.atomic
def template_create(
    *,
    project: Project,
    name: str,
    text: str,
    example_text: str = "",
    examples: list | None = None,
    example_separator: str = templating.DEFAULT_EXAMPLE_SEPARATOR,
    dataset: Dataset | None = None,
    make_default: bool = False,
) -> PromptTemplate:
    examples = [] if examples is None else examples
    _check_name(project=project, name=name)
    _validate(text=text, example_text=example_text, examples=examples, dataset=dataset, project=project)
    template = PromptTemplate(
        project=project,
        dataset=dataset,
        name=name,
        text=text,
        example_text=example_text,
        examples=examples,
        example_separator=example_separator,
    )
    template.full_clean()
    template.save()
    if make_default:
        _set_default(project=project, template=template)
    return template


_UPDATABLE = ("name", "text", "example_text", "examples", "example_separator", "dataset")


@transaction.atomic
def template_update(*, template: PromptTemplate, make_default: bool | None = None, **fields) -> PromptTemplate:
    """Change some fields; the result is validated as a whole (e.g. a new dataset re-checks the text).

    ``make_default=True`` makes it the project's template, ``False`` unsets it if it is the default,
    ``None`` leaves the project alone.
    """
    # No select_related: PostgreSQL refuses FOR UPDATE on the nullable side of an outer join.
    template = PromptTemplate.objects.select_for_update().get(pk=template.pk)
    project = template.project
    for key in _UPDATABLE:
        if key in fields:
            setattr(template, key, fields[key])
    if "name" in fields:
        _check_name(project=project, name=template.name, exclude_id=template.pk)
    _validate(
        text=template.text,
        example_text=template.example_text,
        examples=template.examples,
        dataset=template.dataset,
        project=project,
    )
    template.full_clean()
    template.save()
    if make_default:
        _set_default(project=project, template=template)
    elif make_default is False and project.prompt_template_id == template.pk:
        _set_default(project=project, template=None)
    return template


@transaction.atomic
def template_delete(*, template: PromptTemplate) -> None:
    """Delete a template; a project that used it as default is left without one (comparisons keep
    their already rendered prompts)."""
    template.delete()


@dataclass(frozen=True)
class Preview:
    prompt: str
    token_estimate: int
    fields_used: list[str]
    context_window: int
    warning: str | None
    row_id: int | None


DRAFT_FIELDS = ("text", "example_text", "examples", "example_separator")


def template_preview(
    *,
    template: PromptTemplate,
    row: dict | None = None,
    prompt_row: PromptRow | None = None,
    context_window: int = DEFAULT_CONTEXT_WINDOW,
    draft: dict | None = None,
) -> Preview:
    """Render the template for one row (a stored ``prompt_row`` or a literal ``row`` dict). Read-only.

    ``draft`` overrides the stored text / example_text / examples / example_separator, checked like
    an update, so an editor can preview an edit before saving it.
    """
    values = prompt_row.data if prompt_row is not None else (row or {})
    spec = {key: getattr(template, key) for key in DRAFT_FIELDS}
    if draft:
        spec.update({key: draft[key] for key in DRAFT_FIELDS if key in draft})
        _validate(
            text=spec["text"],
            example_text=spec["example_text"],
            examples=spec["examples"],
            dataset=template.dataset,
            project=template.project,
        )
    try:
        prompt = templating.render_prompt(
            text=spec["text"],
            row=values,
            examples=spec["examples"],
            example_text=spec["example_text"],
            example_separator=spec["example_separator"],
        )
    except templating.TemplateError as exc:
        key = "examples" if exc.example is not None else "row"
        raise ServiceError(exc.message, errors={key: [exc.message]}) from None
    estimate = templating.estimate_tokens(prompt)
    warning = None
    if estimate > context_window:
        warning = (
            f"The prompt is about {estimate:,} tokens, more than the context window of {context_window:,}; "
            "the model will truncate it. Use fewer or shorter examples, or a model with a longer context."
        )
    return Preview(
        prompt=prompt,
        token_estimate=estimate,
        fields_used=templating.placeholders(spec["text"]),
        context_window=context_window,
        warning=warning,
        row_id=prompt_row.pk if prompt_row is not None else None,
    )
