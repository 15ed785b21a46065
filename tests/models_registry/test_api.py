"""The registry's REST API: reviewers and admins of a model's project read it and its admins manage
it; staff create and import; server directories are for platform admins only. (Who reads what,
endpoint by endpoint and role by role: tests/models_registry/test_scoping.py.)"""

import io
import json
import zipfile

import pytest

from labeling.models import Role
from models_registry import services
from models_registry.models import ModelAlias, ModelAliasEvent, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

FAKE = {"config.json": {"model_type": "llama"}, "model.safetensors": b"weights"}


@pytest.fixture
def registry(make_folder, hf_folder, project, add_member, labeler, staff):
    """Models of ``project`` (lara a reviewer in it, who reads them; steve an admin): base (causal-lm)
    v1 from the tiny model; sft v1 (base: base v1, run 7, snapshot 3), v2 (base: sft v1); rm v1."""
    add_member(labeler, Role.REVIEWER)
    add_member(staff, Role.ADMIN)
    scope = {"project_id": project.pk}
    base = services.model_version_register(
        model_name="base", task="causal-lm", folder=hf_folder, fmt=None, tags=["pretrained"], **scope
    )
    folder = make_folder("sft", FAKE)
    sft1 = services.model_version_register(
        model_name="sft", task="causal-lm", folder=folder, fmt=None, base_version=base, run_id=7, snapshot_id=3, **scope
    )
    sft2 = services.model_version_register(
        model_name="sft",
        task="causal-lm",
        folder=folder,
        fmt=None,
        base_version=sft1,
        run_id=9,
        tags=["candidate"],
        **scope,
    )
    rm = services.model_version_register(
        model_name="rm", task="reward-model", folder=folder, fmt=None, tags=["encoder"], **scope
    )
    return {"base": base, "sft1": sft1, "sft2": sft2, "rm": rm}


def test_members_list_models_with_filters_and_ordering(api, labeler, registry):
    client = api(labeler)
    body = client.get("/api/models/").json()
    assert body["count"] == 3
    rows = {row["name"]: row for row in body["results"]}
    assert rows["sft"]["version_count"] == 2 and rows["sft"]["latest_version"] == 2
    assert rows["sft"]["task"] == "causal-lm" and rows["sft"]["aliases"] == {}

    assert [r["name"] for r in client.get("/api/models/?task=reward-model").json()["results"]] == ["rm"]
    assert [r["name"] for r in client.get("/api/models/?tag=candidate").json()["results"]] == ["sft"]
    assert [r["name"] for r in client.get("/api/models/?name=S").json()["results"]] == ["base", "sft"]
    assert [r["name"] for r in client.get("/api/models/?ordering=-name").json()["results"]] == ["sft", "rm", "base"]

    for bad in ("?owner=1", "?ordering=created_by__password", "?task=chat"):
        response = client.get("/api/models/" + bad)
        assert response.status_code == 400, bad
        assert response.json()["detail"]
    assert api().get("/api/models/").status_code in (401, 403)


def test_a_nul_in_a_filter_is_a_400_naming_it(api, labeler, registry):
    """Found by tests/test_api_fuzz.py: ``?name=%00`` reached PostgreSQL, which refuses NUL in text (500)."""
    response = api(labeler).get("/api/models/?name=sf%00t&task=causal-lm")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Query parameter 'name' contains a NUL character")
    errors = api(labeler).get("/api/models/?na%00me=x").json()["errors"]
    assert list(errors) == ["na\\u0000me"] and errors["na\\u0000me"][0].startswith("Query parameter 'na\\u0000me'")


def test_model_detail(api, labeler, registry):
    model = registry["sft2"].model
    body = api(labeler).get(f"/api/models/{model.pk}/").json()
    assert body["name"] == "sft" and body["version_count"] == 2
    assert api(labeler).get("/api/models/999999/").status_code == 404


def test_versions_list_and_detail_with_lineage(api, labeler, registry):
    client = api(labeler)
    sft = registry["sft2"].model
    page = client.get(f"/api/models/{sft.pk}/versions/").json()
    assert [v["version"] for v in page["results"]] == [2, 1]
    assert [v["version"] for v in client.get(f"/api/models/{sft.pk}/versions/?tag=candidate").json()["results"]] == [2]
    assert client.get(f"/api/models/{sft.pk}/versions/?ordering=size").status_code == 400

    detail = client.get(f"/api/models/{sft.pk}/versions/2/").json()
    assert detail["model_name"] == "sft" and detail["format"] == "hf-folder"
    assert (detail["source_run_id"], detail["source_snapshot_id"]) == (9, None)
    assert detail["base_version"] == registry["sft1"].pk
    assert [
        (e["model_name"], e["version"], e["source_run_id"], e["source_snapshot_id"]) for e in detail["lineage"]
    ] == [
        ("sft", 1, 7, 3),
        ("base", 1, None, None),
    ]
    assert detail["download_url"] == f"/api/models/{sft.pk}/versions/2/download/"
    assert client.get(f"/api/models/{sft.pk}/versions/3/").status_code == 404


