import pytest
from rest_framework.test import APIClient

from .factories import add_comparisons, ranks_best_first

pytestmark = pytest.mark.django_db


def test_browser_session_login_needs_csrf(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    token = client.get("/api/auth/csrf/").json()["csrf_token"]
    refused = client.post("/api/auth/session/", {"username": "alice", "password": "pw-alice"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    ok = client.post(
        "/api/auth/session/", {"username": "alice", "password": "pw-alice"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert ok.status_code == 200 and ok.json()["username"] == "alice"
    assert client.get("/api/me/").json()["username"] == "alice"
    # the session is now the credential: unsafe requests need the (rotated) CSRF token
    assert client.post("/api/projects/", {"name": "x"}, format="json").status_code == 403
    token = client.cookies["csrftoken"].value
    made = client.post("/api/projects/", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert made.status_code == 201


def test_wrong_password(admin_user):
    response = APIClient().post("/api/auth/session/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code in (401, 403) and "Wrong username or password" in response.json()["detail"]


def test_labelers_see_only_their_own_rankings(api, project, labelers, admin_user):
    add_comparisons(project, 2)
    for labeler in labelers[:2]:
        client = api(labeler)
        lease = client.get(f"/api/projects/{project.id}/next/").json()
        client.post(
            f"/api/assignments/{lease['assignment']['id']}/ranking/", {"ranks": ranks_best_first(lease)}, format="json"
        )
    mine = api(labelers[0]).get(f"/api/projects/{project.id}/rankings/").json()
    assert mine["count"] == 1 and mine["results"][0]["labeler_username"] == "labeler0"
    everyone = api(admin_user).get(f"/api/projects/{project.id}/rankings/").json()
    assert everyone["count"] == 2
    only = api(admin_user).get(f"/api/projects/{project.id}/rankings/?labeler={labelers[1].id}").json()
    assert [r["labeler_username"] for r in only["results"]] == ["labeler1"]
    bad = api(admin_user).get(f"/api/projects/{project.id}/rankings/?labeler__password=x")
    assert bad.status_code == 400 and "labeler__password" in bad.json()["detail"]
