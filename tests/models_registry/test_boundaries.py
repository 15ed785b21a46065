"""models_registry stays light: it never imports torch, transformers, training or labeling (the web
process imports it), and loading its API pulls in no ML library."""

import ast
import subprocess
import sys
from pathlib import Path

import models_registry

FORBIDDEN = ("torch", "transformers", "peft", "training", "labeling")


def test_models_registry_imports_nothing_heavy_or_upstream():
    root = Path(models_registry.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_loading_the_registry_api_loads_no_torch():
    code = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
        "import django; django.setup(); "
        "import models_registry.apis, models_registry.services, models_registry.admin, models_registry.urls; "
        "heavy = [m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**__import__("os").environ, "DEBUG": "1"})
