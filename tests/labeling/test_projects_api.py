import pytest

from labeling.models import Membership, Project, Role

pytestmark = pytest.mark.django_db


def test_staff_creates_project_and_becomes_its_admin(api, admin_user):
    response = api(admin_user).post("/api/projects/", {"name": "HH", "completions_per_prompt": 4}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["role"] == "admin" and body["completions_per_prompt"] == 4
    assert Membership.objects.get(project_id=body["id"], user=admin_user).role == Role.ADMIN


def test_bad_project_field_is_named(api, admin_user):
    response = api(admin_user).post("/api/projects/", {"name": "x", "completions_per_prompt": 12}, format="json")
    assert response.status_code == 400
    assert "completions_per_prompt" in response.json()["detail"]
    assert not Project.objects.exists()


def test_labeler_cannot_create_projects_or_edit_them(api, project, labelers):
    client = api(labelers[0])
    assert client.post("/api/projects/", {"name": "mine"}, format="json").status_code == 403
    response = client.patch(f"/api/projects/{project.id}/", {"overlap": 5}, format="json")
    assert response.status_code == 403
    assert "admin role" in response.json()["detail"]
    project.refresh_from_db()
    assert project.overlap == 2


def test_outsider_cannot_read_another_project(api, project, make_user):
    response = api(make_user("mallory")).get(f"/api/projects/{project.id}/")
    assert response.status_code == 404
    assert "not a member" in response.json()["detail"]


def test_project_list_shows_only_my_projects(api, project, admin_user, make_user):
    other_admin = make_user("bob", is_staff=True)
    api(other_admin).post("/api/projects/", {"name": "Bob's"}, format="json")
    names = [p["name"] for p in api(admin_user).get("/api/projects/").json()["results"]]
    assert names == ["Demo"]


def test_platform_admin_sees_everything_and_manages_users(api, project, platform_admin):
    client = api(platform_admin)
    assert client.get(f"/api/projects/{project.id}/").json()["role"] == "admin"
    response = client.post("/api/users/", {"username": "newbie", "password": "long-enough"}, format="json")
    assert response.status_code == 201
    assert (
        client.post("/api/users/", {"username": "newbie", "password": "long-enough"}, format="json").status_code == 400
    )


def test_labeler_cannot_manage_users(api, labelers):
    assert api(labelers[0]).get("/api/users/").status_code == 403


def test_members_roles(api, project, admin_user, make_user):
    carol = make_user("carol")
    client = api(admin_user)
    response = client.post(f"/api/projects/{project.id}/members/", {"username": "carol", "role": "reviewer"})
    assert response.status_code == 201
    assert api(carol).get(f"/api/projects/{project.id}/members/").status_code == 200
    bad = client.post(f"/api/projects/{project.id}/members/", {"username": "nobody", "role": "labeler"})
    assert bad.status_code == 400 and "nobody" in bad.json()["detail"]


def test_unknown_ordering_and_filter_are_refused(api, project, admin_user):
    client = api(admin_user)
    response = client.get(f"/api/projects/{project.id}/members/?ordering=user__password")
    assert response.status_code == 400
    assert "user__password" in response.json()["detail"]
    response = client.get(f"/api/projects/{project.id}/members/?user__password__startswith=a")
    assert response.status_code == 400
    assert "user__password__startswith" in response.json()["detail"]


def test_criteria_crud(api, project, admin_user, labelers):
    client = api(admin_user)
    response = client.post(
        f"/api/projects/{project.id}/criteria/", {"name": "harmless", "instructions": "No harm."}, format="json"
    )
    assert response.status_code == 201
    assert client.post(f"/api/projects/{project.id}/criteria/", {"name": "harmless"}).status_code == 400
    listed = api(labelers[0]).get(f"/api/projects/{project.id}/criteria/").json()
    assert [c["name"] for c in listed] == ["harmless"]


def test_token_auth(api, admin_user):
    response = api().post("/api/auth/token/", {"username": "alice", "password": "pw-alice"})
    assert response.status_code == 200 and response.json()["token"]
    assert api().get("/api/projects/").status_code in (401, 403)
