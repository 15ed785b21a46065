"""Seed the embedded default's demo: an admin, three labelers, the HH-RLHF harmlessness project
(human preference pairs to rank and compare against), and "DialogSum summaries", whose completions
SmolLM2-135M-Instruct generates in a queued run while labelers work (when `import_pip_models` has
registered it).

The data are the slices shipped in ``training/demo_data`` (400 HH pairs, 150 dialogues), so a
clone with nothing beside it seeds; ``RANKFORGE_DEMO_DATA`` points at other files of those names.

Idempotent: a second run finds what exists and changes nothing. It lives in `training` because it
queues a generation run (labeling never imports training).
"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Membership, Project, Role
from labeling.services.constitutions import constitution_ensure_default
from labeling.services.datasets import dataset_import
from labeling.services.preferences import preferences_import
from labeling.services.projects import criterion_create, project_create, project_update
from labeling.services.templates import template_create
from models_registry.models import ModelAlias
from training.demo_data import DIALOGSUM, HH_HARMLESS, data_file
from training.services.generation import generation_run_create

User = get_user_model()

ADMIN = ("admin", "rankforge-admin")
LABELERS = [("labeler1", "rankforge-labeler"), ("labeler2", "rankforge-labeler"), ("labeler3", "rankforge-labeler")]
HH_PROJECT = "HH-RLHF harmlessness (demo)"
HH_INSTRUCTIONS = """Each task shows a conversation between a person and an AI assistant, and two possible
next replies from the assistant. Rank the replies: **1 is best**. Give both the same rank if you
cannot tell them apart. Mark a reply **F** if it is nonsense or off-task.

Prefer the reply that is *harmless*: it does not help with dangerous, illegal or hateful requests,
and declines politely, ideally explaining why or offering something safer. Some conversations
contain offensive text on purpose: that is what the model must learn to handle.
"""


DIALOGSUM_PROJECT = "DialogSum summaries (demo)"
DIALOGSUM_INSTRUCTIONS = """Each task shows a dialogue and summaries written by a small model (SmolLM2-135M-Instruct).
Rank the summaries: **1 is best**. A good summary says who did what and why, in one or two
sentences, and invents nothing. Mark a summary **F** if it is not a summary of this dialogue.
"""
# Zero-shot, as in the FLAN-T5 dialogue-summarization walkthrough.
DIALOGSUM_TEMPLATE = "Summarize the following conversation.\n\n{dialogue}\n\nSummary:"
GENERATOR = "SmolLM2-135M-Instruct"
DEMO_PROMPTS = 24  # a few minutes of CPU generation; more can be started from the API
DEMO_GENERATION = {"max_new_tokens": 64, "temperature": 0.8, "top_p": 0.95, "top_k": 50, "batch_size": 4}


def _demo_file(name: str) -> Path:
    """The slice shipped in ``training/demo_data`` (or ``$RANKFORGE_DEMO_DATA/name``)."""
    path = data_file(name)
    if not path.exists():
        raise CommandError(f"{path} is missing: set RANKFORGE_DEMO_DATA to a folder holding {name}.")
    return path


def ensure_user(username: str, password: str, **flags):
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, **flags)
        user.set_password(password)
        user.save()
    return user


class Command(BaseCommand):
    help = "Create the demo admin, labelers and HH-RLHF project (reuses them when they exist)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Printed as the place to sign in.")

    def handle(self, *args, url: str, **options):
        admin = ensure_user(*ADMIN, is_staff=True, is_superuser=True, email="admin@example.org")
        labelers = [ensure_user(name, password) for name, password in LABELERS]
        project = Project.objects.filter(name=HH_PROJECT).first()
        if project is None:
            path = _demo_file(HH_HARMLESS)
            project = project_create(
                created_by=admin,
                name=HH_PROJECT,
                instructions=HH_INSTRUCTIONS,
                completions_per_prompt=2,
                overlap=2,
                lease_seconds=900,
            )
            criterion_create(project=project, name="harmless", instructions="Prefer the reply that avoids harm.")
            with path.open("rb") as stream:
                result = preferences_import(project=project, stream=stream, filename=path.name, on_error="skip")
            self.stdout.write(
                f"Imported {result['created']} HH pairs into {HH_PROJECT!r} "
                f"(skipped {result['skipped']} rows whose transcripts differ before the last turn)."
            )
        for labeler in labelers:
            Membership.objects.get_or_create(project=project, user=labeler, defaults={"role": Role.LABELER})
        constitution_ensure_default(project=project, created_by=admin)  # ready for cai_revise / ai_feedback
        self.seed_dialogsum(admin, labelers)

        self.stdout.write(self.style.SUCCESS(f"\nRankForge is at {url}  (API docs: {url}api/docs/)"))
        self.stdout.write(f"  admin:    {ADMIN[0]} / {ADMIN[1]}")
        for name, password in LABELERS:
            self.stdout.write(f"  labeler:  {name} / {password}")

    def seed_dialogsum(self, admin, labelers) -> None:
        """The summarization project; its first generation run is queued once, when it is created."""
        if Project.objects.filter(name=DIALOGSUM_PROJECT).exists():
            return
        path = _demo_file(DIALOGSUM)
        project = project_create(
            created_by=admin,
            name=DIALOGSUM_PROJECT,
            instructions=DIALOGSUM_INSTRUCTIONS,
            completions_per_prompt=2,
            overlap=2,
            generation_config=DEMO_GENERATION,
        )
        for labeler in labelers:
            Membership.objects.create(project=project, user=labeler, role=Role.LABELER)
        with path.open("rb") as stream:
            dataset = dataset_import(project=project, stream=stream, filename=path.name, name="DialogSum dev")
        template_create(
            project=project, name="Zero-shot summary", text=DIALOGSUM_TEMPLATE, dataset=dataset, make_default=True
        )
        alias = ModelAlias.objects.select_related("version").filter(model__name=GENERATOR, name="production").first()
        if alias is None:
            self.stdout.write(
                f"{DIALOGSUM_PROJECT!r}: no {GENERATOR} in the registry, so no completions are generated; "
                "run `python manage.py import_pip_models`, then POST /api/projects/{id}/generate/."
            )
            return
        project = project_update(project=project, generation_model=alias.version)
        run = generation_run_create(
            project=project, created_by=admin, dataset_id=dataset.pk, split="train", limit=DEMO_PROMPTS
        )
        self.stdout.write(
            f"{DIALOGSUM_PROJECT!r}: queued run {run.pk}, {GENERATOR} writes {DEMO_PROMPTS} x 2 summaries; "
            "comparisons appear for labelers as batches finish."
        )
