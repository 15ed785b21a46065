"""The ``cai_revise`` run kind: the supervised stage of Constitutional AI (Bai et al. 2022; DESIGN.md,
The ML). Pure ML: no Django. Config: :class:`training.ml.cai_revise_config.CaiReviseConfig`.

For each prompt: the model answers it; then, each round, under a sampled principle, it is asked the
principle's ``critique_request`` about its answer and then its ``revision_request``; the revision is
the answer of the next round. Every round starts again from the prompt and the current answer
(prompt, answer, critique request, critique, revision request): the context stays short, which
small models need, and a critique is always about the answer being revised.

The conversation is rendered with the tokenizer's chat template when it has one; otherwise as an
HH-style transcript (``\\n\\nHuman: ...\\n\\nAssistant: ...``, ending with ``\\n\\nAssistant:``).
Inputs longer than ``max_prompt_tokens`` (or than the context window less ``max_new_tokens``) lose
tokens from the left, as in ``generate``. A batch of ``batch_size`` prompts goes through each stage
together (one ``generate`` call per stage); stage s of the batch whose first prompt is number i
seeds torch with ``seed + i + 100003 * s``, and each row records ``seed + its index``: the same
config, file and batch size reproduce the same text.

Outputs, in ``out_dir``:
- ``steps.jsonl``: one line per prompt, appended (and fsynced) after every batch::

    {"prompt_id", "prompt", "seed", "initial", "rounds": [{"principle", "critique_request", "critique",
     "revision_request", "revision"}, ...], "final"}

  A rerun into the same folder skips the prompts it already has (a torn last line is cut off).
- ``sft.jsonl`` (``{"prompt_id", "prompt", "completion": final}``, rows with an empty final left out)
  and ``pairs.jsonl`` (``{"prompt_id", "prompt", "chosen": final, "rejected": initial}``, rows whose
  final is empty or equal to the initial answer left out), rebuilt from all of ``steps.jsonl``.
"""

import json
import os
import time
from collections import Counter
from pathlib import Path

from training.ml.cai_revise_config import CaiReviseConfig
from training.ml.configs import GenerateConfig
from training.ml.constitution import PrincipleSampler
from training.ml.events import EventWriter
from training.ml.generation import (
    Prompt,
    _decode,
    _generation_config,
    done_prompt_ids,
    load,
    prompt_budget,
    read_prompts,
)
from training.ml.hf_training import read_jsonl

STEPS_FILE, SFT_FILE, PAIRS_FILE = "steps.jsonl", "sft.jsonl", "pairs.jsonl"
STAGE_SEED_STRIDE = 100003


