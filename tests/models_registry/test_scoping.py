"""The registry is scoped by project (issue 11): every read endpoint for every role, shared models,
writes, imports, lineage across scopes, and the rules of registration.

Roles: anonymous, non-member staff, non-member plain user, labeler / reviewer / admin member of the
owning project, member of another project, platform admin. Reviewers and admins of the project read
its models; labelers are not told they exist (a labeler account may go to a stranger, and trained
weights are the project's). Whoever may not read a model or version gets 404, never 403.
"""

import io
import zipfile

import pytest

from common.exceptions import ServiceError
from labeling.models import Role
from labeling.services.projects import project_create
from models_registry import selectors, services
from models_registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

FAKE = {"config.json": {"model_type": "llama"}, "model.safetensors": b"weights"}
MEMBERS = ("labeler", "reviewer", "admin")
READERS = ("reviewer", "admin", "platform_admin")
OUTSIDERS = ("staff_outsider", "plain_outsider", "other_member")
ROLES = (*MEMBERS, *OUTSIDERS, "platform_admin")


@pytest.fixture
def world(make_user, platform_admin, make_folder):
    """Project P with a private model ``p-sft`` (v1 over the shared ``base`` v1, alias production),
    project Q with its own model, a shared base model and an unscoped, unshared one."""
    owner = make_user("owner", is_staff=True)
    p = project_create(created_by=owner, name="P", completions_per_prompt=2)
    q_owner = make_user("qowner")
    q = project_create(created_by=make_user("qcreator", is_staff=True), name="Q", completions_per_prompt=2)
    users = {
        "labeler": make_user("lab"),
        "reviewer": make_user("rev"),
        "admin": make_user("padmin"),
        "staff_outsider": make_user("stout", is_staff=True),
        "plain_outsider": make_user("plain"),
        "other_member": q_owner,
        "platform_admin": platform_admin,
    }
    from labeling.models import Membership

    for role in MEMBERS:
        Membership.objects.create(project=p, user=users[role], role=getattr(Role, role.upper()))
    Membership.objects.create(project=q, user=q_owner, role=Role.ADMIN)
    folder = make_folder("m", FAKE)
    base = services.model_version_register(
        model_name="base", task="causal-lm", folder=folder, fmt=None, shared=True, tags=["pretrained"]
    )
    p_sft = services.model_version_register(
        model_name="p-sft",
        task="causal-lm",
        folder=folder,
        fmt=None,
        base_version=base,
        run_id=41,
        run_role="full",
        project_id=p.pk,
        metrics={"evaluations": [{"run": 50, "summary": {"rouge1": 0.3}}]},
    )
    services.alias_set(model=p_sft.model, alias="production", version=p_sft)
    q_rm = services.model_version_register(
        model_name="q-rm", task="reward-model", folder=folder, fmt=None, project_id=q.pk
    )
    loose = services.model_version_register(model_name="loose", task="causal-lm", folder=folder, fmt=None)
    return {"p": p, "q": q, "users": users, "base": base, "p_sft": p_sft, "q_rm": q_rm, "loose": loose}


def read_urls(version: ModelVersion) -> dict[str, str]:
    m, v = version.model_id, version.version
    return {
        "detail": f"/api/models/{m}/",
        "versions": f"/api/models/{m}/versions/",
        "version": f"/api/models/{m}/versions/{v}/",  # lineage and metrics live here
        "download": f"/api/models/{m}/versions/{v}/download/",
        "aliases": f"/api/models/{m}/aliases/",
        "alias": f"/api/models/{m}/aliases/production/",
        "alias_history": f"/api/models/{m}/alias-history/",
    }


@pytest.mark.parametrize("role", ROLES)
def test_a_project_model_is_read_by_its_reviewers_admins_and_platform_admins_only(api, world, role):
    client = api(world["users"][role])
    expected = 200 if role in READERS else 404
    for name, url in read_urls(world["p_sft"]).items():
        response = client.get(url)
        assert response.status_code == expected, (name, role, response.status_code)
        if expected == 404 and name != "download":
            assert "p-sft" not in response.content.decode(), (name, role)
    if expected == 200:
        body = client.get(read_urls(world["p_sft"])["version"]).json()
        assert body["metrics"]["evaluations"][0]["summary"] == {"rouge1": 0.3}
        assert body["project"] == world["p"].pk and body["source_role"] == "full"
        assert [(e["model_name"], e["hidden"]) for e in body["lineage"]] == [("base", False)]
        archive = zipfile.ZipFile(
            io.BytesIO(b"".join(client.get(read_urls(world["p_sft"])["download"]).streaming_content))
        )
        assert "p-sft-v1/config.json" in archive.namelist()


