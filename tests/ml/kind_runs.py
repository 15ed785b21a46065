"""Running one kind the two ways the tests need: the worker's command line, and in this process."""

import io
import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(kind: str, config: Path, out: Path) -> subprocess.CompletedProcess:
    """``python -m training.ml KIND --config ... --out ...`` as the worker starts it (offline)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "training.ml", kind, "--config", str(config), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def run_in_process(kind: str, folder: Path, config: dict, out: Path) -> tuple[dict, list[dict]]:
    """The kind's ``run`` on ``config`` (written to ``folder/config.json``): its result and events."""
    from training.ml.cli import RUN_MODULES, load_config
    from training.ml.events import EventWriter

    path = folder / "config.json"
    path.write_text(json.dumps(config))
    stream = io.StringIO()
    result = import_module(RUN_MODULES[kind]).run(load_config(kind, path), out, EventWriter(stream))
    return result, [json.loads(line) for line in stream.getvalue().splitlines()]
