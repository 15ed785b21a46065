"""The files a snapshot is made of, written as the pairs are made.

Pure Python (no Django, no torch); pyarrow is imported when a Parquet file is written. Each split has
a ``.jsonl`` file (one JSON object per line, the keys in :data:`COLUMNS` order, written exactly as
``json.dumps(row, ensure_ascii=False)`` writes them) and a ``.parquet`` file (row groups of at most
:data:`ROW_GROUP_ROWS` rows, the schema of :func:`arrow_schema`). ``train`` and ``eval`` always exist,
empty or not; ``test`` only when it has pairs. A row is a tuple of the column values in
:data:`COLUMNS` order.

With ``hf_dataset=True`` the same rows also make a Hugging Face ``datasets`` DatasetDict folder,
``hf/`` (what ``DatasetDict.save_to_disk`` writes, read back by ``datasets.load_from_disk``):
``hf/dataset_dict.json`` and per split ``hf/<split>/`` with ``data-00000-of-00001.arrow`` (an Arrow IPC
stream whose schema carries the ``huggingface`` metadata, in record batches of :data:`HF_BATCH_ROWS`
rows), ``state.json`` and ``dataset_info.json``. Written with pyarrow alone: ``datasets`` is not
imported here.

:class:`PairFileWriter` keeps at most one row group per split in memory, whatever the number of
pairs: JSON lines are appended to the JSONL file (hashed as it is written) every few thousand rows,
and rows wait per split until they fill a Parquet row group. The Arrow stream is fed the same row
groups in the background thread (the rows after its last record batch, under two batches, wait
for the next group).
"""

from __future__ import annotations

import contextlib
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

from contracts.pairs import COLUMNS  # row columns, in file order (training/ml reads them too)

SPLITS = ("train", "eval", "test")
ALWAYS_WRITTEN = ("train", "eval")  # ``test`` only when it has pairs

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

# The Hugging Face dataset folder (datasets 5.x ``save_to_disk``; see the module docstring)
HF_FOLDER = "hf"
HF_DATA_FILE = "data-00000-of-00001.arrow"  # one shard, whatever the size (load_from_disk memory-maps it)
HF_BATCH_ROWS = 1000  # datasets' DEFAULT_MAX_BATCH_SIZE: save_to_disk writes batches of this many rows
_TAIL_LEAD = 8  # see _DatasetStream.write
HF_FINGERPRINT_CHARS = 16  # datasets' fingerprints are 64-bit hex; ours is the Arrow file's sha256, cut
_HF_DTYPES = {"string": "string", "double": "float64", "int64": "int64"}  # Arrow type -> datasets Value dtype


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


def hf_features() -> dict[str, dict]:
    """The columns as ``datasets`` Features (``Features.to_dict()``: ``{"dtype": ..., "_type": "Value"}``)."""
    return {field.name: {"dtype": _HF_DTYPES[str(field.type)], "_type": "Value"} for field in arrow_schema()}


def hf_arrow_schema():
    """:func:`arrow_schema` with the metadata ``datasets``' ArrowWriter puts on the files save_to_disk writes."""
    return arrow_schema().with_metadata({"huggingface": json.dumps({"info": {"features": hf_features()}})})


def hf_state_json(split: str, fingerprint: str) -> str:
    """A split folder's ``state.json``, as ``Dataset.save_to_disk`` writes it (sorted keys, no final newline)."""
    state = {
        "_data_files": [{"filename": HF_DATA_FILE}],
        "_fingerprint": fingerprint,
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": split,
    }
    return json.dumps(state, indent=2, sort_keys=True)


def hf_dataset_info_json() -> str:
    """A split folder's ``dataset_info.json`` (``asdict(DatasetInfo(features=...))``, top-level keys sorted)."""
    info = {"citation": "", "description": "", "features": hf_features(), "homepage": "", "license": ""}
    return json.dumps(info, indent=2)


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


