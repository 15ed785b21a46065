import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from labeling.models import Comparison, Membership, Project, PromptRow, Ranking
from models_registry.services import alias_set, model_version_register
from training.models import TrainingRun
from training.services.runs import run_folder

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(enqueued):
    """Every run this module creates is recorded instead of sent."""


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "admin / rankforge-admin" in out and "labeler3 / rankforge-labeler" in out
    assert "no SmolLM2-135M-Instruct in the registry" in out
    tables = (Project, Comparison, Ranking, Membership, PromptRow, TrainingRun)
    counts = [model.objects.count() for model in tables]
    assert Comparison.objects.count() == 399 and PromptRow.objects.count() == 150  # the shipped slices
    call_command("seed_demo")
    assert [model.objects.count() for model in tables] == counts


def test_seed_demo_queues_generation_with_the_registered_smollm2(
    tmp_path, django_capture_on_commit_callbacks, enqueued
):
    folder = tmp_path / "smol"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    version = model_version_register(model_name="SmolLM2-135M-Instruct", task="causal-lm", folder=folder, fmt=None)
    alias_set(model=version.model, alias="production", version=version)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    run = TrainingRun.objects.get()
    project = Project.objects.get(name__startswith="DialogSum")
    assert run.kind == "generate" and run.project == project and run.inputs["prompts"] == 24
    assert run.inputs["model_version"] == version.pk and project.generation_model == version
    assert enqueued == [(run.pk, "gpu")]
    first = json.loads((run_folder(run.pk) / "prompts.jsonl").read_text().splitlines()[0])
    assert first["prompt"].startswith("Summarize the following conversation.\n\n#Person1#:")


def test_seed_demo_runs_in_a_clone_with_nothing_beside_it(tmp_path):
    """A user's clone has no ``../shared``: the tracked files alone migrate and seed (SQLite)."""
    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    clone = tmp_path / "alone" / "rankforge"
    for name in filter(None, listed.decode().split("\0")):
        source = root / name
        if source.is_file():  # a file deleted in the working tree but still tracked is skipped
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            (clone / name).write_bytes(source.read_bytes())
    assert not (clone.parent / "shared").exists()
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ} | {"DEBUG": "1", "LOG_LEVEL": "WARNING"}
    env["RANKFORGE_VAR_DIR"] = str(tmp_path / "var")  # SQLite and the embedded broker live here
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=clone, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert "Imported 399 HH pairs" in done.stdout and "admin / rankforge-admin" in done.stdout
