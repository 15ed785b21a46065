"""Fetch a model folder from the Hugging Face hub, or say clearly why it cannot be fetched.

``HF_HUB_OFFLINE=1`` is respected (huggingface_hub then answers from its local cache only, at once);
on a machine without network the connection error comes back in well under a second, and a
connection that hangs is cut after ``settings.RANKFORGE_HUB_TIMEOUT_S`` (10 s by default). Only
safetensors weights and small text files are downloaded: pickle weights are never fetched.
"""

import re
from pathlib import Path

from django.conf import settings

from common.exceptions import ServiceError

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "README.md", "LICENSE*"]


def offline_message(hub_id: str) -> str:
    return (
        f"Cannot reach the Hugging Face hub to fetch {hub_id!r}: this machine is offline (or HF_HUB_OFFLINE=1) "
        "and the model is not in the local hub cache. Download it elsewhere (`hf download "
        f"{hub_id} --local-dir DIR`), copy the folder here and import the folder (source 'dir')."
    )


def validate_hub_id(hub_id: str) -> None:
    if not HUB_ID_RE.match(hub_id or "") or ".." in hub_id:
        raise ServiceError(
            f"{hub_id!r} is not a hub id; expected 'org/name', e.g. 'HuggingFaceTB/SmolLM2-135M-Instruct'.",
            errors={"hub_id": ["Expected org/name."]},
        )


def download(hub_id: str, dest: Path, *, revision: str | None = None) -> Path:
    """Download ``hub_id`` into ``dest``; a ServiceError with an actionable message on any failure."""
    validate_hub_id(hub_id)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    timeout = float(getattr(settings, "RANKFORGE_HUB_TIMEOUT_S", 10))
    try:
        snapshot_download(
            repo_id=hub_id,
            revision=revision,
            local_dir=dest,
            allow_patterns=ALLOW_PATTERNS,
            etag_timeout=timeout,
            max_workers=4,
        )
    except GatedRepoError:
        raise ServiceError(
            f"{hub_id!r} is gated on the hub: accept its license there and set HF_TOKEN on the server, "
            "or download it elsewhere and import the folder.",
            errors={"hub_id": ["Gated repository."]},
        ) from None
    except RepositoryNotFoundError:
        raise ServiceError(
            f"No model {hub_id!r} on the hub (or it is private): check the id.",
            errors={"hub_id": ["Repository not found."]},
            status=404,
        ) from None
    except RevisionNotFoundError:
        raise ServiceError(
            f"{hub_id!r} has no revision {revision!r}.", errors={"revision": ["Revision not found."]}
        ) from None
    except HfHubHTTPError as exc:
        raise ServiceError(
            f"The Hugging Face hub refused to send {hub_id!r}: {exc}", errors={"hub_id": [str(exc)[:200]]}, status=502
        ) from None
    except (OSError, TimeoutError, ValueError) as exc:
        # LocalEntryNotFoundError (offline, or no network and not cached) is an OSError, and so are
        # the connection errors and timeouts of the HTTP client.
        raise ServiceError(offline_message(hub_id), errors={"hub_id": [type(exc).__name__]}, status=503) from None
    return dest