def render(tokenizer, messages: list[dict]) -> str:
    """The conversation so far, ready for the assistant's next turn."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    turns = [f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in messages]
    return "".join(turns) + "\n\nAssistant:"


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


class Stages:
    """One ``generate`` call per stage of a batch; counts inputs that lost tokens."""

    def __init__(self, model, tokenizer, gen: GenerateConfig, budget: int):
        self.model, self.tokenizer, self.gen, self.budget = model, tokenizer, gen, budget
        self.chat = bool(getattr(tokenizer, "chat_template", None))  # the template writes its special tokens
        self.truncated = 0

    def generate(self, conversations: list[list[dict]], seed: int) -> list[str]:
        import torch

        tokenizer = self.tokenizer
        texts = [render(tokenizer, c) for c in conversations]
        lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=not self.chat)["input_ids"]]
        self.truncated += sum(n > self.budget for n in lengths)
        batch = tokenizer(
            texts,
            add_special_tokens=not self.chat,
            padding=True,
            truncation=True,
            max_length=self.budget,
            return_tensors="pt",
        ).to(self.model.device)
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(**batch, generation_config=_generation_config(self.gen, tokenizer))
        new = output[:, batch["input_ids"].shape[1] :]
        return [_decode(tokenizer, row, tokenizer.pad_token_id, tokenizer.eos_token_id)[0].strip() for row in new]


def revise_batch(stages: Stages, prompts: list[Prompt], config: CaiReviseConfig, sampler: PrincipleSampler) -> list:
    """The steps.jsonl lines of one batch: initial answer, then critique and revision per round."""
    principles = {p["key"]: p for p in config.principles}
    seed = config.seed + prompts[0].index
    answers = stages.generate([[_user(p.text)] for p in prompts], seed)
    rows = [
        {"prompt_id": p.prompt_id, "prompt": p.text, "seed": config.seed + p.index, "initial": a, "rounds": []}
        for p, a in zip(prompts, answers, strict=True)
    ]
    for round_ in range(config.rounds):
        chosen = [principles[sampler.pick(p.index, round_)] for p in prompts]
        asked = [
            [_user(p.text), _assistant(answer), _user(principle["critique_request"])]
            for p, answer, principle in zip(prompts, answers, chosen, strict=True)
        ]
        critiques = stages.generate(asked, seed + STAGE_SEED_STRIDE * (2 * round_ + 1))
        asked = [
            [*conversation, _assistant(critique), _user(principle["revision_request"])]
            for conversation, critique, principle in zip(asked, critiques, chosen, strict=True)
        ]
        answers = stages.generate(asked, seed + STAGE_SEED_STRIDE * (2 * round_ + 2))
        for row, principle, critique, revision in zip(rows, chosen, critiques, answers, strict=True):
            row["rounds"].append(
                {
                    "principle": principle["key"],
                    "critique_request": principle["critique_request"],
                    "critique": critique,
                    "revision_request": principle["revision_request"],
                    "revision": revision,
                }
            )
    for row, answer in zip(rows, answers, strict=True):
        row["final"] = answer
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    os.replace(temporary, path)


def build_outputs(out_dir: Path) -> dict:
    """Write sft.jsonl and pairs.jsonl from every line of steps.jsonl; return metrics and counts."""
    steps = read_jsonl(out_dir / STEPS_FILE) if (out_dir / STEPS_FILE).exists() else []
    sft = [{"prompt_id": s["prompt_id"], "prompt": s["prompt"], "completion": s["final"]} for s in steps if s["final"]]
    pairs = [
        {"prompt_id": s["prompt_id"], "prompt": s["prompt"], "chosen": s["final"], "rejected": s["initial"]}
        for s in steps
        if s["final"] and s["final"] != s["initial"]
    ]
    _write_jsonl(out_dir / SFT_FILE, sft)
    _write_jsonl(out_dir / PAIRS_FILE, pairs)
    counts = Counter(r["principle"] for s in steps for r in s["rounds"])
    n = len(steps) or 1
    metrics = {
        "mean_initial_chars": sum(len(s["initial"]) for s in steps) / n,
        "mean_final_chars": sum(len(s["final"]) for s in steps) / n,
        "share_changed": sum(s["final"] != s["initial"] for s in steps) / n,
        "sft_rows": len(sft),
        "pairs": len(pairs),
        "pairs_skipped": len(steps) - len(pairs),
    }
    return {"steps": len(steps), "metrics": metrics, "principle_counts": dict(sorted(counts.items()))}


def run(config: CaiReviseConfig, out_dir: Path, events: EventWriter) -> dict:
    """Critique and revise every prompt not yet in ``out_dir/steps.jsonl``, then rebuild the SFT and pair files."""
    import torch

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts = read_prompts(config.prompts_file)
    target = out_dir / STEPS_FILE
    done = done_prompt_ids(target)
    todo = [p for p in prompts if json.dumps(p.prompt_id) not in done]
    if done:
        events.log(f"{len(prompts) - len(todo)} of {len(prompts)} prompts already revised; skipping them")
    sampler = PrincipleSampler(config.sampled_keys(), config.sampling, seed=config.seed, rounds=config.rounds)
    total, finished = len(prompts), len(prompts) - len(todo)
    events.progress(finished, total)

    if todo:
        started = time.monotonic()
        gen = config.generate_config()
        model, tokenizer = load(config.model_path, config.gguf_file, device=config.device, dtype=config.dtype)
        events.log(f"loaded {config.model_path} on {model.device} in {time.monotonic() - started:.1f} s")
        stages = Stages(model, tokenizer, gen, prompt_budget(model, gen))
        with open(target, "a", encoding="utf-8") as handle:
            for start in range(0, len(todo), config.batch_size):
                batch = todo[start : start + config.batch_size]
                rows = revise_batch(stages, batch, config, sampler)
                handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
                handle.flush()
                os.fsync(handle.fileno())
                finished += len(batch)
                events.artifact("steps", STEPS_FILE, count=finished, prompt_ids=[p.prompt_id for p in batch])
                events.progress(finished, total)
        if stages.truncated:
            events.log(
                f"{stages.truncated} stage inputs were longer than {stages.budget} tokens and lost tokens "
                "from the left",
                "warning",
            )

    built = build_outputs(out_dir)
    for name, value in built["metrics"].items():
        events.metric(name, value)
    for key, count in built["principle_counts"].items():
        events.metric(f"principle_count/{key}", count)
    events.artifact("sft", SFT_FILE, count=built["metrics"]["sft_rows"])
    events.artifact("pairs", PAIRS_FILE, count=built["metrics"]["pairs"])
    return {
        "prompts": total,
        "revised": len(todo),
        "files": {"steps": STEPS_FILE, "sft": SFT_FILE, "pairs": PAIRS_FILE},
        "metrics": built["metrics"],
        "principle_counts": built["principle_counts"],
    }
