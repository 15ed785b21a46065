"""The streaming snapshot build (issue 13) against the list-based build it replaced, through the database.

A random project in the real tables (ties, F marks, two criteria, AI orders with ``ai.pairs``, gold
items, all sources, completions stored out of position order, texts that need escaping, a comparison
without rankings, one with a single completion, and a second project whose rows must stay out) is
built by ``snapshot_build`` -- server-side cursors in chunks, pairs written as they come -- and by
the old path (read everything, ``build_pairs`` over lists, whole-file writers; kept verbatim in
pairs_reference.py): same files byte for byte, same counts, same manifest but for the build time.
Runs on PostgreSQL and on SQLite (the same code path).
"""

import json
import random
from itertools import combinations

import pyarrow.parquet as pq
import pytest

from labeling import pair_files
from labeling.models import AlignmentCriterion, Comparison, Completion, PreferenceSnapshot, Ranking, SnapshotStatus
from labeling.pairs import ComparisonData, PairOptions, RankingData
from labeling.selectors import snapshot_rows
from labeling.services.projects import project_create
from labeling.services.snapshots import snapshot_build, snapshot_folder

from . import pairs_reference as reference

pytestmark = pytest.mark.django_db

TEXTS = ["plain", 'quote " backslash \\', "new\nline\ttab", "ünï — 中文 🙂", "\x01 control", ""]
OPTIONS = [
    {},
    {"mode": "consensus"},
    {"mode": "consensus", "consensus_threshold": 0.0, "include_gold": True},
    {"min_agreement": 0.5, "sources": ["human", "ai"]},
    {"min_gold_accuracy": 0.5},
    {"min_gold_accuracy": 0.4, "mode": "consensus", "criterion": "overall"},
]


def seed_project(make_user, *, seed: int, name: str = "Streamed"):
    rng = random.Random(seed)
    admin = make_user(f"admin-{name}", is_staff=True)
    project = project_create(created_by=admin, name=name, completions_per_prompt=3, overlap=3)
    criteria = [AlignmentCriterion.objects.create(project=project, name=f"c{i}", position=i).pk for i in range(2)]
    labelers = [make_user(f"{name}-labeler-{i}") for i in range(6)]
    for n in range(40):
        k = 1 if n == 7 else rng.choice([2, 3, 3, 4])
        is_gold = rng.random() < 0.15
        comparison = Comparison.objects.create(
            project=project,
            prompt=f"{rng.choice(TEXTS)} prompt {n}",
            split=rng.choice(["train", "train", "eval", "test"]),
            is_gold=is_gold,
        )
        positions = list(range(k))
        rng.shuffle(positions)  # ids do not follow positions
        by_position = {}
        for position in positions:
            by_position[position] = Completion.objects.create(
                comparison=comparison, position=position, text=f"{rng.choice(TEXTS)} answer {n}.{position}"
            ).pk
        ids = [by_position[p] for p in range(k)]
        if is_gold:
            comparison.gold = {"ranks": {str(i): r + 1 for r, i in enumerate(ids)}, "failed": []}
            comparison.save(update_fields=["gold"])
        if n == 3:
            continue  # no rankings at all
        for labeler in rng.sample(labelers, rng.randint(1, 5)):
            source = rng.choice(["human", "human", "ai", "imported"])
            orders = []
            for criterion in rng.choice([[None], [None], criteria, [criteria[0]]]):
                failed = [i for i in ids if rng.random() < 0.15]
                order = {
                    "criterion": criterion,
                    "ranks": {str(i): rng.randint(1, k) for i in ids if i not in failed},
                    "failed": failed,
                }
                if source == "ai":
                    order["ai"] = {
                        "pairs": [{"a": a, "b": b, "p_a": rng.choice([0.0, 0.3, 0.8])} for a, b in combinations(ids, 2)]
                    }
                orders.append(order)
            Ranking.objects.create(comparison=comparison, labeler=labeler, source=source, orders=orders)
    return project


def old_build(project_id: int, options: PairOptions, folder):
    """The old service path: every comparison and ranking read into memory, then the list-based build."""
    comparisons: dict[int, dict] = {}
    for row in (
        Comparison.objects.filter(project_id=project_id)
        .order_by("id")
        .values("id", "prompt", "split", "is_gold", "gold")
    ):
        comparisons[row["id"]] = {**row, "completions": {}}
    for comparison_id, completion_id, text in (
        Completion.objects.filter(comparison__project_id=project_id)
        .order_by("comparison_id", "position", "id")
        .values_list("comparison_id", "id", "text")
    ):
        comparisons[comparison_id]["completions"][completion_id] = text
    rankings = [
        RankingData(comparison_id=c, labeler_id=u, source=s, orders=o or [])
        for c, u, s, o in Ranking.objects.filter(comparison__project_id=project_id)
        .order_by("comparison_id", "labeler_id")
        .values_list("comparison_id", "labeler_id", "source", "orders")
    ]
    records = [ComparisonData(**row) for row in comparisons.values()]
    accuracy = reference.labeler_gold_accuracy(records, rankings)
    result = reference.build_pairs(records, rankings, options, gold_accuracy=accuracy)
    files = reference.write_pair_files(result.pairs, folder)
    excluded = sorted(
        labeler
        for labeler, value in accuracy.items()
        if options.min_gold_accuracy is not None and value < options.min_gold_accuracy
    )
    return {**result.counts, "files": {name: info["rows"] for name, info in files.items()}}, files, excluded


