"""The ``ai_feedback`` run kind: an AI labeler for RLAIF (Bai et al. 2022; DESIGN.md, The ML). Pure
ML: no Django. Config: :class:`training.ml.ai_feedback_config.AiFeedbackConfig`.

Each unordered pair (a, b) of a comparison's completions (in file order) becomes the paper's
multiple-choice question::

    Consider the following conversation between a human and an assistant:
    {prompt}
    {choice_question}
    Options:
    (A) {a}
    (B) {b}
    The answer is: (

(with ``use_chat_template`` and a tokenizer that has a template: everything up to the options in a
user turn, the assistant's turn prefilled with ``The answer is: (``). The model's next-token logits
for ``A`` and ``B`` (the first token each adds after the question) are normalized over the two:
``p(A) = softmax([l_A, l_B])[0]``. With ``both_orders`` the pair is also asked as (b, a), and the
probability that a is better is ``(p_A(a, b) + p_B(b, a)) / 2``: a model that favours a position
gets 0.5, not a false preference. A question longer than ``max_length`` tokens loses conversation
text from the left; only when the options alone do not fit does the tokenizer cut the rest.

Ranks: two completions -> the likelier one rank 1, the other 2 (both 1 only when p is exactly 0.5);
more -> by expected wins (the sum of a completion's pairwise probabilities), equal scores tied
(competition ranking: 1, 1, 3).

Output, in ``out_dir``: ``judgments.jsonl``, one line per comparison, appended (and fsynced) after
every batch of ``batch_size`` comparisons; a rerun skips the comparisons already there::

    {"comparison_id", "principle", "ranks": {"<completion id>": rank},
     "pairs": [{"a", "b", "p_a_first", "p_a_second", "p_a"}], "probability"}

``p_a_first``: p(a better) with a shown as (A); ``p_a_second``: with a shown as (B) (null without
both_orders); ``p_a``: the combined value; ``probability``: the winner's ``p`` for two completions
(null for more). Metrics over the whole file: ``position_bias`` (the mean p of choosing (A) over
all questions asked, minus 0.5), ``order_consistency`` (the share of pairs preferring the same
completion in both orders; null without both_orders), ``ties``, ``mean_confidence`` (mean |p_a - 0.5|).
"""

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from training.ml.ai_feedback_config import AiFeedbackConfig
from training.ml.constitution import ANSWER_PREFIX, PrincipleSampler, choice_question_text
from training.ml.events import EventWriter
from training.ml.generation import format_prompt, load
from training.ml.hf_training import read_jsonl

JUDGMENTS_FILE = "judgments.jsonl"


@dataclass(frozen=True)
class Comparison:
    index: int  # position in the file: the principle sampling seed
    comparison_id: Any
    prompt: str
    completions: tuple[tuple[Any, str], ...]  # (id, text)


