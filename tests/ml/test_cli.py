"""``python -m training.ml KIND --config --out``: events on stdout, exit codes, SIGTERM, orphan exit."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training.ml", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]  # every stdout line is an event


def write_run(folder: Path, config: dict, *, wrapped: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.json"
    body = {"run_id": 1, "kind": "generate", "config": config, "inputs": {}} if wrapped else config
    path.write_text(json.dumps(body))
    return path


def prompts(folder: Path, n: int) -> None:
    lines = [json.dumps({"prompt_id": i, "prompt": f"Question number {i} about the with statement"}) for i in range(n)]
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n")


def test_every_kind_has_its_module_and_config():
    from training.ml.cli import IMPLEMENTED, KINDS
    from training.ml.configs import available_configs

    assert set(IMPLEMENTED) == set(KINDS)
    assert set(available_configs()) == set(KINDS)


def test_exit_codes_and_a_bad_config_names_the_field(tmp_path):
    path = write_run(tmp_path, {"model_path": "m", "prompts_file": "p.jsonl", "k": 12})
    process = cli("generate", "--config", path, "--out", tmp_path)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert events_of(out)[-1] == {
        **events_of(out)[-1],
        "type": "error",
        "message": "bad config: k: must be 1..9, got 12",
    }

    path = write_run(tmp_path, {"kind": "sft", "config": {}}, wrapped=False)
    path.write_text(json.dumps({"kind": "sft", "config": {}}))
    process = cli("generate", "--config", path, "--out", tmp_path)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "is a sft run, not generate" in events_of(out)[-1]["message"]

    process = cli("generate", "--out", tmp_path)  # argparse: usage error
    process.communicate(timeout=60)
    assert process.returncode == 2


def test_a_failing_run_exits_1_with_an_error_event_and_the_traceback_on_stderr(tmp_path):
    path = write_run(tmp_path, {"model_path": str(tmp_path / "no-model"), "prompts_file": "missing.jsonl"})
    process = cli("generate", "--config", path, "--out", tmp_path / "out")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert events_of(out)[-1]["type"] == "error"
    assert "missing.jsonl" in events_of(out)[-1]["message"]
    assert "Traceback" in err


@pytest.mark.slow
def test_generate_end_to_end_writes_completions_and_only_events_on_stdout(tiny_model_dir, tmp_path):
    prompts(tmp_path, 3)
    # prompts_file relative to the config file's folder, as the worker writes it.
    path = write_run(
        tmp_path, {"model_path": str(tiny_model_dir), "prompts_file": "prompts.jsonl", "max_new_tokens": 4}
    )
    process = cli("generate", "--config", path, "--out", tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    events = events_of(out)
    assert {e["type"] for e in events} >= {"log", "progress", "metric", "artifact", "result"}
    assert events[-1]["type"] == "result" and events[-1]["prompts"] == 3
    assert all(isinstance(e["t"], float) for e in events)
    lines = (tmp_path / "completions.jsonl").read_text().splitlines()
    assert [json.loads(line)["prompt_id"] for line in lines] == [0, 1, 2]


@pytest.mark.slow
def test_sigterm_stops_a_run_promptly_with_143(tiny_model_dir, tmp_path):
    prompts(tmp_path, 500)
    config = {
        "model_path": str(tiny_model_dir),
        "prompts_file": "prompts.jsonl",
        "max_new_tokens": 200,
        "batch_size": 1,
    }
    process = cli("generate", "--config", write_run(tmp_path, config), "--out", tmp_path)
    for line in process.stdout:  # wait until it is generating
        if json.loads(line)["type"] == "artifact":
            break
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    assert process.returncode == 143
    assert time.monotonic() - sent < 3
    assert json.loads(process.stdout.read().splitlines()[-1])["message"] == "stopping: received SIGTERM"


def alive(pid: int) -> bool:
    """A zombie (exited, not yet reaped by whoever adopted it) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_the_run_exits_when_its_supervising_process_dies(tmp_path):
    """The worker's process is SIGKILLed: its run, in its own session, notices and exits too."""
    child_code = (
        "import os, time\n"
        "from training.ml import cli\n"
        "cli._watch_parent(int(os.environ['RANKFORGE_PARENT_PID']), interval=0.2)\n"
        "time.sleep(60)\n"
    )
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "env = {**os.environ, 'RANKFORGE_PARENT_PID': str(os.getpid())}\n"
            # stderr is a pipe the supervisor holds, as the worker does: it breaks when the supervisor dies
            f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}], start_new_session=True, env=env,"
            " stderr=subprocess.PIPE)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(supervisor.stdout.readline())
    time.sleep(1.0)
    assert alive(child)
    supervisor.kill()
    supervisor.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the run outlived its supervising process")
