"""A snapshot export is what TRL reads: load its JSONL with ``datasets`` and train a reward model one step
with TRL's ``RewardTrainer``, unchanged. No Django: the files come from the same pure writer the
snapshot build uses (``labeling.pairs``)."""

import math

import pytest

from labeling.pairs import COLUMNS, ComparisonData, PairOptions, RankingData, build_pairs, write_pair_files

pytestmark = pytest.mark.slow

WORDS = ["The", "answer", "is", "a", "short", "list", "of", "things", "to", "do", "first", "then", "stop"]


def export(folder, n_comparisons: int = 6, k: int = 3):
    comparisons, rankings = [], []
    for c in range(1, n_comparisons + 1):
        completions = {c * 10 + i: " " + " ".join(WORDS[(c + i) % len(WORDS) :][: 3 + i]) for i in range(k)}
        split = "eval" if c == n_comparisons else "train"
        comparisons.append(ComparisonData(id=c, prompt=f"Question {c}:", split=split, completions=completions))
        order = {"criterion": None, "ranks": {str(cid): rank for rank, cid in enumerate(completions, 1)}, "failed": []}
        rankings.append(RankingData(comparison_id=c, labeler_id=100 + c % 2, source="human", orders=[order]))
    result = build_pairs(comparisons, rankings, PairOptions())
    return write_pair_files(result.pairs, folder)


def test_reward_trainer_trains_one_step_on_an_exported_snapshot(
    tmp_path, monkeypatch, tiny_tokenizer, tiny_reward_model
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import torch
    from datasets import load_dataset
    from trl import RewardConfig, RewardTrainer

    files = export(tmp_path / "snapshot")
    data = load_dataset(
        "json",
        data_files={
            "train": str(tmp_path / "snapshot" / "train.jsonl"),
            "eval": str(tmp_path / "snapshot" / "eval.jsonl"),
        },
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert data["train"].num_rows == files["train.jsonl"]["rows"] == 15
    assert data["train"].column_names == list(COLUMNS)
    parquet = load_dataset(
        "parquet", data_files=str(tmp_path / "snapshot" / "train.parquet"), cache_dir=str(tmp_path / "hf-cache")
    )
    assert parquet["train"].column_names == list(COLUMNS) and parquet["train"].num_rows == 15

    model = tiny_reward_model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = RewardConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=1,
        learning_rate=1e-2,
        bf16=False,
        activation_checkpointing=False,  # transformers 5's name for gradient_checkpointing (TRL defaults it on)
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
        max_length=128,
        seed=0,
    )
    assert args.gradient_checkpointing is False and args.bf16 is False
    trainer = RewardTrainer(model=model, args=args, train_dataset=data["train"], processing_class=tiny_tokenizer)
    trainer.train()

    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(math.isfinite(loss) for loss in losses)
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert "score.weight" in changed
    assert any(name.startswith("model.layers.") for name in changed)
