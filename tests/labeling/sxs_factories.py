"""Side-by-side evaluations for tests: registered versions, an evaluation made through the service,
and its generate runs' answers played through the same ingest the worker calls (no worker)."""

import json
from pathlib import Path
from unittest import mock

from labeling.models import Ranking, Role, SideBySideEval, SideBySidePair
from labeling.services.assignments import assignment_next, ranking_submit
from labeling.services.datasets import dataset_import
from labeling.services.templates import template_create
from models_registry.services import model_version_register
from training import tasks
from training.services import runs
from training.services.side_by_side import SamplesIngest, evaluation_create


def tiny_versions(folder: Path, project, n: int = 2, name: str = "policy"):
    """``n`` causal-lm versions of one model of ``project`` (files that are never loaded)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return [
        model_version_register(model_name=name, task="causal-lm", folder=folder, fmt="hf-folder", project_id=project.pk)
        for _ in range(n)
    ]


def questions_dataset(project, created_by, n: int = 4, split: str = "test"):
    rows = [{"question": f"Question number {i}?", "split": split} for i in range(n)]
    lines = iter([(json.dumps(r) + "\n").encode() for r in rows])
    dataset = dataset_import(project=project, stream=lines, filename="q.jsonl", created_by=created_by)
    template_create(project=project, name="qa", text="Q: {question}\nA:", dataset=dataset, make_default=True)
    project.refresh_from_db()
    return dataset


def make_evaluation(project, created_by, versions, dataset, **options) -> SideBySideEval:
    """An evaluation created by the service; its runs are queued but never sent to a broker."""
    with mock.patch.object(tasks, "enqueue_run"):
        return evaluation_create(
            project=project,
            created_by=created_by,
            versions=[v.pk for v in versions],
            dataset_id=dataset.pk,
            **options,
        )


def answer(evaluation: SideBySideEval, text_for=lambda entry, prompt: f"{entry.label} answers {prompt[-20:]}"):
    """Each entry's run writes one answer per prompt, ingested as the worker would; runs succeed."""
    for entry in evaluation.entries.order_by("position"):
        folder = runs.run_folder(entry.run_id)
        prompts = [json.loads(line) for line in (folder / "prompts.jsonl").read_text().splitlines()]
        with open(folder / "completions.jsonl", "w", encoding="utf-8") as handle:
            for p in prompts:
                completion = {"text": text_for(entry, p["prompt"]), "seed": 1, "params": {}, "tokens": 3}
                handle.write(json.dumps({"prompt_id": p["prompt_id"], "completions": [completion]}) + "\n")
        run = runs.TrainingRun.objects.get(pk=entry.run_id)
        handler = SamplesIngest.for_run(run, folder)
        handler.finish()
        runs.run_transition(run_id=run.pk, to="running")
        runs.run_transition(run_id=run.pk, to="succeeded")


def label_all(evaluation: SideBySideEval, labelers, prefer=lambda pair, labeler: "a") -> int:
    """Every labeler takes leases until none is left and votes ``prefer(pair, labeler)``: "a", "b",
    "tie" or "both_bad"; returns the rankings submitted."""
    submitted = 0
    for labeler in labelers:
        while (lease := assignment_next(project_id=evaluation.project_id, labeler=labeler)) is not None:
            pair = SideBySidePair.objects.get(comparison_id=lease.comparison.id)
            by_position = {c.position: c.id for c in lease.completions}
            a_id, b_id = by_position[pair.a_position], by_position[1 - pair.a_position]
            verdict = prefer(pair, labeler)
            payload = {
                "a": {"ranks": {a_id: 1, b_id: 2}},
                "b": {"ranks": {a_id: 2, b_id: 1}},
                "tie": {"ranks": {a_id: 1, b_id: 1}},
                "both_bad": {"ranks": {}, "failed": [a_id, b_id]},
            }[verdict]
            ranking_submit(assignment_id=lease.assignment.id, labeler=labeler, payload=payload)
            submitted += 1
    return submitted


def human_rankings(evaluation: SideBySideEval):
    return Ranking.objects.filter(comparison__project=evaluation.project, source="human")


__all__ = ["Role", "answer", "human_rankings", "label_all", "make_evaluation", "questions_dataset", "tiny_versions"]
