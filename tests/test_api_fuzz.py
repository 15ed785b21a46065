"""Schemathesis against the real app: every operation of ``/api/schema/`` fuzzed in-process (WSGI) on
the seeded objects (path parameters take their ids, request bodies start from the schema's examples),
each one reached; then the stateful run that follows the schema's OpenAPI links from lists to the
operations behind ids.

Checks: no 5xx, a documented status code, a documented content type and a body that matches the
documented schema. Requests go through Django's real WSGI handler on the test database (one
transaction per test, rolled back), authenticated by token as a platform admin and as a project admin
(not a superuser). Bounded for CI: few examples per operation, derandomized, no deadline.

The schema describes what the API validates: schema-valid data is accepted (Schemathesis'
``positive_data_acceptance``; on for each operation by default, FUZZ_ACCEPT=1 adds the stateful run,
FUZZ_ACCEPT=0 turns it off) except for the refusals NOT_IN_SCHEMA lists, each with what puts it beyond
a schema; schema-invalid data is refused with a 4xx, never a 2xx or a 5xx (``negative_data_rejection``,
test_negative_data).
"""

import collections
import copy
import json
import os
import re
from types import SimpleNamespace

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
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.world import World, world_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

EXISTS = "an id or name that must exist (and be visible to the caller)"
FILE = "the uploaded file's contents (its rows), which a multipart schema does not describe"
TEMPLATE = (
    "template syntax: the {field} grammar's pattern needs a literal `}`, which Schemathesis 4.32.5 writes back "
    "unescaped and then refuses as a regex (the rest is the dataset's fields and the examples' keys: stored data)"
)
# labeling.templating's refusals: the grammar, the fields a row or an example must have.
TEMPLATE_ERRORS = (
    "unbalanced braces|placeholder|unknown field|has no field|lacks field|is a (dict|list)|examples\\[\\d+\\]: "
)
NUL_KEY = "a NUL in a key of a free-form object: OpenAPI 3.0 has no propertyNames"
# What a schema cannot state: operation -> [(error key regex, message regex, why)]. A 400 for
# schema-valid data is excused only when every (key, message) of its `errors` matches an entry of its
# operation (an upload's row errors are keyed "file", a message without `errors` ""); any other refusal
# fails positive_data_acceptance.
NOT_IN_SCHEMA: dict[str, list[tuple[str, str, str]]] = {
    "POST /api/auth/token/": [("non_field_errors", "Unable to log in", "valid credentials")],
    "POST /api/auth/session/": [("non_field_errors|username|password", "credentials|password", "valid credentials")],
    "POST /api/auth/password/": [("old_password", "[Ww]rong password", "the current password (a credential)")],
    "POST /api/users/": [
        ("password", "password", "Django's password validators (length, similarity to the username, common)"),
        (
            "username",
            "Enter a valid username",
            "Django's username rule is Unicode \\w, which an ECMA pattern spells ASCII",
        ),
        ("username", "Taken|already exists", "a unique name: stored data"),
    ],
    "POST /api/models/": [
        ("project", "does not exist", EXISTS),
        ("name", "exists and is not yours|already exists", "a unique name: stored data"),
    ],
    "POST /api/models/import/": [
        ("project", "does not exist", EXISTS),
        ("path", "No such file or directory|not a model folder|[Nn]o config.json", "a model folder on the server"),
        ("base_version", "There is no model version", EXISTS),
        ("name", "exists and is not yours", "a unique name: stored data"),
    ],
    "POST /api/projects/": [
        ("generation_model", "does not exist|no model version", EXISTS),
        ("generation_config", "NUL character", NUL_KEY),
    ],
    "PATCH /api/projects/{project_id}/": [
        ("generation_model", "does not exist|no model version", EXISTS),
        ("generation_config", "NUL character", NUL_KEY),
    ],
    "POST /api/projects/{project_id}/members/": [("username", "Unknown user", EXISTS)],
    "POST /api/assignments/{assignment_id}/ranking/": [
        (
            "ranking",
            "has no rank and is not marked F|unknown completion|out of range|not a completion id|^ranks: expected an",
            "the lease's comparison: its completion ids and K, and whether its project ranks per criterion"
            " (ranks or criteria)",
        ),
    ],
    "GET /api/projects/{project_id}/stats/": [("criterion", "[Nn]o criterion|is not a criterion", EXISTS)],
    "GET /api/projects/{project_id}/stats/timeline/": [("criterion", "[Nn]o criterion|is not a criterion", EXISTS)],
    "POST /api/projects/{project_id}/snapshots/": [("criterion", "has no criterion|Unknown criterion", EXISTS)],
    "POST /api/projects/{project_id}/templates/": [
        ("dataset", "No dataset", EXISTS),
        ("text|example_text|examples", TEMPLATE_ERRORS, TEMPLATE),
        ("name", "is taken", "a unique name: stored data"),
        ("examples", "NUL character", NUL_KEY),
    ],
    "PATCH /api/projects/{project_id}/templates/{template_id}/": [
        ("dataset", "No dataset", EXISTS),
        ("text|example_text|examples", TEMPLATE_ERRORS, TEMPLATE),
        ("name", "is taken", "a unique name: stored data"),
        ("examples", "NUL character", NUL_KEY),
    ],
    "POST /api/projects/{project_id}/templates/{template_id}/preview/": [
        ("row_id", "No prompt row", EXISTS),
        ("index", "has rows", "a row index within the stored dataset"),
        ("dataset", "No dataset|The template has no dataset", EXISTS + ", or the template's dataset"),
        ("row|text|example_text|examples", TEMPLATE_ERRORS, TEMPLATE),
    ],
    "POST /api/projects/{project_id}/datasets/": [
        ("file|", ".", FILE),
        ("eval_fraction|test_fraction", "more than 1", "a bound on the sum of two fields"),
    ],
    "POST /api/projects/{project_id}/comparisons/": [("file|", ".", FILE)],
    "POST /api/projects/{project_id}/preferences/": [("file|", ".", FILE)],
    "POST /api/projects/{project_id}/imports/": [
        ("file|", ".", FILE + ", and who its annotators are among the stored users"),
        ("annotators", "JSON object", "a JSON object written in a form field's text, which a schema cannot parse"),
        ("failed_buckets", "also in bucket_order", "two lists that share no name (uniqueness across fields)"),
    ],
    "POST /api/projects/{project_id}/constitutions/": [
        (
            r"principles\[\d+\]\.key",
            "used by an earlier principle",
            "keys unique across items (uniqueItems is whole items)",
        ),
    ],
    "POST /api/projects/{project_id}/generate/": [
        ("model_version", "no model version|choose the model", EXISTS + ", or the project's generation_model"),
        ("dataset", "has no dataset", EXISTS),
        ("k", "so k must be", "the project's stored K"),
        (r"generation\..*", ".", "GenerateConfig.validate(): bounds and rules across fields, kept once in training/ml"),
    ],
    "POST /api/runs/": [
        ("project", "does not exist|not found|a constitutional-AI run", EXISTS),
        ("round", "there is no round", EXISTS),
        (
            r"inputs\..*",
            "there is no|has no|is not ready|is a|required|not both|no prompts|not a model of",
            EXISTS
            + "; which inputs a kind needs depends on the others (snapshot or cai_run, dataset with target_field)",
        ),
        (
            r"config\..*",
            ".",
            "the config classes' validate(): bounds and rules across fields, kept once in training/ml",
        ),
    ],
    "POST /api/sweeps/": [
        ("project", "does not exist|not found|a constitutional-AI run", EXISTS),
        ("search_space", "NUL character", NUL_KEY),
        (
            r"inputs\..*",
            "there is no|has no|is not ready|is a|required|not both|no prompts|not a model of|unknown input",
            EXISTS + "; which inputs a kind needs depends on the others",
        ),
        (
            r"config\..*",
            ".",
            "the config classes' validate(): bounds and rules across fields, kept once in training/ml",
        ),
        (
            r"search_space(\..*)?",
            "refused by|empty range|not a multiple|log range|set in config too|lists a value twice|cannot set it"
            "|optuna can sample",
            "ranges checked at sample points by the config class, across keys (low<high), against the field's type",
        ),
        ("parallelism", "at most the budget", "a bound across two fields"),
    ],
    "POST /api/projects/{project_id}/evaluations/": [
        (r"versions(\[\d+\])?|dataset|round|template", "there is no|has no|[Nn]o dataset|[Nn]o round", EXISTS),
        ("split", "has no rows in split", "the dataset's rows: which splits hold any is data, not schema"),
    ],
    "POST /api/projects/{project_id}/rounds/": [
        ("version|model|alias|dataset|template", "there is no|has no|[Nn]o dataset|[Nn]o model", EXISTS),
    ],
}


