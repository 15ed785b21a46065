"""common.postgresql: the per-request health check polls the socket instead of sending SELECT 1,
and still notices a connection the server dropped."""

import time

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql import base as django_postgresql

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def round_trips(monkeypatch):
    """How many times the check fell back to Django's SELECT 1."""
    calls = []
    original = django_postgresql.DatabaseWrapper.is_usable

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", counting)
    return calls


def test_an_idle_healthy_connection_is_usable_without_a_query(round_trips):
    connection.ensure_connection()
    assert connection.vendor == "postgresql"
    assert connection.is_usable()
    assert round_trips == []


def test_a_connection_the_server_terminated_is_not_usable_and_the_next_query_reconnects(round_trips):
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not connection.is_usable()
    assert round_trips, "the readable socket sends the check on to SELECT 1"

    connection.health_check_done = False  # a new request: Django checks before its first query
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
