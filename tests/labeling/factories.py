"""Small builders for labeling rows (plain functions over the real services)."""

import io
import json

from labeling.models import LabelSource, Ranking
from labeling.services.comparisons import comparisons_import
from labeling.services.projects import project_create
from labeling.services.system_members import system_member


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


def ai_ranked_project(make_user, name: str = "Faults"):
    """(admin, project): four comparisons (K=3), each ranked once by the AI member, ready to snapshot."""
    admin = make_user("boss", is_staff=True)
    project = project_create(created_by=admin, name=name, completions_per_prompt=3, overlap=1)
    add_comparisons(project, 4)
    ai = system_member(project=project, source=LabelSource.AI)
    for comparison in project.comparisons.all():
        ids = list(comparison.completions.order_by("position").values_list("id", flat=True))
        Ranking.objects.create(
            comparison=comparison,
            labeler=ai,
            source=LabelSource.AI,
            orders=[{"criterion": None, "ranks": {str(i): n + 1 for n, i in enumerate(ids)}, "failed": []}],
        )
    return admin, project