def test_download_streams_a_zip_of_the_folder(api, labeler, registry, hf_folder):
    base = registry["base"]
    response = api(labeler).get(f"/api/models/{base.model_id}/versions/1/download/", HTTP_ACCEPT="application/zip")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="base-v1.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    expected = {p.relative_to(hf_folder).as_posix(): p.read_bytes() for p in hf_folder.rglob("*") if p.is_file()}
    assert {name: archive.read(name) for name in archive.namelist()} == {
        f"base-v1/{name}": data for name, data in expected.items()
    }
    assert archive.testzip() is None


def test_download_of_a_missing_folder_is_a_clear_error(api, labeler, registry):
    from models_registry import storage

    storage.remove(registry["rm"].artifact_path)
    response = api(labeler).get(f"/api/models/{registry['rm'].model_id}/versions/1/download/")
    assert response.status_code == 404
    assert "missing from the artifact store" in response.json()["detail"]


def test_staff_create_models_labelers_cannot(api, staff, labeler, registry, project):
    payload = {"name": "judge", "task": "classifier", "description": "harmlessness", "project": project.pk}
    response = api(labeler).post("/api/models/", payload, format="json")
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]

    response = api(staff).post("/api/models/", payload, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "judge" and body["created_by"] == "steve" and body["version_count"] == 0
    assert (body["project"], body["shared"]) == (project.pk, False)

    assert api(staff).post("/api/models/", {**payload, "name": "JUDGE"}, format="json").status_code == 409
    assert api(staff).post("/api/models/", {**payload, "name": "../x"}, format="json").status_code == 400
    assert api(staff).post("/api/models/", {**payload, "owner": 1}, format="json").status_code == 400


def test_directory_import_is_for_platform_admins(api, platform_admin, staff, labeler, make_folder):
    folder = make_folder("incoming", FAKE)
    payload = {"name": "imported", "task": "causal-lm", "source": "dir", "path": str(folder), "tags": ["Demo"]}
    assert api(labeler).post("/api/models/import/", payload, format="json").status_code == 403
    response = api(staff).post("/api/models/import/", payload, format="json")
    assert response.status_code == 403
    assert "server" in response.json()["detail"]

    response = api(platform_admin).post("/api/models/import/", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["model_name"], body["version"], body["tags"], body["lineage"]) == ("imported", 1, ["demo"], [])
    assert body["created_by"] == "root"
    assert RegisteredModel.objects.get(name="imported").created_by == platform_admin


def test_import_errors_are_clear_400s(api, platform_admin, make_folder, tmp_path):
    client = api(platform_admin)
    url = "/api/models/import/"
    bin_only = make_folder("bin", {"config.json": {"model_type": "llama"}, "pytorch_model.bin": b"\x80"})
    response = client.post(
        url, {"name": "x", "task": "causal-lm", "source": "dir", "path": str(bin_only)}, format="json"
    )
    assert response.status_code == 400 and "safetensors only" in response.json()["detail"]

    response = client.post(url, {"name": "x", "task": "causal-lm", "source": "gguf", "path": "/x.gguf"}, format="json")
    assert response.status_code == 400
    assert "python manage.py import_pip_models" in response.json()["detail"]

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    response = client.post(url, {"name": "x", "task": "causal-lm", "source": "dir", "path": str(gguf)}, format="json")
    assert response.status_code == 400 and "import_pip_models" in response.json()["detail"]

    for payload in (
        {"name": "x", "task": "causal-lm", "source": "dir"},
        {"name": "x", "task": "causal-lm", "source": "hub"},
        {"name": "x", "task": "chat", "source": "dir", "path": "/tmp"},
        {"name": "x", "task": "causal-lm", "source": "dir", "path": "/tmp", "copy": False},
    ):
        response = client.post(url, payload, format="json")
        assert response.status_code == 400, payload
        assert response.json()["detail"]
    assert not ModelVersion.objects.exists()


def test_hub_import_offline_answers_with_what_to_do(api, staff, monkeypatch, project, add_member):
    add_member(staff, Role.ADMIN)
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", "/nonexistent-hf-home/hub")
    payload = {
        "name": "smol",
        "task": "causal-lm",
        "source": "hub",
        "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "project": project.pk,
    }
    response = api(staff).post("/api/models/import/", payload, format="json")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Cannot reach the Hugging Face hub to fetch")
    assert "import the folder" in response.json()["detail"]


def test_aliases_move_by_project_admins_and_keep_history(api, staff, labeler, registry):
    sft = registry["sft2"].model
    url = f"/api/models/{sft.pk}/aliases/production/"
    assert api(labeler).put(url, {"version": 1}, format="json").status_code == 403

    response = api(staff).put(url, {"version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["alias"] == "production" and response.json()["version"] == 1
    assert api(staff).put(url, {"version": 2}, format="json").json()["version"] == 2
    assert api(staff).put(url, {"version": 5}, format="json").status_code == 404
    assert api(staff).put(f"/api/models/{sft.pk}/aliases/Prod_X/", {"version": 1}, format="json").status_code == 400

    client = api(labeler)
    assert client.get(f"/api/models/{sft.pk}/").json()["aliases"] == {"production": 2}
    assert [a["alias"] for a in client.get(f"/api/models/{sft.pk}/aliases/").json()] == ["production"]
    assert client.get(url).json()["version"] == 2
    assert client.get(f"/api/models/{sft.pk}/versions/2/").json()["aliases"] == ["production"]
    history = client.get(f"/api/models/{sft.pk}/alias-history/").json()["results"]
    assert [(e["action"], e["from_version"], e["to_version"], e["actor"]) for e in history] == [
        ("set", 1, 2, "steve"),
        ("set", None, 1, "steve"),
    ]

    assert api(labeler).delete(url).status_code == 403
    assert api(staff).delete(url).status_code == 204
    assert api(staff).delete(url).status_code == 404
    assert not ModelAlias.objects.exists()
    assert ModelAliasEvent.objects.count() == 3
    assert client.get(f"/api/models/{sft.pk}/alias-history/?alias=production").json()["count"] == 3
    assert client.get(f"/api/models/{sft.pk}/alias-history/?who=me").status_code == 400


def test_tags_are_patched_by_project_admins(api, staff, labeler, registry):
    rm = registry["rm"]
    url = f"/api/models/{rm.model_id}/versions/1/"
    assert api(labeler).patch(url, {"tags": ["x"]}, format="json").status_code == 403
    response = api(staff).patch(url, {"tags": ["Encoder", "harmless"]}, format="json")
    assert response.status_code == 200 and response.json()["tags"] == ["encoder", "harmless"]
    assert api(staff).patch(url, {"tags": ["not ok"]}, format="json").status_code == 400
    assert api(staff).patch(url, {"metrics": {}}, format="json").status_code == 400
    assert ModelVersion.objects.get(pk=rm.pk).tags == ["encoder", "harmless"]


def test_schema_documents_the_registry(api, labeler):
    schema = api(labeler).get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in (
        "/api/models/",
        "/api/models/import/",
        "/api/models/{model_id}/versions/{version}/",
        "/api/models/{model_id}/versions/{version}/download/",
        "/api/models/{model_id}/aliases/{alias}/",
    ):
        assert path in paths


def test_lists_take_a_constant_number_of_queries(
    api, labeler, registry, project, make_folder, django_assert_max_num_queries
):
    client = api(labeler)
    sft = registry["sft2"].model
    with django_assert_max_num_queries(6):
        assert client.get("/api/models/").status_code == 200
    with django_assert_max_num_queries(6):
        assert client.get(f"/api/models/{sft.pk}/versions/").status_code == 200
    folder = make_folder("more", FAKE)
    for i in range(5):
        for name in ("sft", f"m{i}"):
            services.model_version_register(
                model_name=name, task="causal-lm", folder=folder, fmt=None, project_id=project.pk
            )
    with django_assert_max_num_queries(6):
        assert client.get("/api/models/").json()["count"] == 8
    with django_assert_max_num_queries(6):
        assert client.get(f"/api/models/{sft.pk}/versions/").json()["count"] == 7


def test_admin_pages_render(client, platform_admin, registry):
    services.alias_set(model=registry["sft2"].model, alias="production", version=registry["sft2"])
    client.force_login(platform_admin)
    for url in (
        "/admin/models_registry/registeredmodel/",
        f"/admin/models_registry/registeredmodel/{registry['sft2'].model_id}/change/",
        "/admin/models_registry/modelversion/",
        f"/admin/models_registry/modelversion/{registry['sft2'].pk}/change/",
        "/admin/models_registry/modelalias/",
        "/admin/models_registry/modelaliasevent/",
    ):
        assert client.get(url).status_code == 200, url
    response = client.post(
        f"/admin/models_registry/modelversion/{registry['sft2'].pk}/change/", {"tags": '["Bad Tag"]'}
    )
    assert response.status_code == 200 and b"is not allowed" in response.content
    client.post(f"/admin/models_registry/modelversion/{registry['sft2'].pk}/change/", {"tags": '["Good"]'})
    assert ModelVersion.objects.get(pk=registry["sft2"].pk).tags == ["good"]
