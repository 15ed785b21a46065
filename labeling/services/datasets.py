"""Dataset import: a JSONL or CSV upload becomes a Dataset and its PromptRows, all or nothing.

The upload is read line by line (``labeling.parsing``) and rows are inserted in batches, so memory
stays flat whatever the file size. Everything runs in one transaction: the first bad line raises a
``ServiceError`` naming the line and field, and nothing is imported.
"""

import json
import math
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from django.db import transaction

from common.exceptions import ServiceError, TooLarge
from labeling.models import Dataset, Project, PromptRow, Split
from labeling.parsing import RowError, iter_records
from labeling.services.comparisons import import_error
from labeling.splits import stable_split

BATCH_SIZE = 1000
SPLIT_COLUMN = "split"
SPLITS = tuple(Split.values)


def _too_large(*, max_bytes: int, size: int) -> ServiceError:
    message = f"The file is {size:,} bytes; the upload limit is {max_bytes:,} bytes."
    return TooLarge(message, errors=[{"line": None, "field": None, "message": message}])


def split_for(data: dict[str, Any], *, eval_fraction: float, test_fraction: float) -> str:
    """The row's split from a stable hash of its content (key order ignored)."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return stable_split(canonical, eval_fraction=eval_fraction, test_fraction=test_fraction)


def _check_value(field: str, value: Any, line: int) -> None:
    if value is None:
        raise RowError("null is not allowed; use an empty string", line=line, field=field)
    if isinstance(value, dict | list):
        kind = "object" if isinstance(value, dict) else "array"
        raise RowError(f"expected a string, number or boolean, got a nested {kind}", line=line, field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise RowError(f"expected a finite number, got {value}", line=line, field=field)
    if not isinstance(value, str | int | float | bool):
        raise RowError(f"expected a string, number or boolean, got {type(value).__name__}", line=line, field=field)


def _first_row_fields(record: dict, line: int) -> list[str]:
    fields = list(record)
    if not fields:
        raise RowError("the first row has no fields", line=line)
    for field in fields:
        if not field.strip():
            raise RowError("a field has an empty name", line=line, field=field)
    if fields == [SPLIT_COLUMN]:
        raise RowError(f"the only field is {SPLIT_COLUMN!r}; rows need at least one data field", line=line)
    return fields


def _check_keys(record: dict, fields: list[str], line: int) -> None:
    if len(record) == len(fields) and all(f in record for f in fields):
        return
    for field in fields:
        if field not in record:
            raise RowError("missing (every row must have the first row's fields)", line=line, field=field)
    extra = next(k for k in record if k not in fields)
    raise RowError(f"unexpected field; the first row's fields are: {', '.join(fields)}", line=line, field=extra)


def _row_split(record: dict, line: int) -> str:
    value = record[SPLIT_COLUMN]
    if isinstance(value, str) and value.strip().lower() in SPLITS:
        return value.strip().lower()
    raise RowError(f"unknown split {value!r}; use one of: {', '.join(SPLITS)}", line=line, field=SPLIT_COLUMN)


def _check_fractions(eval_fraction: float, test_fraction: float) -> None:
    for key, value in (("eval_fraction", eval_fraction), ("test_fraction", test_fraction)):
        if not (0.0 <= value <= 1.0):
            raise ServiceError(f"{key} must be between 0 and 1, got {value}.", errors={key: ["Must be within 0..1."]})
    if eval_fraction + test_fraction > 1.0:
        message = f"eval_fraction + test_fraction is {eval_fraction + test_fraction:g}, more than 1."
        raise ServiceError(message, errors={"eval_fraction": [message], "test_fraction": [message]})


@transaction.atomic
def dataset_import(
    *,
    project: Project,
    stream: Iterable[bytes],
    filename: str,
    size: int | None = None,
    max_bytes: int | None = None,
    name: str = "",
    eval_fraction: float = 0.1,
    test_fraction: float = 0.0,
    created_by=None,
    batch_size: int = BATCH_SIZE,
) -> Dataset:
    """Import an uploaded JSONL/CSV file (``stream`` yields its lines as bytes).

    The first row's keys become the dataset's fields and every row must carry exactly those. A
    ``split`` column (train/eval/test) fixes a row's split; without one, the split comes from a
    stable hash of the row against ``eval_fraction`` and ``test_fraction``. ``size`` (the upload's
    size, when known) is checked against ``max_bytes`` before reading; the stream is checked too.
    """
    _check_fractions(eval_fraction, test_fraction)
    if max_bytes is not None and size is not None and size > max_bytes:
        raise _too_large(max_bytes=max_bytes, size=size)

    dataset = Dataset(
        project=project,
        name=(name.strip() or PurePath(filename).stem or "dataset")[:200],
        source_filename=PurePath(filename).name[:255],
        created_by=created_by,
    )
    dataset.save()

    fields: list[str] | None = None
    data_fields: list[str] = []
    has_split = False
    counts = dict.fromkeys(SPLITS, 0)
    batch: list[PromptRow] = []
    index = 0
    try:
        for line, record in iter_records(stream, filename=filename, max_bytes=max_bytes):
            if fields is None:
                fields = _first_row_fields(record, line)
                has_split = SPLIT_COLUMN in fields
                data_fields = [f for f in fields if f != SPLIT_COLUMN]
            else:
                _check_keys(record, fields, line)
            data = {}
            for field in data_fields:
                _check_value(field, record[field], line)
                data[field] = record[field]
            if has_split:
                split = _row_split(record, line)
            else:
                split = split_for(data, eval_fraction=eval_fraction, test_fraction=test_fraction)
            counts[split] += 1
            batch.append(PromptRow(dataset=dataset, index=index, data=data, split=split))
            index += 1
            if len(batch) >= batch_size:
                PromptRow.objects.bulk_create(batch)
                batch = []
    except RowError as exc:
        raise import_error(exc) from None
    if batch:
        PromptRow.objects.bulk_create(batch)
    if index == 0:
        message = "The file has no rows."
        raise ServiceError(message, errors=[{"line": None, "field": None, "message": message}])

    dataset.fields = data_fields
    dataset.row_count = index
    dataset.split_counts = counts
    dataset.save(update_fields=["fields", "row_count", "split_counts"])
    return dataset
