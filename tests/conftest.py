"""Shared fixtures. Tests that need PostgreSQL, Redis or a browser skip without them, except under
CI=true, where a missing service fails the run instead of passing quietly."""

import os
import shutil

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Membership, Role
from labeling.services.projects import project_create

pytest_plugins = ["tests.workers"]

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_service(reason: str):
    """Skip locally, fail in CI: a suite that silently skips its PostgreSQL tests proves nothing."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        missing_service("this test needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        missing_service("this test needs Redis: set REDIS_URL=redis://...")
    if item.get_closest_marker("browser") and not shutil.which(os.environ.get("CHROMIUM", "chromium")):
        missing_service("this test needs Debian's chromium on PATH")


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    # Real hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Throttle counts live in the shared cache: each test starts with none, so sign-ins made by
    earlier tests never throttle it. Only RankForge's keys go: the Redis cache may share its
    database with the Celery broker, whose keys a FLUSHDB would take."""
    from django.core.cache import cache

    if cache.__class__.__name__ == "RedisCache":
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:*"))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture
def make_user(django_user_model):
    counter = {"n": 0}

    def make(username: str | None = None, **extra):
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        return django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def platform_admin(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="pw-root", email="root@example.org")


@pytest.fixture
def admin_user(make_user):
    return make_user("alice", is_staff=True)


@pytest.fixture
def project(admin_user):
    return project_create(created_by=admin_user, name="Demo", completions_per_prompt=3, overlap=2)


@pytest.fixture
def add_member(project):
    def add(user, role=Role.LABELER, to=None):
        Membership.objects.create(project=to or project, user=user, role=role)
        return user

    return add


@pytest.fixture
def labelers(make_user, add_member):
    return [add_member(make_user(f"labeler{i}")) for i in range(3)]


@pytest.fixture
def api():
    """``api(user)`` is an APIClient authenticated with the user's real token."""

    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for
