"""The protocol between a run's subprocess and the worker that supervises it.

``python -m training.ml KIND --config run.json --out DIR`` writes one JSON object per line on
stdout, and nothing else there (libraries' chatter goes to stderr, which the worker keeps as log):

    {"type": "progress", "step": 3, "total": 32}
    {"type": "metric", "name": "loss", "value": 0.61, "step": 3}
    {"type": "log", "level": "info", "message": "loaded SmolLM2-135M-Instruct in 19.8 s"}
    {"type": "artifact", "kind": "completions", "path": "completions.jsonl", "count": 8}
    {"type": "checkpoint", "path": "checkpoint-3", "step": 3}
    {"type": "error", "message": "..."}          (just before a non-zero exit)
    {"type": "result", "prompts": 8, ...}        (a summary, just before exit 0)

Paths are relative to the --out folder. Exit status 0 means success; SIGTERM makes the process stop
promptly with status 143 (cancel). Every line carries "t" (Unix time) so the worker can order and
time them.
"""

import json
import os
import sys
import time
from typing import Any, TextIO


def _is_main_process() -> bool:
    """Under ``accelerate launch`` every GPU has a process; only rank 0 reports (no duplicate events)."""
    return os.environ.get("RANK", "0") in ("", "0")


class EventWriter:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.enabled = _is_main_process()

    def emit(self, type_: str, **fields: Any) -> None:
        if not self.enabled:
            return
        self.stream.write(json.dumps({"type": type_, "t": round(time.time(), 3), **fields}) + "\n")
        self.stream.flush()

    def progress(self, step: int, total: int | None = None) -> None:
        self.emit("progress", step=step, total=total)

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        self.emit("metric", name=name, value=float(value), step=step)

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def artifact(self, kind: str, path: str, **meta: Any) -> None:
        self.emit("artifact", kind=kind, path=path, **meta)

    def checkpoint(self, path: str, step: int) -> None:
        self.emit("checkpoint", path=path, step=step)

    def error(self, message: str) -> None:
        self.emit("error", message=message)

    def result(self, **summary: Any) -> None:
        self.emit("result", **summary)


def parse_event(line: str) -> dict | None:
    """One stdout line as an event, or None for a line that is not one (kept as a log line)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None
