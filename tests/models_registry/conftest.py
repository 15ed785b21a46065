"""Registry fixtures: tiny model folders from tests/ml's fixtures (no hub, no real weights)."""

import json
from pathlib import Path

import pytest

from tests.ml import conftest as ml_fixtures

# The tiny-model fixtures live in tests/ml/conftest.py; re-export them for this package.
tiny_tokenizer_json = ml_fixtures.tiny_tokenizer_json
tiny_tokenizer = ml_fixtures.tiny_tokenizer
make_tiny_model = ml_fixtures.make_tiny_model
tiny_model_dir = ml_fixtures.tiny_model_dir


@pytest.fixture
def hf_folder(tiny_model_dir) -> Path:
    """A tiny causal LM saved with save_pretrained: config.json, model.safetensors, tokenizer files."""
    return tiny_model_dir


@pytest.fixture
def adapter_folder(tmp_path, make_tiny_model) -> Path:
    """A PEFT LoRA adapter of the tiny model: adapter_config.json + adapter_model.safetensors."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        make_tiny_model("causal_lm"), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    )
    folder = tmp_path / "adapter"
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def make_folder(tmp_path):
    """``make_folder(name, {relative path: bytes | dict})`` writes a folder; dicts become JSON."""

    def make(name: str, files: dict[str, bytes | dict]) -> Path:
        folder = tmp_path / name
        for rel, content in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(json.dumps(content).encode() if isinstance(content, dict) else content)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    return make


@pytest.fixture
def staff(make_user):
    return make_user("steve", is_staff=True)


@pytest.fixture
def labeler(make_user):
    return make_user("lara")
