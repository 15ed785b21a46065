"""Every route of the URL conf x every role, asserting the status each role gets.

The routes come from the URL conf itself, so a new route (or a new method on a view) without an
entry in ``EXPECTED`` fails ``test_every_route_has_an_entry``; an entry whose route is gone fails too.
Each request runs inside a savepoint that is rolled back, so a DELETE or a cancel by one role does
not change what the next role sees.

Expected values: an int is the exact status; ``OK`` means the role gets past authentication and
permissions (any status but 401, 403, 404 and 5xx: an empty body may well be a 400). Print the table
the code gives today with ``MATRIX_PRINT=1 pytest tests/test_endpoint_matrix.py -s``.
"""

import os
import re

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.world import ROLES, World, world_create

OK = "ok"
METHODS = ("get", "post", "put", "patch", "delete")
SKIPPED_PREFIXES = ("admin/",)  # Django's own admin site: its permissions are Django's


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def routes() -> dict[str, object]:
    """``"METHOD route"`` -> view callback, for every route and method the URL conf serves."""
    found = {}
    for route, callback in _walk(get_resolver().url_patterns):
        if route.startswith(SKIPPED_PREFIXES) or route.startswith("^(?!"):
            continue
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        methods = [m for m in METHODS if view_class is not None and hasattr(view_class, m)] or ["get"]
        for method in methods:
            found[f"{method.upper()} {route}"] = callback
    return found


def rule(default, **per_role) -> dict[str, object]:
    return {role: per_role.get(role, default) for role in ROLES}


# Shorthands for the common shapes of project routes (outsiders and non-member staff get 404:
# a project's existence is not disclosed to them).
HIDDEN = {"anonymous": 401, "outsider": 404, "staff": 404}


def members(ok=OK):
    """Any member of the project (and platform admins)."""
    return rule(ok, **HIDDEN)


def reviewers(ok=OK):
    return rule(ok, **HIDDEN, labeler=403)


def admins(ok=OK):
    return rule(ok, **HIDDEN, labeler=403, reviewer=403)


def run_readers(ok=OK):
    """Runs and the models they made: reviewers and admins of the project (labelers are not told
    they exist)."""
    return rule(ok, **HIDDEN, labeler=404)


def model_admins(ok=OK):
    """Writes to a project's model: its admins (labelers cannot even read it)."""
    return rule(ok, **HIDDEN, labeler=404, reviewer=403)


def platform_admins_only_see_it(ok=OK):
    return rule(ok, **HIDDEN, labeler=404, reviewer=403, project_admin=403)


def signed_in(ok=OK):
    return rule(ok, anonymous=401)


def platform_admins(ok=OK):
    return rule(403, anonymous=401, platform_admin=ok)


def staff_and_admins(ok=OK):
    return rule(403, anonymous=401, staff=ok, platform_admin=ok)


def everyone(ok=200):
    return rule(ok)


