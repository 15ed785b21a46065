"""Label Studio and Argilla exports -> neutral comparisons with rankings (pure Python, no Django).

The service (labeling.services.external_imports) reads an upload into items with :func:`read_items`
(or rows of a Hugging Face dataset), parses each with :func:`parse_label_studio_task` or
:func:`parse_argilla_record` into an :class:`ExternalComparison` (a prompt, its completions by
position, and one :class:`ExternalRanking` per annotator), and writes them. Every problem raises
:class:`ExternalFormatError`, which names the item (``tasks[3] (id 17)``, ``line 5``, ``train[2]``),
the field (a JSON path inside the item) and the offending value.

Shapes read
-----------
**Label Studio** JSON export (``[task, ...]``, or one task per line in a ``.jsonl``)::

    {"id": 17, "data": {...}, "annotations": [{"id": 5, "completed_by": 10 | {"id": 10, "email": ...},
     "created_username": " ann@example.org, 10", "was_cancelled": false, "lead_time": 12.5,
     "result": [{"type": "ranker" | "pairwise", "from_name": ..., "to_name": ..., "value": ...}]}]}

- ``ranker`` (the "LLM Ranker" config: ``<List name="answers" value="$items"/>`` + ``<Ranker>``): the
  completions are ``data.items`` (``[{"id", "title", "body"}]``; the text is ``body``, else ``html``)
  and ``value`` is ``{"ranker": {key: [item ids]}}``. One key alone (a Ranker without buckets: the
  List's name) is a strict order, best first. Buckets (several keys, or ``"_"``, the items left in the
  list) tie within a bucket; their order, best first, is ``bucket_order`` (a JSON object's key order
  says nothing), and the buckets named in ``failed_buckets`` mark their items F. Every item must end
  up ranked or F.
- ``pairwise`` (``<Pairwise toName="answer1,answer2"/>``): ``value`` is ``{"selected": "left" |
  "right"}``; left and right are the data fields ``completion_fields`` names, else the first pair
  found of :data:`PAIRWISE_FIELDS`. Label Studio has no tie and no "both bad" here.
- Annotations with ``was_cancelled`` (skipped in Label Studio) are counted and left out.

**Argilla** ranking records (the ``RankingQuestion`` answers; options name the record's fields):

- 1.x ``FeedbackRecord``: ``{"fields": {...}, "external_id": ..., "responses": [{"user_id": ...,
  "status": "submitted", "values": {question: {"value": [{"value": option, "rank": 1}, ...]}}}]}``;
  equal ranks tie.
- 1.x as a Hugging Face dataset (``FeedbackDataset.format_as("datasets")``): the fields are columns,
  ``question`` is ``[{"user_id", "value": {"rank": [...], "value": [...]}, "status"}]``,
  ``external_id``.
- 2.x record (``dataset.records.to_list(flatten=False)``, ``to_json``, ``Dataset.to_disk``'s
  ``records.json``): ``{"id", "fields": {...}, "responses": {question: [{"value": [options best first],
  "user_id"}]}}``.
- 2.x flattened (``dataset.records.to_datasets()``, ``to_list(flatten=True)``): the fields are columns,
  ``question.responses`` is ``[[options best first], ...]`` with ``question.responses.users`` and
  ``question.responses.status`` beside it, ``id``.

Only submitted responses count (a response without a status, as 2.x writes them, is submitted);
drafts and discarded ones are counted and left out. Argilla has no F mark.

Ranks are compacted (1, 5, 5, 9 -> 1, 2, 2, 3): only the order matters, and a stored rank is 1..K.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL_STUDIO = "label_studio"
ARGILLA = "argilla"
FORMATS = (LABEL_STUDIO, ARGILLA)

PROMPT_FIELDS = ("prompt", "instruction", "question", "input", "query")
PAIRWISE_FIELDS = (
    ("text1", "text2"),
    ("answer1", "answer2"),
    ("response1", "response2"),
    ("response_a", "response_b"),
    ("completion1", "completion2"),
)
UNSORTED_BUCKET = "_"  # Label Studio's name for the items a bucketed Ranker left in the list
SUBMITTED = "submitted"
_MISSING = object()


class ExternalFormatError(ValueError):
    """One item of an export cannot be read. ``where`` names the item, ``field`` a path inside it."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        index: int | None = None,
        line: int | None = None,
        external_id: Any = None,
        field: str | None = None,
        value: Any = _MISSING,
    ):
        self.reason, self.where, self.index, self.line = message, where, index, line
        self.external_id, self.field, self.value = external_id, field, value
        parts = [where] if where else []
        if field:
            parts.append(f"field {field!r}")
        shown = f" (got {_short(value)})" if value is not _MISSING else ""
        super().__init__(f"{', '.join(parts)}: {message}{shown}" if parts else f"{message}{shown}")

    def as_dict(self) -> dict[str, Any]:
        out = {"item": self.where, "index": self.index, "line": self.line, "id": self.external_id}
        out |= {"field": self.field, "message": self.reason}
        if self.value is not _MISSING:
            scalar = self.value is None or isinstance(self.value, bool | int | float)
            out["value"] = (
                self.value if scalar else self.value[:200] if isinstance(self.value, str) else _short(self.value)
            )
        return out


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Annotator:
    """Who made a ranking, as the export names them. ``key`` is stable across exports of the same
    tool; ``name`` is the RankForge username to use when nothing better is known; ``aliases`` are
    what an admin's ``annotators`` map may be keyed by (a Label Studio user id, an email, an Argilla
    user id)."""

    key: str
    name: str
    email: str = ""
    aliases: tuple[str, ...] = ()


