import json

import pytest

from labeling import templating
from labeling.models import Project, PromptRow, PromptTemplate, Role
from labeling.services.datasets import dataset_import
from labeling.templating import TemplateError, estimate_tokens, parse, placeholders, render, render_prompt
from training.demo_data import DIALOGSUM, data_file

pytestmark = pytest.mark.django_db

QUERY = "Dialogue:\n{dialogue}\n\nWhat was going on?\n"
SHOT = "Dialogue:\n{dialogue}\n\nWhat was going on?\n{summary}"


def jsonl_lines(*rows):
    return iter([(json.dumps(r) + "\n").encode() for r in rows])


@pytest.fixture
def dataset(project, admin_user):
    rows = [
        {"dialogue": "#Person1#: Hi.\n#Person2#: Hello.", "summary": "They greet.", "topic": "greeting"},
        {"dialogue": "#Person1#: Tea?\n#Person2#: Yes.", "summary": "Tea is offered.", "topic": "tea"},
        {"dialogue": "#Person1#: Bye.", "summary": "Farewell.", "topic": "farewell"},
    ]
    return dataset_import(project=project, stream=jsonl_lines(*rows), filename="dialogs.jsonl", created_by=admin_user)


@pytest.fixture
def reviewer(make_user, add_member):
    return add_member(make_user("rita"), Role.REVIEWER)


def templates_url(project, *rest):
    return f"/api/projects/{project.id}/templates/" + "".join(f"{part}/" for part in rest)


def create(client, project, **body):
    return client.post(templates_url(project), body, format="json")


def snapshot():
    return list(PromptTemplate.objects.order_by("id").values()), list(Project.objects.values("id", "prompt_template"))


# --- templating (pure Python) ----------------------------------------------------------------


def test_parse_and_placeholders():
    assert placeholders("Hi {name}, about {topic}: {name}") == ["name", "topic"]
    assert parse("a{x}b") == ("a", templating.Placeholder("x"), "b")


def test_double_braces_are_literal():
    assert render('{{"k": {v}}} {{v}}', {"v": 1}) == '{"k": 1} {v}'
    assert placeholders("{{not_a_field}}") == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{a.b}", "attribute or index access"),
        ("{a[0]}", "attribute or index access"),
        ("{row.__class__.__init__.__globals__}", "attribute or index access"),
        ("{a!r}", "conversion"),
        ("{a:>10}", "format spec"),
        ("{a:{b}}", "format spec"),
        ("{}", "no field name"),
        ("{ a }", "spaces"),
        ("oops {", "unbalanced braces"),
        ("oops }", "unbalanced braces"),
    ],
)
def test_unsafe_or_broken_placeholders_are_refused(text, words):
    with pytest.raises(TemplateError) as caught:
        parse(text)
    assert words in caught.value.message


def test_render_substitutes_and_never_formats_user_data():
    # A value that looks like a placeholder stays as it is: no second pass, no str.format.
    assert render("{a} and {b}", {"a": "{b.__class__}", "b": "x"}) == "{b.__class__} and x"
    assert render("{n} {f} {t} {s}", {"n": 3, "f": 0.5, "t": True, "s": ""}) == "3 0.5 true "


def test_render_missing_or_nested_field_names_it():
    with pytest.raises(TemplateError) as caught:
        render("{dialogue} {summary}", {"dialogue": "x"})
    assert caught.value.field == "summary" and "'summary'" in caught.value.message
    with pytest.raises(TemplateError) as caught:
        render("{d}", {"d": {"nested": 1}})
    assert caught.value.field == "d"


