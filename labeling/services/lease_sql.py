"""The SQL of the labeling hot path (`next` and submit), written out by hand.

These two endpoints carry every labeler's every task; the ORM spent more CPU building their queries
than PostgreSQL spent running them. Everything else uses the ORM. Only table names from the models
are formatted into the statements; every value is a parameter. The statements run on PostgreSQL and
on SQLite (3.35+ for RETURNING); row locks are PostgreSQL's, SQLite serializes writers instead.
"""

import json
from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime

from labeling.models import AlignmentCriterion, Assignment, Comparison, Completion, Membership, Project, Ranking

A = Assignment._meta.db_table
C = Comparison._meta.db_table
K = Completion._meta.db_table
M = Membership._meta.db_table
P = Project._meta.db_table
R = Ranking._meta.db_table
CRIT = AlignmentCriterion._meta.db_table
LIVE = "state = 'leased' AND expires_at > %s"


def locks() -> bool:
    return connection.features.has_select_for_update


def at(value: datetime):
    """A datetime as the database driver wants it."""
    return connection.ops.adapt_datetimefield_value(value)


def as_datetime(value) -> datetime:
    """A datetime read back by a raw query: aware on PostgreSQL, a string on SQLite."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def fetchone(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetchall(sql: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def membership_with_live_lease(*, project_id: int, user_id: int, now):
    """(overlap, lease_seconds, gold_rate, live lease id | None), or None for a non-member.

    Locks the membership row: one labeler's concurrent `next` calls run one after the other.
    """
    lock = f" FOR UPDATE OF {M}" if locks() else ""
    return fetchone(
        f"SELECT p.overlap, p.lease_seconds, p.gold_rate, (SELECT id FROM {A} WHERE labeler_id = %s"
        f" AND project_id = %s AND {LIVE} ORDER BY id LIMIT 1) FROM {M} JOIN {P} p ON p.id = {M}.project_id"
        f" WHERE {M}.project_id = %s AND {M}.user_id = %s{lock}",
        [user_id, project_id, at(now), project_id, user_id],
    )


def membership_and_candidate(*, project_id: int, user_id: int, now, draw: float):
    """PostgreSQL: :func:`membership_with_live_lease` plus, when the labeler holds no live lease, the
    comparison :func:`lock_candidate` would lock first (gold when ``draw`` < the project's gold rate),
    in one statement: (overlap, lease_seconds, gold_rate, live lease id | None, candidate id | None).

    The candidate is locked before the membership row; if this labeler's own concurrent call holds
    that row, the statement waits for it with a candidate that may be stale, and the insert's fresh
    check of the labeler's live leases refuses it (the service then serves the other call's lease).
    """
    own_live = f"SELECT id FROM {A} WHERE labeler_id = %s AND project_id = %s AND {LIVE} ORDER BY id LIMIT 1"
    live = f"(SELECT COUNT(*) FROM {A} WHERE comparison_id = c.id AND {LIVE})"
    return fetchone(
        f"SELECT p.overlap, p.lease_seconds, p.gold_rate, ({own_live}), candidate.id"
        f" FROM {M} m JOIN {P} p ON p.id = m.project_id LEFT JOIN LATERAL"
        f" (SELECT c.id FROM {C} c WHERE c.project_id = p.id AND c.is_gold = (%s < p.gold_rate) AND c.human_queue"
        f" AND NOT EXISTS (SELECT 1 FROM {A} WHERE comparison_id = c.id AND labeler_id = m.user_id)"
        f" AND NOT EXISTS (SELECT 1 FROM {R} WHERE comparison_id = c.id AND labeler_id = m.user_id)"
        f" AND (c.is_gold OR (c.label_count < p.overlap AND c.label_count + {live} < p.overlap))"
        f" AND NOT EXISTS ({own_live})"
        f" ORDER BY c.label_count, c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED) candidate ON true"
        f" WHERE m.project_id = %s AND m.user_id = %s FOR UPDATE OF m",
        [user_id, project_id, at(now), draw, at(now), user_id, project_id, at(now), project_id, user_id],
    )


def lock_candidate(*, project_id: int, user_id: int, now, gold: bool, overlap: int, exclude: list[int]):
    """The comparison this labeler should get next (fewest labels first), locked, or None.

    Comparisons an AI labeled are left out unless they were kept for a human spot check (human_queue),
    and so are the ones the labeler already has a ranking on without a lease here (an import of their
    Label Studio or Argilla work: labeling.services.external_imports).

    Skips rows other transactions hold: concurrent labelers spread over the queue instead of queueing.
    """
    params: list = [project_id, gold, True, user_id, user_id]
    room = ""
    if not gold:  # gold items go to every labeler once; overlap does not apply
        live = f"(SELECT COUNT(*) FROM {A} WHERE comparison_id = c.id AND {LIVE})"
        room = f" AND c.label_count < %s AND c.label_count + {live} < %s"
        params += [overlap, at(now), overlap]
    skip = ""
    if exclude:
        skip = f" AND c.id NOT IN ({', '.join(['%s'] * len(exclude))})"
        params += exclude
    lock = " FOR UPDATE OF c SKIP LOCKED" if locks() else ""
    row = fetchone(
        f"SELECT c.id FROM {C} c WHERE c.project_id = %s AND c.is_gold = %s AND c.human_queue = %s"
        f" AND NOT EXISTS (SELECT 1 FROM {A} WHERE comparison_id = c.id AND labeler_id = %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {R} WHERE comparison_id = c.id AND labeler_id = %s){room}{skip}"
        f" ORDER BY c.label_count, c.id LIMIT 1{lock}",
        params,
    )
    return row[0] if row else None


def insert_lease(*, comparison_id: int, project_id: int, user_id: int, now, until, overlap: int | None):
    """Insert the lease unless, in this statement's fresh snapshot, the slot filled up or the labeler
    got another live lease meanwhile. ``overlap=None`` (gold) skips the slot check.

    Returns the lease's rows as :func:`lease_with_completions` gives them (empty when refused): on
    PostgreSQL the insert and the read are one statement, a round trip fewer on every ``next``.
    """
    params = [comparison_id, project_id, user_id, at(now), at(until), user_id, project_id, at(now)]
    room = ""
    if overlap is not None:
        room = (
            f" AND (SELECT label_count FROM {C} WHERE id = %s)"
            f" + (SELECT COUNT(*) FROM {A} WHERE comparison_id = %s AND {LIVE}) < %s"
        )
        params += [comparison_id, comparison_id, at(now), overlap]
    insert = (
        f"INSERT INTO {A} (comparison_id, project_id, labeler_id, state, created_at, expires_at, finished_at)"
        f" SELECT %s, %s, %s, 'leased', %s, %s, NULL WHERE NOT EXISTS"
        f" (SELECT 1 FROM {A} WHERE labeler_id = %s AND project_id = %s AND {LIVE}){room}"
    )
    if connection.vendor != "postgresql":  # SQLite has no INSERT inside WITH
        row = fetchone(f"{insert} RETURNING id", params)
        return lease_with_completions(row[0]) if row else []
    return fetchall(
        f"WITH a AS ({insert} RETURNING id, created_at, expires_at, comparison_id)"
        f" SELECT a.created_at, a.expires_at, c.id, c.prompt, k.id, k.position, k.text, a.id FROM a"
        f" JOIN {C} c ON c.id = a.comparison_id JOIN {K} k ON k.comparison_id = c.id ORDER BY k.position",
        params,
    )


def live_lease_id(*, project_id: int, user_id: int, now) -> int | None:
    row = fetchone(
        f"SELECT id FROM {A} WHERE labeler_id = %s AND project_id = %s AND {LIVE} ORDER BY id LIMIT 1",
        [user_id, project_id, at(now)],
    )
    return row[0] if row else None


def lease_with_completions(assignment_id: int):
    """Rows of (assignment created_at, expires_at, comparison id, prompt, completion id, position, text,
    assignment id)."""
    return fetchall(
        f"SELECT a.created_at, a.expires_at, c.id, c.prompt, k.id, k.position, k.text, a.id FROM {A} a"
        f" JOIN {C} c ON c.id = a.comparison_id JOIN {K} k ON k.comparison_id = c.id"
        f" WHERE a.id = %s ORDER BY k.position",
        [assignment_id],
    )


def lock_assignment(assignment_id: int, *, lock: bool = True):
    """The assignment with what a submit needs, its row and its comparison's row locked (unless
    ``lock=False``):
    (labeler_id, state, expires_at, comparison_id, label_count, is_gold, project_id, overlap,
    rank_per_criterion, whether the labeler is still a member of the project, the comparison's
    completion ids by position).

    The membership check and the completion ids ride in this query (no extra round trips). Removing
    a member revokes their leases under the same row locks, so a submit that waited on one sees
    ``state = 'revoked'``."""
    lock = " FOR UPDATE OF a, c" if lock and locks() else ""
    ids = f"SELECT k.id FROM {K} k WHERE k.comparison_id = c.id ORDER BY k.position"
    ids = f"ARRAY({ids})" if connection.vendor == "postgresql" else f"(SELECT json_group_array(id) FROM ({ids}))"
    row = fetchone(
        f"SELECT a.labeler_id, a.state, a.expires_at, a.comparison_id, c.label_count, c.is_gold, p.id,"
        f" p.overlap, p.rank_per_criterion,"
        f" EXISTS (SELECT 1 FROM {M} m WHERE m.project_id = p.id AND m.user_id = a.labeler_id), {ids}"
        f" FROM {A} a JOIN {C} c ON c.id = a.comparison_id"
        f" JOIN {P} p ON p.id = c.project_id WHERE a.id = %s{lock}",
        [assignment_id],
    )
    if row is None or not isinstance(row[-1], str):
        return row
    return (*row[:-1], json.loads(row[-1]))


def criteria(project_id: int) -> list[tuple[int, str]]:
    return fetchall(f"SELECT id, name FROM {CRIT} WHERE project_id = %s ORDER BY position, id", [project_id])


def other_live_leases(*, comparison_id: int, assignment_id: int, now) -> int:
    return fetchone(
        f"SELECT COUNT(*) FROM {A} WHERE comparison_id = %s AND id <> %s AND {LIVE}",
        [comparison_id, assignment_id, at(now)],
    )[0]


def insert_ranking(*, comparison_id, user_id, assignment_id, source, orders, comment, time_spent_ms, now) -> int:
    """Store the ranking, mark its lease submitted and count it on the comparison; returns its id.

    On PostgreSQL the three writes are one statement (one round trip); a second ranking of the same
    comparison by the same labeler fails the whole statement (IntegrityError) and changes nothing.
    """
    orders_value = Ranking._meta.get_field("orders").get_db_prep_value(orders, connection)
    insert = (
        f"INSERT INTO {R} (comparison_id, labeler_id, assignment_id, source, orders, comment, time_spent_ms,"
        f" created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )
    params = [comparison_id, user_id, assignment_id, source, orders_value, comment, time_spent_ms, at(now)]
    lease = f"UPDATE {A} SET state = 'submitted', finished_at = %s WHERE id = %s"
    lease_params = [at(now), assignment_id]
    count = f"UPDATE {C} SET label_count = label_count + 1 WHERE id = %s"
    if connection.vendor != "postgresql":  # SQLite has no UPDATE inside WITH
        ranking_id = fetchone(insert, params)[0]
        execute(lease, lease_params)
        execute(count, [comparison_id])
        return ranking_id
    return fetchone(
        f"WITH r AS ({insert}), a AS ({lease} RETURNING 1), c AS ({count} RETURNING 1) SELECT r.id FROM r, a, c",
        [*params, *lease_params, comparison_id],
    )[0]


def store_ranking_if_leased(*, assignment_id, user_id, source, orders, comment, time_spent_ms, now) -> int | None:
    """PostgreSQL, in autocommit: in one statement, lock the labeler's lease if it is still live,
    store the ranking, mark the lease submitted and count it on the comparison. Returns the ranking's
    id, or None when nothing was written: the lease changed after it was read (revoked, submitted,
    expired) or the labeler already has a ranking on the comparison.

    A lease revoked or submitted meanwhile is seen: the row lock waits for that transaction and then
    re-checks the row's newest version. The comparison's count changes as the lease stops being live,
    in the same commit, so a concurrent ``next`` counts the slot once either way."""
    orders_value = Ranking._meta.get_field("orders").get_db_prep_value(orders, connection)
    return (
        fetchone(
            f"WITH a AS (SELECT id, comparison_id FROM {A} WHERE id = %s AND labeler_id = %s AND {LIVE} FOR UPDATE),"
            f" r AS (INSERT INTO {R} (comparison_id, labeler_id, assignment_id, source, orders, comment,"
            f" time_spent_ms, created_at) SELECT a.comparison_id, %s, a.id, %s, %s, %s, %s, %s FROM a"
            f" ON CONFLICT DO NOTHING RETURNING id, comparison_id, assignment_id),"
            f" s AS (UPDATE {A} SET state = 'submitted', finished_at = %s"
            f" WHERE id = (SELECT assignment_id FROM r) RETURNING 1),"
            f" n AS (UPDATE {C} SET label_count = label_count + 1 WHERE id = (SELECT comparison_id FROM r) RETURNING 1)"
            f" SELECT r.id FROM r, s, n",
            [assignment_id, user_id, at(now), user_id, source, orders_value, comment, time_spent_ms, at(now), at(now)],
        )
        or [None]
    )[0]


def skip(*, assignment_id: int, now) -> None:
    execute(f"UPDATE {A} SET state = 'skipped', finished_at = %s WHERE id = %s", [at(now), assignment_id])


def ranking_of_assignment(assignment_id: int):
    """(id, comparison_id, orders, comment, time_spent_ms, created_at) of the assignment's ranking."""
    row = fetchone(
        f"SELECT id, comparison_id, orders, comment, time_spent_ms, created_at FROM {R} WHERE assignment_id = %s",
        [assignment_id],
    )
    orders = row[2] if not isinstance(row[2], str) else json.loads(row[2])
    return (*row[:2], orders, *row[3:])
