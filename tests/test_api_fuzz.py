"""Schemathesis against the real app: every operation of ``/api/schema/`` fuzzed in-process (WSGI) on
the seeded objects (path parameters take their ids, request bodies start from the schema's examples),
each one reached; then the stateful run that follows the schema's OpenAPI links from lists to the
operations behind ids.

Checks: no 5xx, a documented status code, a documented content type and a body that matches the
documented schema. Requests go through Django's real WSGI handler on the test database (one
transaction per test, rolled back), authenticated by token as a platform admin and as a project admin
(not a superuser). Bounded for CI: few examples per operation, derandomized, no deadline.
"""

import collections
import copy
import os

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.world import World, world_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
if os.environ.get("FUZZ_ACCEPT"):
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    CHECKS.append(positive_data_acceptance)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
STEPS = int(os.environ.get("FUZZ_STEPS", "20"))
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "80"))
# No shrinking: a failure is reported as found (shrinking replays against a changed database).
SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(hypothesis.HealthCheck),
    "phases": [hypothesis.Phase.explicit, hypothesis.Phase.generate],
}

# "METHOD /path" -> statuses seen, to report how far the run got (REACHED=1 prints it).
SEEN: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module")
def raw_schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def wsgi_app(settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    # Sign-in throttles would turn the fuzzer's many token/session/password POSTs into 429s.
    settings.RANKFORGE_THROTTLE_RATES = dict.fromkeys(settings.RANKFORGE_THROTTLE_RATES)
    # Django's handler closes the connection at the end of each request; the test's transaction
    # lives on it, so keep it (what django.test.Client does).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(make_user) -> World:
    """The matrix's world: one of everything a route can name; the fuzzer acts as two of its users."""
    return world_create(make_user)


def _pin_path_parameters(raw_schema: dict, seeded: World) -> None:
    """Path parameters take the seeded objects' ids, so that every operation behind an id is fuzzed on
    a real object (its body and query), not only answered 404 for an id that does not exist."""
    for path, item in raw_schema["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                value = seeded.path_value(path, parameter["name"])
                parameter["schema"] = {**parameter["schema"], "enum": [value]}


def _headers(user) -> dict[str, str]:
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture(params=["platform_admin", "project_admin"])
def role(request):
    return request.param


@pytest.fixture
def api_schema(raw_schema, wsgi_app, seeded, role):
    raw_schema = copy.deepcopy(raw_schema)
    if os.environ.get("FUZZ_NO_LINKS"):  # the baseline: no OpenAPI links (Schemathesis still infers some)
        for item in raw_schema["paths"].values():
            for operation in item.values():
                for response in operation.get("responses", {}).values():
                    response.pop("links", None)
    _pin_path_parameters(raw_schema, seeded)
    schema = schemathesis.openapi.from_dict(raw_schema)
    schema.app = wsgi_app
    # Schema-valid data only (both tests): the checks are that the API answers each such request with a
    # documented status and body and never a 5xx. Negative generation (schema-invalid data) is not run yet.
    schema.config.generation.update(max_examples=EXAMPLES, modes=[GenerationMode.POSITIVE])
    return schema


@pytest.fixture
def auth(seeded, role):
    """Headers for the next request: a scenario may revoke the token (DELETE /api/auth/token/, a
    password change), so each request takes the user's current one."""
    return lambda: _headers(seeded.users[role])


def _record(case, response) -> None:
    SEEN[f"{case.method.upper()} {case.operation.path}"][response.status_code] += 1


def test_each_operation(api_schema, auth, role):
    """Every operation on its own (schemathesis' pytest plugin is not used: it reads a node attribute
    pytest 9 removed, so the operations are walked here, each as one Hypothesis test)."""
    failures = {}
    SEEN.clear()
    for result in api_schema.get_all_operations():
        operation = result.ok()

        # The schema's own request examples first (they name real versions, rows, ...), then fuzzing.
        examples = operation.get_strategies_from_examples()
        strategy = operation.as_strategy()
        if examples:
            strategy = hypothesis.strategies.one_of(*examples, strategy)

        @hypothesis.given(case=strategy)
        @hypothesis.settings(max_examples=EXAMPLES, **SETTINGS)
        def fuzz(case):
            # Each example on the seed as it was: a DELETE does not hide the object from what follows.
            with transaction.atomic():
                response = case.call(headers=auth())
                transaction.set_rollback(True)
            _record(case, response)
            case.validate_response(response, checks=CHECKS)

        try:
            fuzz()
        except (AssertionError, Exception, BaseExceptionGroup) as exc:  # report every failing operation
            failures[operation.label] = exc
    assert not failures, "\n\n".join(f"{label}: {str(exc)[:1500]}" for label, exc in failures.items())
    # Every operation was reached: each answered something other than 404 at least once (the ids are
    # the seed's). A platform admin is no labeler: `next` tells them there is no such project to label.
    only_404 = sorted(op for op, statuses in SEEN.items() if set(statuses) == {404})
    expected = {"GET /api/projects/{project_id}/next/"} if role == "platform_admin" else set()
    assert set(only_404) == expected, only_404
    assert len(SEEN) == sum(1 for _ in api_schema.get_all_operations())


def test_stateful_links(api_schema, auth):
    class Machine(api_schema.as_state_machine()):
        def setup(self):
            # Each scenario starts from the seeded data: what one scenario deletes or creates is rolled
            # back, so Hypothesis sees the same API on every replay.
            self._savepoint = transaction.atomic()
            self._savepoint.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._savepoint.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": auth()}

        def after_call(self, response, case):
            _record(case, response)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    SEEN.clear()
    Machine.run(
        settings=hypothesis.settings(max_examples=SCENARIOS, stateful_step_count=STEPS, **SETTINGS),
    )
    reached = {op for op, statuses in SEEN.items() if any(s != 404 for s in statuses)}
    total = sum(1 for _ in api_schema.get_all_operations())
    if os.environ.get("REACHED"):
        for op in sorted(SEEN):
            print(f"{op:70} {dict(SEEN[op])}")
        print(f"stateful run: {len(SEEN)} of {total} operations called, {len(reached)} with a status other than 404")
    # Scenarios walk from lists and creations to the objects behind ids (seeded ids and the links):
    # most operations answer something other than 404 (65 and 57 of 74 when this was written).
    assert len(reached) >= 0.7 * total, sorted(set(SEEN) - reached)


def test_schema_links_reach_every_operation_behind_an_id(raw_schema):
    """config/openapi.py: each operation whose path names an object is the target of a link, so the
    stateful run (and a client) can get there from a body that names the object."""
    operations = {
        operation["operationId"]: path
        for path, item in raw_schema["paths"].items()
        for method, operation in item.items()
        if "{" in path
    }
    targets = {
        name
        for item in raw_schema["paths"].values()
        for operation in item.values()
        for response in operation["responses"].values()
        for name in response.get("links", {})
    }
    assert not sorted(set(operations) - targets)
    lease = raw_schema["paths"]["/api/projects/{project_id}/next/"]["get"]["responses"]["200"]["links"]
    assert lease["assignments_ranking_create"]["parameters"] == {"assignment_id": "$response.body#/assignment/id"}


def test_schema_documents_errors_and_converters(raw_schema):
    token = raw_schema["paths"]["/api/auth/token/"]["post"]["responses"]
    assert {"400", "401", "429", "503"} <= set(token)
    alias = raw_schema["paths"]["/api/models/{model_id}/aliases/{alias}/"]["get"]
    params = {p["name"]: p["schema"] for p in alias["parameters"]}
    assert params["model_id"]["minimum"] == 0
    assert params["alias"]["pattern"] == "^[-a-zA-Z0-9_]+$"
    assert {"401", "403", "404", "503"} <= set(alias["responses"])
