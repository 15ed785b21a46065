"""Sign-in hardening: throttled password checks, validated passwords, revocable tokens, bounded pages."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def low_rates(settings):
    settings.RANKFORGE_THROTTLE_RATES = {"login": "3/minute", "login_ip": "5/minute"}


def session_client() -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.get("/api/auth/csrf/")
    return client


def sign_in(client: APIClient, username: str, password: str):
    return client.post(
        "/api/auth/session/",
        {"username": username, "password": password},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0
    assert "Too many sign-in attempts" in response.json()["detail"]


# --- throttling -------------------------------------------------------------------------------


def test_token_endpoint_is_throttled_per_account(admin_user, low_rates):
    client = APIClient()
    for _ in range(3):
        assert client.post("/api/auth/token/", {"username": "alice", "password": "wrong"}).status_code == 400
    # the right password does not help once the account's budget is spent
    assert_throttled(client.post("/api/auth/token/", {"username": "alice", "password": "pw-alice"}))
    assert not Token.objects.exists()
    # another account from the same address still has its own budget
    assert client.post("/api/auth/token/", {"username": "bob", "password": "x"}).status_code == 400


def test_session_sign_in_is_throttled_and_shares_the_budget_with_tokens(admin_user, low_rates):
    client = session_client()
    assert APIClient().post("/api/auth/token/", {"username": "Alice", "password": "wrong"}).status_code == 400
    for _ in range(2):
        assert sign_in(client, "alice", "wrong").status_code in (401, 403)
    response = sign_in(client, "alice", "pw-alice")
    assert_throttled(response)
    assert client.get("/api/me/").status_code in (401, 403)  # not signed in


def test_address_budget_stops_password_spraying(make_user, low_rates):
    client = APIClient()
    for i in range(5):
        assert client.post("/api/auth/token/", {"username": f"user{i}", "password": "x"}).status_code == 400
    assert_throttled(client.post("/api/auth/token/", {"username": "someone-else", "password": "x"}))


def test_a_forged_x_forwarded_for_does_not_buy_a_new_budget(admin_user, low_rates):
    client = APIClient()
    for i in range(3):
        response = client.post(
            "/api/auth/token/", {"username": "alice", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        )
        assert response.status_code == 400
    assert_throttled(
        client.post("/api/auth/token/", {"username": "alice", "password": "x"}, HTTP_X_FORWARDED_FOR="10.9.9.9")
    )


def test_password_change_is_throttled_per_user(api, admin_user, low_rates):
    client = api(admin_user)
    for _ in range(3):
        response = client.post("/api/auth/password/", {"old_password": "guess", "new_password": "Another-pass-99"})
        assert response.status_code == 400
    assert_throttled(
        client.post("/api/auth/password/", {"old_password": "pw-alice", "new_password": "Another-pass-99"})
    )
    admin_user.refresh_from_db()
    assert admin_user.check_password("pw-alice")


def test_rates_come_from_settings_and_default_to_a_real_limit(settings):
    assert settings.RANKFORGE_THROTTLE_RATES == {"login": "10/minute", "login_ip": "60/minute"}


def test_each_test_starts_with_a_fresh_budget(admin_user, low_rates):
    """Runs after the tests above spent alice's budget: the autouse cache fixture reset it."""
    assert APIClient().post("/api/auth/token/", {"username": "alice", "password": "pw-alice"}).status_code == 200


# --- password validators ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short1", "too short"),
        ("password123", "too common"),
        ("83920174659", "entirely numeric"),
        ("newbie-account", "too similar"),
    ],
)
def test_new_accounts_get_validated_passwords(api, platform_admin, password, says):
    response = api(platform_admin).post("/api/users/", {"username": "newbie-account", "password": password})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"].startswith("password") and says in body["detail"]
    assert any(says in message for message in body["errors"]["password"])
    assert not User.objects.filter(username="newbie-account").exists()


def test_a_strong_password_makes_an_account(api, platform_admin):
    response = api(platform_admin).post("/api/users/", {"username": "newbie", "password": "Quiet-Harbor-31"})
    assert response.status_code == 201
    assert User.objects.get(username="newbie").check_password("Quiet-Harbor-31")


