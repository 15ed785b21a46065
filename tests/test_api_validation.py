"""What tests/test_api_fuzz.py found, pinned: 500s for schema-valid data, 2xx for schema-invalid data,
and the schema rules that describe the API's validation (common/openapi.py)."""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from common.openapi import rule
from tests.labeling.factories import add_comparisons

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PRINCIPLE = {"key": "k", "name": "n", "critique_request": "c", "revision_request": "r", "choice_question": "q"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _component(schema, path, method, media_type="application/json"):
    ref = schema["paths"][path][method]["requestBody"]["content"][media_type]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_an_api_path_that_names_no_route_is_a_json_404(api, admin_user):
    response = api(admin_user).get("/api/models/-1/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "No API route" in response.json()["detail"]


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=1.5", "offset=-1", "offset=x", "limit=%205"])
def test_pagination_parameters_that_are_not_counts_are_refused(api, admin_user, query):
    response = api(admin_user).get(f"/api/projects/?{query}")
    assert response.status_code == 400, response.json()
    assert query.split("=")[0] in response.json()["errors"]


def test_a_limit_over_the_maximum_is_still_clamped(api, admin_user):
    assert api(admin_user).get("/api/projects/?limit=100000").status_code == 200


def test_empty_or_unknown_filters_are_refused(api, admin_user, project):
    client = api(admin_user)
    assert client.get(f"/api/projects/{project.id}/snapshots/?status=bogus").status_code == 400
    assert client.get(f"/api/projects/{project.id}/snapshots/?status=ready").status_code == 200
    for query in ("state=", "kind=", "project="):
        assert client.get(f"/api/runs/?{query}").status_code == 400, query


def test_nul_in_stored_json_is_a_400_not_a_500(api, admin_user, project):
    client = api(admin_user)
    template = {"name": "t", "text": "Q: {q}", "examples": [{"q": "a\x00b"}]}
    response = client.post(f"/api/projects/{project.id}/templates/", template, format="json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    principles = {"principles": [{**PRINCIPLE, "name": "a\x00"}]}
    response = client.post(f"/api/projects/{project.id}/constitutions/", principles, format="json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def test_changing_k_after_comparisons_is_a_conflict(api, admin_user, project):
    add_comparisons(project, 1)
    response = api(admin_user).patch(f"/api/projects/{project.id}/", {"completions_per_prompt": 4}, format="json")
    assert response.status_code == 409
    assert "completions_per_prompt" in response.json()["errors"]


def test_schema_states_the_rules_views_check(schema):
    # A PATCH validated whole keeps its required fields; its body is required.
    shared = _component(schema, "/api/models/{model_id}/", "patch")
    assert shared["required"] == ["shared"]
    assert schema["paths"]["/api/models/{model_id}/versions/{version}/"]["patch"]["requestBody"]["required"]
    # Exactly one source field; exactly one of row_id / index / row.
    imported = _component(schema, "/api/models/import/", "post")
    assert [b["required"] for b in rule(imported, "oneOf")] == [["path"], ["hub_id"]]
    preview = _component(schema, "/api/projects/{project_id}/templates/{template_id}/preview/", "post")
    assert [b["required"] for b in rule(preview, "oneOf")] == [["row_id"], ["index"], ["row"]]
    # Forms carry no null, leave out false booleans, and cannot carry a JSON object urlencoded.
    form = _component(schema, "/api/projects/", "post", "multipart/form-data")
    assert "nullable" not in form["properties"]["generation_model"]
    assert (
        "application/x-www-form-urlencoded" not in schema["paths"]["/api/projects/"]["post"]["requestBody"]["content"]
    )
    # JSON only: a form's empty `shared` would read as false.
    assert set(schema["paths"]["/api/models/{model_id}/"]["patch"]["requestBody"]["content"]) == {"application/json"}
    # An upload says which file names its import reads.
    upload = schema["paths"]["/api/projects/{project_id}/datasets/"]["post"]["requestBody"]["content"]
    disposition = upload["multipart/form-data"]["encoding"]["file"]["headers"]["Content-Disposition"]
    assert re.fullmatch(disposition["schema"]["pattern"], disposition["example"])
    assert re.fullmatch(disposition["schema"]["pattern"], 'form-data; name="file"; filename="Rows.CSV"')
    assert not re.fullmatch(disposition["schema"]["pattern"], 'form-data; name="file"; filename="rows.txt"')
    # Each run kind's config is closed; a trimmed CharField that may not be blank needs a non-space.
    runs = _component(schema, "/api/runs/", "post")
    assert all(b["properties"]["config"]["additionalProperties"] is False for b in rule(runs, "oneOf"))
    members = _component(schema, "/api/projects/{project_id}/members/", "post")
    assert "\\x85" in members["properties"]["username"]["pattern"]
