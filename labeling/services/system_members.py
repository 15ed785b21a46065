"""The non-human members whose rankings flow through the same tables as people's: "imported" (pairs
brought in from outside, e.g. HH-RLHF) and "ai" (an AI labeler, constitutional AI)."""

from django.contrib.auth import get_user_model

from labeling.models import LabelSource, Membership, Project, Role

User = get_user_model()

SYSTEM_USERNAMES = {LabelSource.IMPORTED: "rankforge-imported", LabelSource.AI: "rankforge-ai"}


def system_member(*, project: Project, source: str):
    """The system account for ``source``, made a member of ``project`` (it can never log in)."""
    user, created = User.objects.get_or_create(username=SYSTEM_USERNAMES[source], defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.LABELER})
    return user
