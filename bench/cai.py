"""Constitutional AI, supervised stage, on real models: do the revisions, and an SFT on them, make
SmolLM2-135M-Instruct more harmless in the eyes of a harmlessness reward model?

    python bench/cai.py [--sft-prompts 64] [--eval-prompts 32] [--rounds 1] [--max-new-tokens 64]
                        [--sft-steps 32] [--reward-model DIR] [--threads 2]

1. Reward model: all-MiniLM-L6-v2 trained by the ``reward_model`` kind on the pairs of the HH-RLHF
   harmless sample (``bench/reward_model.py``: its train split; ~20% of the prompts held out),
   unless ``--reward-model`` names a trained one. Its eval accuracy is printed.
2. Prompts: HH conversations up to their last ``Assistant:`` turn, from the reward model's held-out
   split only (it never trained on them), shortest first: ``--sft-prompts`` for the SFT, the next
   ``--eval-prompts`` held out from everything.
3. ``cai_revise`` (the platform's code, ``training.ml.cai_revise.run``) with the shipped default
   constitution (``labeling.principles.DEFAULT_PRINCIPLES``) over both sets.
4. Reward of the first answer vs the final revision on the held-out prompts: means, the mean
   difference with a 95% interval (paired), the share of prompts the revision improved.
5. ``sft`` (LoRA) on (prompt, final revision) of the SFT prompts; then ``generate`` with the base
   and the tuned (merged) model on the held-out prompts, both scored by the reward model.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from generation import model_folder  # noqa: E402
from reward_model import MINILM, Settings, prepare_pairs, run_kind  # noqa: E402

from labeling.principles import DEFAULT_PRINCIPLES  # noqa: E402
from training.ml.configs import config_for  # noqa: E402
from training.ml.events import EventWriter  # noqa: E402
from training.ml.rewards import mean_interval  # noqa: E402


class Quiet(EventWriter):
    """Progress on one line, logs to stderr; metrics kept."""

    def __init__(self, label: str):
        self.label, self.metrics = label, {}

    def emit(self, type_, **fields):
        if type_ == "progress":
            print(f"\r  {self.label}: {fields['step']}/{fields.get('total')}", end="", flush=True)
        elif type_ == "metric":
            self.metrics[fields["name"]] = fields["value"]
        elif type_ in ("log", "error"):
            print(f"  [{type_}] {fields.get('message')}", file=sys.stderr, flush=True)


def run(kind: str, config: dict, out: Path) -> tuple[dict, float]:
    from importlib import import_module

    module = import_module(
        {"sft": "training.ml.sft", "generate": "training.ml.generation"}.get(kind, f"training.ml.{kind}")
    )
    started = time.monotonic()
    result = module.run(config_for(kind, config), out, Quiet(kind))
    print(flush=True)
    return result, time.monotonic() - started


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def reward_model(args, work: Path) -> Path:
    if args.reward_model:
        return Path(args.reward_model)
    folder = work / "rm" / "run" / "model"
    if not (folder / "config.json").exists():
        settings = Settings(str(MINILM), 2.0, 256, args.threads, 3e-5, 8, 16, 0.1, 0, 0)
        timing = run_kind(settings, work / "pairs", work / "rm")
        print(f"reward model: eval accuracy {timing.accuracy:.3f} ({timing.seconds:.0f} s)", flush=True)
    return folder


def held_out_prompts(pairs: Path, n_sft: int, n_eval: int, max_chars: int) -> tuple[list[dict], list[dict]]:
    prompts = sorted({row["prompt"] for row in read_jsonl(pairs / "eval.jsonl") if len(row["prompt"]) <= max_chars})
    prompts.sort(key=len)
    if len(prompts) < n_sft + n_eval:
        raise SystemExit(f"only {len(prompts)} held-out prompts of at most {max_chars} characters")
    rows = [{"prompt_id": i, "prompt": p} for i, p in enumerate(prompts[: n_sft + n_eval])]
    return rows[:n_sft], rows[n_sft:]


def mean_ci(values: list[float]) -> str:
    mean, half = mean_interval(values)
    half = float("nan") if half is None else half
    return f"{mean:+.3f} (95% CI {mean - half:+.3f} .. {mean + half:+.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sft-prompts", type=int, default=64)
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--max-prompt-chars", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--sft-steps", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2, help="generations per held-out prompt, base and tuned")
    parser.add_argument("--reward-model", default=None)
    parser.add_argument("--policy", default=None, help="causal LM folder (default SmolLM2-135M-Instruct)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "cai")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = args.work.resolve()  # configs name files by absolute path (relative ones follow the config)
    print(f"pairs: {prepare_pairs(work / 'pairs')['pairs']}", flush=True)
    rm = reward_model(args, work)
    policy = str(model_folder(args.policy))
    sft_prompts, eval_prompts = held_out_prompts(
        work / "pairs", args.sft_prompts, args.eval_prompts, args.max_prompt_chars
    )
    prompts_file = write_jsonl(work / "prompts.jsonl", sft_prompts + eval_prompts)
    common = {"model_path": policy, "torch_threads": args.threads, "max_new_tokens": args.max_new_tokens}

    result, seconds = run(
        "cai_revise",
        {**common, "prompts_file": str(prompts_file), "principles": DEFAULT_PRINCIPLES, "rounds": args.rounds},
        work / "cai",
    )
    print(f"cai_revise: {result['prompts']} prompts in {seconds:.0f} s; principles {result.get('principle_counts')}")
    steps = {row["prompt_id"]: row for row in read_jsonl(work / "cai" / "steps.jsonl")}

    from training.ml.rewards import RewardModelScorer

    scorer = RewardModelScorer(str(rm), max_length=512)
    held = [steps[p["prompt_id"]] for p in eval_prompts]
    initial = scorer.score([s["prompt"] for s in held], [s["initial"] for s in held])
    final = scorer.score([s["prompt"] for s in held], [s["final"] for s in held])
    gains = [f - i for i, f in zip(initial, final, strict=True)]
    print(f"\nheld-out prompts: {len(held)}")
    print(f"  reward of first answers  {statistics.fmean(initial):+.3f}")
    print(f"  reward of revisions      {statistics.fmean(final):+.3f}")
    print(f"  revision - first answer  {mean_ci(gains)}; improved on {sum(g > 0 for g in gains)}/{len(gains)}")

    train = [
        {"prompt": steps[p["prompt_id"]]["prompt"], "completion": " " + steps[p["prompt_id"]]["final"].strip()}
        for p in sft_prompts
        if steps[p["prompt_id"]]["final"].strip()
    ]
    sft_config = {
        "model_path": policy,
        "train_file": str(write_jsonl(work / "sft_train.jsonl", train)),
        "peft_method": "lora",
        "max_steps": args.sft_steps,
        "learning_rate": 2e-4,
        "per_device_train_batch_size": 4,
        "max_length": 512,
        "save_steps": 0,
        "torch_threads": args.threads,
    }
    _, sft_seconds = run("sft", sft_config, work / "sft")
    print(f"sft: {len(train)} revisions, {args.sft_steps} steps in {sft_seconds:.0f} s")

    eval_file = write_jsonl(work / "eval_prompts.jsonl", eval_prompts)
    scores = {}
    for name, model in (("base", policy), ("sft on revisions", str(work / "sft" / "model"))):
        out = work / f"generate-{name.split()[0]}"
        for stale in out.glob("completions.jsonl"):
            stale.unlink()
        generate = {**common, "model_path": model, "prompts_file": str(eval_file), "k": args.samples, "seed": 1}
        run("generate", generate, out)
        rows = read_jsonl(out / "completions.jsonl")
        by_id = {p["prompt_id"]: p["prompt"] for p in eval_prompts}
        pairs = [(by_id[r["prompt_id"]], c["text"]) for r in rows for c in r["completions"]]
        scores[name] = scorer.score([p for p, _ in pairs], [c for _, c in pairs])
    base, tuned = scores["base"], scores["sft on revisions"]
    print(f"\nheld-out generations ({len(base)} per model, {args.samples} per prompt)")
    print(f"  base SmolLM2             {statistics.fmean(base):+.3f}")
    print(f"  after SFT on revisions   {statistics.fmean(tuned):+.3f}")
    print(f"  tuned - base             {mean_ci([t - b for t, b in zip(tuned, base, strict=True)])}")


if __name__ == "__main__":
    main()
