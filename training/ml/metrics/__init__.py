"""Text metrics as ``evaluate`` modules kept in the project (DESIGN.md, The ML: Metrics).

``evaluate.load("rouge")`` fetches its script from the Hugging Face hub and fails offline, so the
scripts live here, one folder per metric (``rouge/rouge.py``, ``bleu/bleu.py``, the hub's layout),
and are loaded by path:

    from training.ml.metrics import bleu, load_metric, rouge

    rouge(predictions, references)    # {"rouge1", "rouge2", "rougeL", "rougeLsum"}: mean F-measures
    bleu(predictions, references)     # {"bleu" in [0, 1], "precisions", "brevity_penalty", ...}
    load_metric("rouge").compute(predictions=..., references=..., use_aggregator=False)

What loading writes: ``evaluate`` copies the script into its modules cache (``HF_MODULES_CACHE``,
default ``~/.cache/huggingface/modules``, under a file lock, one folder per script hash) and makes
an empty folder under its metrics cache (``HF_METRICS_CACHE``); where those cannot be written (a
worker without a home folder) both go to ``$TMPDIR/rankforge-evaluate-UID`` instead. The modules are
loaded with ``keep_in_memory=True``, so computing writes no Arrow files (nor takes file locks).
Nothing is downloaded. Each process loads a metric once.
"""

import os
import tempfile
from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
NAMES = ("rouge", "bleu")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")

_loaded: dict = {}


def metric_path(name: str) -> Path:
    if name not in NAMES:
        raise ValueError(f"unknown metric {name!r}; the project keeps {', '.join(NAMES)}")
    return METRICS_DIR / name


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _metrics_cache() -> Path:
    """Where ``evaluate`` may write (see the module docstring): its caches, else a temp folder."""
    from evaluate import config

    modules, metrics = Path(config.HF_MODULES_CACHE), Path(config.HF_METRICS_CACHE)
    if _writable(modules) and _writable(metrics):
        return metrics
    scratch = Path(tempfile.gettempdir()) / f"rankforge-evaluate-{os.getuid()}"
    config.HF_MODULES_CACHE = scratch / "modules"  # read when the module is loaded
    return scratch / "metrics"


def load_metric(name: str):
    """The ``evaluate`` module of metric ``name`` (rouge or bleu), loaded by path, once per process."""
    if name not in _loaded:
        import evaluate

        path = metric_path(name)
        _loaded[name] = evaluate.load(str(path), keep_in_memory=True, cache_dir=str(_metrics_cache()))
    return _loaded[name]


def rouge(predictions: list[str], references: list[str] | list[list[str]], **options) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measures (stemmed); ``options`` go to the metric's ``compute``."""
    if not predictions:
        return dict.fromkeys(ROUGE_TYPES, 0.0)
    result = load_metric("rouge").compute(predictions=list(predictions), references=list(references), **options)
    return {name: float(value) for name, value in result.items()}


def bleu(predictions: list[str], references: list[str] | list[list[str]], **options) -> dict:
    """Corpus BLEU by sacrebleu, in [0, 1], with its precisions and brevity penalty."""
    if not predictions:
        return {"bleu": 0.0}
    return dict(load_metric("bleu").compute(predictions=list(predictions), references=list(references), **options))
