"""The web process never loads torch (DESIGN.md, Jobs and workers): configs, the URLconf with every
API, the Celery tasks and the runner import neither torch nor transformers nor trl."""

import json
import os
import subprocess
import sys

from django.conf import settings

HEAVY = ("torch", "transformers", "trl", "peft", "accelerate")


def modules_after(code: str) -> set[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1"}
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_config_classes_are_light_and_need_no_django():
    code = (
        "import sys\nimport training.ml.configs, training.ml.events, training.ml.cli\n"
        "assert 'django' not in sys.modules\n"
    )
    assert modules_after(code) == set()


def test_the_web_process_and_the_worker_side_do_not_load_torch():
    code = (
        "import django\ndjango.setup()\n"
        "from django.urls import get_resolver\n"
        "resolver = get_resolver()\nresolver.resolve('/api/runs/1/events/')\nlen(resolver.reverse_dict)\n"
        "import config.urls, config.celery_app, training.apis, training.tasks, training.runner, training.admin\n"
    )
    assert modules_after(code) == set()
