"""Import rankings made in Label Studio or Argilla into a project, from a file or folder on this machine.

    python manage.py import_rankings PROJECT_ID PATH --format label_studio|argilla [--create-members]
        [--on-error skip] [--annotators '{"10": "bob"}'] [--bucket-order relevant,_ --failed-buckets biased]
        [--prompt-field prompt] [--completion-fields answer1,answer2] [--items-field items] [--question q]

PATH is a Label Studio JSON export, Argilla records (.json / .jsonl), a .zip / .tar.gz of a saved
dataset folder, or such a folder itself (a Hugging Face ``save_to_disk`` folder, or Argilla 2.x
``Dataset.to_disk``). The same import as ``POST /api/projects/{id}/imports/``: the same checks,
errors and member rules (labeling.services.external_imports).
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from common.exceptions import ServiceError
from labeling.external_formats import FORMATS
from labeling.models import Project
from labeling.services.external_imports import ON_ERROR, external_import


class Command(BaseCommand):
    help = "Import rankings from a Label Studio JSON export or Argilla ranking records (file, archive or folder)."

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("path")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--on-error", default="fail", choices=ON_ERROR)
        parser.add_argument("--eval-fraction", type=float, default=0.1)
        parser.add_argument(
            "--create-members", action="store_true", help="make the annotators who are not members labelers"
        )
        parser.add_argument("--annotators", default="", help='JSON object {"their id or email": "username"}')
        for option in (
            "prompt-field",
            "completion-fields",
            "items-field",
            "bucket-order",
            "failed-buckets",
            "question",
        ):
            parser.add_argument(f"--{option}", default="")

    def handle(self, *args, project_id: int, path: str, **options):
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project {project_id}.")
        source = Path(path)
        if not source.exists():
            raise CommandError(f"{path} does not exist.")
        fields = {
            name: options[name]
            for name in (
                "on_error",
                "eval_fraction",
                "create_members",
                "annotators",
                "prompt_field",
                "completion_fields",
                "items_field",
                "bucket_order",
                "failed_buckets",
                "question",
            )
        }
        try:
            if source.is_dir():
                result = external_import(
                    project=project, format=options["format"], folder=source, filename=source.name, **fields
                )
            else:
                with open(source, "rb") as stream:
                    result = external_import(
                        project=project, format=options["format"], stream=stream, filename=source.name, **fields
                    )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        members = result["members"]
        self.stdout.write(
            f"{result['comparisons_created']} comparisons created, {result['rankings_created']} rankings created "
            f"({result['comparisons_existing']} comparisons and {result['rankings_existing']} rankings were there "
            f"already); {result['unlabeled']} unlabeled, {result['skipped']} skipped; members created: "
            f"{', '.join(members['created']) or 'none'}, made labelers: {', '.join(members['added']) or 'none'}"
        )
        if members["created"]:
            self.stdout.write(
                "New accounts have no password: set one with `manage.py changepassword NAME` so they can sign in."
            )
