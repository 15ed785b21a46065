"""The files a snapshot is made of, written as the pairs are made.

Pure Python (no Django, no torch); pyarrow is imported when a Parquet file is written. Each split has
a ``.jsonl`` file (one JSON object per line, the keys in :data:`COLUMNS` order, written exactly as
``json.dumps(row, ensure_ascii=False)`` writes them) and a ``.parquet`` file (row groups of at most
:data:`ROW_GROUP_ROWS` rows, the schema of :func:`arrow_schema`). ``train`` and ``eval`` always exist,
empty or not; ``test`` only when it has pairs. A row is a tuple of the column values in
:data:`COLUMNS` order.

:class:`PairFileWriter` keeps at most one row group per split in memory, whatever the number of
pairs: JSON lines are appended to the JSONL file (hashed as it is written) every few thousand rows,
and rows wait per split until they fill a Parquet row group.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from json.encoder import encode_basestring
from operator import itemgetter
from pathlib import Path

SPLITS = ("train", "eval", "test")
ALWAYS_WRITTEN = ("train", "eval")  # ``test`` only when it has pairs

# Row columns, in file order. ``prompt``/``chosen``/``rejected``/``margin`` are what TRL reads.
COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "margin",
    "weight",
    "comparison_id",
    "labeler_id",
    "source",
    "criterion",
    "split",
    "agreement",
    "chosen_completion_id",
    "rejected_completion_id",
)
SPLIT_COLUMN = COLUMNS.index("split")
ROW_GROUP_ROWS = 65_536
JSONL_CHUNK_LINES = 4_096
TEXT_CACHE_SIZE = 64  # JSON strings of recent texts kept per split (a comparison's repeat)
_HASH_BLOCK = 1 << 20
_finite = math.isfinite
# JSON strings of the usual sources and splits
_FLOAT_JSON: dict[float, str] = {}  # repr() of recent margins, weights, agreements (few distinct values)
FLOAT_CACHE_SIZE = 4096
_SHORT = {text: encode_basestring(text) for text in ("human", "ai", "imported", "mixed", *SPLITS)}


def arrow_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("prompt", pa.string()),
            ("chosen", pa.string()),
            ("rejected", pa.string()),
            ("margin", pa.float64()),
            ("weight", pa.float64()),
            ("comparison_id", pa.int64()),
            ("labeler_id", pa.int64()),
            ("source", pa.string()),
            ("criterion", pa.int64()),
            ("split", pa.string()),
            ("agreement", pa.float64()),
            ("chosen_completion_id", pa.int64()),
            ("rejected_completion_id", pa.int64()),
        ]
    )


# ---------------------------------------------------------------------------------------------
# JSONL lines


def _float_json(value: float) -> str:
    text = repr(value)
    if value:  # 0.0 and -0.0 are equal keys with different reprs: never cached
        if len(_FLOAT_JSON) >= FLOAT_CACHE_SIZE:
            _FLOAT_JSON.clear()
        _FLOAT_JSON[value] = text
    return text


def jsonl_line(row: Sequence, text_cache: dict[str, str] | None = None) -> str:
    """``json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False) + "\\n"``, byte for byte, faster.

    Rows of plain values (texts ``str``, ids ``int`` or None, numbers finite ``float``) are formatted
    directly; any other row goes through ``json.dumps``. ``text_cache`` maps texts to their JSON
    string (a comparison's prompt and completions repeat over its pairs); the caller bounds it.
    """
    prompt, chosen, rejected, margin, weight, comparison, labeler, source, criterion, split, agreement, a, b = row
    if not (
        type(comparison) is int
        and type(a) is int
        and type(b) is int
        and (labeler is None or type(labeler) is int)
        and (criterion is None or type(criterion) is int)
        and type(prompt) is str
        and type(chosen) is str
        and type(rejected) is str
        and type(source) is str
        and type(split) is str
        and type(margin) is float
        and type(weight) is float
        and type(agreement) is float
        and _finite(margin)
        and _finite(weight)
        and _finite(agreement)
    ):
        return json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False) + "\n"
    if text_cache is None:
        p, c, r = encode_basestring(prompt), encode_basestring(chosen), encode_basestring(rejected)
    else:
        p = text_cache.get(prompt)
        if p is None:
            p = text_cache[prompt] = encode_basestring(prompt)
        c = text_cache.get(chosen)
        if c is None:
            c = text_cache[chosen] = encode_basestring(chosen)
        r = text_cache.get(rejected)
        if r is None:
            r = text_cache[rejected] = encode_basestring(rejected)
    floats = _FLOAT_JSON
    m = floats.get(margin) or _float_json(margin)
    w = floats.get(weight) or _float_json(weight)
    g = floats.get(agreement) or _float_json(agreement)
    return (
        f'{{"prompt": {p}, "chosen": {c}, "rejected": {r}, "margin": {m}, "weight": {w}, '
        f'"comparison_id": {comparison}, "labeler_id": {"null" if labeler is None else labeler}, '
        f'"source": {_SHORT.get(source) or encode_basestring(source)}, '
        f'"criterion": {"null" if criterion is None else criterion}, '
        f'"split": {_SHORT.get(split) or encode_basestring(split)}, "agreement": {g}, '
        f'"chosen_completion_id": {a}, "rejected_completion_id": {b}}}\n'
    )


# ---------------------------------------------------------------------------------------------
# Writers


class _Background:
    """One thread that does the writing: file writes, hashing and Parquet encoding release the GIL,
    so they overlap with making the next pairs. Tasks run in order; a bounded queue keeps memory
    bounded; the first error is raised to the producer (at its next submit, or at ``finish``)."""

    def __init__(self, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="pair-files", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (task := self._queue.get()) is not None:
            if self._error is None and not self._stopped:
                try:
                    task()
                except BaseException as exc:  # handed to the producer
                    self._error = exc

    def submit(self, task: Callable[[], object]) -> None:
        self._raise()
        self._queue.put(task)

    def finish(self) -> None:
        """Wait for every task; raise the first error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def stop(self) -> None:
        """Drop the tasks not started yet and wait for the thread (an error elsewhere is on its way)."""
        self._stopped = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class _SplitFiles:
    """One split's JSONL and Parquet files. JSON lines are made as rows arrive and written every
    :data:`JSONL_CHUNK_LINES` lines (hashed as they go); rows wait for a full Parquet row group."""

    def __init__(self, folder: Path, split: str, row_group_rows: int, background: _Background):
        self.jsonl_path = folder / f"{split}.jsonl"
        self.parquet_path = folder / f"{split}.parquet"
        self.row_group_rows = row_group_rows
        self.count = 0  # rows handed to Parquet
        self._background = background
        self._rows: list[tuple] = []  # the next row group
        self._lines: list[str] = []
        self._text_cache: dict[str, str] = {}
        self._jsonl = open(self.jsonl_path, "wb")  # noqa: SIM115 (closed in close() or abort())
        self._jsonl_sha = hashlib.sha256()
        self._parquet = None

    def add(self, rows: list[tuple]) -> None:
        cache = self._text_cache
        if len(cache) > TEXT_CACHE_SIZE:
            cache.clear()
        self._lines += [jsonl_line(row, cache) for row in rows]
        if len(self._lines) >= JSONL_CHUNK_LINES:
            self._flush_jsonl()
        self._rows += rows
        while len(self._rows) >= self.row_group_rows:
            group, self._rows = self._rows[: self.row_group_rows], self._rows[self.row_group_rows :]
            self._write_row_group(group)

    def flush(self) -> None:
        """Hand everything left to the background writer."""
        self._flush_jsonl()
        if self._rows:
            self._write_row_group(self._rows)
            self._rows = []

    def _flush_jsonl(self) -> None:
        if self._lines:
            data = "".join(self._lines).encode("utf-8")
            self._lines = []
            self._background.submit(partial(self._append_jsonl, data))

    def _append_jsonl(self, data: bytes) -> None:
        self._jsonl.write(data)
        self._jsonl_sha.update(data)

    def _write_row_group(self, rows: list[tuple]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = arrow_schema()
        table = pa.Table.from_arrays(
            [pa.array(list(map(itemgetter(i), rows)), type=column.type) for i, column in enumerate(schema)],
            schema=schema,
        )
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.parquet_path, schema)
        self._background.submit(partial(self._parquet.write_table, table, row_group_size=len(rows)))
        self.count += len(rows)

    def close(self) -> dict[str, dict]:
        """Close and describe both files (after ``flush`` and the background's ``finish``):
        ``{file name: {rows, bytes, sha256}}``."""
        self._jsonl.close()
        if self._parquet is not None:
            self._parquet.close()
        else:
            _write_empty_parquet(self.parquet_path)
        jsonl = {"rows": self.count, "bytes": self.jsonl_path.stat().st_size, "sha256": self._jsonl_sha.hexdigest()}
        return {self.jsonl_path.name: jsonl, self.parquet_path.name: _describe(self.parquet_path, self.count)}

    def abort(self) -> None:
        self._jsonl.close()
        if self._parquet is not None:
            self._parquet.close()


def _write_empty_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([], schema=arrow_schema()), path)


