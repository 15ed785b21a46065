"""Labeling load benchmark: simulated labelers over HTTP on loopback against gunicorn + PostgreSQL.

    DATABASE_URL=postgres://... python bench/labeling_load.py [--seconds 15] [--clients 1,8,32]

Seeds a fresh project (K=4, overlap 3) with one labeler account per client, starts gunicorn on a
free loopback port, and for each client count runs labelers with no think time (GET next, POST the
ranking) for a bounded time and loop count. Prints requests/s and p50/p99 latency for `next`,
submit and the whole loop, the CPU used by the load generator and by the server, then checks the
invariants: no comparison above N rankings, no labeler twice on one comparison, every accepted
submission stored. Traffic goes to 127.0.0.1 only. CPU figures are cores in use (200% = both of
two cores); "machine" counts every process on the machine.
"""

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from labeling.models import Comparison, Membership, Ranking, Role  # noqa: E402
from labeling.services.comparisons import ParsedComparison, comparisons_create  # noqa: E402
from labeling.services.projects import project_create  # noqa: E402


def seed(*, comparisons: int, labelers: int, k: int, overlap: int):
    User = get_user_model()
    stamp = int(time.time())
    admin = User.objects.create_user(f"bench-admin-{stamp}", password=None, is_staff=True)
    project = project_create(
        created_by=admin, name=f"bench {stamp}", completions_per_prompt=k, overlap=overlap, lease_seconds=600
    )
    for start in range(0, comparisons, 1000):
        batch = [
            ParsedComparison(
                line=i,
                prompt=f"Prompt {i}: summarize the dialogue.",
                completions=[{"text": f"Completion {j} of prompt {i}. " * 8} for j in range(k)],
            )
            for i in range(start, min(start + 1000, comparisons))
        ]
        comparisons_create(project=project, parsed=batch)
    tokens = []
    for i in range(labelers):
        user = User.objects.create_user(f"bench-{stamp}-{i}", password=None)
        Membership.objects.create(project=project, user=user, role=Role.LABELER)
        tokens.append(Token.objects.create(user=user).key)
    with connection.cursor() as cursor:  # fresh statistics, as a database in steady use would have
        for model in (Comparison, Ranking, Membership):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return project, tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int, threads: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread" if threads > 1 else "sync",
        "--log-level",
        "warning",
        "--keep-alive",
        "30",
    ]
    server = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "DEBUG": ""})
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start within 30 s")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


class AiohttpDriver:
    def __init__(self, clients: int):
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients + 4))

    async def get(self, url, headers):
        async with self.session.get(url, headers=headers) as r:
            return r.status, (await r.json() if r.status in (200, 201) else await r.text())

    async def post(self, url, body, headers):
        async with self.session.post(url, json=body, headers=headers) as r:
            return r.status, (await r.json() if r.status in (200, 201) else await r.text())

    async def close(self):
        await self.session.close()


class HttpxDriver:
    """The driver the issue's Label Studio comparison used (more client CPU per request than aiohttp)."""

    def __init__(self, clients: int):
        limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
        self.client = httpx.AsyncClient(limits=limits, timeout=60)

    async def get(self, url, headers):
        r = await self.client.get(url, headers=headers)
        return r.status_code, (r.json() if r.status_code in (200, 201) else r.text)

    async def post(self, url, body, headers):
        r = await self.client.post(url, json=body, headers=headers)
        return r.status_code, (r.json() if r.status_code in (200, 201) else r.text)

    async def close(self):
        await self.client.aclose()


DRIVERS = {"aiohttp": AiohttpDriver, "httpx": HttpxDriver}


async def labeler(driver, base, project_id, token, stop_at, max_loops, stats, accepted):
    headers = {"Authorization": f"Token {token}"}
    loops = 0
    while time.perf_counter() < stop_at and loops < max_loops:
        t0 = time.perf_counter()
        status, lease = await driver.get(f"{base}/api/projects/{project_id}/next/", headers)
        if status == 204:
            return
        if status != 200:
            stats["errors"].append(f"next {status} {str(lease)[:200]}")
            return
        t1 = time.perf_counter()
        ranks = {str(c["id"]): c["position"] + 1 for c in lease["completions"]}
        url = f"{base}/api/assignments/{lease['assignment']['id']}/ranking/"
        status, body = await driver.post(url, {"ranks": ranks}, headers)
        if status != 201:
            stats["errors"].append(f"submit {status} {body}")
            return
        t2 = time.perf_counter()
        accepted.append(body["id"])
        stats["next"].append(t1 - t0)
        stats["submit"].append(t2 - t1)
        stats["loop"].append(t2 - t0)
        loops += 1


