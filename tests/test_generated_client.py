"""A client generated from the served OpenAPI schema drives the labeling loop and a training run.

openapi-python-client (the version ./dev pins) writes a Python client from the schema that
``manage.py spectacular`` writes (the same ``SchemaGenerator``, in process); the test imports every
module of it, then, against a live server and a REAL Celery worker, signs in for a token, and as a
platform admin creates a labeler account and a project, adds the labeler, imports comparisons; as the
labeler leases and ranks them (both spellings of ``ranks``; a repeated submit answers the first
ranking) until nothing is left; as the admin reads the project's stats, builds a preference snapshot,
polls it until ready, downloads its pairs, then starts a ``generate`` run over the snapshot's prompts
with the tiny model, has a bad config refused, polls the run to ``succeeded`` and reads its events.
Every call goes through the generated functions (``api.<tag>.<operation>.sync_detailed``) and their
models, with ``raise_on_unexpected_status``: a status the schema does not document fails the test.

The generator must build the whole client: any warning (a part of the schema it dropped) fails it.
Two things it cannot do are worked around here, not in the schema, which is right about both:

- A body offered as JSON, form and multipart (DRF's default parsers): openapi-python-client 0.29.1
  writes ``| Unset`` without importing it for a required one (its issue #1451, a NameError on import)
  and sends all three encodings at once when they share a model (#1276). This client speaks JSON:
  where a body is offered as JSON it keeps only that (``json_bodies_only``); uploads stay multipart.
- Downloads (zip, JSONL, Parquet): it knows JSON, text and octet-stream only, so the config reads
  those media types as bytes (``content_type_overrides``, its documented way). ``post_hooks: []``:
  it never runs ruff over its output.

The generated package is cached per hash of (generator version, config, schema) under the pytest
cache, or the temp folder when the cache plugin is off (``-p no:cacheprovider``).
"""

import hashlib
import importlib
import importlib.metadata
import importlib.util
import io
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.conftest import missing_service
from tests.ml import conftest as ml_fixtures

# The tiny-model fixtures of tests/ml, shared (a conftest applies to its own folder only).
tiny_tokenizer_json, tiny_tokenizer = ml_fixtures.tiny_tokenizer_json, ml_fixtures.tiny_tokenizer
make_tiny_model, tiny_model_dir = ml_fixtures.make_tiny_model, ml_fixtures.tiny_model_dir

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = "openapi-python-client"
PIN = re.search(rf'^OPENAPI_CLIENT_GEN="{GENERATOR}==([^"]+)"$', (ROOT / "dev").read_text(), re.MULTILINE)[1]
PACKAGE = "rankforge_client"
GENERATOR_CONFIG = {
    "post_hooks": [],
    "content_type_overrides": {
        "application/zip": "application/octet-stream",
        "application/x-ndjson": "application/octet-stream",
        "application/vnd.apache.parquet": "application/octet-stream",
    },
}
TIMEOUT = 240  # a cold worker and a cold `import transformers` on a busy 2-core machine
PASSWORD = "client-loop-Pw-2718"