class PairFileWriter:
    """Per-split JSONL + Parquet files in ``folder``, opened when a split gets its first row.

    ``write(rows)`` takes row tuples (any splits, any number); ``close()`` writes what is left, the
    ``train``/``eval`` files even when empty, and returns ``{file name: {rows, bytes, sha256}}`` in
    split order (the manifest's ``files``). ``test`` files exist only when ``test`` got rows. The
    bytes are written by one background thread (:class:`_Background`). Used as a context manager,
    an error stops the thread and closes the open files (the caller removes the folder).
    """

    def __init__(self, folder: Path, *, row_group_rows: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.row_group_rows = row_group_rows or ROW_GROUP_ROWS
        self._splits: dict[str, _SplitFiles] = {}
        self._background = _Background()
        self.closed = False

    def _files(self, split: str) -> _SplitFiles:
        files = self._splits.get(split)
        if files is None:
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}")
            files = self._splits[split] = _SplitFiles(self.folder, split, self.row_group_rows, self._background)
        return files

    def write(self, rows: Sequence[tuple]) -> None:
        """Append rows (one comparison's, as a rule: all of one split)."""
        if not rows:
            return
        split = rows[0][SPLIT_COLUMN]
        if all(row[SPLIT_COLUMN] == split for row in rows):
            self._files(split).add(list(rows))
            return
        by_split: dict[str, list[tuple]] = {}
        for row in rows:
            by_split.setdefault(row[SPLIT_COLUMN], []).append(row)
        for split_name, split_rows in by_split.items():
            self._files(split_name).add(split_rows)

    def close(self) -> dict[str, dict]:
        splits = [split for split in SPLITS if split in self._splits or split in ALWAYS_WRITTEN]
        for split in splits:
            self._files(split).flush()
        self._background.finish()
        described: dict[str, dict] = {}
        for split in splits:
            described.update(self._splits[split].close())
        self.closed = True
        return described

    def abort(self) -> None:
        self._background.stop()
        for files in self._splits.values():
            files.abort()
        self.closed = True

    def __enter__(self) -> PairFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.closed:
            self.abort()