async def reader(driver, url, token, stop_at, latencies, errors):
    headers = {"Authorization": f"Token {token}"}
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        status, body = await driver.get(url, headers)
        if status != 200:
            errors.append(f"GET {url} {status} {str(body)[:200]}")
            return
        latencies.append(time.perf_counter() - t0)


async def run_reads(url, tokens, seconds, driver_name):
    """Closed-loop GETs of one URL (the project list) by every client: (latencies, errors, elapsed)."""
    latencies: list[float] = []
    errors: list[str] = []
    driver = DRIVERS[driver_name](len(tokens))
    try:
        stop_at = time.perf_counter() + seconds
        start = time.perf_counter()
        await asyncio.gather(*(reader(driver, url, t, stop_at, latencies, errors) for t in tokens))
        elapsed = time.perf_counter() - start
    finally:
        await driver.close()
    return latencies, errors, elapsed


async def run_phase(base, project_id, tokens, seconds, max_loops, driver_name="aiohttp"):
    stats = {"next": [], "submit": [], "loop": [], "errors": []}
    accepted: list[int] = []
    driver = DRIVERS[driver_name](len(tokens))
    try:
        stop_at = time.perf_counter() + seconds
        start = time.perf_counter()
        await asyncio.gather(
            *(labeler(driver, base, project_id, t, stop_at, max_loops, stats, accepted) for t in tokens)
        )
        elapsed = time.perf_counter() - start
    finally:
        await driver.close()
    return stats, accepted, elapsed


def _phase_in_process(args):
    """One driver process's share of a phase; returns its figures and the CPU it used."""
    stats, accepted, elapsed = asyncio.run(run_phase(*args))
    usage = psutil.Process().cpu_times()
    return stats, accepted, elapsed, usage.user + usage.system


def run_phase_split(base, project_id, tokens, seconds, max_loops, driver_name, processes):
    """The phase's clients spread over ``processes`` driver processes (one asyncio loop each), so the
    load generator is not the bottleneck. Returns (stats, accepted, elapsed, driver CPU seconds)."""
    if processes <= 1:
        before = cpu_seconds([psutil.Process()])
        stats, accepted, elapsed = asyncio.run(run_phase(base, project_id, tokens, seconds, max_loops, driver_name))
        return stats, accepted, elapsed, cpu_seconds([psutil.Process()]) - before
    shares = [tokens[i::processes] for i in range(processes)]
    connection.close()  # a forked child must not share (and, exiting, close) this process's connection
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(
            _phase_in_process, [(base, project_id, share, seconds, max_loops, driver_name) for share in shares]
        )
    stats = {key: [v for part in parts for v in part[0][key]] for key in ("next", "submit", "loop", "errors")}
    return stats, [i for part in parts for i in part[1]], max(p[2] for p in parts), sum(p[3] for p in parts)


