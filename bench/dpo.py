"""DPO step cost and preference accuracy on real pairs: ``python -m training.ml dpo`` on SmolLM2.

    python bench/dpo.py [--steps 10] [--max-length 256] [--batch-size 2] [--threads 2]

The HH-RLHF harmless sample becomes a snapshot's pair files (``prepare_pairs`` of
bench/reward_model.py: prompt = the transcript up to its last ``\\n\\nAssistant:``, chosen/rejected =
the last replies, a stable 20% of prompts for eval); ``--train-pairs``/``--eval-pairs`` take the
first N of each split. The run is the ``dpo`` kind in a fresh subprocess (LoRA by default: the
reference is the model with adapters off). Printed: seconds per optimizer step (training only),
the eval split's implicit-reward preference accuracy, reward margin and loss before and after
training (before, the policy is the reference: accuracy 0 and loss log 2 by construction), and the
wall time of the whole process.
"""

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = ROOT / "var" / "bench" / "smollm2-hf"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _reward_bench():
    spec = importlib.util.spec_from_file_location("bench_reward_model", Path(__file__).with_name("reward_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def subset(source: Path, target: Path, n: int) -> int:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)[:n]
    target.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def run_kind(config: dict, out: Path) -> tuple[float, list[dict]]:
    """``python -m training.ml dpo`` in a fresh interpreter; (wall seconds, events)."""
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: no checkpoint to resume from
    out.mkdir(parents=True)
    path = out / "config.json"
    path.write_text(json.dumps(config, indent=2))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "training.ml", "dpo", "--config", str(path), "--out", str(out / "run")],
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
        raise SystemExit(f"dpo run failed with status {done.returncode}: {events[-1:] or 'no events'}")
    return seconds, events


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(SMOLLM2), help="causal LM folder (default SmolLM2-135M-Instruct)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=2, help="pairs per step")
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--train-pairs", type=int, default=200)
    parser.add_argument("--eval-pairs", type=int, default=32)
    parser.add_argument("--peft-method", default="lora")
    parser.add_argument("--lr", type=float, default=None, help="default: the kind's (LoRA 5e-5)")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-eval-before", action="store_true")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "dpo")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()  # configs name files by absolute path (relative ones follow the config)

    prepared = _reward_bench().prepare_pairs(args.work / "hh")
    pairs = args.work / "pairs"
    pairs.mkdir(parents=True, exist_ok=True)
    n_train = subset(args.work / "hh" / "train.jsonl", pairs / "train.jsonl", args.train_pairs)
    n_eval = subset(args.work / "hh" / "eval.jsonl", pairs / "eval.jsonl", args.eval_pairs)
    print(f"HH pairs {prepared['pairs']}; using {n_train} train / {n_eval} eval", flush=True)
    config = {
        "model_path": args.model,
        "train_file": str(pairs / "train.jsonl"),
        "eval_file": str(pairs / "eval.jsonl"),
        "peft_method": args.peft_method,
        "max_steps": args.steps,
        "max_length": args.max_length,
        "per_device_train_batch_size": args.batch_size,
        "per_device_eval_batch_size": args.eval_batch_size,
        "beta": args.beta,
        "torch_threads": args.threads,
        "logging_steps": 1,
        "save_steps": 0,
        "eval_before": not args.no_eval_before,
    }
    if args.lr is not None:
        config["learning_rate"] = args.lr
    seconds, events = run_kind(config, args.work / "kind")
    metrics = events[-1]["metrics"]
    times = [e["t"] for e in events if e["type"] == "progress"]
    step_gaps = [b - a for a, b in itertools.pairwise(times)]

    print()
    print(f"model: {args.model} ({metrics['peft_method']}, lr {metrics['learning_rate']}, beta {metrics['beta']})")
    print(
        f"settings: {metrics['steps']} steps of {args.batch_size} pairs, max_length {args.max_length}, "
        f"threads {args.threads}; {metrics['train_pairs_cut']} of {n_train} train pairs cut to fit"
    )
    print(f"training: {metrics['train_seconds']:.1f} s, {metrics['seconds_per_step']:.2f} s/step", end="")
    if step_gaps:
        print(f" (steps 2..{len(times)}: median {sorted(step_gaps)[len(step_gaps) // 2]:.2f} s)", end="")
    print(f"; whole process {seconds:.1f} s")
    print(f"{'eval (' + str(n_eval) + ' pairs)':<22} {'before':>9} {'after':>9}")
    for label, name in (
        ("preference accuracy", "eval_rewards_accuracy"),
        ("reward margin", "eval_rewards_margin"),
        ("loss", "eval_loss"),
    ):
        before = metrics.get(f"{name}_before")
        after = metrics.get(name)
        print(
            f"{label:<22} {f'{before:.4f}' if before is not None else '-':>9} "
            f"{f'{after:.4f}' if after is not None else '-':>9}"
        )


if __name__ == "__main__":
    main()
