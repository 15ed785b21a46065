"""The run's side of the protocol of :mod:`contracts.events`: one JSON event per stdout line.

Only rank 0 of an ``accelerate launch`` writes (one event stream per run, whatever the GPUs).
"""

import json
import os
import sys
import time
from typing import Any, TextIO

from contracts import events


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
        self.emit(events.PROGRESS, step=step, total=total)

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        self.emit(events.METRIC, name=name, value=float(value), step=step)

    def log(self, message: str, level: str = "info") -> None:
        self.emit(events.LOG, level=level, message=message)

    def artifact(self, kind: str, path: str, **meta: Any) -> None:
        self.emit(events.ARTIFACT, kind=kind, path=path, **meta)

    def checkpoint(self, path: str, step: int) -> None:
        self.emit(events.CHECKPOINT, path=path, step=step)

    def error(self, message: str) -> None:
        self.emit(events.ERROR, message=message)

    def result(self, **summary: Any) -> None:
        self.emit(events.RESULT, **summary)