def test_zero_one_and_few_shot_rendering():
    examples = [{"dialogue": "A", "summary": "a"}, {"dialogue": "B", "summary": "b"}]
    row = {"dialogue": "Q"}
    zero = render_prompt(text=QUERY, row=row)
    assert zero == "Dialogue:\nQ\n\nWhat was going on?\n"
    one = render_prompt(text=QUERY, row=row, examples=examples[:1], example_text=SHOT)
    assert one == "Dialogue:\nA\n\nWhat was going on?\na\n\n\nDialogue:\nQ\n\nWhat was going on?\n"
    few = render_prompt(text=QUERY, row=row, examples=examples, example_text=SHOT, example_separator="\n---\n")
    assert few == (
        "Dialogue:\nA\n\nWhat was going on?\na\n---\nDialogue:\nB\n\nWhat was going on?\nb\n---\n"
        "Dialogue:\nQ\n\nWhat was going on?\n"
    )
    # Without example_text, examples render with the query text.
    assert render_prompt(text="{q}", row={"q": "3"}, examples=[{"q": "1"}, {"q": "2"}]) == "1\n\n\n2\n\n\n3"


def test_example_missing_a_field_names_example_and_field():
    with pytest.raises(TemplateError) as caught:
        templating.check_examples([{"dialogue": "A", "summary": "a"}, {"dialogue": "B"}], SHOT)
    assert caught.value.example == 1 and caught.value.field == "summary"
    assert "examples[1]" in caught.value.message


def test_check_fields_lists_known_fields():
    with pytest.raises(TemplateError) as caught:
        templating.check_fields("{dialog}", ["dialogue", "summary"])
    assert caught.value.message == "unknown field 'dialog' in placeholder {dialog}; known fields: dialogue, summary"


def test_token_estimate_is_rough_but_sane():
    assert estimate_tokens("") == 0
    assert estimate_tokens("Hello, world!") == 4
    assert estimate_tokens("word " * 100) == 125
    assert estimate_tokens("x" * 400) == 100


# --- create / read / update / delete ---------------------------------------------------------


