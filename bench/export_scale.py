"""Export at scale: build preference snapshots of 1M and 10M rankings and measure time and peak memory.

    DATABASE_URL=postgres://... python bench/export_scale.py [--rankings 1000000,10000000]
        [--modes per_labeler,consensus] [--labelers 3] [--k 2] [--keep] [--profile]

For each size it seeds one project straight into the real tables with SQL (``INSERT ... SELECT
generate_series``): ``ceil(rankings / labelers)`` comparisons of K completions, one human ranking
per comparison and labeler, orders in the JSON the submit service writes (``[{"criterion": null,
"ranks": {"<completion id>": rank}, "failed": [ids]}]``: mostly the same order, some reversed, some
ties, some F marks), 1% gold comparisons with a known order, splits 90/5/5. Then, per mode, it makes a
pending snapshot and builds it in a child process through the service the Celery task runs
(``labeling.services.snapshots.snapshot_build``), and prints the build's wall time, the child's peak
RSS (``ru_maxrss`` of that child from ``wait4``, and ``VmHWM`` read inside it), pairs and output size.

PostgreSQL only (the export reads through server-side cursors in a REPEATABLE READ transaction;
SQLite is refused). Run it on a scratch database (``createdb``, ``manage.py migrate``) and drop it
afterwards: seeding 10M rankings writes a few GB. The seeded project is deleted at the end unless
``--keep``; a kept project of the same shape is reused by the next run (seeding is skipped). The
seed drops the three tables' foreign keys and adds them back (validated) in its transaction, so
it locks them while it runs: another reason for a scratch database. The snapshot files go to a
temporary ARTIFACT_ROOT and are removed after each build. ``--profile`` runs
the builds under cProfile and prints the top frames by internal time.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402

from labeling.models import Comparison, Completion, Membership, PreferenceSnapshot, Project, Ranking, Role  # noqa: E402
from labeling.pairs import PairOptions  # noqa: E402
from labeling.services.projects import project_create  # noqa: E402

T_COMPARISON = Comparison._meta.db_table
T_COMPLETION = Completion._meta.db_table
T_RANKING = Ranking._meta.db_table


def project_name(*, rankings: int, labelers: int, k: int, prompt_chars: int, completion_chars: int) -> str:
    return f"export-scale r={rankings} l={labelers} k={k} p={prompt_chars} c={completion_chars}"


def seed(*, rankings: int, labelers: int, k: int, prompt_chars: int, completion_chars: int) -> Project:
    """One project with ``ceil(rankings / labelers) * labelers`` rankings, written with SQL."""
    n_comparisons = -(-rankings // labelers)
    user_model = get_user_model()
    stamp = f"{int(time.time())}-{os.getpid()}"
    admin = user_model.objects.create_user(f"export-bench-admin-{stamp}", password=None, is_staff=True)
    name = project_name(
        rankings=rankings, labelers=labelers, k=k, prompt_chars=prompt_chars, completion_chars=completion_chars
    )
    project = project_create(created_by=admin, name=name, completions_per_prompt=k, overlap=labelers, lease_seconds=600)
    labeler_ids = []
    for i in range(labelers):
        user = user_model.objects.create_user(f"export-bench-{stamp}-{i}", password=None)
        Membership.objects.create(project=project, user=user, role=Role.LABELER)
        labeler_ids.append(user.pk)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        # Row-by-row foreign-key checks (deferred to the commit) take longer than the inserts: the
        # keys are dropped for the seed and added back, validated in one query, in the same transaction.
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY conrelid, conname",
            [[T_COMPARISON, T_COMPLETION, T_RANKING]],
        )
        foreign_keys = cursor.fetchall()
        quote = connection.ops.quote_name
        for table, name, _ in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        # Splits 90/5/5 and 1% gold by a hash of the row number; prompts and completions carry their number.
        cursor.execute(  # model table names only are formatted into the SQL
            f"""
            INSERT INTO {T_COMPARISON}
                (project_id, prompt, split, is_gold, gold, label_count, human_queue, metadata, created_at)
            SELECT %(project)s,
                   left('Prompt ' || i || ': summarize the dialogue below in two sentences, keeping the names and '
                        || 'the decision they reach. ' || repeat('Speaker A asks; speaker B answers. ', 40),
                        %(prompt_chars)s),
                   CASE WHEN mod(abs(hashint8(i)), 20) = 0 THEN 'eval'
                        WHEN mod(abs(hashint8(i)), 20) = 1 THEN 'test' ELSE 'train' END,
                   mod(i, 100) = 0, NULL, %(labelers)s, false, '{{}}'::jsonb, now()
            FROM generate_series(1, %(n)s) AS i
            ORDER BY i
            """,  # noqa: S608
            {"project": project.pk, "prompt_chars": prompt_chars, "labelers": labelers, "n": n_comparisons},
        )
        cursor.execute(
            f"""
            INSERT INTO {T_COMPLETION} (comparison_id, position, text, model_name, generation_params, seed, metadata)
            SELECT c.id, p,
                   left('Completion ' || p || ' of comparison ' || c.id || ': '
                        || repeat('The speakers agree to meet on Friday and split the cost. ', 40), %(chars)s),
                   'bench-model', '{{}}'::jsonb, p, '{{}}'::jsonb
            FROM {T_COMPARISON} c CROSS JOIN generate_series(0, %(k)s - 1) AS p
            WHERE c.project_id = %(project)s
            ORDER BY c.id, p
            """,  # noqa: S608
            {"project": project.pk, "chars": completion_chars, "k": k},
        )
        # One order per (comparison, labeler), by a hash: 13/20 the natural order, 5/20 reversed,
        # 1/20 all tied, 1/20 the last completion F-marked (the others in order).
        cursor.execute(
            f"""
            WITH ids AS (
                SELECT comparison_id AS cid, array_agg(id ORDER BY position) AS ids
                FROM {T_COMPLETION}
                WHERE comparison_id IN (SELECT id FROM {T_COMPARISON} WHERE project_id = %(project)s)
                GROUP BY comparison_id
            ), votes AS (
                SELECT ids.cid, ids.ids, l.labeler, mod(abs(hashint8(ids.cid * 16 + l.idx)), 20) AS v
                FROM ids CROSS JOIN unnest(%(labelers)s::int[]) WITH ORDINALITY AS l(labeler, idx)
            )
            INSERT INTO {T_RANKING} (comparison_id, labeler_id, assignment_id, source, orders, comment, time_spent_ms,
                                      created_at)
            SELECT cid, labeler, NULL, 'human',
                   ('[{{"criterion": null, "ranks": {{'
                    || (SELECT string_agg(format('"%%s": %%s', ids[p],
                                                 CASE WHEN v = 18 THEN 1 WHEN v >= 13 AND v < 18 THEN %(k)s - p + 1
                                                      ELSE p END), ', ' ORDER BY p)
                        FROM generate_subscripts(ids, 1) AS p WHERE NOT (v = 19 AND p = %(k)s))
                    || '}}, "failed": ['
                    || CASE WHEN v = 19 THEN ids[%(k)s]::text ELSE '' END
                    || ']}}]')::jsonb,
                   '', 1000 + v * 100, now()
            FROM votes
            ORDER BY cid, labeler
            """,  # noqa: S608
            {"project": project.pk, "labelers": labeler_ids, "k": k},
        )
        cursor.execute(
            f"""
            UPDATE {T_COMPARISON} c SET gold = jsonb_build_object(
                'ranks', (SELECT jsonb_object_agg(id::text, position + 1)
                          FROM {T_COMPLETION} WHERE comparison_id = c.id),
                'failed', '[]'::jsonb)
            WHERE c.project_id = %(project)s AND c.is_gold
            """,  # noqa: S608
            {"project": project.pk},
        )
        for table in (T_COMPARISON, T_COMPLETION, T_RANKING):  # plans for the checks below, and the export
            cursor.execute(f"ANALYZE {table}")
        for table, name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
    print(
        f"seeded project {project.pk}: {n_comparisons:,} comparisons, {n_comparisons * labelers:,} rankings "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    return project


def find_or_seed(*, rankings: int, labelers: int, k: int, prompt_chars: int, completion_chars: int) -> Project:
    name = project_name(
        rankings=rankings, labelers=labelers, k=k, prompt_chars=prompt_chars, completion_chars=completion_chars
    )
    expected = -(-rankings // labelers) * labelers
    for project in Project.objects.filter(name=name).order_by("-pk"):
        if Ranking.objects.filter(comparison__project=project).count() == expected:
            print(f"reusing project {project.pk} ({name})", flush=True)
            return project
    return seed(rankings=rankings, labelers=labelers, k=k, prompt_chars=prompt_chars, completion_chars=completion_chars)


def delete_project(project: Project) -> None:
    users = list(project.memberships.values_list("user_id", flat=True))
    with transaction.atomic(), connection.cursor() as cursor:
        sub = f"SELECT id FROM {T_COMPARISON} WHERE project_id = %s"  # noqa: S608 (model table names only)
        cursor.execute(f"DELETE FROM {T_RANKING} WHERE comparison_id IN ({sub})", [project.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {T_COMPLETION} WHERE comparison_id IN ({sub})", [project.pk])  # noqa: S608
        cursor.execute(f"DELETE FROM {T_COMPARISON} WHERE project_id = %s", [project.pk])  # noqa: S608
        PreferenceSnapshot.objects.filter(project=project).delete()
        project.delete()
        get_user_model().objects.filter(pk__in=users, username__startswith="export-bench-").delete()


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_in_child(project: Project, mode: str, *, profile: bool) -> dict:
    """Make a pending snapshot and build it in a fresh process; its peak RSS is the build's."""
    last = PreferenceSnapshot.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0
    snapshot = PreferenceSnapshot.objects.create(
        project=project, version=last + 1, options=PairOptions(mode=mode).to_dict()
    )
    artifacts = Path(tempfile.mkdtemp(prefix="export-scale-"))
    env = {**os.environ, "ARTIFACT_ROOT": str(artifacts)}
    command = [sys.executable, __file__, "--child", str(snapshot.pk)] + (["--profile"] if profile else [])
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    try:
        lines = output.strip().splitlines()
        if child.returncode != 0 or not lines:
            raise SystemExit(f"the build of snapshot {snapshot.pk} exited with {child.returncode}:\n{output}")
        result = json.loads(lines[-1])
        if len(lines) > 1:
            print("\n".join(lines[:-1]), flush=True)
        result["ru_maxrss_mb"] = usage.ru_maxrss / 1024
        result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the whole child, Django setup included
        result["bytes"] = folder_size(artifacts)
    finally:
        shutil.rmtree(artifacts, ignore_errors=True)
    return result