def json_bodies_only(schema: dict) -> dict:
    """The schema with one media type per request body: JSON where it is offered (see the docstring)."""
    schema = json.loads(json.dumps(schema))
    for item in schema["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            if "application/json" in content and len(content) > 1:
                operation["requestBody"]["content"] = {"application/json": content["application/json"]}
    return schema


def generate(document: str, cache: Path) -> Path:
    """The folder holding the generated package for ``document`` (generated once per hash)."""
    key = hashlib.sha256(f"{PIN}\n{json.dumps(GENERATOR_CONFIG, sort_keys=True)}\n{document}".encode()).hexdigest()
    home = cache / key[:16]
    if (home / PACKAGE / "__init__.py").is_file():
        return home
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="building-", dir=cache))
    (work / "schema.json").write_text(document)
    (work / "config.json").write_text(json.dumps(GENERATOR_CONFIG))
    argv = [sys.executable, "-m", "openapi_python_client", "generate", "--meta", "none"]
    argv += ["--path", str(work / "schema.json"), "--config", str(work / "config.json")]
    argv += ["--output-path", str(work / PACKAGE)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0 or re.search(r"warning|error", output, re.IGNORECASE):
        shutil.rmtree(work, ignore_errors=True)
        pytest.fail(f"{GENERATOR} {PIN} did not build the whole client from the schema:\n{output[-8000:]}")
    try:
        work.rename(home)
    except OSError:  # another run cached it first
        shutil.rmtree(work, ignore_errors=True)
    return home


def broken_modules(package) -> list[str]:
    broken = []
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # every module that does not import is reported
            broken.append(f"{module.name}: {exc!r}")
    return broken


@pytest.fixture(scope="module")
def client_package(request):
    """The generated client package, imported (and every one of its modules with it)."""
    for module in ("openapi_python_client", "httpx", "attrs", "dateutil"):
        if importlib.util.find_spec(module) is None:
            missing_service(f"{module} is not installed: ./dev installs requirements.lock and {GENERATOR}=={PIN}")
    installed = importlib.metadata.version(GENERATOR)
    if installed != PIN:
        pytest.fail(f"{GENERATOR} {installed} is installed; ./dev pins {PIN} (run ./dev test, or pip install it)")
    schema = SchemaGenerator().get_schema(request=None, public=True)  # as `manage.py spectacular` writes it
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("openapi-client") if cache else Path(tempfile.gettempdir()) / "rankforge-openapi-client"
    home = generate(json.dumps(json_bodies_only(schema), sort_keys=True), root)
    sys.path.insert(0, str(home))
    try:
        package = importlib.import_module(PACKAGE)
        broken = broken_modules(package)
        assert not broken, "generated modules that do not import:\n" + "\n".join(broken)
        yield package
    finally:
        sys.path.remove(str(home))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def short_connections(monkeypatch):
    """The live server's request threads close their connections after each request: kept 60 s (the
    default DB_CONN_MAX_AGE) they outlive the test and keep the test database from being dropped."""
    from django.db import connections

    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)


def ok(response, status: int):
    """The parsed body of a response that must have ``status``."""
    assert response.status_code == status, f"{response.status_code}: {response.content[:2000]!r}"
    return response.parsed