P = "api/projects/<int:project_id>/"
M = "api/models/<int:model_id>/"
V = M + "versions/<int:version>/"
EXPECTED: dict[str, dict[str, object]] = {
    # auth and accounts
    "POST api/auth/token/": everyone(400),
    "GET api/auth/csrf/": everyone(),
    "POST api/auth/session/": everyone(400),
    "DELETE api/auth/session/": everyone(OK),
    "DELETE api/auth/token/": signed_in(204),
    "POST api/auth/password/": signed_in(400),
    "DELETE api/users/<int:user_id>/token/": platform_admins(204),
    "GET api/schema/": everyone(),
    "GET api/docs/": everyone(),
    "GET api/users/": platform_admins(200),
    "POST api/users/": platform_admins(),
    "GET api/me/": signed_in(200),
    # projects and their parts
    "GET api/projects/": signed_in(200),
    "POST api/projects/": staff_and_admins(),
    f"GET {P}": members(200),
    f"PATCH {P}": admins(200),
    f"GET {P}members/": reviewers(200),
    f"POST {P}members/": admins(201),
    f"DELETE {P}members/<int:membership_id>/": admins(),
    f"GET {P}criteria/": members(200),
    f"POST {P}criteria/": admins(201),
    f"PATCH {P}criteria/<int:criterion_id>/": admins(200),
    f"DELETE {P}criteria/<int:criterion_id>/": admins(),
    f"GET {P}comparisons/": reviewers(200),
    f"POST {P}comparisons/": admins(),
    f"POST {P}preferences/": admins(),
    f"POST {P}imports/": admins(),
    f"GET {P}rankings/": members(200),  # a labeler sees their own
    f"GET {P}next/": rule(OK, **HIDDEN, platform_admin=404),  # labeling takes a membership
    f"GET {P}stats/": members(200),
    f"GET {P}stats/timeline/": reviewers(200),
    f"GET {P}stats/ai-audit/": reviewers(200),
    f"GET {P}stats/ai-audit/disagreements/": reviewers(200),
    f"GET {P}constitutions/": members(200),
    f"POST {P}constitutions/": admins(),
    f"GET {P}constitutions/default/": members(200),
    f"GET {P}constitutions/<int:version>/": members(200),
    f"GET {P}datasets/": reviewers(200),
    f"POST {P}datasets/": admins(),
    f"GET {P}datasets/<int:dataset_id>/": reviewers(200),
    f"GET {P}datasets/<int:dataset_id>/rows/": reviewers(200),
    f"GET {P}templates/": members(200),
    f"POST {P}templates/": admins(),
    f"GET {P}templates/<int:template_id>/": members(200),
    f"PATCH {P}templates/<int:template_id>/": admins(),
    f"DELETE {P}templates/<int:template_id>/": admins(),
    f"POST {P}templates/<int:template_id>/preview/": reviewers(),
    f"GET {P}snapshots/": reviewers(200),
    f"POST {P}snapshots/": reviewers(),
    f"GET {P}snapshots/<int:snapshot_id>/": reviewers(200),
    f"GET {P}snapshots/<int:snapshot_id>/download/": reviewers(),
    f"POST {P}generate/": admins(),
    f"POST {P}evaluations/": admins(),
    # side-by-side evaluations: their project's reviewers and admins (labelers label them blind)
    "GET api/evaluations/": signed_in(200),
    "GET api/evaluations/<int:evaluation_id>/": run_readers(200),
    "GET api/evaluations/<int:evaluation_id>/results/": run_readers(200),
    "POST api/evaluations/<int:evaluation_id>/publish/": model_admins(200),
    # rounds of the loop: like runs, their project's reviewers and admins
    f"GET {P}rounds/": reviewers(200),
    f"POST {P}rounds/": admins(),
    "GET api/rounds/<int:round_id>/": run_readers(200),
    # a labeler's own lease: everyone else is told it does not exist
    "POST api/assignments/<int:assignment_id>/ranking/": rule(403, anonymous=401, labeler=OK),
    "POST api/assignments/<int:assignment_id>/skip/": rule(403, anonymous=401, labeler=OK),
    # runs (the fixture's run belongs to the project)
    "GET api/runs/": signed_in(200),
    "POST api/runs/": signed_in(),
    "GET api/runs/kinds/": signed_in(200),
    "GET api/runs/<int:run_id>/": run_readers(200),
    "GET api/runs/<int:run_id>/events/": run_readers(200),
    "GET api/runs/<int:run_id>/logs/": run_readers(200),
    "GET api/runs/<int:run_id>/metrics/": run_readers(200),
    "GET api/runs/<int:run_id>/revisions/": run_readers(200),
    "POST api/runs/<int:run_id>/cancel/": run_readers(),
    "GET api/runs/<int:run_id>/guard/": run_readers(200),  # the world's run is an RLHF run
    # sweeps: like runs (the fixture's sweep belongs to the project); starting one takes what starting
    # a run of its kind there takes (BODIES: a body whose shape is valid, so the role decides)
    "GET api/sweeps/": signed_in(200),
    "GET api/sweeps/kinds/": signed_in(200),
    "POST api/sweeps/": rule(400, anonymous=401, outsider=404, staff=404, labeler=403),
    "GET api/sweeps/<int:sweep_id>/": run_readers(200),
    "POST api/sweeps/<int:sweep_id>/cancel/": run_readers(200),
    # the registry (the fixture's model was made by the project's run)
    "GET api/models/": signed_in(200),
    "POST api/models/": staff_and_admins(),
    "POST api/models/import/": staff_and_admins(),
    f"GET {M}": run_readers(200),
    f"GET {M}versions/": run_readers(200),
    f"GET {V}": run_readers(200),
    f"PATCH {M}": platform_admins_only_see_it(),  # sharing a model across projects
    f"PATCH {V}": model_admins(200),
    f"GET {V}download/": run_readers(200),
    f"GET {M}aliases/": run_readers(200),
    f"GET {M}alias-history/": run_readers(200),
    f"GET {M}aliases/<slug:alias>/": run_readers(200),
    f"PUT {M}aliases/<slug:alias>/": model_admins(200),
    f"DELETE {M}aliases/<slug:alias>/": model_admins(),
}