def _errors(response) -> list[tuple[str, str]]:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return [("", response.text)]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        return [
            (key, str(m))
            for key, messages in errors.items()
            for m in (messages if isinstance(messages, list) else [messages])
        ]
    return [("file" if isinstance(errors, list) else "", str(body.get("detail", "")) if isinstance(body, dict) else "")]


def not_in_schema(case, response) -> bool:
    """Whether this refusal of schema-valid data is one NOT_IN_SCHEMA lists for its operation."""
    rules = NOT_IN_SCHEMA.get(case.operation.label)
    if not rules or response.status_code != 400:
        return False
    return all(
        any(re.fullmatch(key_re, key) and re.search(message_re, message) for key_re, message_re, _why in rules)
        for key, message in _errors(response)
    )


def accepts_schema_valid_data(ctx, response, case):
    """positive_data_acceptance, less what NOT_IN_SCHEMA lists."""
    if not_in_schema(case, response):
        return None
    return positive_data_acceptance(ctx, response, case)


def _hub_offline(case, response) -> bool:
    """CI has no network: a hub import answers its documented 503 (what to do instead), by design."""
    return (
        case.operation.label == "POST /api/models/import/"
        and response.status_code == 503
        and "Cannot reach the Hugging Face hub" in response.text
    )


def no_server_error(ctx, response, case):
    """not_a_server_error, less the offline hub's 503."""
    if _hub_offline(case, response):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Each operation on the seed: schema-valid data is accepted (FUZZ_ACCEPT=0 turns the check off). The