@pytest.mark.parametrize("role", ROLES)
def test_shared_models_are_read_by_every_signed_in_user(api, world, role):
    client = api(world["users"][role])
    for name, url in read_urls(world["base"]).items():
        if name == "alias":
            continue  # the shared base has no alias
        assert client.get(url).status_code == 200, (name, role)


@pytest.mark.parametrize(
    ("role", "names"),
    [
        ("labeler", ["base"]),
        ("reviewer", ["base", "p-sft"]),
        ("admin", ["base", "p-sft"]),
        ("staff_outsider", ["base"]),  # staff no longer means "sees everything"
        ("plain_outsider", ["base"]),
        ("other_member", ["base", "q-rm"]),
        ("platform_admin", ["base", "loose", "p-sft", "q-rm"]),
    ],
)
def test_the_list_holds_what_the_user_reads(api, world, role, names):
    client = api(world["users"][role])
    body = client.get("/api/models/?ordering=name").json()
    assert [row["name"] for row in body["results"]] == names and body["count"] == len(names)
    # Filters never reach past the scope.
    assert [r["name"] for r in client.get("/api/models/?tag=pretrained").json()["results"]] == ["base"]
    if "p-sft" not in names:
        assert client.get("/api/models/?name=p-sft").json()["count"] == 0
    # ?project=: what a run of that project may use (its own and the shared models), within the scope.
    usable = [r["name"] for r in client.get(f"/api/models/?project={world['p'].pk}&ordering=name").json()["results"]]
    assert usable == [n for n in names if n in ("base", "p-sft")]
    assert client.get("/api/models/?project=x").status_code == 400


@pytest.mark.parametrize("role", OUTSIDERS)
def test_an_unscoped_unshared_model_is_for_platform_admins_only(api, world, role):
    for url in read_urls(world["loose"]).values():
        assert api(world["users"][role]).get(url).status_code == 404
    assert api(world["users"]["platform_admin"]).get(read_urls(world["loose"])["version"]).status_code == 200


def test_anonymous_gets_401_everywhere(api, world):
    client = api()
    for version in (world["p_sft"], world["base"]):
        for name, url in read_urls(version).items():
            assert client.get(url).status_code == 401, name
    assert client.get("/api/models/").status_code == 401
    assert client.post("/api/models/import/", {}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("labeler", 404),  # does not read it, so is not told it exists
        ("reviewer", 403),  # reads it; changing it is for the project's admins
        ("admin", 200),
        ("staff_outsider", 404),
        ("plain_outsider", 404),
        ("other_member", 404),
        ("platform_admin", 200),
    ],
)
def test_alias_and_tag_writes_need_the_projects_admin_role(api, world, role, expected):
    urls = read_urls(world["p_sft"])
    client = api(world["users"][role])
    assert client.put(urls["alias"], {"version": 1}, format="json").status_code == expected
    assert client.patch(urls["version"], {"tags": ["x"]}, format="json").status_code == expected
    assert ModelVersion.objects.get(pk=world["p_sft"].pk).tags == (["x"] if expected == 200 else [])
    assert client.delete(urls["alias"]).status_code == (204 if expected == 200 else expected)


def test_a_project_admin_changes_its_projects_models_but_not_shared_ones(api, world):
    client = api(world["users"]["admin"])
    urls = read_urls(world["p_sft"])
    assert (
        client.put(urls["alias"].replace("production", "candidate"), {"version": 1}, format="json").status_code == 200
    )
    assert client.patch(urls["version"], {"tags": ["ok"]}, format="json").status_code == 200
    shared = read_urls(world["base"])
    response = client.put(shared["alias"], {"version": 1}, format="json")
    assert response.status_code == 403 and "shared model" in response.json()["detail"]
    assert client.patch(shared["version"], {"tags": ["mine"]}, format="json").status_code == 403
    assert ModelVersion.objects.get(pk=world["base"].pk).tags == ["pretrained"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [("admin", 403), ("labeler", 404), ("staff_outsider", 404), ("other_member", 404), ("platform_admin", 200)],
)
def test_only_platform_admins_share_a_model(api, world, role, expected):
    url = read_urls(world["p_sft"])["detail"]
    response = api(world["users"][role]).patch(url, {"shared": True}, format="json")
    assert response.status_code == expected
    assert RegisteredModel.objects.get(pk=world["p_sft"].model_id).shared is (expected == 200)
    if expected == 200:
        # Shared: now every signed-in user reads it, its versions included.
        assert api(world["users"]["plain_outsider"]).get(read_urls(world["p_sft"])["version"]).status_code == 200


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("labeler", 403),
        ("reviewer", 403),
        ("admin", 403),
        ("staff_outsider", 403),  # a server directory: platform admins only
        ("plain_outsider", 403),
        ("other_member", 403),
        ("platform_admin", 201),
    ],
)
def test_directory_import_by_role(api, world, make_folder, role, expected):
    payload = {"name": "imported", "task": "causal-lm", "source": "dir", "path": str(make_folder("in", FAKE))}
    response = api(world["users"][role]).post("/api/models/import/", payload, format="json")
    assert response.status_code == expected, response.json()
    if expected == 201:
        model = RegisteredModel.objects.get(name="imported")
        assert (model.project_id, model.shared) == (None, False)  # not shared unless an admin says so
        assert api(world["users"]["plain_outsider"]).get(f"/api/models/{model.pk}/").status_code == 404