def test_admin_creates_template_with_dataset_and_default(api, project, admin_user, dataset):
    response = create(
        api(admin_user),
        project,
        name="one-shot",
        text=QUERY,
        example_text=SHOT,
        examples=[{"dialogue": "A", "summary": "a"}],
        dataset=dataset.id,
        make_default=True,
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["text"] == QUERY  # whitespace, including the trailing newline, is kept
    assert body["example_separator"] == "\n\n\n"
    assert body["dataset"] == dataset.id and body["is_default"] is True
    project.refresh_from_db()
    assert project.prompt_template_id == body["id"]


def test_template_without_dataset_and_defaults(api, project, admin_user):
    body = create(api(admin_user), project, name="zero", text="Summarize:\n{text}").json()
    assert body["dataset"] is None and body["examples"] == [] and body["example_text"] == ""
    assert body["is_default"] is False
    project.refresh_from_db()
    assert project.prompt_template_id is None


def test_unknown_field_names_placeholder_and_known_fields(api, project, admin_user, dataset):
    before = snapshot()
    response = create(api(admin_user), project, name="t", text="Dialogue: {dialog}", dataset=dataset.id)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "{dialog}" in detail and "dialogue, summary, topic" in detail
    assert response.json()["errors"]["text"]
    assert snapshot() == before


@pytest.mark.parametrize("text", ["{dialogue.__class__}", "{dialogue[0]}", "{dialogue!r}", "{dialogue:>9}"])
def test_attribute_index_and_format_specs_are_refused(api, project, admin_user, dataset, text):
    before = snapshot()
    response = create(api(admin_user), project, name="t", text=text, dataset=dataset.id)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("text: placeholder")
    assert snapshot() == before


def test_refused_in_example_text_too(api, project, admin_user):
    response = create(api(admin_user), project, name="t", text="{q}", example_text="{q.real}", examples=[{"q": 1}])
    assert response.status_code == 400
    assert response.json()["detail"].startswith("example_text: placeholder {q.real}")
    assert not PromptTemplate.objects.exists()


def test_examples_must_carry_example_text_fields(api, project, admin_user, dataset):
    examples = [{"dialogue": "A", "summary": "a"}, {"dialogue": "B"}]
    response = create(
        api(admin_user), project, name="t", text=QUERY, example_text=SHOT, examples=examples, dataset=dataset.id
    )
    assert response.status_code == 400
    assert "examples[1] lacks field 'summary'" in response.json()["detail"]
    assert not PromptTemplate.objects.exists()


@pytest.mark.parametrize(
    ("examples", "words"),
    [(["just text"], "examples"), ([{"dialogue": {"nested": 1}}], "examples[0] field 'dialogue'")],
)
def test_examples_must_be_objects_of_scalars(api, project, admin_user, examples, words):
    response = create(api(admin_user), project, name="t", text="{dialogue}", examples=examples)
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert not PromptTemplate.objects.exists()


def test_duplicate_name_and_foreign_dataset_are_refused(api, project, admin_user, dataset):
    client = api(admin_user)
    assert create(client, project, name="t", text="{dialogue}").status_code == 201
    response = create(client, project, name="t", text="{dialogue}")
    assert response.status_code == 400 and "already exists" in response.json()["detail"]
    other = client.post("/api/projects/", {"name": "Other"}, format="json").json()
    response = client.post(
        f"/api/projects/{other['id']}/templates/", {"name": "t", "text": "{x}", "dataset": dataset.id}, format="json"
    )
    assert response.status_code == 400
    assert f"No dataset {dataset.id}" in response.json()["detail"]
    assert PromptTemplate.objects.count() == 1


def test_patch_revalidates_and_changes_nothing_on_error(api, project, admin_user, dataset):
    client = api(admin_user)
    template = create(client, project, name="t", text="{dialogue}", dataset=dataset.id).json()
    before = snapshot()
    response = client.patch(templates_url(project, template["id"]), {"text": "{dialogue} {speaker}"}, format="json")
    assert response.status_code == 400 and "{speaker}" in response.json()["detail"]
    assert snapshot() == before
    response = client.patch(templates_url(project, template["id"]), {"text": "{topic}: {dialogue}"}, format="json")
    assert response.status_code == 200 and response.json()["text"] == "{topic}: {dialogue}"


def test_patch_attaching_a_dataset_checks_the_existing_text(api, project, admin_user, dataset):
    client = api(admin_user)
    template = create(client, project, name="t", text="{prompt}").json()
    response = client.patch(templates_url(project, template["id"]), {"dataset": dataset.id}, format="json")
    assert response.status_code == 400 and "unknown field 'prompt'" in response.json()["detail"]
    assert PromptTemplate.objects.get().dataset_id is None


def test_make_default_via_patch_and_unset(api, project, admin_user):
    client = api(admin_user)
    first = create(client, project, name="a", text="{q}", make_default=True).json()
    second = create(client, project, name="b", text="{q}").json()
    body = client.patch(templates_url(project, second["id"]), {"make_default": True}, format="json").json()
    assert body["is_default"] is True
    assert client.get(templates_url(project, first["id"])).json()["is_default"] is False
    project.refresh_from_db()
    assert project.prompt_template_id == second["id"]
    client.patch(templates_url(project, second["id"]), {"make_default": False}, format="json")
    project.refresh_from_db()
    assert project.prompt_template_id is None


def test_delete_clears_the_default(api, project, admin_user):
    client = api(admin_user)
    template = create(client, project, name="a", text="{q}", make_default=True).json()
    assert client.delete(templates_url(project, template["id"])).status_code == 204
    project.refresh_from_db()
    assert project.prompt_template_id is None and not PromptTemplate.objects.exists()
    assert client.get(templates_url(project, template["id"])).status_code == 404


def test_list_filters_and_orders(api, project, admin_user, labelers, dataset):
    client = api(admin_user)
    create(client, project, name="b", text="{dialogue}", dataset=dataset.id)
    create(client, project, name="a", text="{q}")
    reader = api(labelers[0])
    names = [t["name"] for t in reader.get(templates_url(project), {"ordering": "name"}).json()["results"]]
    assert names == ["a", "b"]
    filtered = reader.get(templates_url(project), {"dataset": dataset.id}).json()
    assert [t["name"] for t in filtered["results"]] == ["b"]
    assert reader.get(templates_url(project), {"text": "x"}).status_code == 400
    assert reader.get(templates_url(project), {"ordering": "text"}).status_code == 400


def test_labeler_reads_but_cannot_write(api, project, admin_user, labelers, dataset):
    template = create(api(admin_user), project, name="t", text="{dialogue}", dataset=dataset.id).json()
    client = api(labelers[0])
    assert client.get(templates_url(project)).json()["count"] == 1
    assert client.get(templates_url(project, template["id"])).json()["text"] == "{dialogue}"
    before = snapshot()
    responses = [
        create(client, project, name="mine", text="{dialogue}"),
        client.patch(templates_url(project, template["id"]), {"text": "{topic}"}, format="json"),
        client.patch(templates_url(project, template["id"]), {"make_default": True}, format="json"),
        client.delete(templates_url(project, template["id"])),
        client.post(templates_url(project, template["id"], "preview"), {"index": 0}, format="json"),
    ]
    for response in responses:
        assert response.status_code == 403
        assert "role" in response.json()["detail"]
    assert snapshot() == before


def test_reviewer_cannot_edit(api, project, admin_user, reviewer):
    template = create(api(admin_user), project, name="t", text="{q}").json()
    response = api(reviewer).patch(templates_url(project, template["id"]), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert PromptTemplate.objects.get().name == "t"


def test_outsider_gets_404(api, project, make_user):
    assert api(make_user("mallory")).get(templates_url(project)).status_code == 404


# --- preview ---------------------------------------------------------------------------------


@pytest.fixture
def one_shot(api, project, admin_user, dataset):
    body = {
        "name": "one-shot",
        "text": QUERY,
        "example_text": SHOT,
        "examples": [{"dialogue": "A", "summary": "a"}],
        "dataset": dataset.id,
    }
    return create(api(admin_user), project, **body).json()


def expected_one_shot(dialogue: str) -> str:
    return f"Dialogue:\nA\n\nWhat was going on?\na\n\n\nDialogue:\n{dialogue}\n\nWhat was going on?\n"


def preview(client, project, template, **body):
    return client.post(templates_url(project, template["id"], "preview"), body, format="json")


def test_preview_by_row_id_index_and_literal_row(api, project, reviewer, dataset, one_shot):
    client = api(reviewer)
    row = PromptRow.objects.get(dataset=dataset, index=1)
    by_id = preview(client, project, one_shot, row_id=row.id)
    assert by_id.status_code == 200, by_id.json()
    body = by_id.json()
    assert body["prompt"] == expected_one_shot(row.data["dialogue"])
    assert body["fields_used"] == ["dialogue"]
    assert body["token_estimate"] == estimate_tokens(body["prompt"]) > 0
    assert body["context_window"] == 2048 and body["warning"] is None and body["row_id"] == row.id
    by_index = preview(client, project, one_shot, index=1, dataset=dataset.id).json()
    assert by_index["prompt"] == body["prompt"]
    # The dataset defaults to the template's own.
    assert preview(client, project, one_shot, index=1).json()["prompt"] == body["prompt"]
    literal = preview(client, project, one_shot, row={"dialogue": "Z", "extra": 1}).json()
    assert literal["prompt"] == expected_one_shot("Z") and literal["row_id"] is None


def test_preview_warns_past_the_context_window(api, project, admin_user, one_shot):
    body = preview(api(admin_user), project, one_shot, row={"dialogue": "word " * 50}, context_window=20).json()
    assert body["token_estimate"] > 20
    assert "context window of 20" in body["warning"]


def test_preview_row_missing_a_field_names_it(api, project, admin_user, one_shot):
    response = preview(api(admin_user), project, one_shot, row={"summary": "no dialogue"})
    assert response.status_code == 400
    assert "'dialogue'" in response.json()["detail"]


def test_preview_of_a_stored_row_missing_a_field(api, project, admin_user):
    other = dataset_import(project=project, stream=jsonl_lines({"q": "x"}), filename="q.jsonl")
    template = create(api(admin_user), project, name="t", text="{dialogue}").json()
    row = PromptRow.objects.get(dataset=other)
    response = preview(api(admin_user), project, template, row_id=row.id)
    assert response.status_code == 400
    assert response.json()["detail"] == "the row has no field 'dialogue'"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "exactly one"),
        ({"row_id": 1, "row": {"dialogue": "x"}}, "exactly one"),
        ({"row_id": 999999}, "No prompt row 999999"),
        ({"index": 99}, "not 99"),
        ({"index": 0, "dataset": 999999}, "No dataset 999999"),
        ({"row": {"dialogue": "x"}, "context_window": 0}, "context_window"),
    ],
)
def test_preview_bad_requests(api, project, admin_user, one_shot, body, words):
    response = preview(api(admin_user), project, one_shot, **body)
    assert response.status_code == 400
    assert words in response.json()["detail"]


