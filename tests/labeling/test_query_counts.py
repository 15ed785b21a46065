"""The hot endpoints stay cheap. On PostgreSQL: 3 statements for `next` (token; membership with its
first candidate; lease inserted and read in one) and 3 for a submit (token; the assignment with its
completion ids; ranking stored, lease marked and counted in one). SQLite runs them one by one."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import AlignmentCriterion

from .factories import add_comparisons, ranks_best_first

# A real (outermost) transaction per service call, as in production: no test savepoints counted.
pytestmark = pytest.mark.django_db(transaction=True)

POSTGRES = connection.vendor == "postgresql"
NEXT_MAX, SUBMIT_MAX = (3, 3) if POSTGRES else (5, 6)


CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def counted(call):
    """Data queries only: SQLite logs its BEGIN IMMEDIATE/COMMIT, PostgreSQL's psycopg does not."""
    with CaptureQueriesContext(connection) as ctx:
        response = call()
    return response, [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(CONTROL)]


def test_query_counts(api, project, labelers):
    add_comparisons(project, 5)
    client = api(labelers[0])
    url = f"/api/projects/{project.id}/next/"

    response, queries = counted(lambda: client.get(url))
    assert response.status_code == 200
    assert len(queries) <= NEXT_MAX, "\n".join(queries)

    response, queries = counted(lambda: client.get(url))  # the live lease again: token, membership, lease
    assert len(queries) <= 3, "\n".join(queries)

    lease = response.json()
    submit_url = f"/api/assignments/{lease['assignment']['id']}/ranking/"
    response, queries = counted(lambda: client.post(submit_url, {"ranks": ranks_best_first(lease)}, format="json"))
    assert response.status_code == 201
    assert len(queries) <= SUBMIT_MAX, "\n".join(queries)


def test_query_counts_per_criterion(api, project, labelers):
    project.rank_per_criterion = True
    project.save()
    criteria = [AlignmentCriterion.objects.create(project=project, name=n) for n in ("helpful", "harmless")]
    add_comparisons(project, 2)
    client = api(labelers[0])
    lease = client.get(f"/api/projects/{project.id}/next/").json()
    ranks = ranks_best_first(lease)
    payload = {"criteria": {str(c.id): {"ranks": ranks} for c in criteria}}
    submit_url = f"/api/assignments/{lease['assignment']['id']}/ranking/"
    response, queries = counted(lambda: client.post(submit_url, payload, format="json"))
    assert response.status_code == 201
    assert len(queries) <= SUBMIT_MAX + 1, "\n".join(queries)  # + the project's criteria