@dataclass
class ExternalRanking:
    annotator: Annotator
    ranks: dict[int, int]  # completion position -> rank (1 best, equal ranks tie, compact 1..m)
    failed: list[int]  # positions marked F
    where: str  # "annotations[0]" / "responses[1]": for errors about this ranking
    time_spent_ms: int | None = None


@dataclass
class ExternalComparison:
    index: int
    line: int | None
    where: str
    external_id: str
    key: str  # the import key: "label_studio:17"; a re-import of the same item finds its comparison by it
    prompt: str
    completions: list[dict]  # {"text", "metadata"} by position
    rankings: list[ExternalRanking]
    split: str | None = None
    skipped: Counter = field(default_factory=Counter)  # annotations/responses left out, by reason

    def error(self, message: str, **kwargs) -> ExternalFormatError:
        return ExternalFormatError(
            message, where=self.where, index=self.index, line=self.line, external_id=self.external_id, **kwargs
        )


@dataclass(frozen=True)
class FormatOptions:
    """How to read an export whose labeling config is not in it. Empty means: find it out."""

    k: int | None = None  # completions per comparison the project takes (None: any number)
    prompt_field: str = ""
    completion_fields: tuple[str, ...] = ()  # Label Studio pairwise: (left, right) data fields
    items_field: str = ""  # Label Studio ranker: the data field holding the List's items
    bucket_order: tuple[str, ...] = ()  # Label Studio ranker buckets, best first ("_": unsorted items)
    failed_buckets: tuple[str, ...] = ()  # buckets whose items are F
    question: str = ""  # Argilla: the RankingQuestion's name


# --- reading a file into items ------------------------------------------------------------------