def _is_id(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def read_comparisons(path: str | Path) -> list[Comparison]:
    """The comparisons of a JSONL file; a bad line raises ValueError naming the line and field."""
    comparisons: list[Comparison] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected an object with comparison_id, prompt and completions")
            if not _is_id(row.get("comparison_id")):
                raise ValueError(f"{where}, field 'comparison_id': expected an integer or a string")
            if json.dumps(row["comparison_id"]) in seen:
                raise ValueError(f"{where}, field 'comparison_id': {row['comparison_id']!r} appears twice")
            seen.add(json.dumps(row["comparison_id"]))
            if not isinstance(row.get("prompt"), str):
                raise ValueError(f"{where}, field 'prompt': expected a string")
            completions = row.get("completions")
            if not isinstance(completions, list) or len(completions) < 2:
                raise ValueError(f"{where}, field 'completions': expected a list of two or more {{id, text}}")
            ids: set[str] = set()
            for i, completion in enumerate(completions):
                field = f"{where}, field 'completions[{i}]"
                if not isinstance(completion, dict):
                    raise ValueError(f"{field}': expected an object with id and text")
                if not _is_id(completion.get("id")):
                    raise ValueError(f"{field}.id': expected an integer or a string")
                if str(completion["id"]) in ids:
                    raise ValueError(f"{field}.id': {completion['id']!r} appears twice")
                ids.add(str(completion["id"]))
                if not isinstance(completion.get("text"), str):
                    raise ValueError(f"{field}.text': expected a string")
            comparisons.append(
                Comparison(
                    index=len(comparisons),
                    comparison_id=row["comparison_id"],
                    prompt=row["prompt"],
                    completions=tuple((c["id"], c["text"]) for c in completions),
                )
            )
    return comparisons


def done_ids(path: Path, key: str) -> set[str]:
    """Ids (as JSON) already in a JSONL output; a torn last line (a killed run) is cut off."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
    return {json.dumps(json.loads(line)[key]) for line in data[:end].splitlines() if line.strip()}


class Labeler:
    """Asks the model the multiple-choice question; ``p_first`` gives p(the answer is (A))."""

    def __init__(self, model, tokenizer, *, max_length: int, use_chat_template: bool = True):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self.chat = use_chat_template and bool(getattr(tokenizer, "chat_template", None))
        self.answer_ids = self._answer_token_ids(self.render("Human: hi", "Which is better?", "x", "y"))

    def render(self, conversation: str, question: str, a: str, b: str) -> str:
        text = choice_question_text(conversation, question, a, b)
        if self.chat:
            return format_prompt(self.tokenizer, text.rstrip("\n")) + ANSWER_PREFIX
        return text + ANSWER_PREFIX

    def length(self, text: str) -> int:
        # A chat template writes its own special tokens.
        return len(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def fit(self, conversation: str, question: str, a: str, b: str) -> tuple[str, bool]:
        """The question within ``max_length`` tokens (conversation cut from the left) and whether it was cut."""
        text = self.render(conversation, question, a, b)
        over = self.length(text) - self.max_length
        if over <= 0:
            return text, False
        conversation_ids = self.tokenizer(conversation, add_special_tokens=False)["input_ids"]
        cut = over
        while cut < len(conversation_ids):
            # Token boundaries move when text is re-tokenized: measure again and cut more if needed.
            text = self.render(self.tokenizer.decode(conversation_ids[cut:]), question, a, b)
            over = self.length(text) - self.max_length
            if over <= 0:
                return text, True
            cut += over
        return self.render("", question, a, b), True  # the options alone are too long: the tokenizer cuts

    def _answer_token_ids(self, text: str) -> tuple[int, int]:
        """The first token that "A" (and "B") adds after the question, as the model would see it."""
        base = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        found = []
        for letter in "AB":
            ids = self.tokenizer(text + letter, add_special_tokens=False)["input_ids"]
            if len(ids) <= len(base) or ids[: len(base)] != base:
                raise ValueError(f"the tokenizer merges {letter!r} into the text before it; cannot read the answer")
            found.append(ids[len(base)])
        if found[0] == found[1]:
            raise ValueError("'A' and 'B' start with the same token; cannot tell the answers apart")
        return found[0], found[1]

    def p_first(self, texts: list[str]) -> list[float]:
        """p(A) normalized over the A and B tokens, for each question (one left-padded batch)."""
        import torch

        batch = self.tokenizer(
            texts,
            add_special_tokens=not self.chat,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.model.device)
        mask = batch["attention_mask"]
        # Positions from the mask: a left-padded row must see the positions it would see alone.
        kwargs = {
            "input_ids": batch["input_ids"],
            "attention_mask": mask,
            "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
            "use_cache": False,
        }
        with torch.inference_mode():
            try:
                logits = self.model(**kwargs, logits_to_keep=1).logits[:, -1]
            except TypeError:  # a model without logits_to_keep
                logits = self.model(**kwargs).logits[:, -1]
            pair = logits[:, list(self.answer_ids)].float()
            return torch.softmax(pair, dim=-1)[:, 0].tolist()


def rank(ids: list, beats: dict[tuple[int, int], float]) -> dict[str, int]:
    """Ranks by expected wins; ``beats[(i, j)]`` (i < j) is p(completion i is better than j)."""
    scores = [0.0] * len(ids)
    for (i, j), p in beats.items():
        scores[i] += p
        scores[j] += 1 - p
    if len(ids) > 2:  # sums of floats: equal up to rounding is equal
        scores = [round(s, 9) for s in scores]
    return {str(ids[i]): 1 + sum(other > scores[i] for other in scores) for i in range(len(ids))}


def judge_batch(
    labeler: Labeler, comparisons: list[Comparison], keys: list[str], config: AiFeedbackConfig, questions: dict
) -> tuple[list[dict], int]:
    """The judgments.jsonl lines of a batch of comparisons, and how many questions were cut."""
    queries, texts, cut = [], [], 0
    for c, key in zip(comparisons, keys, strict=True):
        for i, j in combinations(range(len(c.completions)), 2):
            for swapped in (False, True) if config.both_orders else (False,):
                x, y = c.completions[i][1], c.completions[j][1]
                a, b = (y, x) if swapped else (x, y)
                text, was_cut = labeler.fit(c.prompt, questions[key], a, b)
                queries.append((c.index, i, j, swapped))
                texts.append(text)
                cut += was_cut
    probabilities: list[float] = []
    for start in range(0, len(texts), config.batch_size):
        probabilities += labeler.p_first(texts[start : start + config.batch_size])
    p_of = dict(zip(queries, probabilities, strict=True))

    lines = []
    for c, key in zip(comparisons, keys, strict=True):
        pairs, beats = [], {}
        for i, j in combinations(range(len(c.completions)), 2):
            first = p_of[(c.index, i, j, False)]
            # Asked as (b, a): p(A) is p(b better), so p(a better) is 1 - p(A).
            second = 1 - p_of[(c.index, i, j, True)] if config.both_orders else None
            combined = (first + second) / 2 if second is not None else first
            beats[(i, j)] = combined
            pairs.append(
                {
                    "a": c.completions[i][0],
                    "b": c.completions[j][0],
                    "p_a_first": first,
                    "p_a_second": second,
                    "p_a": combined,
                }
            )
        ids = [completion_id for completion_id, _ in c.completions]
        probability = max(beats[(0, 1)], 1 - beats[(0, 1)]) if len(ids) == 2 else None
        lines.append(
            {
                "comparison_id": c.comparison_id,
                "principle": key,
                "ranks": rank(ids, beats),
                "pairs": pairs,
                "probability": probability,
            }
        )
    return lines, cut


def _sign(p: float) -> int:
    return (p > 0.5) - (p < 0.5)


def summarize(path: Path) -> tuple[dict, dict]:
    """Metrics and principle counts over every judgment in the file."""
    judgments = read_jsonl(path) if path.exists() else []
    chose_a, consistent, both, confidence, ties = [], 0, 0, [], 0
    for judgment in judgments:
        ties += len(set(judgment["ranks"].values())) < len(judgment["ranks"])
        for pair in judgment["pairs"]:
            chose_a.append(pair["p_a_first"])
            confidence.append(abs(pair["p_a"] - 0.5))
            if pair["p_a_second"] is not None:
                chose_a.append(1 - pair["p_a_second"])  # the (b, a) question: (A) is b
                both += 1
                consistent += _sign(pair["p_a_first"]) == _sign(pair["p_a_second"])
    metrics = {
        "position_bias": sum(chose_a) / len(chose_a) - 0.5 if chose_a else None,
        "order_consistency": consistent / both if both else None,
        "ties": ties,
        "mean_confidence": sum(confidence) / len(confidence) if confidence else None,
    }
    counts = Counter(j["principle"] for j in judgments)
    return metrics, dict(sorted(counts.items()))


def run(config: AiFeedbackConfig, out_dir: Path, events: EventWriter) -> dict:
    """Judge every comparison not yet in ``out_dir/judgments.jsonl``; returns a summary."""
    import torch

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    comparisons = read_comparisons(config.comparisons_file)
    target = out_dir / JUDGMENTS_FILE
    done = done_ids(target, "comparison_id")
    todo = [c for c in comparisons if json.dumps(c.comparison_id) not in done]
    if done:
        events.log(f"{len(comparisons) - len(todo)} of {len(comparisons)} comparisons already judged; skipping them")
    questions = {p["key"]: p["choice_question"] for p in config.principles}
    sampler = PrincipleSampler(list(questions), "random", seed=config.seed)
    total, finished = len(comparisons), len(comparisons) - len(todo)
    events.progress(finished, total)

    if todo:
        started = time.monotonic()
        model, tokenizer = load(config.model_path, config.gguf_file, device=config.device, dtype=config.dtype)
        labeler = Labeler(model, tokenizer, max_length=config.max_length, use_chat_template=config.use_chat_template)
        events.log(
            f"loaded {config.model_path} on {model.device} in {time.monotonic() - started:.1f} s "
            f"({'chat template' if labeler.chat else 'plain text'}, answer tokens {labeler.answer_ids})"
        )
        cut = 0
        with open(target, "a", encoding="utf-8") as handle:
            for start in range(0, len(todo), config.batch_size):
                batch = todo[start : start + config.batch_size]
                keys = [config.principle or sampler.pick(c.index) for c in batch]
                lines, batch_cut = judge_batch(labeler, batch, keys, config, questions)
                handle.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
                handle.flush()
                os.fsync(handle.fileno())
                cut += batch_cut
                finished += len(batch)
                ids = [c.comparison_id for c in batch]
                events.artifact("judgments", JUDGMENTS_FILE, count=finished, comparison_ids=ids)
                events.progress(finished, total)
        if cut:
            events.log(
                f"{cut} questions were longer than {config.max_length} tokens and lost conversation text from the left",
                "warning",
            )

    metrics, principle_counts = summarize(target)
    for name, value in metrics.items():
        if value is not None:
            events.metric(name, value)
    return {
        "comparisons": total,
        "judged": len(todo),
        "file": JUDGMENTS_FILE,
        "metrics": metrics,
        "principle_counts": principle_counts,
    }