def _describe(path: Path, rows: int) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_HASH_BLOCK), b""):
            digest.update(block)
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


# ---------------------------------------------------------------------------------------------
# Whole files from lists (the pure entry points), the manifest


def _row(pair) -> tuple:
    return pair if isinstance(pair, tuple) else tuple(getattr(pair, name) for name in COLUMNS)


def write_jsonl(pairs: Iterable, path: Path) -> int:
    """Pairs (``labeling.pairs.Pair`` or row tuples) as JSON lines; returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(jsonl_line(_row(pair)))
            n += 1
    return n


def write_parquet(pairs: Sequence, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [_row(pair) for pair in pairs]
    table = pa.Table.from_pylist([dict(zip(COLUMNS, row, strict=True)) for row in rows], schema=arrow_schema())
    pq.write_table(table, path)
    return table.num_rows


def write_pair_files(pairs: Iterable, folder: Path) -> dict[str, dict]:
    """Write ``train``/``eval`` (always) and ``test`` (when it has pairs) as ``.jsonl`` and ``.parquet``.

    Returns ``{file name: {rows, bytes, sha256}}`` for the manifest.
    """
    with PairFileWriter(folder) as writer:
        batch: list[tuple] = []
        for pair in pairs:
            batch.append(_row(pair))
            if len(batch) >= JSONL_CHUNK_LINES:
                writer.write(batch)
                batch = []
        writer.write(batch)
        return writer.close()


def write_manifest(manifest: Mapping, folder: Path) -> Path:
    path = Path(folder) / "manifest.json"
    with open(path, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, sort_keys=True, ensure_ascii=False, default=str)
        out.write("\n")
    return path


def make_read_only(folder: Path) -> None:
    for path in Path(folder).iterdir():
        if path.is_file():
            os.chmod(path, 0o444)
