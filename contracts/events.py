"""The protocol between a run's process and the worker that supervises it.

``python -m training.ml KIND --config run.json --out DIR`` writes one JSON object per line on
stdout, and nothing else there (libraries' chatter goes to stderr, which the worker keeps as log);
``training.ml.events.EventWriter`` writes them, ``training.runner`` reads them with
:func:`parse_event`:

    {"type": "progress", "step": 3, "total": 32}
    {"type": "metric", "name": "loss", "value": 0.61, "step": 3}
    {"type": "log", "level": "info", "message": "loaded SmolLM2-135M-Instruct in 19.8 s"}
    {"type": "artifact", "kind": "completions", "path": "completions.jsonl", "count": 8}
    {"type": "checkpoint", "path": "checkpoint-3", "step": 3}
    {"type": "error", "message": "..."}          (just before a non-zero exit)
    {"type": "result", "prompts": 8, ...}        (a summary, just before exit 0)

Paths are relative to the --out folder. Exit status 0 means success; SIGTERM makes the process stop
promptly with status 143 (cancel). Every line carries "t" (Unix time) so the worker can order and
time them. The worker stores each event under its type (``training.models.RunEventType``, which adds
``state`` for its own state changes); a line of another type is kept as a log line.
"""

import json

PROGRESS = "progress"
METRIC = "metric"
LOG = "log"
ARTIFACT = "artifact"
CHECKPOINT = "checkpoint"
ERROR = "error"
RESULT = "result"
EVENT_TYPES = frozenset({PROGRESS, METRIC, LOG, ARTIFACT, CHECKPOINT, ERROR, RESULT})


def parse_event(line: str) -> dict | None:
    """One stdout line as an event, or None for a line that is not one (kept as a log line)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None
