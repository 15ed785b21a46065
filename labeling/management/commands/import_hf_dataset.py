"""Import a Hugging Face dataset saved on local disk (``save_to_disk``) into a project.

    python manage.py import_hf_dataset PROJECT_ID /path/to/dataset [--name NAME] [--split-of-eval validation]

A DatasetDict's splits become the rows' splits (train; validation/eval/dev -> eval; test); a plain
Dataset gets stable hash splits like an upload. Rows go through the same import as an upload, so
the same checks and errors apply. The hub is never contacted.
"""

import json
from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ServiceError
from labeling.models import Project
from labeling.services.datasets import dataset_import

SPLIT_NAMES = {"train": "train", "validation": "eval", "valid": "eval", "eval": "eval", "dev": "eval", "test": "test"}


def hf_rows(dataset) -> Iterator[bytes]:
    """JSON lines of every row; a DatasetDict adds each row's split."""
    if hasattr(dataset, "keys"):  # DatasetDict
        unknown = [name for name in dataset if name not in SPLIT_NAMES]
        if unknown:
            raise CommandError(f"Unknown split name(s) {unknown}; expected some of {sorted(SPLIT_NAMES)}.")
        for name, part in dataset.items():
            for row in part:
                yield (json.dumps({**row, "split": SPLIT_NAMES[name]}, ensure_ascii=False) + "\n").encode()
    else:
        for row in dataset:
            yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


class Command(BaseCommand):
    help = "Import a Hugging Face dataset directory (saved with save_to_disk) into a project."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("path")
        parser.add_argument("--name", default="")
        parser.add_argument("--eval-fraction", type=float, default=0.1)

    def handle(self, *args, project_id: int, path: str, name: str, eval_fraction: float, **options):
        from datasets import load_from_disk  # offline: reads the Arrow files only

        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project {project_id}.")
        try:
            dataset = load_from_disk(path)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(f"{path} is not a dataset saved with save_to_disk: {exc}") from None
        try:
            imported = dataset_import(
                project=project,
                stream=hf_rows(dataset),
                filename=f"{name or path}.jsonl",
                name=name or path.rstrip("/").rsplit("/", 1)[-1],
                eval_fraction=eval_fraction,
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Imported {imported.row_count} rows into dataset {imported.pk} ({imported.name}): {imported.split_counts}"
        )