# --- password change and token revocation ------------------------------------------------------


def test_password_change_revokes_tokens_and_keeps_the_session(make_user):
    user = make_user("carol")
    token = Token.objects.create(user=user)
    other_session = session_client()
    assert sign_in(other_session, "carol", "pw-carol").status_code == 200
    client = session_client()
    assert sign_in(client, "carol", "pw-carol").status_code == 200

    response = client.post(
        "/api/auth/password/",
        {"old_password": "pw-carol", "new_password": "Lantern-Orbit-72"},
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"detail": "Password changed.", "tokens_revoked": 1}
    assert not Token.objects.filter(key=token.key).exists()
    assert client.get("/api/me/").json()["username"] == "carol"  # this session stays signed in
    assert other_session.get("/api/me/").status_code in (401, 403)  # every other session is out
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert with_token.get("/api/me/").status_code == 401
    user.refresh_from_db()
    assert user.check_password("Lantern-Orbit-72")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"old_password": "wrong", "new_password": "Lantern-Orbit-72"}, "old_password"),
        ({"old_password": "pw-dave", "new_password": "12345678"}, "new_password"),
        ({"old_password": "pw-dave", "new_password": "dave"}, "new_password"),
        ({"new_password": "Lantern-Orbit-72"}, "old_password"),
    ],
)
def test_refused_password_change_names_the_field_and_changes_nothing(api, make_user, form, field):
    user = make_user("dave")
    client = api(user)
    response = client.post("/api/auth/password/", form, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    user.refresh_from_db()
    assert user.check_password("pw-dave")
    assert client.get("/api/me/").status_code == 200  # the token still works


def test_delete_token_revokes_the_callers_token(api, make_user):
    user = make_user("erin")
    other = make_user("frank")
    client, others = api(user), api(other)
    assert client.delete("/api/auth/token/").status_code == 204
    assert client.get("/api/me/").status_code == 401
    assert others.get("/api/me/").status_code == 200
    assert APIClient().delete("/api/auth/token/").status_code == 401
    # a new sign-in gets a new token
    response = APIClient().post("/api/auth/token/", {"username": "erin", "password": "pw-erin"})
    assert response.status_code == 200 and Token.objects.get(user=user).key == response.json()["token"]


def test_platform_admin_revokes_another_users_token(api, make_user, platform_admin, admin_user):
    victim = make_user("gina")
    client = api(victim)
    assert api(admin_user).delete(f"/api/users/{victim.id}/token/").status_code == 403  # staff is not enough
    assert api(victim).delete(f"/api/users/{platform_admin.id}/token/").status_code == 403
    assert client.get("/api/me/").status_code == 200
    assert api(platform_admin).delete(f"/api/users/{victim.id}/token/").status_code == 204
    assert client.get("/api/me/").status_code == 401
    assert api(platform_admin).delete("/api/users/999999/token/").status_code == 404


def test_deactivated_user_loses_token_and_session(api, make_user):
    user = make_user("hank")
    token_client = api(user)
    browser = session_client()
    assert sign_in(browser, "hank", "pw-hank").status_code == 200
    user.is_active = False
    user.save()
    assert token_client.get("/api/me/").status_code == 401
    assert browser.get("/api/me/").status_code in (401, 403)
    assert APIClient().post("/api/auth/token/", {"username": "hank", "password": "pw-hank"}).status_code == 400


# --- pagination -------------------------------------------------------------------------------


def test_limit_is_clamped_to_max_limit(api, platform_admin):
    User.objects.bulk_create(User(username=f"bulk{i}") for i in range(520))
    page = api(platform_admin).get("/api/users/?limit=100000").json()
    assert page["count"] == 521
    assert len(page["results"]) == 500
    assert "limit=500" in page["next"]


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_every_paginated_view_has_a_max_limit():
    """A view that sets its own pagination_class cannot bring back an unbounded ?limit=."""
    checked = 0
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        pagination = getattr(view, "pagination_class", None)
        if pagination is None or not hasattr(view, "paginate"):
            continue
        checked += 1
        assert pagination.max_limit is not None and pagination.max_limit <= 500, route
    assert checked >= 10