def test_preview_index_needs_a_dataset(api, project, admin_user):
    template = create(api(admin_user), project, name="t", text="{q}").json()
    response = preview(api(admin_user), project, template, index=0)
    assert response.status_code == 400 and "no dataset" in response.json()["detail"]


def test_preview_cannot_reach_rows_of_another_project(api, project, admin_user, dataset, one_shot):
    client = api(admin_user)
    other = client.post("/api/projects/", {"name": "Other"}, format="json").json()
    theirs = client.post(f"/api/projects/{other['id']}/templates/", {"name": "t", "text": "{dialogue}"}, format="json")
    row = PromptRow.objects.filter(dataset=dataset).first()
    response = client.post(
        f"/api/projects/{other['id']}/templates/{theirs.json()['id']}/preview/", {"row_id": row.id}, format="json"
    )
    assert response.status_code == 400 and "No prompt row" in response.json()["detail"]


def test_dialogsum_one_shot_preview(api, project, admin_user):
    client = api(admin_user)
    path = data_file(DIALOGSUM, larger=True)  # the shared 500 rows, else the shipped 150
    rows = len(path.read_text(encoding="utf-8").splitlines())
    with open(path, "rb") as handle:
        response = client.post(f"/api/projects/{project.id}/datasets/", {"file": handle}, format="multipart")
    assert response.status_code == 201, response.json()
    dataset = response.json()
    assert dataset["row_count"] == rows and dataset["fields"] == ["fname", "dialogue", "summary", "topic"]
    shot = PromptRow.objects.get(dataset_id=dataset["id"], index=0).data
    query = PromptRow.objects.get(dataset_id=dataset["id"], index=1).data
    template = create(
        client,
        project,
        name="dialogsum one-shot",
        text=QUERY,
        example_text=SHOT,
        examples=[{"dialogue": shot["dialogue"], "summary": shot["summary"]}],
        dataset=dataset["id"],
        make_default=True,
    )
    assert template.status_code == 201, template.json()
    body = preview(client, project, template.json(), index=1).json()
    expected = (
        f"Dialogue:\n{shot['dialogue']}\n\nWhat was going on?\n{shot['summary']}\n\n\n"
        f"Dialogue:\n{query['dialogue']}\n\nWhat was going on?\n"
    )
    assert body["prompt"] == expected
    assert body["fields_used"] == ["dialogue"]
    assert 100 < body["token_estimate"] < 2048 and body["warning"] is None


def test_preview_of_an_unsaved_draft(api, project, admin_user):
    from labeling.models import PromptTemplate
    from labeling.services.templates import template_create

    template = template_create(project=project, name="draft-test", text="Q: {question}")
    client = api(admin_user)
    url = f"/api/projects/{project.id}/templates/{template.id}/preview/"
    row = {"question": "Why?", "answer": "Because."}
    body = client.post(url, {"row": row, "draft": {"text": "Question: {question}"}}, format="json").json()
    assert body["prompt"] == "Question: Why?"
    shots = {"text": "Q: {question}", "example_text": "Q: {question}\nA: {answer}", "examples": [row]}
    body = client.post(url, {"row": row, "draft": shots}, format="json").json()
    assert body["prompt"].startswith("Q: Why?\nA: Because.") and body["prompt"].endswith("Q: Why?")
    bad = client.post(url, {"row": row, "draft": {"text": "Q: {a.b}"}}, format="json")
    assert bad.status_code == 400 and "text" in bad.json()["errors"]
    assert PromptTemplate.objects.get(pk=template.pk).text == "Q: {question}"  # nothing saved
