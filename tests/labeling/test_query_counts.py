"""The hot endpoints stay cheap: at most 5 SQL queries for `next` and 8 for a submit, auth included."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import AlignmentCriterion

from .factories import add_comparisons, ranks_best_first

# A real (outermost) transaction per service call, as in production: no test savepoints counted.
pytestmark = pytest.mark.django_db(transaction=True)

NEXT_MAX, SUBMIT_MAX = 5, 8


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

    response, queries = counted(lambda: client.get(url))  # the live lease again
    assert len(queries) <= NEXT_MAX, "\n".join(queries)

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
    assert len(queries) <= SUBMIT_MAX, "\n".join(queries)