def test_platform_admin_imports_shared_or_into_a_project(api, world, make_folder):
    client = api(world["users"]["platform_admin"])
    folder = str(make_folder("in", FAKE))
    body = {"task": "causal-lm", "source": "dir", "path": folder}
    shared = client.post("/api/models/import/", {**body, "name": "pub", "shared": True}, format="json")
    assert shared.status_code == 201
    assert api(world["users"]["plain_outsider"]).get(f"/api/models/{shared.json()['model']}/").status_code == 200
    scoped = client.post("/api/models/import/", {**body, "name": "p-base", "project": world["p"].pk}, format="json")
    assert scoped.status_code == 201 and scoped.json()["project"] == world["p"].pk
    assert api(world["users"]["reviewer"]).get(f"/api/models/{scoped.json()['model']}/").status_code == 200
    assert api(world["users"]["other_member"]).get(f"/api/models/{scoped.json()['model']}/").status_code == 404
    # A version joining p-sft belongs to P; naming another project is a 400 naming the field.
    wrong = client.post("/api/models/import/", {**body, "name": "p-sft", "project": world["q"].pk}, format="json")
    assert wrong.status_code == 400 and "project" in wrong.json()["errors"]
    joined = client.post("/api/models/import/", {**body, "name": "p-sft"}, format="json")
    assert joined.status_code == 201 and (joined.json()["version"], joined.json()["project"]) == (2, world["p"].pk)
    into_shared = client.post("/api/models/import/", {**body, "name": "base"}, format="json")
    assert into_shared.status_code == 201 and into_shared.json()["version"] == 2
    assert (
        api(world["users"]["plain_outsider"]).get(f"/api/models/{world['base'].model_id}/versions/2/").status_code
        == 200
    )
    missing = client.post("/api/models/import/", {**body, "name": "x", "project": 999999}, format="json")
    assert missing.status_code == 400 and "project" in missing.json()["errors"]


def test_hub_import_and_create_take_a_project_the_staff_account_administers(api, world, make_user):
    staff = world["users"]["staff_outsider"]
    client = api(staff)
    hub = {"name": "smol", "task": "causal-lm", "source": "hub", "hub_id": "org/name"}
    for payload in (hub, {**hub, "project": world["p"].pk}):
        response = client.post("/api/models/import/", payload, format="json")
        assert response.status_code == 400 and "project" in response.json()["errors"], payload
    response = client.post("/api/models/import/", {**hub, "shared": True}, format="json")
    assert response.status_code == 403 and "shared" in response.json()["detail"]
    # A name taken by a model the user cannot read is refused by name (names are global), changing nothing.
    from labeling.models import Membership

    Membership.objects.create(project=world["p"], user=staff, role=Role.REVIEWER)  # reads, does not administer
    response = client.post("/api/models/import/", {**hub, "project": world["p"].pk}, format="json")
    assert response.status_code == 400 and "not an admin of it" in response.json()["errors"]["project"][0]
    response = client.post("/api/models/import/", {**hub, "name": "p-sft"}, format="json")
    assert response.status_code == 403 and "Only admins of project" in response.json()["detail"]
    Membership.objects.filter(project=world["p"], user=staff).delete()
    taken = client.post("/api/models/import/", {**hub, "name": "p-sft"}, format="json")
    assert taken.status_code == 400 and "name" in taken.json()["errors"]

    create = {"name": "judge", "task": "classifier"}
    assert client.post("/api/models/", create, format="json").status_code == 400
    assert client.post("/api/models/", {**create, "project": world["p"].pk}, format="json").status_code == 400
    assert client.post("/api/models/", {**create, "shared": True}, format="json").status_code == 403
    Membership.objects.create(project=world["p"], user=staff, role=Role.ADMIN)
    made = client.post("/api/models/", {**create, "project": world["p"].pk}, format="json")
    assert made.status_code == 201 and (made.json()["project"], made.json()["shared"]) == (world["p"].pk, False)
    assert not RegisteredModel.objects.filter(name="smol").exists()


