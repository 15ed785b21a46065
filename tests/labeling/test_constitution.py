"""A project's constitution: versioned saves, the shipped default, bad principles refused by field."""

import copy

import pytest

from labeling.models import Constitution, Role
from labeling.principles import DEFAULT_PRINCIPLES, PrincipleError, validate_principles
from labeling.services.constitutions import constitution_ensure_default

pytestmark = pytest.mark.django_db


def url(project, rest: str = "") -> str:
    return f"/api/projects/{project.pk}/constitutions/{rest}"


def test_default_is_valid_and_served(api, project, admin_user):
    validate_principles(DEFAULT_PRINCIPLES)
    body = api(admin_user).get(url(project, "default/")).json()
    assert [p["key"] for p in body["principles"]] == ["harm", "ethics", "respect", "honesty", "helpful"]


def test_each_save_adds_a_version_and_old_ones_stay(api, project, admin_user):
    client = api(admin_user)
    first = client.post(url(project), {"principles": DEFAULT_PRINCIPLES, "note": "start"}, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["version"] == 1 and first.json()["created_by"] == "alice"
    edited = copy.deepcopy(DEFAULT_PRINCIPLES[:2])
    edited[0]["name"] = "  Avoid all harm  "
    second = client.post(url(project), {"principles": edited}, format="json")
    assert second.status_code == 201 and second.json()["version"] == 2
    assert second.json()["principles"][0]["name"] == "Avoid all harm"  # stored trimmed
    listed = client.get(url(project)).json()
    assert [c["version"] for c in listed["results"]] == [2, 1]
    assert len(client.get(url(project, "1/")).json()["principles"]) == 5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda ps: ps[1].update(critique_request="   "), "principles[1].critique_request"),
        (lambda ps: ps[2].pop("revision_request"), "principles[2].revision_request"),
        (lambda ps: ps[3].update(key="harm"), "principles[3].key"),
        (lambda ps: ps[0].update(key="Not A Slug"), "principles[0].key"),
        (lambda ps: ps[0].update(colour="red"), "principles[0].colour"),
        (lambda ps: ps.clear(), "principles"),
    ],
)
def test_a_bad_principle_is_refused_with_its_field_and_nothing_saved(api, project, admin_user, change, field):
    principles = copy.deepcopy(DEFAULT_PRINCIPLES)
    change(principles)
    response = api(admin_user).post(url(project), {"principles": principles}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not Constitution.objects.filter(project=project).exists()


def test_validator_names_the_field():
    with pytest.raises(PrincipleError) as caught:
        validate_principles([{"key": "a", "name": "A", "critique_request": "c", "revision_request": "r"}])
    assert caught.value.field == "principles[0].choice_question"


def test_labelers_read_only_admins_write(api, project, make_user, add_member):
    labeler = add_member(make_user("lab"), Role.LABELER)
    client = api(labeler)
    assert client.get(url(project)).status_code == 200
    assert client.post(url(project), {"principles": DEFAULT_PRINCIPLES}, format="json").status_code == 403


def test_ensure_default_creates_once(project, admin_user):
    first = constitution_ensure_default(project=project, created_by=admin_user)
    again = constitution_ensure_default(project=project, created_by=admin_user)
    assert first.pk == again.pk and first.version == 1
