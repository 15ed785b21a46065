import pytest
from django.core.management import call_command

from labeling.models import Comparison, Membership, Project, Ranking

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "admin / rankforge-admin" in out and "labeler3 / rankforge-labeler" in out
    counts = (Project.objects.count(), Comparison.objects.count(), Ranking.objects.count(), Membership.objects.count())
    assert counts[1] == 1597
    call_command("seed_demo")
    again = (Project.objects.count(), Comparison.objects.count(), Ranking.objects.count(), Membership.objects.count())
    assert again == counts
