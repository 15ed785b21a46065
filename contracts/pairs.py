"""The columns of a preference snapshot's pair files: ``labeling.pair_files`` writes them (JSONL keys
in this order, Parquet columns of these names), ``training/ml`` reads them (reward model, DPO), and
``datasets.load_dataset`` loads them as they are.
"""

# ``prompt``/``chosen``/``rejected``/``margin`` are the names TRL reads.
COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "margin",
    "weight",
    "comparison_id",
    "labeler_id",
    "source",
    "criterion",
    "split",
    "agreement",
    "chosen_completion_id",
    "rejected_completion_id",
)

# What a file of preference pairs must have, whoever made it (a snapshot, a CAI run's pairs.jsonl);
# ``margin`` and ``weight`` are read when present.
REQUIRED_COLUMNS = ("prompt", "chosen", "rejected")
