"""Fixtures for training tests: tiny models, a project ready to generate, real Celery workers.

``start_worker(queues=..., beat=False, **env)`` starts a REAL ``celery worker`` subprocess against
the test database (PostgreSQL) and Redis, as production does; tests that use it carry the
``postgres`` and ``redis`` markers (they fail instead of skipping under CI=true).
"""

import json
import time
from pathlib import Path

import pytest

from labeling.models import Role
from labeling.services.datasets import dataset_import
from labeling.services.templates import template_create

# The tiny-model fixtures of tests/ml, shared (a conftest applies to its own folder only).
from tests.ml.conftest import make_tiny_model, tiny_model_dir, tiny_tokenizer, tiny_tokenizer_json  # noqa: F401
from tests.workers import FAST


def rows_jsonl(rows):
    return iter([(json.dumps(r) + "\n").encode() for r in rows])


@pytest.fixture
def enqueued(monkeypatch):
    """Runs are recorded as (run id, queue) instead of sent to a broker."""
    from training import tasks

    calls = []
    monkeypatch.setattr(tasks, "enqueue_run", lambda run_id, *, queue: calls.append((run_id, queue)))
    return calls


@pytest.fixture
def fast_runs(settings):
    for name, value in FAST.items():
        setattr(settings, name, float(value))
    return settings


@pytest.fixture
def reviewer(make_user, add_member):
    return add_member(make_user("rita"), Role.REVIEWER)


@pytest.fixture
def labeler(make_user, add_member):
    return add_member(make_user("lars"), Role.LABELER)


@pytest.fixture
def staff(make_user):
    return make_user("stan", is_staff=True)


@pytest.fixture
def dataset(project, admin_user):
    """Six questions with fixed splits (4 train, 2 eval) and the project's default template."""
    rows = [
        {"question": f"What does the {word} statement do?", "split": split}
        for word, split in (
            ("with", "train"),
            ("for", "train"),
            ("while", "eval"),
            ("return", "train"),
            ("yield", "eval"),
            ("import", "train"),
        )
    ]
    dataset = dataset_import(
        project=project, stream=rows_jsonl(rows), filename="questions.jsonl", created_by=admin_user
    )
    template_create(
        project=project, name="qa", text="Question: {question}\nAnswer:", dataset=dataset, make_default=True
    )
    project.refresh_from_db()
    return dataset


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


def process_alive(pid: int) -> bool:
    """A zombie (exited, not yet reaped by whoever adopted it) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
