"""Small builders for labeling rows (plain functions over the real services)."""

import io
import json

from labeling.services.comparisons import comparisons_import


def jsonl(rows) -> io.BytesIO:
    return io.BytesIO("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode())


def add_comparisons(project, n: int, *, gold: int = 0, prefix: str = "Prompt") -> None:
    k = project.completions_per_prompt
    rows = [{"prompt": f"{prefix} {i}", "completions": [f"answer {i}.{j}" for j in range(k)]} for i in range(n)]
    rows += [
        {
            "prompt": f"Gold {i}",
            "completions": [f"gold {i}.{j}" for j in range(k)],
            "gold": {"ranks": list(range(1, k + 1))},
        }
        for i in range(gold)
    ]
    comparisons_import(project=project, stream=jsonl(rows), filename="c.jsonl")


def ranks_best_first(lease_body: dict) -> dict:
    """A full strict order: the completion at position 0 best."""
    return {str(c["id"]): c["position"] + 1 for c in lease_body["completions"]}
