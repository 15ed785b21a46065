"""32 labelers hammering `next` and submit at once on PostgreSQL: no comparison gets more than N
rankings, nobody ranks one comparison twice, and every accepted submission is stored."""

import threading
from collections import Counter

import pytest
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Comparison, Membership, Ranking, Role
from labeling.services.projects import project_create

from .factories import add_comparisons, ranks_best_first

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS, COMPARISONS, OVERLAP = 32, 40, 3


def test_32_labelers_at_once(make_user):
    admin = make_user("boss", is_staff=True)
    project = project_create(created_by=admin, name="Race", completions_per_prompt=3, overlap=OVERLAP)
    add_comparisons(project, COMPARISONS)
    tokens = []
    for i in range(THREADS):
        user = make_user(f"racer{i}")
        Membership.objects.create(project=project, user=user, role=Role.LABELER)
        tokens.append(Token.objects.create(user=user).key)

    accepted: list[tuple[int, int, int]] = []  # (ranking id, comparison id, labeler token index)
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def labeler(index: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[index]}")
        try:
            start.wait()
            for step in range(COMPARISONS):
                response = client.get(f"/api/projects/{project.id}/next/")
                if response.status_code == 204:
                    return
                if response.status_code != 200:
                    raise AssertionError(f"next: {response.status_code} {response.content[:200]!r}")
                lease = response.json()
                url = f"/api/assignments/{lease['assignment']['id']}/ranking/"
                if index % 8 == 0 and step == 1:  # some labelers skip one
                    assert client.post(url.replace("ranking", "skip")).status_code == 200
                    continue
                body = {"ranks": ranks_best_first(lease)}
                response = client.post(url, body, format="json")
                if response.status_code != 201:
                    raise AssertionError(f"submit: {response.status_code} {response.content[:200]!r}")
                if index % 4 == 0:  # a retry after a "dropped connection" returns the same ranking
                    again = client.post(url, body, format="json")
                    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
                with lock:
                    accepted.append((response.json()["id"], lease["comparison"]["id"], index))
        except Exception as exc:  # collected and reported by the main thread
            with lock:
                errors.append(f"labeler {index}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=labeler, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a labeler thread hung"
    assert errors == []

    per_comparison = Counter(Ranking.objects.values_list("comparison_id", flat=True))
    assert max(per_comparison.values()) <= OVERLAP
    assert sum(per_comparison.values()) == COMPARISONS * OVERLAP  # every slot got filled
    pairs = list(Ranking.objects.values_list("comparison_id", "labeler_id"))
    assert len(pairs) == len(set(pairs))
    stored = set(Ranking.objects.values_list("id", flat=True))
    assert {ranking_id for ranking_id, _, _ in accepted} <= stored
    assert len(accepted) == len(stored)
    for comparison in Comparison.objects.all():
        assert comparison.label_count == per_comparison[comparison.id]
