"""The files around the code: docker-compose.yml, platform/Procfile, platform/Dockerfile, and the
boundaries: training.ml never imports Django (of ours it imports itself and contracts/ only),
contracts/ imports the standard library only, and no app imports the project package config/."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parent.parent


def test_docker_compose_config_is_valid():
    compose = shutil.which("docker-compose")
    if compose is None:
        missing_service("docker-compose is not installed (apt-get install docker-compose)")
    # The file requires SECRET_KEY; any value does for checking it.
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY") or "compose-config-check"}
    result = subprocess.run(
        [compose, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_docker_compose_has_a_worker_per_queue_and_a_gpu_reservation():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "worker-gpu", "beat"}
    assert "-Q default " in services["worker"]["command"]
    assert "-Q gpu " in services["worker-gpu"]["command"]
    assert "--concurrency 1" in services["worker-gpu"]["command"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_procfile_runs_web_a_gpu_worker_and_a_default_worker_with_the_sweeps():
    processes = dict(
        line.split(":", 1)
        for line in (ROOT / "platform" / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert set(processes) == {"web", "gpu", "worker"}
    assert processes["web"].split()[0] == "gunicorn"
    gpu, default = processes["gpu"].split(), processes["worker"].split()
    for worker in (gpu, default):
        assert worker[:4] == ["celery", "-A", "config", "worker"]
    assert gpu[gpu.index("-Q") + 1] == "gpu"
    assert default[default.index("-Q") + 1] == "default"
    # The sweeps run beside the runs, never behind one (a dead worker's run is requeued on time).
    assert "--beat" in default and "--beat" not in gpu


# Our top-level packages (what "of ours" means below).
OURS = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())


def absolute_imports(folder: Path) -> list[tuple[str, str]]:
    """``(file, module)`` for every absolute import under ``folder``, lazy ones in functions too."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((str(path.relative_to(ROOT)), node.module))
    return found


def test_training_ml_imports_of_ours_only_itself_and_contracts():
    assert {"contracts", "labeling", "training"} <= set(OURS)
    offenders = [
        (path, module)
        for path, module in absolute_imports(ROOT / "training" / "ml")
        if module.split(".")[0] in OURS
        and module.split(".")[0] != "contracts"
        and module != "training.ml"
        and not module.startswith("training.ml.")
    ]
    assert offenders == []


def test_apps_never_import_the_project_package():
    """``config`` only wires (settings, urls, the Celery app): what apps share lives in ``common``."""
    apps = [name for name in OURS if name not in ("config", "tests")]
    assert {"common", "labeling", "training", "models_registry"} <= set(apps)
    offenders = [
        (path, module)
        for app in apps
        for path, module in absolute_imports(ROOT / app)
        if module == "config" or module.startswith("config.")
    ]
    assert offenders == []


def test_contracts_import_the_standard_library_only():
    offenders = [
        (path, module)
        for path, module in absolute_imports(ROOT / "contracts")
        if module.split(".")[0] not in sys.stdlib_module_names and module.split(".")[0] != "contracts"
    ]
    assert offenders == []
    # And loading every one of them loads nothing else (no import hidden from the parser).
    modules = sorted(f"contracts.{p.stem}" for p in (ROOT / "contracts").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, json, sys\nbefore = set(sys.modules)\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before\n"
        "    if m.split('.')[0] not in sys.stdlib_module_names and m.split('.')[0] != 'contracts')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_the_image_copies_every_package():
    copied = {
        line.split()[1].rstrip("/")
        for line in (ROOT / "platform" / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and not line.startswith("COPY --")
    }
    assert set(OURS) - {"tests"} <= copied


def test_training_ml_does_not_load_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # training.ml and its light entry points; of ours only training (the namespace), training.ml.*
    # and contracts.* may come with them.
    allowed = "m in ('training', 'training.ml') or m.startswith(('training.ml.', 'contracts'))"
    code = (
        "import sys, training.ml, training.ml.configs, training.ml.events, training.ml.constitution\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{set(OURS) | {'django', 'rest_framework'}!r} and not ({allowed}))\n"
        "print(','.join(loaded))\n"
        "sys.exit(1 if 'django' in sys.modules or loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"training.ml loaded {result.stdout.strip() or result.stderr}"


@pytest.mark.django_db
def test_root_serves_the_web_ui(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"RankForge" in response.content
    assert client.get("/projects/3/label").status_code == 200  # client-side routes
    assert client.get("/api/nope/").status_code == 404


@pytest.mark.django_db
def test_api_docs_need_no_cdn(client):
    html = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr.net" not in html and "/static/drf_spectacular_sidecar/" in html
