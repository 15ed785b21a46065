"""The import_pip_models command (the MiniLM half: a copy, no conversion; the SmolLM2 half converts a
GGUF and is exercised by hand and by the slow conversion test)."""

import pytest
from django.core.management import call_command

from models_registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


def test_minilm_is_registered_once(capsys):
    call_command("import_pip_models", "--only", "minilm")
    first = capsys.readouterr().out
    model = RegisteredModel.objects.get(name="all-MiniLM-L6-v2")
    version = model.versions.get()
    assert model.task == "classifier"
    assert version.tags[0] == "encoder" and version.format == "hf-folder"
    assert version.size_bytes > 80_000_000 and version.tokenizer == version.artifact_path
    assert "registered version 1" in first

    call_command("import_pip_models", "--only", "minilm")
    second = capsys.readouterr().out
    assert "already registered as version 1" in second and "nothing to do" in second
    assert ModelVersion.objects.count() == 1


def test_smollm2_is_converted_once_and_then_found(capsys, monkeypatch, hf_folder):
    """The conversion is replaced by the tiny model (the real one is the slow test's business)."""
    import shutil

    from models_registry import services
    from training.ml import convert

    conversions = []

    def fake_convert(gguf_path, out_dir):
        conversions.append(gguf_path)
        shutil.copytree(hf_folder, out_dir)
        return out_dir

    monkeypatch.setattr(convert, "gguf_to_hf_folder", fake_convert)

    call_command("import_pip_models", "--only", "smollm2")
    model = RegisteredModel.objects.get(name="SmolLM2-135M-Instruct")
    version = model.versions.get()
    assert model.task == "causal-lm" and version.format == "hf-folder"
    assert model.aliases.get(name="production").version == version
    source_tag = next(t for t in version.tags if t.startswith("gguf-sha256:"))
    assert "registered version 1" in capsys.readouterr().out

    call_command("import_pip_models", "--only", "smollm2")  # the GGUF fingerprint: no conversion at all
    assert f"(tag {source_tag}), nothing to do" in capsys.readouterr().out
    assert len(conversions) == 1

    services.tags_set(version=version, tags=[])  # without the tag, the config hash still finds it
    call_command("import_pip_models", "--only", "smollm2")
    assert "(same config hash), nothing to do" in capsys.readouterr().out
    assert len(conversions) == 2
    assert ModelVersion.objects.count() == 1
