"""ROUGE and BLEU as evaluate modules kept in the project, loaded by path, offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.ml import metrics
from training.ml.metrics import ROUGE_TYPES, bleu, load_metric, rouge

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PREDICTIONS = [
    "#Person1# asks the doctor about the cough and gets a prescription.",
    "They are planning a trip to the mountains next weekend.",
    "The man buys two tickets",
]
REFERENCES = [
    "#Person2# has a bad cough. The doctor prescribes some medicine for #Person2#.",
    "#Person1# and #Person2# plan to go hiking in the mountains on the weekend.",
    "The man wants to buy tickets for the concert.",
]


def test_identical_strings_score_one():
    texts = ["the cat sat on the mat", "a quick brown fox jumps over the lazy dog"]
    assert rouge(texts, texts) == dict.fromkeys(ROUGE_TYPES, 1.0)
    assert bleu(texts, texts)["bleu"] == pytest.approx(1.0)


def test_rouge_matches_rouge_score_directly():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(r, p) for r, p in zip(REFERENCES, PREDICTIONS, strict=True)]
    expected = {name: sum(s[name].fmeasure for s in scores) / len(scores) for name in ROUGE_TYPES}
    result = rouge(PREDICTIONS, REFERENCES)
    assert result == pytest.approx(expected)
    assert 0 < result["rouge2"] < result["rouge1"] < 1

    per_row = load_metric("rouge").compute(predictions=PREDICTIONS, references=REFERENCES, use_aggregator=False)
    assert per_row["rougeL"] == pytest.approx([s["rougeL"].fmeasure for s in scores])
    # stemming on by default: "plans"/"planning" match "plan"
    assert rouge(["they planned"], ["they plan"])["rouge1"] == 1.0
    assert rouge(["they planned"], ["they plan"], use_stemmer=False)["rouge1"] == 0.5


def test_several_references_take_the_best():
    result = rouge(["the cat sat"], [["a dog ran", "the cat sat"]])
    assert result["rouge1"] == 1.0


def test_bleu_is_sacrebleu_in_zero_to_one():
    import sacrebleu

    expected = sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES])
    result = bleu(PREDICTIONS, REFERENCES)
    assert result["bleu"] == pytest.approx(expected.score / 100)
    assert result["precisions"] == pytest.approx([p / 100 for p in expected.precisions])
    assert result["brevity_penalty"] == pytest.approx(expected.bp)
    assert 0 < result["bleu"] < 1
    # a variable number of references per prediction
    two = bleu(["the cat sat on the mat", "hello world"], [["the cat sat on the mat", "a cat"], ["hello world"]])
    assert two["bleu"] == pytest.approx(1.0)


def test_edge_cases():
    assert rouge([], []) == dict.fromkeys(ROUGE_TYPES, 0.0)
    assert bleu([], [])["bleu"] == 0.0
    assert rouge([""], ["something"])["rouge1"] == 0.0
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("meteor")
    assert load_metric("rouge") is load_metric("rouge")  # loaded once per process


def _offline_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_CACHE"))}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", **extra}


SCRIPT = """
import json
from training.ml.metrics import bleu, rouge
print(json.dumps({"rouge": rouge(["a b c"], ["a b c"]), "bleu": bleu(["a b c d"], ["a b c d"])["bleu"]}))
"""


def test_loads_offline_by_path_and_caches_under_the_hf_home(tmp_path):
    home = tmp_path / "hf"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=_offline_env(HF_HOME=str(home)), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["rouge"]["rougeLsum"] == 1.0 and result["bleu"] == pytest.approx(1.0)
    copied = list((home / "modules" / "evaluate_modules" / "metrics").glob("*/*/*.py"))
    assert {p.name for p in copied} >= {"rouge.py", "bleu.py"}
    assert not (ROOT / "metrics").exists()


def test_an_unwritable_cache_falls_back_to_a_temp_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = _offline_env(HF_HOME="/proc/rankforge-no-such-folder", TMPDIR=str(scratch))
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["rouge"]["rouge1"] == 1.0
    assert (scratch / f"rankforge-evaluate-{os.getuid()}" / "modules").is_dir()


def test_the_module_scripts_are_where_evaluate_looks():
    for name in metrics.NAMES:
        folder = metrics.metric_path(name)
        assert (folder / f"{name}.py").is_file()  # evaluate.load(folder) loads folder/<folder name>.py
