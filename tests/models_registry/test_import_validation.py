"""What the registry refuses to import, and how it says so: not a model folder, pickle weights, GGUF,
and the hub while offline (fast, with what to do instead)."""

import time
from pathlib import Path

import pytest
from django.conf import settings

from common.exceptions import ServiceError
from models_registry import artifacts, services
from models_registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

CONFIG = {"model_type": "llama"}


def import_dir(path, name="m"):
    return services.model_import_dir(name=name, task="causal-lm", path=path)


def test_a_folder_without_a_model_is_refused(make_folder):
    folder = make_folder("notes", {"README.md": b"hello", "data.csv": b"a,b"})
    with pytest.raises(ServiceError, match=r"not a Hugging Face model folder \(it holds README.md, data.csv\)"):
        import_dir(folder)
    assert not RegisteredModel.objects.exists()


def test_config_without_weights_is_refused(make_folder):
    with pytest.raises(ServiceError, match=r"config.json but no \*.safetensors"):
        import_dir(make_folder("m", {"config.json": CONFIG}))


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt", "adapter_model.bin"])
def test_pickle_only_weights_are_refused_with_the_reason_and_the_fix(make_folder, weights):
    files = {"config.json": CONFIG, weights: b"\x80\x04pickle"}
    if weights.startswith("adapter"):
        files = {"adapter_config.json": {"base_model_name_or_path": "x"}, weights: b"\x80\x04pickle"}
    with pytest.raises(ServiceError) as excinfo:
        import_dir(make_folder("m", files))
    message = excinfo.value.message
    assert "safetensors only" in message and "arbitrary code" in message and "safe_serialization=True" in message
    assert not ModelVersion.objects.exists()


def test_pickle_files_beside_safetensors_are_not_copied(make_folder):
    folder = make_folder(
        "m", {"config.json": CONFIG, "model.safetensors": b"w", "pytorch_model.bin": b"\x80", "sub/x.pt": b"\x80"}
    )
    version = import_dir(folder)
    stored = Path(settings.ARTIFACT_ROOT) / version.artifact_path
    assert sorted(p.name for p in stored.rglob("*") if p.is_file()) == ["config.json", "model.safetensors"]


def test_missing_paths_and_files_are_refused(make_folder, tmp_path):
    with pytest.raises(ServiceError, match="does not exist on the server"):
        import_dir(tmp_path / "nowhere")
    (tmp_path / "weights.safetensors").write_bytes(b"w")
    with pytest.raises(ServiceError, match="is a file"):
        import_dir(tmp_path / "weights.safetensors")
    with pytest.raises(ServiceError, match="not valid JSON"):
        import_dir(make_folder("broken", {"config.json": b"{not json", "model.safetensors": b"w"}))


def test_gguf_is_refused_with_the_command_to_use(make_folder, tmp_path):
    gguf = tmp_path / "model.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")
    for path in (gguf, make_folder("g", {"model.Q4_1.gguf": b"GGUF"})):
        with pytest.raises(ServiceError, match=r"python manage\.py import_pip_models") as excinfo:
            import_dir(path)
        assert "needs torch" in excinfo.value.message


def test_a_format_that_does_not_match_is_refused(make_folder):
    with pytest.raises(ServiceError, match="looks like a hf-folder artifact, not peft-adapter"):
        services.model_version_register(
            model_name="m",
            task="causal-lm",
            folder=make_folder("m", {"config.json": CONFIG, "model.safetensors": b"w"}),
            fmt="peft-adapter",
        )


def test_detect_format(make_folder, hf_folder, adapter_folder):
    assert artifacts.detect_format(hf_folder) == "hf-folder"
    assert artifacts.detect_format(adapter_folder) == "peft-adapter"
    assert artifacts.detect_format(make_folder("g", {"x.gguf": b"GGUF"})) == "gguf"


@pytest.fixture
def hub_offline(monkeypatch):
    """HF_HUB_OFFLINE=1 as huggingface_hub reads it (its constants are read once, at import)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")  # nothing cached to fall back on
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", "/nonexistent-hf-home/hub")


def test_hub_import_offline_fails_fast_with_an_actionable_message(hub_offline):
    started = time.monotonic()
    with pytest.raises(ServiceError) as excinfo:
        services.model_import_hub(name="smol", task="causal-lm", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert time.monotonic() - started < 5
    message = excinfo.value.message
    assert message.startswith("Cannot reach the Hugging Face hub to fetch 'HuggingFaceTB/SmolLM2-135M-Instruct'")
    assert "offline" in message and "import the folder" in message
    assert excinfo.value.status == 503
    assert not RegisteredModel.objects.exists()
    assert list((Path(settings.ARTIFACT_ROOT) / ".scratch").iterdir()) == []  # the download folder is gone


@pytest.mark.parametrize("hub_id", ["", "a/b/c", "../etc", "has space/x"])
def test_hub_ids_are_checked_before_any_network(hub_id):
    with pytest.raises(ServiceError, match="is not a hub id"):
        services.model_import_hub(name="smol", task="causal-lm", hub_id=hub_id)


def test_links_out_of_the_folder_are_refused(make_folder, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for labelers")
    folder = make_folder("linked", {"config.json": CONFIG, "model.safetensors": b"w"})
    (folder / "notes.txt").symlink_to(secret)
    with pytest.raises(ServiceError, match="links outside the model folder"):
        import_dir(folder)

    (folder / "notes.txt").unlink()
    (folder / "weights-link.safetensors").symlink_to(folder / "model.safetensors")  # inside: fine
    version = import_dir(folder)
    stored = Path(settings.ARTIFACT_ROOT) / version.artifact_path / "weights-link.safetensors"
    assert not stored.is_symlink() and stored.read_bytes() == b"w"
