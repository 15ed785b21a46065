"""Seed the embedded default's demo: an admin, three labelers and the HH-RLHF harmlessness project.

Idempotent: a second run finds what exists and changes nothing.
"""

import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Membership, Project, Role
from labeling.services.preferences import preferences_import
from labeling.services.projects import criterion_create, project_create

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


def data_dir() -> Path:
    return Path(os.environ.get("RANKFORGE_DEMO_DATA", settings.BASE_DIR.parent / "shared" / "data"))


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
            path = data_dir() / "hh-harmless.sample.jsonl"
            if not path.exists():
                raise CommandError(f"{path} is missing: set RANKFORGE_DEMO_DATA to the folder holding it.")
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

        self.stdout.write(self.style.SUCCESS(f"\nRankForge is at {url}  (API docs: {url}api/docs/)"))
        self.stdout.write(f"  admin:    {ADMIN[0]} / {ADMIN[1]}")
        for name, password in LABELERS:
            self.stdout.write(f"  labeler:  {name} / {password}")