def child_main(snapshot_id: int, *, profile: bool) -> int:
    """Runs in the child: build the snapshot exactly as the Celery task does, print one JSON line."""
    from labeling.services.snapshots import snapshot_build

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    snapshot = snapshot_build(snapshot_id=snapshot_id)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:6000])
    hwm_kb = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm_kb = int(line.split()[1])
    print(
        json.dumps(
            {
                "seconds": seconds,
                "vmhwm_mb": hwm_kb / 1024,
                "status": snapshot.status,
                "error": snapshot.error,
                "pairs": snapshot.counts.get("pairs"),
                "by_split": snapshot.counts.get("by_split"),
            }
        )
    )
    return 0 if snapshot.status == "ready" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankings", default="1000000,10000000", help="comma-separated sizes")
    parser.add_argument("--modes", default="per_labeler,consensus")
    parser.add_argument("--labelers", type=int, default=3, help="rankings per comparison (overlap)")
    parser.add_argument("--k", type=int, default=2, help="completions per comparison")
    parser.add_argument("--prompt-chars", type=int, default=200)
    parser.add_argument("--completion-chars", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the seeded projects (reused by the next run)")
    parser.add_argument("--profile", action="store_true", help="cProfile each build; print the top frames")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child, profile=args.profile)
    if connection.vendor != "postgresql":
        print(
            "export_scale.py measures the PostgreSQL export path (server-side cursors, REPEATABLE READ): "
            "set DATABASE_URL=postgres://... to a scratch database; SQLite is not supported.",
            file=sys.stderr,
        )
        return 2
    sizes = [int(float(s)) for s in args.rankings.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        PairOptions(mode=mode)  # an unknown mode fails here, before any seeding
    print(f"{os.cpu_count()} cores; K={args.k}, {args.labelers} labelers per comparison", flush=True)
    rows = []
    for size in sizes:
        project = find_or_seed(
            rankings=size,
            labelers=args.labelers,
            k=args.k,
            prompt_chars=args.prompt_chars,
            completion_chars=args.completion_chars,
        )
        try:
            for mode in modes:
                result = build_in_child(project, mode, profile=args.profile)
                rows.append((size, mode, result))
                print(
                    f"rankings={size:,} mode={mode}: {result['seconds']:.1f} s (child CPU "
                    f"{result['cpu_seconds']:.1f} s), peak RSS "
                    f"{result['ru_maxrss_mb']:.0f} MB (VmHWM {result['vmhwm_mb']:.0f} MB), "
                    f"{result['pairs']:,} pairs {result['by_split']}, {result['bytes'] / 1e9:.2f} GB of files",
                    flush=True,
                )
        finally:
            if not args.keep:
                delete_project(project)
    print(f"\n{'rankings':>11} {'mode':>12} {'seconds':>8} {'peak RSS MB':>12} {'pairs':>11} {'files GB':>9}")
    for size, mode, result in rows:
        print(
            f"{size:>11,} {mode:>12} {result['seconds']:>8.1f} {result['ru_maxrss_mb']:>12.0f} "
            f"{result['pairs']:>11,} {result['bytes'] / 1e9:>9.2f}"
        )
    print(f"(children's max RSS overall: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
