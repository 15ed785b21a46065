"""The demo's data, shipped in the repository so that a clone stands alone (no ``../shared``).

``hh-harmless.sample.jsonl`` holds the first 400 of the 1,600 HH-RLHF pairs and
``dialogsum.dev.jsonl`` the first 150 of the 500 DialogSum dialogues of ``../shared/data``,
unchanged (licenses and attribution: README.md here). ``seed_demo`` reads these; tests and
benchmarks that want the larger files take them from ``../shared/data`` when it is there.
Pure: no Django, so benchmarks and ``training.ml`` callers may import it.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"  # beside the project root, in development and CI
HH_HARMLESS = "hh-harmless.sample.jsonl"
DIALOGSUM = "dialogsum.dev.jsonl"
FILES = (HH_HARMLESS, DIALOGSUM)


def data_file(name: str, *, larger: bool = False) -> Path:
    """Where ``name`` is read from: ``$RANKFORGE_DEMO_DATA/name`` when that is set; else, with
    ``larger``, the full file in ``../shared/data`` when it is there; else the slice shipped here."""
    if name not in FILES:
        raise ValueError(f"unknown demo data file {name!r}: one of {', '.join(FILES)}")
    folder = os.environ.get("RANKFORGE_DEMO_DATA")
    if folder:
        return Path(folder) / name
    if larger and (SHARED / name).exists():
        return SHARED / name
    return HERE / name