def poll(read, done, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {value!r:.2000}")
        time.sleep(0.3)


def test_a_generated_client_drives_labeling_a_snapshot_and_a_run(
    client_package, short_connections, live_server, django_user_model, tiny_model_dir, start_worker, tmp_path
):
    from rankforge_client import AuthenticatedClient, Client
    from rankforge_client.api.assignments import assignments_ranking_create
    from rankforge_client.api.auth import auth_token_create
    from rankforge_client.api.me import me_retrieve
    from rankforge_client.api.projects import (
        projects_comparisons_create,
        projects_create,
        projects_members_create,
        projects_next_retrieve,
        projects_snapshots_create,
        projects_snapshots_download,
        projects_snapshots_retrieve,
        projects_stats_retrieve,
    )
    from rankforge_client.api.runs import runs_create, runs_events, runs_retrieve
    from rankforge_client.api.users import users_create
    from rankforge_client.models import (
        AuthTokenRequest,
        Error,
        LeaseOutput,
        MemberInputRequest,
        ModeEnum,
        ProjectInputRequest,
        ProjectsSnapshotsDownloadFormat,
        ProjectsSnapshotsDownloadSplit,
        RankingInputRequest,
        RankingInputRequestRanksType0,
        RankingInputRequestRanksType1Item,
        RoleEnum,
        RunCreateInputRequest,
        RunCreateInputRequestConfig,
        RunKindEnum,
        RunStateEnum,
        SnapshotInputRequest,
        SnapshotOutputStatusEnum,
        UploadInputRequest,
        UserInputRequest,
    )
    from rankforge_client.types import File

    start_worker(queues="gpu,default", name="worker")  # starts while the labeling runs
    base = live_server.url
    # The one account a deployment starts with (createsuperuser); everything else through the API.
    django_user_model.objects.create_superuser(username="root", email="root@example.org", password=PASSWORD)

    def sign_in(username: str) -> AuthenticatedClient:
        # POST /api/auth/token/ takes no credentials; the generator types every secured-or-anonymous
        # operation with AuthenticatedClient, and a plain Client does the same call.
        anonymous = Client(base_url=base, raise_on_unexpected_status=True)
        body = AuthTokenRequest(username=username, password=PASSWORD)
        token = ok(auth_token_create.sync_detailed(client=anonymous, body=body), 200).token
        return AuthenticatedClient(base_url=base, token=token, prefix="Token", raise_on_unexpected_status=True)

    admin = sign_in("root")
    assert ok(me_retrieve.sync_detailed(client=admin), 200).is_superuser is True
    lena = ok(users_create.sync_detailed(client=admin, body=UserInputRequest(username="lena", password=PASSWORD)), 201)
    project = ok(
        projects_create.sync_detailed(
            client=admin, body=ProjectInputRequest(name="Client loop", completions_per_prompt=3, overlap=1)
        ),
        201,
    )
    assert (project.completions_per_prompt, project.overlap, project.role) == (3, 1, "admin")
    member = ok(
        projects_members_create.sync_detailed(
            project.id, client=admin, body=MemberInputRequest(username="lena", role=RoleEnum.LABELER)
        ),
        201,
    )
    assert (member.user, member.role) == (lena.id, RoleEnum.LABELER)

    # Two comparisons of three completions each; "best" > "fine" > "worst" in the text.
    questions = ["What does a lock file pin?", "Why rank instead of rate?"]
    lines = [
        {"prompt": q, "completions": [f"worst answer to {q}", f"best answer to {q}", f"fine answer to {q}"]}
        for q in questions
    ]
    upload = File(
        payload=io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode()),
        file_name="comparisons.jsonl",
        mime_type="application/x-ndjson",
    )
    imported = ok(
        projects_comparisons_create.sync_detailed(project.id, client=admin, body=UploadInputRequest(file=upload)), 201
    )
    assert (imported.created, imported.gold) == (2, 0)

    labeler = sign_in("lena")
    grade = {"best": 1, "fine": 2, "worst": 3}
    ranked = []
    for spelling in ("object", "list"):
        lease = ok(projects_next_retrieve.sync_detailed(project.id, client=labeler), 200)
        assert isinstance(lease, LeaseOutput) and len(lease.completions) == 3
        ranks = {c.id: grade[c.text.split()[0]] for c in lease.completions}
        if spelling == "object":
            body_ranks = RankingInputRequestRanksType0.from_dict({str(cid): rank for cid, rank in ranks.items()})
        else:
            body_ranks = [RankingInputRequestRanksType1Item(completion=cid, rank=rank) for cid, rank in ranks.items()]
        body = RankingInputRequest(ranks=body_ranks, comment=f"ranked as an {spelling}", time_spent_ms=1500)
        ranking = ok(assignments_ranking_create.sync_detailed(lease.assignment.id, client=labeler, body=body), 201)
        assert (ranking.assignment, ranking.comparison) == (lease.assignment.id, lease.comparison.id)
        # A retry (the same assignment again) answers the first ranking, 200 instead of 201.
        again = ok(assignments_ranking_create.sync_detailed(lease.assignment.id, client=labeler, body=body), 200)
        assert again.id == ranking.id
        ranked.append(lease.comparison.prompt)
    assert sorted(ranked) == sorted(questions)
    nothing_left = projects_next_retrieve.sync_detailed(project.id, client=labeler)
    assert nothing_left.status_code == 204 and nothing_left.parsed is None

    stats = ok(projects_stats_retrieve.sync_detailed(project.id, client=admin), 200)
    assert (stats.progress.comparisons_total, stats.progress.complete, stats.progress.rankings_total) == (2, 2, 2)
    assert [(row.username, row.rankings) for row in stats.labelers] == [("lena", 2)]

    # A snapshot of the rankings, built on the worker: 2 rankings x C(3, 2) strict pairs.
    snapshot = ok(
        projects_snapshots_create.sync_detailed(
            project.id, client=admin, body=SnapshotInputRequest(mode=ModeEnum.PER_LABELER)
        ),
        202,
    )
    snapshot = poll(
        lambda: ok(projects_snapshots_retrieve.sync_detailed(project.id, snapshot.id, client=admin), 200),
        lambda s: s.status in (SnapshotOutputStatusEnum.READY, SnapshotOutputStatusEnum.FAILED),
        timeout=TIMEOUT,
        what=f"snapshot {snapshot.id}",
    )
    assert snapshot.status == SnapshotOutputStatusEnum.READY, snapshot.error
    assert set(snapshot.downloads.additional_properties["train"].additional_properties) == {"jsonl", "parquet"}
    download = projects_snapshots_download.sync_detailed(
        project.id,
        snapshot.id,
        client=admin,
        format_=ProjectsSnapshotsDownloadFormat.JSONL,
        split=ProjectsSnapshotsDownloadSplit.TRAIN,
    )
    pairs = [json.loads(line) for line in ok(download, 200).payload.read().decode().splitlines()]
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert len(pairs) == 6
    order = {"best": 0, "fine": 1, "worst": 2}
    assert all(order[p["chosen"].split()[0]] < order[p["rejected"].split()[0]] for p in pairs)

    # A run over the snapshot's prompts, with the tiny model (worker paths: platform admins only).
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"prompt_id": i, "prompt": p}) + "\n" for i, p in enumerate(sorted({p["prompt"] for p in pairs}))
        )
    )
    config = {"model_path": str(tiny_model_dir), "prompts_file": str(prompts), "k": 3}
    config |= {"max_new_tokens": 4, "batch_size": 2, "seed": 7}
    refused = runs_create.sync_detailed(
        client=admin,
        body=RunCreateInputRequest(
            kind=RunKindEnum.GENERATE,
            project=project.id,
            config=RunCreateInputRequestConfig.from_dict({**config, "k": 0}),
        ),
    )
    assert refused.status_code == 400 and isinstance(refused.parsed, Error)
    assert refused.parsed.detail == "config.k: must be 1..9, got 0"
    run = ok(
        runs_create.sync_detailed(
            client=admin,
            body=RunCreateInputRequest(
                kind=RunKindEnum.GENERATE, project=project.id, config=RunCreateInputRequestConfig.from_dict(config)
            ),
        ),
        202,
    )
    assert (run.kind, run.state, run.project) == (RunKindEnum.GENERATE, RunStateEnum.QUEUED, project.id)

    events, after = [], 0

    def read_events():
        nonlocal after
        page = ok(runs_events.sync_detailed(run.id, client=admin, after=after), 200)
        events.extend(page.events)
        after = page.next_after
        return page

    terminal = (RunStateEnum.SUCCEEDED, RunStateEnum.FAILED, RunStateEnum.CANCELLED)
    poll(read_events, lambda page: page.state in terminal and not page.has_more, timeout=TIMEOUT, what=f"run {run.id}")
    run = ok(runs_retrieve.sync_detailed(run.id, client=admin), 200)
    assert run.state == RunStateEnum.SUCCEEDED, run.error
    assert [e.seq for e in events] == list(range(1, run.last_seq + 1))
    assert [e.payload["to"] for e in events if e.type_ == "state"] == ["queued", "running", "succeeded"]
    assert [e.payload["count"] for e in events if e.type_ == "artifact"] == [2]
    assert (run.progress_step, run.progress_total) == (2, 2)