def test_lineage_hides_a_base_the_reader_cannot_read(api, world, make_folder):
    """A version of P over a version of Q (possible before scoping): P's members see that the base
    exists (its id), not what it is."""
    p_over_q = services.model_version_register(
        model_name="p-over-q",
        task="reward-model",
        folder=make_folder("x", FAKE),
        fmt=None,
        base_version=world["q_rm"],
        project_id=world["p"].pk,
    )
    url = f"/api/models/{p_over_q.model_id}/versions/1/"
    entry = api(world["users"]["reviewer"]).get(url).json()["lineage"][0]
    assert entry["hidden"] is True and entry["id"] == world["q_rm"].pk
    assert entry["model_name"] is None and entry["source_run_id"] is None
    admin_view = api(world["users"]["platform_admin"]).get(url).json()["lineage"][0]
    assert (admin_view["hidden"], admin_view["model_name"]) == (False, "q-rm")


def test_a_version_of_another_project_inside_a_shared_model_stays_with_its_project(api, world, make_folder):
    """Legacy data: a run of Q once added a version to the shared base. Sharing the model does not
    publish Q's version."""
    extra = services.model_version_register(
        model_name="base", task="causal-lm", folder=make_folder("y", FAKE), fmt=None, shared=True
    )
    ModelVersion.objects.filter(pk=extra.pk).update(project=world["q"])
    url = f"/api/models/{extra.model_id}/versions/"
    p_reviewer = api(world["users"]["reviewer"])
    assert [v["version"] for v in p_reviewer.get(url).json()["results"]] == [1]
    assert p_reviewer.get(f"{url}2/").status_code == 404
    assert p_reviewer.get(f"{url}2/download/").status_code == 404
    assert [v["version"] for v in api(world["users"]["other_member"]).get(url).json()["results"]] == [2, 1]
    listed = p_reviewer.get("/api/models/?name=base").json()["results"][0]
    assert (listed["version_count"], listed["latest_version"]) == (1, 1)


def test_registration_joins_only_a_model_of_its_own_project(world, make_folder):
    folder = make_folder("z", FAKE)
    for project_id, name in ((world["q"].pk, "p-sft"), (None, "p-sft"), (world["p"].pk, "loose")):
        with pytest.raises(ServiceError, match="is not a model of"):
            services.model_version_register(
                model_name=name, task="causal-lm", folder=folder, fmt=None, project_id=project_id
            )
    with pytest.raises(ServiceError, match="is a shared model"):  # a shared model takes no unshared version
        services.model_version_register(model_name="base", task="causal-lm", folder=folder, fmt=None)
    assert folder.is_dir() and ModelVersion.objects.count() == 4


def test_version_usable_for_runs(world, make_user):
    users, p, q = world["users"], world["p"].pk, world["q"].pk

    def usable(role, version, project_id):
        return selectors.version_usable(user=users[role], version_id=world[version].pk, project_id=project_id)

    assert usable("reviewer", "p_sft", p) and usable("reviewer", "base", p) and usable("reviewer", "base", None)
    assert usable("reviewer", "p_sft", q) is None  # P's weights do not go into Q's runs
    assert usable("reviewer", "q_rm", p) is None and usable("staff_outsider", "p_sft", p) is None
    assert usable("reviewer", "loose", p) is None and usable("platform_admin", "loose", q)
    assert usable("labeler", "p_sft", p) is None and usable("labeler", "base", p)
    both = make_user("both")
    from labeling.models import Membership

    Membership.objects.create(project=world["q"], user=both, role=Role.ADMIN)
    Membership.objects.create(project=world["p"], user=both, role=Role.ADMIN)
    assert selectors.version_usable(user=both, version_id=world["q_rm"].pk, project_id=p) is None


def test_the_registry_roles_are_labelings_roles():
    """The registry names labeling's roles by value (it may not import labeling)."""
    assert set(selectors.READER_ROLES) | set(selectors.WRITER_ROLES) <= set(Role.values)
    assert (Role.ADMIN, Role.REVIEWER) == selectors.READER_ROLES and selectors.WRITER_ROLES == (Role.ADMIN,)
