"""Streaming readers for uploaded JSONL and CSV files (pure Python, no Django).

Every problem raises ``RowError`` naming the line (1-based, as an editor shows it) and, where it
applies, the field: "line 7, field 'prompt': expected a string, got 12". Callers import inside a
transaction, so a bad file imports nothing.
"""

import csv
import json
from collections.abc import Iterator
from typing import IO, Any

csv.field_size_limit(64 * 1024 * 1024)


class RowError(ValueError):
    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        self.line, self.field, self.reason = line, field, message
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.reason}


class UploadTooLarge(RowError):
    """The upload passed the size limit while streaming (an HTTP 413, not a 400)."""


def _limited_lines(stream: IO[bytes], max_bytes: int | None) -> Iterator[tuple[int, bytes]]:
    seen = 0
    for number, raw in enumerate(stream, start=1):
        seen += len(raw)
        if max_bytes is not None and seen > max_bytes:
            raise UploadTooLarge(f"the file passes the upload limit of {max_bytes:,} bytes", line=number)
        yield number, raw


def _decode(raw: bytes, number: int, encoding: str) -> str:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RowError(
            f"not valid {encoding} (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8",
            line=number,
        ) from None
    return text.removeprefix("\ufeff") if number == 1 else text


def iter_jsonl(stream: IO[bytes], *, max_bytes: int | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; each line must be a JSON object."""
    for number, raw in _limited_lines(stream, max_bytes):
        text = _decode(raw, number, "utf-8").strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RowError(f"malformed JSON: {exc.msg} at column {exc.colno}", line=number) from None
        if not isinstance(value, dict):
            raise RowError(f"expected a JSON object, got {type(value).__name__}", line=number)
        yield number, value


def iter_csv(stream: IO[bytes], *, max_bytes: int | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) for each CSV record after the header; all values are strings."""
    state = {"line": 0}

    def lines() -> Iterator[str]:
        for number, raw in _limited_lines(stream, max_bytes):
            state["line"] = number
            yield _decode(raw, number, "utf-8")

    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise RowError(f"malformed CSV: {exc}", line=state["line"]) from None
    header = [h.strip() for h in header]
    if any(not h for h in header):
        raise RowError("the header has an empty column name", line=1)
    if len(set(header)) != len(header):
        duplicate = next(h for h in header if header.count(h) > 1)
        raise RowError(f"the header names column {duplicate!r} twice", line=1)
    while True:
        start = state["line"] + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RowError(f"malformed CSV: {exc}", line=state["line"]) from None
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise RowError(f"expected {len(header)} columns as in the header, got {len(record)}", line=start)
        yield start, dict(zip(header, record, strict=True))


def iter_records(stream: IO[bytes], *, filename: str, max_bytes: int | None = None) -> Iterator[tuple[int, dict]]:
    """Pick the reader by file extension (.jsonl/.json/.ndjson or .csv)."""
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return iter_jsonl(stream, max_bytes=max_bytes)
    if name.endswith(".csv"):
        return iter_csv(stream, max_bytes=max_bytes)
    raise RowError(f"unsupported file type {filename!r}: upload .jsonl or .csv")


def require(row: dict, field: str, kind: type | tuple[type, ...], *, line: int, optional: bool = False) -> Any:
    """The row's value for ``field``, checked against ``kind``; the error names line and field."""
    if field not in row or row[field] is None:
        if optional:
            return None
        raise RowError("missing", line=line, field=field)
    value = row[field]
    # bool is an int in Python; a rank of `true` is a mistake, not a 1.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        expected = " or ".join(t.__name__ for t in _as_tuple(kind))
        raise RowError(f"expected {expected}, got {type(value).__name__} {value!r:.40}", line=line, field=field)
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