# stateful run builds on what earlier steps stored, so more refusals depend on stored data there
# (names taken, templates without a dataset): FUZZ_ACCEPT=1 adds the check to it too.
ACCEPT = os.environ.get("FUZZ_ACCEPT", "each")
EACH_CHECKS = [*CHECKS, accepts_schema_valid_data] if ACCEPT != "0" else CHECKS
STATEFUL_CHECKS = [*CHECKS, accepts_schema_valid_data] if ACCEPT == "1" else CHECKS
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def rejects_schema_invalid_data(ctx, response, case):
    """negative_data_rejection, less a form body negated to null: it is sent as an empty form, which is
    schema-valid wherever nothing is required (a partial PATCH)."""
    if case.body is None and case.media_type in FORM_MEDIA_TYPES:
        return None
    return negative_data_rejection(ctx, response, case)


NEGATIVE_CHECKS = [no_server_error, status_code_conformance, content_type_conformance, rejects_schema_invalid_data]
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
    # Schema-valid data by default; test_negative_data asks each operation for schema-invalid data.
    schema.config.generation.update(max_examples=EXAMPLES, modes=[GenerationMode.POSITIVE])
    return schema


@pytest.fixture
def auth(seeded, role):
    """Headers for the next request: a scenario may revoke the token (DELETE /api/auth/token/, a
    password change), so each request takes the user's current one."""
    return lambda: _headers(seeded.users[role])


def _record(case, response) -> None:
    SEEN[f"{case.method.upper()} {case.operation.path}"][response.status_code] += 1


def _fuzz_each(api_schema, auth, *, checks, mode: GenerationMode) -> dict:
    """Every operation on its own (schemathesis' pytest plugin is not used: it reads a node attribute
    pytest 9 removed, so the operations are walked here, each as one Hypothesis test); the failures by
    operation."""
    failures = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()

        strategy = operation.as_strategy(generation_mode=mode)
        if mode == GenerationMode.POSITIVE:
            # The schema's own request examples first (they name real versions, rows, ...), then fuzzing.
            examples = operation.get_strategies_from_examples()
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
            case.validate_response(response, checks=checks)

        try:
            fuzz()
        except hypothesis.errors.Unsatisfiable:
            if mode != GenerationMode.NEGATIVE:
                raise
            # Nothing here to send schema-invalid (no parameters, no body): nothing to refuse.
        except (AssertionError, Exception, BaseExceptionGroup) as exc:  # report every failing operation
            failures[operation.label] = exc
    return failures


def _report(failures: dict) -> str:
    return "\n\n".join(f"{label}: {str(exc)[:1500]}" for label, exc in failures.items())


def test_each_operation(api_schema, auth, role):
    SEEN.clear()
    failures = _fuzz_each(api_schema, auth, checks=EACH_CHECKS, mode=GenerationMode.POSITIVE)
    assert not failures, _report(failures)
    # Every operation was reached: each answered something other than 404 at least once (the ids are
    # the seed's). A platform admin is no labeler: `next` tells them there is no such project to label.
    only_404 = sorted(op for op, statuses in SEEN.items() if set(statuses) == {404})
    expected = {"GET /api/projects/{project_id}/next/"} if role == "platform_admin" else set()
    assert set(only_404) == expected, only_404
    assert len(SEEN) == sum(1 for _ in api_schema.get_all_operations())


def test_negative_data(api_schema, auth, role):
    """Schema-invalid data (Schemathesis' negative mode) on every operation: refused with a documented
    4xx, never accepted and never a 5xx. As the platform admin (every permission check passes, so the
    validation answers); FUZZ_NEGATIVE=1 adds the project admin (about 40 s each)."""
    if role != "platform_admin" and not os.environ.get("FUZZ_NEGATIVE"):
        pytest.skip("FUZZ_NEGATIVE=1: the project admin too")
    failures = _fuzz_each(api_schema, auth, checks=NEGATIVE_CHECKS, mode=GenerationMode.NEGATIVE)
    assert not failures, _report(failures)


def test_not_in_schema_is_narrow():
    """The allow-list names real operations' fields, one reason each, and excuses nothing else."""

    class Response:
        status_code = 400

        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    case = SimpleNamespace(operation=SimpleNamespace(label="POST /api/projects/{project_id}/members/"))
    unknown_user = {"detail": "No user named 'x'.", "errors": {"username": ["Unknown user 'x'."]}}
    assert not_in_schema(case, Response(unknown_user))
    assert not not_in_schema(case, Response({"detail": "role: bad", "errors": {"role": ["bad"]}}))
    assert not not_in_schema(case, Response({**unknown_user, "errors": {**unknown_user["errors"], "role": ["bad"]}}))
    for rules in NOT_IN_SCHEMA.values():
        assert all(key and message and why for key, message, why in rules)


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
            case.validate_response(response, checks=STATEFUL_CHECKS)

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
    """common/openapi.py: each operation whose path names an object is the target of a link, so the
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