def without_hf(files: dict) -> dict:
    """The files the list-based build made too (the hf/ dataset folder came later: test_snapshot_hf.py)."""
    return {name: info for name, info in files.items() if not name.startswith("hf/")}


def hf_rows(files: dict) -> dict:
    return {name: info["rows"] for name, info in files.items() if name.startswith("hf/")}


def build(project, raw_options):
    snapshot = PreferenceSnapshot.objects.create(
        project=project,
        version=PreferenceSnapshot.objects.filter(project=project).count() + 1,
        options=PairOptions.from_dict(raw_options).to_dict(),
    )
    built = snapshot_build(snapshot_id=snapshot.pk)
    assert built.status == SnapshotStatus.READY, built.error
    folder = snapshot_folder(built)
    return built, folder, json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("raw_options", OPTIONS, ids=[json.dumps(o) for o in OPTIONS])
def test_snapshot_build_matches_the_list_based_build(make_user, tmp_path, monkeypatch, raw_options):
    project = seed_project(make_user, seed=11)
    seed_project(make_user, seed=12, name="Other")  # interleaved ids of another project stay out
    monkeypatch.setattr(snapshot_rows, "CHUNK_ROWS", 3)  # many chunks: the merge crosses their edges
    options = PairOptions.from_dict(raw_options)

    snapshot, folder, manifest = build(project, raw_options)
    counts, files, excluded = old_build(project.pk, options, tmp_path / "old")

    assert counts["pairs"] > 20, counts
    counts["files"] |= hf_rows(manifest["files"])
    assert snapshot.counts == counts
    assert manifest["counts"] == counts and without_hf(manifest["files"]) == files
    for split in ("train", "eval", "test"):
        if f"{split}.jsonl" in files:
            assert manifest["files"][f"hf/{split}/data-00000-of-00001.arrow"]["rows"] == files[f"{split}.jsonl"]["rows"]
    assert manifest["labelers_excluded_gold_accuracy"] == excluded
    assert manifest["options"] == options.to_dict()
    assert manifest["criteria"] == {str(c.pk): c.name for c in project.criteria.all()}
    for name in files:
        assert (folder / name).read_bytes() == (tmp_path / "old" / name).read_bytes(), name
    if options.min_gold_accuracy is not None:
        assert excluded, "the gold filter excluded nobody: the test would not see it"


def test_small_row_groups_keep_the_rows(make_user, tmp_path, monkeypatch):
    project = seed_project(make_user, seed=5)
    monkeypatch.setattr(pair_files, "ROW_GROUP_ROWS", 4)
    monkeypatch.setattr(pair_files, "JSONL_CHUNK_LINES", 5)
    _, folder, manifest = build(project, {})
    _, files, _ = old_build(project.pk, PairOptions(), tmp_path / "old")
    assert {name: info["rows"] for name, info in without_hf(manifest["files"]).items()} == {
        name: info["rows"] for name, info in files.items()
    }
    for name in files:
        if name.endswith(".jsonl"):
            assert manifest["files"][name] == files[name]
        else:
            new, old = pq.read_table(folder / name), pq.read_table(tmp_path / "old" / name)
            assert new.to_pylist() == old.to_pylist() and new.schema == old.schema
    assert pq.ParquetFile(folder / "train.parquet").metadata.num_row_groups > 1


def test_a_malformed_ranking_fails_the_build_and_leaves_no_files(make_user):
    project = seed_project(make_user, seed=3)
    comparison = project.comparisons.filter(is_gold=False).order_by("id").last()
    Ranking.objects.create(
        comparison=comparison,
        labeler=make_user("sloppy"),
        orders=[{"criterion": None, "ranks": {"1": "first"}, "failed": []}],
    )
    snapshot = PreferenceSnapshot.objects.create(project=project, version=1, options=PairOptions().to_dict())
    built = snapshot_build(snapshot_id=snapshot.pk)
    assert built.status == SnapshotStatus.FAILED and "is malformed" in built.error
    folder = snapshot_folder(built)
    assert not folder.exists() and list(folder.parent.iterdir()) == []  # the staging folder went too
