"""``python -m training.ml KIND --config run.json --out DIR``: one run, events on stdout.

The config file is either the kind's config object itself or a ``run.json`` as the worker writes it
(``{"run_id", "kind", "config": {...}, "inputs": {...}}``). Relative ``prompts_file`` paths are
read relative to the config file's folder. Exit status: 0 success, 1 the run failed, 2 a bad
command line or config (or a kind not implemented yet), 143 stopped by SIGTERM (cancel).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import sys
import threading
import time
import traceback
from importlib import import_module
from pathlib import Path

from training.ml.configs import ConfigError, config_for
from training.ml.events import EventWriter
from training.ml.kinds import ML_KINDS

KINDS = tuple(ML_KINDS)
# kind -> module with ``run(config, out_dir, events) -> dict``; a kind whose module is not there yet
# is refused with exit 2.
RUN_MODULES = {kind: ml.run_module for kind, ml in ML_KINDS.items()}
IMPLEMENTED = {kind: module for kind, module in RUN_MODULES.items() if importlib.util.find_spec(module) is not None}
# Config fields holding file paths: a relative one is read relative to the config file's folder.
RELATIVE_TO_CONFIG = (
    "prompts_file",
    "train_file",
    "eval_file",
    "data_file",
    "offtask_file",
    "comparisons_file",
    "constitution_file",
)
EXIT_FAILED, EXIT_USAGE, EXIT_TERMINATED = 1, 2, 143
# Set by the worker: when the supervising process is gone (killed), the run stops too.
PARENT_ENV = "RANKFORGE_PARENT_PID"


_events = EventWriter()


def _on_sigterm(signum, frame):
    # The signal may land while the main thread is inside a write on the events stream: a second
    # buffered write would fail as reentrant, so the last line goes straight to the descriptor.
    line = {"type": "log", "t": round(time.time(), 3), "level": "warning", "message": "stopping: received SIGTERM"}
    with contextlib.suppress(Exception):
        _events.stream.flush()
    with contextlib.suppress(Exception):
        os.write(_events.stream.fileno(), (json.dumps(line) + "\n").encode())
    os._exit(EXIT_TERMINATED)  # at once: no library gets to swallow a SystemExit


def _claim_stdout() -> EventWriter:
    """Events get the real stdout; anything else printed there (by Python or C code) goes to stderr."""
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    return EventWriter(stream)


def _parent_of(pid: int) -> int | None:
    """``pid``'s parent from /proc (Linux), None when the process is gone or /proc is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # after "pid (comm)": state, ppid, ...


def _lineage(expected: int, *, max_depth: int = 8) -> list[tuple[int, int]] | None:
    """The (child, parent) links from this process up to ``expected``, or None when ``expected`` is
    not an ancestor. Under ``accelerate launch`` the worker is the launcher's parent, not ours."""
    links, pid = [], os.getpid()
    for _ in range(max_depth):
        parent = os.getppid() if pid == os.getpid() else _parent_of(pid)
        if parent is None or parent <= 1:
            return None
        links.append((pid, parent))
        if parent == expected:
            return links
        pid = parent
    return None


def _watch_parent(expected: int, interval: float = 1.0) -> None:
    """Exit when the supervising process ``expected`` dies: a dead process's children are adopted by
    another, so a link of the chain from us up to it changes (a zombie worker cannot fool it)."""
    links = _lineage(expected) or [(os.getpid(), expected)]  # not an ancestor: gone already

    def intact() -> bool:
        return all((os.getppid() if child == os.getpid() else _parent_of(child)) == parent for child, parent in links)

    def watch():
        while True:
            if not intact():
                try:  # the pipe to the dead worker may be gone too: a write error must not stop the exit
                    sys.stderr.write(f"supervising process {expected} is gone; stopping\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os._exit(EXIT_TERMINATED)
            time.sleep(interval)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.ml", description="Run one RankForge ML job.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--config", required=True, type=Path, help="JSON config (or the worker's run.json)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    return parser.parse_args(argv)


def load_config(kind: str, path: Path):
    """The kind's config from a file; ConfigError names the field at fault."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError("config", f"{path} is not JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "kind" in data:
        if data["kind"] != kind:
            raise ConfigError("kind", f"{path} is a {data['kind']} run, not {kind}")
        data = data["config"]
    config = config_for(kind, data)
    for name in RELATIVE_TO_CONFIG:
        value = getattr(config, name, None)
        if isinstance(value, str) and value and not os.path.isabs(value):
            setattr(config, name, str((path.parent / value).resolve()))
    return config


def main(argv: list[str] | None = None, *, claim_stdout: bool = False) -> int:
    global _events
    args = parse_args(argv)
    events = _events = _claim_stdout() if claim_stdout else EventWriter()
    signal.signal(signal.SIGTERM, _on_sigterm)
    if parent := os.environ.get(PARENT_ENV):
        _watch_parent(int(parent))
    if args.kind not in IMPLEMENTED:
        events.error(f"run kind {args.kind!r} is not implemented yet; implemented: {', '.join(sorted(IMPLEMENTED))}")
        return EXIT_USAGE
    try:
        config = load_config(args.kind, args.config)
    except ConfigError as exc:
        events.error(f"bad config: {exc.field}: {exc.message}")
        return EXIT_USAGE
    module = import_module(IMPLEMENTED[args.kind])
    try:
        result = module.run(config, args.out, events)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        events.error(f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
    events.result(**(result or {}))
    return 0