def cpu_seconds(processes) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds per PostgreSQL process; backends that start mid-phase count from zero."""
    usage = {}
    for p in psutil.process_iter(["name"]):
        if (p.info["name"] or "").startswith("postgres"):
            usage[p.pid] = cpu_seconds([p])
    return usage


def check_invariants(project, overlap: int, accepted: list[int]) -> list[str]:
    problems = []
    per = Counter(Ranking.objects.filter(comparison__project=project).values_list("comparison_id", flat=True))
    if per and max(per.values()) > overlap:
        problems.append(f"a comparison has {max(per.values())} rankings > N={overlap}")
    pairs = list(Ranking.objects.filter(comparison__project=project).values_list("comparison_id", "labeler_id"))
    if len(pairs) != len(set(pairs)):
        problems.append("a labeler ranked one comparison twice")
    stored = set(Ranking.objects.filter(comparison__project=project).values_list("id", flat=True))
    missing = set(accepted) - stored
    if missing:
        problems.append(f"{len(missing)} accepted submissions are missing")
    for c in Comparison.objects.filter(project=project).only("id", "label_count"):
        if c.label_count != per.get(c.id, 0):
            problems.append(f"comparison {c.id}: label_count {c.label_count} != {per.get(c.id, 0)} rankings")
            break
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=15.0, help="per phase")
    parser.add_argument("--max-loops", type=int, default=2000, help="per client per phase")
    parser.add_argument("--comparisons", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="gthread threads per worker (keep-alive)")
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="aiohttp", help="HTTP client of the load")
    parser.add_argument("--driver-processes", type=int, default=1, help="load generator processes per phase")
    parser.add_argument("--list-seconds", type=float, default=8.0, help="GET /api/projects/ phase (0: none)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print("This benchmark targets PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    clients = [int(c) for c in args.clients.split(",")]
    overlap = 3
    warmup = 8  # labelers that warm every gunicorn worker up before anything is measured
    project, tokens = seed(comparisons=args.comparisons, labelers=warmup + sum(clients), k=4, overlap=overlap)
    port = free_port()
    server = start_server(port, args.workers, args.threads)
    base = f"http://127.0.0.1:{port}"
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads; {os.cpu_count()} cores; "
        f"driver {args.driver} x {args.driver_processes} processes; "
        f"project {project.id}: {args.comparisons} comparisons, K=4, N={overlap}"
    )
    header = f"{'clients':>7} {'loops/s':>8} {'req/s':>7} {'next p50/p99 ms':>16} {'submit p50/p99 ms':>18} "
    header += f"{'loop p50/p99 ms':>16} {'loadgen CPU':>11} {'gunicorn CPU':>12} {'postgres CPU':>12} {'machine':>8}"
    print(header)
    all_accepted: list[int] = []
    failures = []
    try:
        _, warm_accepted, _ = asyncio.run(run_phase(base, project.id, tokens[:warmup], 3.0, 50, args.driver))
        all_accepted += warm_accepted
        offset = warmup
        for n in clients:
            phase_tokens = tokens[offset : offset + n]
            offset += n
            server_procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            db0_by_pid = postgres_cpu()
            machine0 = psutil.cpu_times()
            srv0 = cpu_seconds(server_procs)
            stats, accepted, elapsed, driver_cpu = run_phase_split(
                base, project.id, phase_tokens, args.seconds, args.max_loops, args.driver, args.driver_processes
            )
            load_cpu = driver_cpu / elapsed
            srv_cpu = (cpu_seconds(server_procs) - srv0) / elapsed
            db_cpu = sum(cpu - db0_by_pid.get(pid, 0.0) for pid, cpu in postgres_cpu().items()) / elapsed
            machine1 = psutil.cpu_times()
            idle = machine1.idle + machine1.iowait - machine0.idle - machine0.iowait
            busy = sum(machine1) - sum(machine0) - idle
            machine_cpu = busy / (sum(machine1) - sum(machine0)) * psutil.cpu_count()
            all_accepted += accepted
            loops = len(stats["loop"])
            print(
                f"{n:>7} {loops / elapsed:>8.1f} {2 * loops / elapsed:>7.1f} "
                f"{pct(stats['next'], 0.5):>7.1f}/{pct(stats['next'], 0.99):<8.1f} "
                f"{pct(stats['submit'], 0.5):>8.1f}/{pct(stats['submit'], 0.99):<9.1f} "
                f"{pct(stats['loop'], 0.5):>7.1f}/{pct(stats['loop'], 0.99):<8.1f} "
                f"{load_cpu * 100:>10.0f}% {srv_cpu * 100:>11.0f}% {db_cpu * 100:>11.0f}% {machine_cpu * 100:>7.0f}%"
            )
            if stats["errors"]:
                failures += stats["errors"][:5]
        if args.list_seconds > 0:  # a labeler's home page must not be slower than `next`
            n = clients[-1]
            latencies, errors, elapsed = asyncio.run(
                run_reads(f"{base}/api/projects/", tokens[warmup : warmup + n], args.list_seconds, args.driver)
            )
            print(
                f"GET /api/projects/ at {n} clients: {len(latencies) / elapsed:.1f} requests/s, "
                f"p50/p99 {pct(latencies, 0.5):.1f}/{pct(latencies, 0.99):.1f} ms"
            )
            failures += errors[:5]
    finally:
        server.terminate()
        server.wait(timeout=30)
    problems = check_invariants(project, overlap, all_accepted) + failures
    print(f"invariants: {'OK' if not problems else 'FAILED'} ({len(all_accepted)} accepted submissions checked)")
    for p in problems:
        print("  -", p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