class _HashingFile:
    """A binary file that hashes what is written to it (pyarrow writes the Arrow stream through it)."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self.sha256 = hashlib.sha256()
        self.closed = False

    def write(self, data) -> int:
        self._file.write(data)
        self.sha256.update(data)
        return len(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        self.closed = True


class _DatasetStream:
    """One split's ``hf/<split>/data-00000-of-00001.arrow``: the IPC stream ``datasets`` writes, in
    record batches of :data:`HF_BATCH_ROWS` rows counted from the first row (all full but the last),
    as save_to_disk writes them.

    Rows cross row groups: the rows after the last batch written wait (``_tail``, a copy of under
    two batches) and go in front of the next group, copied into one buffer with its first rows. A
    batch is written only once a batch's worth of rows follows it in the same buffer: the IPC writer
    pads a slice's buffers by what lies beyond it, so the file comes out as save_to_disk of the whole
    split in memory writes it (byte for byte with one row group; over several, the same batches and
    values, and a buffer's padding may differ where the rows beyond are short).
    """

    def __init__(self, path: Path):
        import pyarrow as pa

        self.path = path
        self.rows = 0
        self._file = _HashingFile(path)
        self._writer = pa.ipc.new_stream(self._file, hf_arrow_schema())
        self._tail = None  # a Table of fewer than 2 * HF_BATCH_ROWS rows

    def write(self, table) -> None:
        """Append a row group (run by the background thread)."""
        import pyarrow as pa

        batch = HF_BATCH_ROWS
        self.rows += table.num_rows
        if self._tail is not None:
            tail, self._tail = self._tail, None
            aligned = -tail.num_rows % batch  # the group's rows that complete the tail's last batch
            if table.num_rows < aligned + batch:  # a small group: all in one buffer
                table = pa.concat_tables([tail, table]).combine_chunks()
            else:  # one buffer for the tail's batches and a batch beyond them, the group's own after
                head = pa.concat_tables([tail, table.slice(0, aligned + batch)]).combine_chunks()
                self._writer.write_table(head.slice(0, tail.num_rows + aligned), max_chunksize=batch)
                table = table.slice(aligned)
        ready = max(0, (table.num_rows - batch) // batch * batch)
        if ready:
            self._writer.write_table(table.slice(0, ready), max_chunksize=batch)
            # The tail as a copy, so that the group's buffers go now. The copy starts 8 rows early (a
            # byte of the validity bitmaps) to stay a slice at an offset, which the writer pads as before.
            before = ready - _TAIL_LEAD
            self._tail = table.slice(before).take(pa.array(range(table.num_rows - before))).slice(_TAIL_LEAD)
        elif table.num_rows:
            self._tail = table  # under two batches

    def close(self) -> dict:
        """Write the last batch, close, describe the file."""
        if self._tail is not None:
            self._writer.write_table(self._tail, max_chunksize=HF_BATCH_ROWS)
            self._tail = None
        self._writer.close()
        self._file.close()
        return {"rows": self.rows, "bytes": self.path.stat().st_size, "sha256": self._file.sha256.hexdigest()}

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # closing after an error: that first error is the one raised
            self._writer.close()
        self._file.close()


def _write_described(path: Path, text: str) -> dict:
    """Write a small metadata file; describe it like the others (it holds no rows: ``rows`` is None)."""
    data = text.encode("utf-8")
    path.write_bytes(data)
    return {"rows": None, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class _SplitFiles:
    """One split's JSONL and Parquet files (and its Arrow file in ``hf/``). JSON lines are made as rows
    arrive and written every :data:`JSONL_CHUNK_LINES` lines (hashed as they go); rows wait for a full
    Parquet row group, which the Arrow stream gets too."""

    def __init__(self, folder: Path, split: str, row_group_rows: int, background: _Background, hf_dataset: bool):
        self.folder = folder
        self.split = split
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
        self._dataset = None
        if hf_dataset:
            (folder / HF_FOLDER / split).mkdir(parents=True, exist_ok=True)
            self._dataset = _DatasetStream(folder / HF_FOLDER / split / HF_DATA_FILE)

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
        self._background.submit(partial(self._write_table, table))
        self.count += len(rows)

    def _write_table(self, table) -> None:
        self._parquet.write_table(table, row_group_size=table.num_rows)
        if self._dataset is not None:
            self._dataset.write(table)

    def close(self) -> dict[str, dict]:
        """Close and describe the files (after ``flush`` and the background's ``finish``):
        ``{file name: {rows, bytes, sha256}}``, names relative to the folder."""
        self._jsonl.close()
        if self._parquet is not None:
            self._parquet.close()
        else:
            _write_empty_parquet(self.parquet_path)
        jsonl = {"rows": self.count, "bytes": self.jsonl_path.stat().st_size, "sha256": self._jsonl_sha.hexdigest()}
        described = {self.jsonl_path.name: jsonl, self.parquet_path.name: _describe(self.parquet_path, self.count)}
        if self._dataset is not None:
            data = self._dataset.close()
            self._dataset = None
            fingerprint = data["sha256"][:HF_FINGERPRINT_CHARS]
            prefix = f"{HF_FOLDER}/{self.split}/"
            folder = self.folder / HF_FOLDER / self.split
            described[prefix + HF_DATA_FILE] = data
            described[prefix + "dataset_info.json"] = _write_described(
                folder / "dataset_info.json", hf_dataset_info_json()
            )
            described[prefix + "state.json"] = _write_described(
                folder / "state.json", hf_state_json(self.split, fingerprint)
            )
        return described

    def abort(self) -> None:
        self._jsonl.close()
        if self._parquet is not None:
            self._parquet.close()
        if self._dataset is not None:
            self._dataset.abort()


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

    ``hf_dataset=True`` adds the ``hf/`` DatasetDict folder of the same splits; its files are named
    by their path under ``folder`` (``hf/train/state.json``; ``hf/dataset_dict.json`` last), the
    metadata files with ``rows`` None.
    """

    def __init__(self, folder: Path, *, row_group_rows: int | None = None, hf_dataset: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.row_group_rows = row_group_rows or ROW_GROUP_ROWS
        self.hf_dataset = hf_dataset
        self._splits: dict[str, _SplitFiles] = {}
        self._background = _Background()
        self.closed = False

    def _files(self, split: str) -> _SplitFiles:
        files = self._splits.get(split)
        if files is None:
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}")
            files = self._splits[split] = _SplitFiles(
                self.folder, split, self.row_group_rows, self._background, self.hf_dataset
            )
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
        if self.hf_dataset:
            name = f"{HF_FOLDER}/dataset_dict.json"
            described[name] = _write_described(self.folder / name, json.dumps({"splits": splits}))
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
    """Every file in the folder and its subfolders (``hf/``) read-only (the folders stay as they are)."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o444)