# Valid bodies for writes whose empty body would be refused (400) before the permission check
# could show: with these, an allowed role gets the exact success status.
BODIES = {
    f"POST {P}members/": {"username": "newcomer", "role": "labeler"},
    f"POST {P}criteria/": {"name": "honest"},
    f"PATCH {P}": {"instructions": "Rank by helpfulness."},
    f"PATCH {P}criteria/<int:criterion_id>/": {"instructions": "Be kind."},
    f"PUT {M}aliases/<slug:alias>/": {"version": 1},
    f"PATCH {V}": {"tags": ["reviewed"]},
    # A sweep of the world's project whose shape is valid (its model is no base for sft: a 400 once
    # the role is allowed).
    "POST api/sweeps/": lambda world: {
        "kind": "sft",
        "project": world.ids["project_id"],
        "inputs": {"dataset": world.ids["dataset_id"]},
        "search_space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3}},
        "metric": "eval_loss",
        "direction": "minimize",
        "budget": 2,
    },
}


@pytest.fixture
def world(make_user):
    return world_create(make_user)


def _path(route: str, world: World) -> str:
    path = route
    for converter, name in re.findall(r"<(\w+):(\w+)>", route):
        path = path.replace(f"<{converter}:{name}>", str(world.path_value(route, name)))
    assert "<" not in path, f"the matrix has no value for a parameter of {route}"
    return "/" + path


def _client(role: str, world) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        token, _ = Token.objects.get_or_create(user=world.users[role])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


class _Rollback(Exception):
    pass


def _status(client: APIClient, method: str, path: str, body, world: World) -> int:
    """The status of one request, with everything it wrote rolled back."""
    status = None
    if callable(body):
        body = body(world)
    if body is None and method != "GET":
        body = {}
    try:
        with transaction.atomic():
            response = getattr(client, method.lower())(path, body, format="json")
            status = response.status_code
            raise _Rollback
    except _Rollback:
        pass
    return status


def _matches(expected, status: int) -> bool:
    if expected == OK:
        return status not in (401, 403, 404) and status < 500
    return status == expected


def test_every_route_has_an_entry():
    served = set(routes())
    missing = sorted(served - set(EXPECTED))
    stale = sorted(set(EXPECTED) - served)
    assert not missing, f"routes without an entry in EXPECTED (add who may call them): {missing}"
    assert not stale, f"entries in EXPECTED for routes that do not exist: {stale}"


@pytest.mark.django_db
def test_each_role_gets_the_expected_status(world):
    observed: dict[str, dict[str, int]] = {}
    wrong = []
    clients = {role: _client(role, world) for role in ROLES}
    for operation in sorted(routes()):
        method, route = operation.split(" ", 1)
        path = _path(route, world)
        observed[operation] = {}
        for role in ROLES:
            status = _status(clients[role], method, path, BODIES.get(operation), world)
            observed[operation][role] = status
            expected = EXPECTED.get(operation, {}).get(role)
            if expected is not None and not _matches(expected, status):
                wrong.append(f"{operation} as {role}: {status}, expected {expected}")
    if os.environ.get("MATRIX_PRINT"):
        for operation, by_role in observed.items():
            print(f"{operation:70} " + " ".join(f"{role[:6]}={status}" for role, status in by_role.items()))
    assert not [w for w in wrong if " 5" in w.split(": ")[1][:2]], "5xx answers:\n" + "\n".join(wrong)
    assert not wrong, f"{len(wrong)} statuses differ:\n" + "\n".join(wrong)