def read_items(data: bytes, *, filename: str, kind: str = "task") -> Iterator[tuple[int, int | None, Any]]:
    """(index, line or None, item) for each item of a JSON array (``.json``) or of a JSON-lines file
    (``.jsonl``/``.ndjson``: one item per non-blank line). ``kind`` names items in errors."""
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson")):
        yield from _jsonl_items(data)
        return
    if not name.endswith(".json"):
        raise ExternalFormatError(f"unsupported file type {filename!r}: upload the export as .json or .jsonl")
    text = _decoded(data, None)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{") and "\n{" in text:
            # One object per line in a file named .json: read it as JSON lines.
            yield from _jsonl_items(data)
            return
        raise ExternalFormatError(f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if isinstance(value, dict):
        value = [value]  # one task or record on its own
    if not isinstance(value, list):
        raise ExternalFormatError(f"expected a JSON list of {kind}s, got {type(value).__name__}")
    for index, item in enumerate(value):
        yield index, None, item


def _decoded(raw: bytes, line: int | None) -> str:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        where = f"line {line}" if line is not None else None
        raise ExternalFormatError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8", where=where
        ) from None


def _jsonl_items(data: bytes) -> Iterator[tuple[int, int | None, Any]]:
    index = 0
    for number, raw in enumerate(data.splitlines(), start=1):
        text = _decoded(raw, number).strip()
        if not text:
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExternalFormatError(
                f"malformed JSON: {exc.msg} at column {exc.colno}", where=f"line {number}", line=number
            ) from None
        yield index, number, item
        index += 1


def item_where(kind: str, index: int, line: int | None, split: str | None = None) -> str:
    if line is not None:
        return f"line {line}"
    return f"{split or kind + 's'}[{index}]"


# --- small shared pieces -----------------------------------------------------------------------


def compact(ranks: Mapping[int, int]) -> dict[int, int]:
    """Ranks replaced by their place among the distinct ranks given: the order and ties stay."""
    levels = {rank: n for n, rank in enumerate(sorted(set(ranks.values())), start=1)}
    return {position: levels[rank] for position, rank in ranks.items()}


def _is_id(value: Any) -> bool:
    """A usable id: text or a whole number, not empty, no NUL (PostgreSQL text cannot hold one)."""
    return (
        isinstance(value, str | int) and not isinstance(value, bool) and str(value) != "" and "\x00" not in str(value)
    )


def _prompt(item: ExternalComparison, fields: Mapping[str, Any], options: FormatOptions, where: str) -> tuple[str, str]:
    """(field name, prompt text)."""
    if options.prompt_field:
        name = options.prompt_field
        if name not in fields:
            raise item.error(f"no prompt field {name!r} (prompt_field)", field=f"{where}.{name}")
    else:
        name = next((n for n in PROMPT_FIELDS if isinstance(fields.get(n), str)), "")
        if not name:
            raise item.error(
                f"no prompt: none of the fields {', '.join(PROMPT_FIELDS)} holds text; name it with prompt_field",
                field=where,
            )
    value = fields[name]
    if not isinstance(value, str):
        raise item.error("expected the prompt as text", field=f"{where}.{name}", value=value)
    return name, value


def _check_k(item: ExternalComparison, count: int, options: FormatOptions, field_name: str, what: str) -> None:
    if options.k is not None and count != options.k:
        raise item.error(f"expected {options.k} {what} (the project's K), got {count}", field=field_name)


def _time_spent(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**31 / 1000:
        return round(value * 1000)
    return None


# --- Label Studio ------------------------------------------------------------------------------


def _ls_annotator(annotation: Mapping[str, Any]) -> Annotator | None:
    who = annotation.get("completed_by")
    user_id: str = ""
    email = ""
    if isinstance(who, Mapping):
        user_id = str(who["id"]) if _is_id(who.get("id")) else ""
        email = who.get("email") if isinstance(who.get("email"), str) else ""
    elif _is_id(who):
        if isinstance(who, str) and "@" in who:
            email = who
        else:
            user_id = str(who)
    created = annotation.get("created_username")
    if not email and isinstance(created, str):  # " ann@example.org, 10"
        head = created.split(",")[0].strip()
        email = head if "@" in head else ""
    email = email.strip() if "\x00" not in email else ""
    if not user_id and not email:
        return None
    key = f"{LABEL_STUDIO}:{user_id}" if user_id else f"{LABEL_STUDIO}:{email.lower()}"
    name = email or f"label-studio-{user_id}"
    return Annotator(key=key, name=name, email=email, aliases=tuple(a for a in (user_id, email) if a))


def _ranking_results(annotation: Mapping[str, Any], where: str, item: ExternalComparison) -> list[tuple[int, dict]]:
    results = annotation.get("result")
    if not isinstance(results, list):
        raise item.error("expected a list of results", field=f"{where}.result", value=results)
    return [
        (r, result)
        for r, result in enumerate(results)
        if isinstance(result, Mapping) and result.get("type") in ("ranker", "pairwise")
    ]


def parse_label_studio_task(task: Any, *, index: int, line: int | None, options: FormatOptions) -> ExternalComparison:
    where = item_where("task", index, line)
    if not isinstance(task, Mapping):
        raise ExternalFormatError(
            f"expected a Label Studio task (an object), got {type(task).__name__}", where=where, index=index, line=line
        )
    task_id = task.get("id")
    if not _is_id(task_id):
        raise ExternalFormatError(
            "missing: every task needs its Label Studio id (a re-import finds the task by it)",
            where=where,
            index=index,
            line=line,
            field="id",
            **({"value": task_id} if task_id is not None else {}),
        )
    item = ExternalComparison(
        index=index,
        line=line,
        where=f"{where} (id {task_id})",
        external_id=str(task_id),
        key=f"{LABEL_STUDIO}:{task_id}",
        prompt="",
        completions=[],
        rankings=[],
    )
    data = task.get("data")
    if not isinstance(data, Mapping):
        raise item.error("expected the task's data (an object)", field="data", value=data)
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise item.error("expected a list of annotations", field="annotations", value=annotations)

    kept: list[tuple[int, Mapping, int, dict]] = []  # (annotation index, annotation, result index, result)
    for a, annotation in enumerate(annotations):
        at = f"annotations[{a}]"
        if not isinstance(annotation, Mapping):
            raise item.error("expected an annotation (an object)", field=at, value=annotation)
        if annotation.get("was_cancelled"):
            item.skipped["cancelled"] += 1
            continue
        found = _ranking_results(annotation, at, item)
        if not found:
            types = sorted({str(r.get("type")) for r in annotation.get("result") or [] if isinstance(r, Mapping)})
            raise item.error(
                "no ranker or pairwise result (this import reads Label Studio's Ranker and Pairwise configs)"
                + (f"; the annotation holds {', '.join(types)}" if types else "; the annotation is empty"),
                field=f"{at}.result",
            )
        if len(found) > 1:
            raise item.error("more than one ranker or pairwise result in one annotation", field=f"{at}.result")
        kept.append((a, annotation, *found[0]))
    if not kept:
        return item  # nothing to import: the service counts it as unlabeled

    kinds = {result["type"] for _, _, _, result in kept}
    if len(kinds) > 1:
        raise item.error("annotations mix ranker and pairwise results", field="annotations")
    _, item.prompt = _prompt(item, data, options, "data")
    if kinds == {"ranker"}:
        positions = _ls_ranker_completions(item, data, options)
        read = _ls_ranker_order
    else:
        positions = _ls_pairwise_completions(item, data, options)
        read = _ls_pairwise_order

    seen: dict[str, int] = {}
    for a, annotation, r, result in kept:
        at = f"annotations[{a}]"
        annotator = _ls_annotator(annotation)
        if annotator is None:
            raise item.error("no annotator: completed_by is missing", field=f"{at}.completed_by")
        if annotator.key in seen:
            raise item.error(
                f"{annotator.name} annotated this task twice (annotations[{seen[annotator.key]}] and [{a}])",
                field=f"{at}.completed_by",
            )
        seen[annotator.key] = a
        value = result.get("value")
        value_field = f"{at}.result[{r}].value"
        if not isinstance(value, Mapping):
            raise item.error("expected the result's value (an object)", field=value_field, value=value)
        ranks, failed = read(item, value, value_field, positions, options)
        item.rankings.append(
            ExternalRanking(
                annotator=annotator,
                ranks=compact(ranks),
                failed=sorted(failed),
                where=at,
                time_spent_ms=_time_spent(annotation.get("lead_time")),
            )
        )
    return item


def _ls_items_field(item: ExternalComparison, data: Mapping, options: FormatOptions) -> str:
    if options.items_field:
        if options.items_field not in data:
            name = options.items_field
            raise item.error(f"no items field {name!r} (items_field)", field=f"data.{name}")
        return options.items_field
    candidates = [
        name
        for name, value in data.items()
        if isinstance(value, list) and value and all(isinstance(v, Mapping) and "id" in v for v in value)
    ]
    if len(candidates) != 1:
        found = f"found {', '.join(candidates)}" if candidates else "found none"
        raise item.error(
            f"the ranker's items: expected one data field holding a list of {{id, body}} objects ({found}); "
            "name it with items_field",
            field="data",
        )
    return candidates[0]


def _ls_ranker_completions(item: ExternalComparison, data: Mapping, options: FormatOptions) -> dict[str, int]:
    name = _ls_items_field(item, data, options)
    items = data[name]
    if not isinstance(items, list):
        raise item.error("expected a list of items", field=f"data.{name}", value=items)
    _check_k(item, len(items), options, f"data.{name}", "items")
    positions: dict[str, int] = {}
    for j, entry in enumerate(items):
        at = f"data.{name}[{j}]"
        if not isinstance(entry, Mapping) or not _is_id(entry.get("id")):
            raise item.error("expected an item {id, title, body}", field=at, value=entry)
        item_id = str(entry["id"])
        if item_id in positions:
            raise item.error(f"item id {item_id!r} appears twice", field=f"{at}.id")
        text = entry.get("body") if isinstance(entry.get("body"), str) else entry.get("html")
        if not isinstance(text, str):
            raise item.error("expected the item's text in body (or html)", field=f"{at}.body", value=entry.get("body"))
        positions[item_id] = j
        metadata = {"external_id": item_id}
        if isinstance(entry.get("title"), str) and entry["title"]:
            metadata["title"] = entry["title"].replace("\x00", "")
        item.completions.append({"text": text, "metadata": metadata})
    return positions


def _ls_ranker_order(
    item: ExternalComparison, value: Mapping, at: str, positions: dict[str, int], options: FormatOptions
) -> tuple[dict[int, int], list[int]]:
    ranker = value.get("ranker")
    if not isinstance(ranker, Mapping) or not ranker:
        raise item.error("expected {ranker: {list or bucket: [item ids]}}", field=f"{at}.ranker", value=ranker)
    groups: dict[str, list[int]] = {}
    placed: dict[int, str] = {}
    for bucket, ids in ranker.items():
        where = f"{at}.ranker.{bucket}"
        if not isinstance(ids, list):
            raise item.error("expected a list of item ids", field=where, value=ids)
        group = []
        for item_id in ids:
            if not _is_id(item_id) or str(item_id) not in positions:
                known = ", ".join(positions)
                raise item.error(f"not an item of this task (items: {known})", field=where, value=item_id)
            position = positions[str(item_id)]
            if position in placed:
                raise item.error(f"item {item_id!r} is placed twice (also in {placed[position]!r})", field=where)
            placed[position] = bucket
            group.append(position)
        if group:
            groups[bucket] = group
    named = set(options.bucket_order) | set(options.failed_buckets)
    bucketed = len(groups) > 1 or UNSORTED_BUCKET in groups or bool(named & set(groups))
    ranks: dict[int, int] = {}
    failed: list[int] = []
    if not bucketed:
        for n, position in enumerate(next(iter(groups.values()), [])):
            ranks[position] = n + 1  # a Ranker without buckets: a strict order, best first
    else:
        for bucket in groups:
            if bucket not in named:
                order = ", ".join(options.bucket_order) or "empty"
                what = (
                    f"the items left unsorted in the list ({bucket!r}) are in neither bucket_order ({order})"
                    " nor failed_buckets: say where they rank"
                    if bucket == UNSORTED_BUCKET
                    else f"bucket {bucket!r} is in neither bucket_order ({order}) nor failed_buckets:"
                    " say where it ranks"
                )
                raise item.error(f"{what}, best bucket first", field=f"{at}.ranker", value=bucket)
        tier = 0
        for bucket in options.bucket_order:
            if bucket in groups:
                tier += 1
                ranks |= dict.fromkeys(groups[bucket], tier)  # within a bucket: a tie
        for bucket in options.failed_buckets:
            failed += groups.get(bucket, [])
    missing = [item_id for item_id, position in positions.items() if position not in placed]
    if missing:
        raise item.error(
            f"item {missing[0]!r} is neither ranked nor in a failed bucket (every completion needs one)",
            field=f"{at}.ranker",
        )
    return ranks, failed


def _ls_pairwise_completions(item: ExternalComparison, data: Mapping, options: FormatOptions) -> dict[str, int]:
    if options.completion_fields:
        if len(options.completion_fields) != 2:
            raise item.error(
                f"a pairwise task has two completions; completion_fields names {len(options.completion_fields)}",
                field="data",
            )
        left, right = options.completion_fields
    else:
        pair = next((p for p in PAIRWISE_FIELDS if all(isinstance(data.get(n), str) for n in p)), None)
        if pair is None:
            known = ", ".join("/".join(p) for p in PAIRWISE_FIELDS)
            raise item.error(
                f"no two completion fields (looked for {known}); name them with completion_fields=left,right",
                field="data",
            )
        left, right = pair
    _check_k(item, 2, options, "data", "completions (a pairwise task has 2)")
    for name in (left, right):
        if not isinstance(data.get(name), str):
            raise item.error("expected the completion as text", field=f"data.{name}", value=data.get(name))
        item.completions.append({"text": data[name], "metadata": {"external_id": name}})
    return {"left": 0, "right": 1}


def _ls_pairwise_order(
    item: ExternalComparison, value: Mapping, at: str, positions: dict[str, int], options: FormatOptions
) -> tuple[dict[int, int], list[int]]:
    selected = value.get("selected")
    if not isinstance(selected, str) or selected not in positions:
        raise item.error(
            "expected 'left' or 'right'", field=f"{at}.selected", **({"value": selected} if "selected" in value else {})
        )
    best = positions[selected]
    return {best: 1, 1 - best: 2}, []


# --- Argilla -----------------------------------------------------------------------------------

_FLAT_META = {"id", "_server_id", "status", "external_id", "metadata", "vectors", "inserted_at", "updated_at"}


def _obj(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> list:
    return value if isinstance(value, list) else []


def _looks_ranked(value: Any) -> bool:
    """A ranking answer: [{"value", "rank"}], {"rank": [...], "value": [...]} or [option, ...]."""
    if isinstance(value, Mapping):
        return isinstance(value.get("value"), list) and isinstance(value.get("rank"), list)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) or (isinstance(v, Mapping) and "value" in v) for v in value)
    )


def _argilla_shape(record: Mapping) -> str:
    if isinstance(record.get("fields"), Mapping):
        return "v1" if isinstance(record.get("responses"), list) else "v2"
    if any(isinstance(k, str) and k.endswith(".responses") for k in record):
        return "v2_flat"
    return "v1_flat"


def _v1_flat_questions(record: Mapping) -> list[str]:
    return [
        name
        for name, value in record.items()
        if isinstance(value, list)
        and value
        and all(isinstance(v, Mapping) and "user_id" in v and "value" in v for v in value)
        and any(_looks_ranked(v["value"]) for v in value)
    ]


def _questions(record: Mapping, shape: str) -> list[str]:
    if shape == "v1":
        names: dict[str, None] = {}
        for response in _seq(record.get("responses")):
            for name, answer in _obj(_obj(response).get("values")).items():
                if isinstance(answer, Mapping) and _looks_ranked(answer.get("value")):
                    names[name] = None
        return list(names)
    if shape == "v2":
        return [
            name
            for name, answers in _obj(record.get("responses")).items()
            if isinstance(answers, list)
            and any(isinstance(a, Mapping) and _looks_ranked(a.get("value")) for a in answers)
        ]
    if shape == "v2_flat":
        return [
            k.removesuffix(".responses")
            for k, v in record.items()
            if isinstance(k, str)
            and k.endswith(".responses")
            and isinstance(v, list)
            and any(_looks_ranked(x) for x in v)
        ]
    return _v1_flat_questions(record)


def _argilla_fields(record: Mapping, shape: str) -> dict[str, Any]:
    if shape in ("v1", "v2"):
        return dict(record["fields"])
    questions = set(_questions(record, shape))
    return {
        k: v
        for k, v in record.items()
        if isinstance(k, str)
        and k not in _FLAT_META
        and k not in questions
        and ".responses" not in k
        and ".suggestion" not in k
        and "-suggestion" not in k
    }


def _argilla_id(record: Mapping, shape: str) -> str:
    for name in ("external_id", "id", "_server_id") if shape.startswith("v1") else ("id", "_server_id", "external_id"):
        if _is_id(record.get(name)):
            return str(record[name])
    return ""


def _responses(record: Mapping, shape: str, question: str) -> list[tuple[str, Any, Any, Any]]:
    """(where, user_id, status, value) of each response to ``question``."""
    out = []
    if shape == "v1":
        for i, response in enumerate(_seq(record.get("responses"))):
            if not isinstance(response, Mapping):
                out.append((f"responses[{i}]", None, None, response))
                continue
            values = response.get("values")
            if not isinstance(values, Mapping):
                out.append((f"responses[{i}].values", response.get("user_id"), response.get("status"), values))
                continue
            answer = values.get(question)
            if answer is None:
                continue  # this user answered other questions only
            value = answer.get("value") if isinstance(answer, Mapping) else answer
            at = f"responses[{i}].values.{question}.value"
            out.append((at, response.get("user_id"), response.get("status"), value))
    elif shape == "v2":
        for i, answer in enumerate(_seq(_obj(record.get("responses")).get(question))):
            if not isinstance(answer, Mapping):
                out.append((f"responses.{question}[{i}]", None, None, answer))
                continue
            at = f"responses.{question}[{i}].value"
            out.append((at, answer.get("user_id"), answer.get("status"), answer.get("value")))
    elif shape == "v2_flat":
        values = _seq(record.get(f"{question}.responses"))
        users = _seq(record.get(f"{question}.responses.users"))
        statuses = _seq(record.get(f"{question}.responses.status"))
        for i, value in enumerate(values):
            user = users[i] if i < len(users) else None
            status = statuses[i] if i < len(statuses) else None
            out.append((f"{question}.responses[{i}]", user, status, value))
    else:
        for i, answer in enumerate(_seq(record.get(question))):
            if not isinstance(answer, Mapping):
                out.append((f"{question}[{i}]", None, None, answer))
                continue
            out.append((f"{question}[{i}].value", answer.get("user_id"), answer.get("status"), answer.get("value")))
    return out


def _argilla_ranks(item: ExternalComparison, value: Any, at: str) -> dict[str, int]:
    """option -> rank of one answer, in any of the shapes Argilla writes."""
    if isinstance(value, Mapping) and isinstance(value.get("value"), list):  # a Hugging Face Sequence of structs
        options, ranks = value["value"], value.get("rank")
        if not isinstance(ranks, list) or len(ranks) != len(options):
            raise item.error("expected as many ranks as values", field=at, value=value)
        pairs = list(zip(options, ranks, strict=True))
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        pairs = [(option, n + 1) for n, option in enumerate(value)]  # 2.x: options best first
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        pairs = [(v.get("value"), v.get("rank")) for v in value]
        if all(rank is None for _, rank in pairs):
            pairs = [(option, n + 1) for n, (option, _) in enumerate(pairs)]  # the server's [{"value"}] form
    else:
        raise item.error("expected a ranking: [{value, rank}] or [option, ...]", field=at, value=value)
    out: dict[str, int] = {}
    for j, (option, rank) in enumerate(pairs):
        if not isinstance(option, str) or not option or "\x00" in option:
            raise item.error("expected an option name", field=f"{at}[{j}].value", value=option)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            message = f"option {option!r} has no rank (a whole number from 1)"
            raise item.error(message, field=f"{at}[{j}].rank", value=rank)
        if option in out:
            raise item.error(f"option {option!r} is ranked twice", field=f"{at}[{j}].value")
        out[option] = rank
    return out


def _options_of(record: Mapping, shape: str, question: str) -> set:
    """The option names the answers to ``question`` use (for telling a ranking from a multi-label answer)."""
    names: set = set()
    for _, _, _, value in _responses(record, shape, question):
        if isinstance(value, Mapping):
            value = value.get("value")
        for entry in _seq(value):
            name = entry.get("value") if isinstance(entry, Mapping) else entry
            if isinstance(name, str):
                names.add(name)
    return names


def _check_argilla_structure(item: ExternalComparison, record: Mapping, shape: str, question: str) -> None:
    """Containers of the wrong kind are refused by name, not read as "no answers"."""
    if shape == "v2" and record.get("responses") is not None:
        responses = record["responses"]
        if not isinstance(responses, Mapping):
            raise item.error("expected {question: [answers]}", field="responses", value=responses)
        for name, answers in responses.items():
            if not isinstance(answers, list):
                raise item.error("expected a list of answers", field=f"responses.{name}", value=answers)
    if shape == "v2_flat":
        for key, value in record.items():
            if isinstance(key, str) and ".responses" in key and value is not None and not isinstance(value, list):
                raise item.error("expected a list", field=key, value=value)
    if shape == "v1_flat" and question and record.get(question) is not None and not isinstance(record[question], list):
        raise item.error("expected a list of responses", field=question, value=record[question])


def parse_argilla_record(
    record: Any, *, index: int, line: int | None, options: FormatOptions, split: str | None = None
) -> ExternalComparison:
    where = item_where("record", index, line, split)
    if not isinstance(record, Mapping):
        raise ExternalFormatError(
            f"expected an Argilla record (an object), got {type(record).__name__}", where=where, index=index, line=line
        )
    shape = _argilla_shape(record)
    fields = _argilla_fields(record, shape)
    external_id = _argilla_id(record, shape)
    if not external_id:  # no id at all: the record's content names it, so a re-import still finds it
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:24]
        external_id = f"sha256:{digest}"
    item = ExternalComparison(
        index=index,
        line=line,
        where=f"{where} (id {external_id})",
        external_id=external_id,
        key=f"{ARGILLA}:{external_id}",
        prompt="",
        completions=[],
        rankings=[],
        split=split,
    )
    _check_argilla_structure(item, record, shape, options.question)
    questions = _questions(record, shape)
    if len(questions) > 1:  # a multi-label answer looks like a ranking too: keep the ones that rank fields
        ranking_fields = [q for q in questions if _options_of(record, shape, q) <= set(fields)]
        questions = ranking_fields or questions
    if options.question:
        question = options.question
    elif len(questions) > 1:
        names = ", ".join(questions)
        raise item.error(f"several ranking questions ({names}): name one with question", field="responses")
    elif questions:
        question = questions[0]
    else:
        return item  # no ranking answered: unlabeled

    answers = []
    for at, user_id, status, value in _responses(record, shape, question):
        if status not in (None, SUBMITTED):
            item.skipped[str(status)] += 1
            continue
        if not _is_id(user_id):
            raise item.error("a response without a user_id", field=at.rsplit(".value", 1)[0], value=user_id)
        answers.append((at, str(user_id), _argilla_ranks(item, value, at)))
    if not answers:
        return item

    field_names = "fields" if shape in ("v1", "v2") else "record"
    prompt_name, item.prompt = _prompt(item, fields, options, field_names)
    chosen = {option for _, _, ranks in answers for option in ranks}
    order = {name: n for n, name in enumerate(fields)}
    for option in chosen:
        if option not in fields or option == prompt_name:
            what = "is the prompt" if option == prompt_name else "is not a field of the record"
            raise item.error(
                f"option {option!r} {what}: a ranking option must name the field that holds its completion",
                field=field_names,
                value=option,
            )
        if not isinstance(fields[option], str):
            raise item.error("expected the completion as text", field=f"{field_names}.{option}", value=fields[option])
    options_in_order = sorted(chosen, key=order.__getitem__)
    _check_k(item, len(options_in_order), options, field_names, "ranked options")
    position = {option: n for n, option in enumerate(options_in_order)}
    item.completions = [{"text": fields[o], "metadata": {"external_id": o}} for o in options_in_order]

    seen: dict[str, str] = {}
    for at, user_id, ranks in answers:
        if user_id in seen:
            raise item.error(f"user {user_id} answered twice ({seen[user_id]} and {at})", field=at)
        seen[user_id] = at
        missing = [o for o in options_in_order if o not in ranks]
        if missing:
            raise item.error(
                f"ranks {len(ranks)} of the {len(options_in_order)} options; {missing[0]!r} has no rank", field=at
            )
        annotator = Annotator(key=f"{ARGILLA}:{user_id}", name=f"argilla-{user_id}", aliases=(user_id,))
        item.rankings.append(
            ExternalRanking(
                annotator=annotator,
                ranks=compact({position[o]: rank for o, rank in ranks.items()}),
                failed=[],
                where=at,
            )
        )
    return item
