"""Fault benchmark: a real-model run and a labeling load at once, through a database restart, a
broker restart and a killed worker; then what was lost, doubled or stuck, and how long recovery took.

    DATABASE_URL=postgres://...@127.0.0.1:PORT/DB CELERY_BROKER_URL=redis://127.0.0.1:PORT/N \\
        python bench/faults.py --allow-restart [--pg-down 15] [--redis-down 10] [--clients 8]

THIS BENCH STOPS AND STARTS THE POSTGRESQL AND REDIS SERVERS THAT DATABASE_URL AND CELERY_BROKER_URL
(or REDIS_URL) NAME: point them at servers of your own on this machine (loopback only), never at
shared ones, and pass ``--allow-restart`` to say so. The faults are the tests' own helpers
(tests/faults.py): PostgreSQL stopped with ``pg_ctl stop -m fast`` as the postgres user and started
with the options it ran with (its data directory from ``SHOW data_directory``, or from the
postmaster on the port for a role that may not read it); Redis shut down saving (as a restart does)
and started with what ``CONFIG GET`` reports; the worker's process group SIGKILLed. The bench
migrates the database itself.

1. Seeds a labeling project (K=4, N=3) with one labeler per client and starts gunicorn, as
   bench/labeling_load.py does, and Celery workers as platform/Procfile and docker-compose.yml run
   them: one on ``gpu`` and one on ``default`` with ``--beat`` (``--layout single``: one worker on
   ``default,gpu`` with beat and two processes, the Procfile before this bench), with fast but
   realistic supervision: heartbeat 1 s, stale after 10 s, sweep every 2 s,
   ``RANKFORGE_RUN_MAX_RESUMES=2``.
2. Queues a ``reward_model`` run on all-MiniLM-L6-v2 over a slice of the HH-RLHF harmless sample
   (bench/reward_model.py's pairs), checkpointing as it goes, and drives the labelers (closed loop)
   for the whole bench: GET next, POST the ranking; on a connection error or a 5xx a client retries
   the same request, as a browser would (a submit is idempotent: a retry returns the first ranking).
3. Faults, in order, each once the system is back from the previous one: PostgreSQL down
   ``--pg-down`` s; more runs queued, then Redis down ``--redis-down`` s (with tasks queued in it);
   SIGKILL of the worker's process group mid-run and a new worker started.
4. Waits for every run to end, then checks and prints: runs stuck (not ended by the deadline) or
   failed; runs executed twice (an attempt started by two supervisors, two training processes of one
   run alive at once, more registered versions than outputs); labeling submissions a client saw
   accepted but missing in the database (lost), stored twice (doubled), comparisons above N; the
   web's 5xx and connection errors during and after each outage; recovery per fault (server back ->
   first labeling loop done, the run's next heartbeat, the worker consuming again, the killed run
   running again).

Exit status 1 when anything was lost, doubled, stuck or failed, or the web answered 5xx after a
server was back; 2 when it cannot run (no PostgreSQL/Redis it may restart).
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OVERLAP = 3
SUPERVISION = {  # the worker's run supervision: fast enough for a bench, slow enough to be realistic
    "RANKFORGE_RUN_HEARTBEAT_S": "1",
    "RANKFORGE_RUN_POLL_S": "0.5",
    "RANKFORGE_RUN_KILL_GRACE_S": "5",
    "RANKFORGE_RUN_STALE_AFTER_S": "10",
    "RANKFORGE_RUN_REQUEUE_AFTER_S": "30",
    "RANKFORGE_RUN_SWEEP_INTERVAL_S": "2",
    "RANKFORGE_RUN_MAX_RESUMES": "2",
}
T0 = time.time()


def say(message: str) -> None:
    print(f"[{time.time() - T0:6.1f} s] {message}", flush=True)


def environment_or_exit(args) -> tuple[str, str]:
    """The database and broker URLs, refused unless they name PostgreSQL and Redis on this machine."""
    database = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
    problems = []
    if urlparse(database).scheme not in ("postgres", "postgresql", "pgsql"):
        problems.append("DATABASE_URL must name a PostgreSQL server (postgres://...)")
    elif urlparse(database).hostname not in LOOPBACK:
        problems.append(f"DATABASE_URL's host {urlparse(database).hostname!r} is not this machine's loopback")
    if urlparse(broker).scheme != "redis":
        problems.append("CELERY_BROKER_URL (or REDIS_URL) must name a Redis server (redis://...)")
    elif urlparse(broker).hostname not in LOOPBACK:
        problems.append(f"the broker's host {urlparse(broker).hostname!r} is not this machine's loopback")
    if not args.allow_restart:
        problems.append("pass --allow-restart: this bench stops and starts those servers")
    if problems:
        print("bench/faults.py cannot run:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        raise SystemExit(2)
    os.environ["CELERY_BROKER_URL"] = broker  # the runs this process queues go to the same Redis
    os.environ.setdefault("ARTIFACT_ROOT", str(args.work / "artifacts"))
    return database, broker


# -- the labeling load ---------------------------------------------------------------------------


@dataclass
class Load:
    """Labelers over HTTP, in a thread of their own: every request's outcome, every finished loop,
    what each submit answered."""

    base: str
    project_id: int
    tokens: list[str]
    think_s: float
    stop: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[float, str, int | str]] = field(default_factory=list)  # (sent, what, status|"conn")
    loops: list[float] = field(default_factory=list)  # when each loop's submit was accepted
    accepted: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))  # a -> [(st, id)]
    refused: list[str] = field(default_factory=list)
    exhausted: int = 0
    exhausted_at: float | None = None  # when the first labeler found nothing left to label

    async def _request(self, session, method: str, url: str, what: str, headers: dict, body=None):
        import aiohttp

        delay = 0.2
        while not self.stop.is_set():
            sent = time.time()
            try:
                async with session.request(method, url, json=body, headers=headers) as response:
                    status, payload = response.status, await response.read()
            except (TimeoutError, aiohttp.ClientError):
                status, payload = "conn", b""
            self.requests.append((sent, what, status))
            if status != "conn" and status < 500:
                return status, payload
            await asyncio.sleep(delay)  # the same request again, as a client that retries
            delay = min(delay * 2, 1.0)
        return None, b""

    async def _labeler(self, session, token: str) -> None:
        headers = {"Authorization": f"Token {token}"}
        while not self.stop.is_set():
            url = f"{self.base}/api/projects/{self.project_id}/next/"
            status, payload = await self._request(session, "GET", url, "next", headers)
            if status is None:
                return
            if status == 204:
                self.exhausted += 1
                self.exhausted_at = self.exhausted_at or time.time()
                return
            if status != 200:
                self.refused.append(f"next {status} {payload[:200]!r}")
                await asyncio.sleep(1)
                continue
            lease = json.loads(payload)
            ranks = {str(c["id"]): c["position"] + 1 for c in lease["completions"]}
            assignment = lease["assignment"]["id"]
            url = f"{self.base}/api/assignments/{assignment}/ranking/"
            status, payload = await self._request(session, "POST", url, "submit", headers, {"ranks": ranks})
            if status in (200, 201):
                self.accepted[assignment].append((status, json.loads(payload)["id"]))
                self.loops.append(time.time())
            elif status is not None:
                self.refused.append(f"submit {status} {payload[:200]!r}")
            await asyncio.sleep(self.think_s)

    async def _main(self) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=len(self.tokens) + 4)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self._labeler(session, t) for t in self.tokens))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="labelers", daemon=True)
        thread.start()
        return thread

    def errors_between(self, start: float, end: float) -> tuple[int, int]:
        """(5xx answers, connection errors) of requests sent in [start, end)."""
        window = [status for sent, _, status in list(self.requests) if start <= sent < end]
        return sum(1 for s in window if s != "conn" and s >= 500), sum(1 for s in window if s == "conn")

    def statuses_between(self, start: float, end: float) -> str:
        """The failed answers of requests sent in [start, end), e.g. ``500x27 connx3``."""
        failed = Counter(status for sent, _, status in list(self.requests) if start <= sent < end and status != 200)
        failed = {k: v for k, v in failed.items() if k == "conn" or k >= 500}
        return " ".join(f"{k}x{v}" for k, v in sorted(failed.items(), key=str)) or "none"

    def first_loop_after(self, moment: float) -> float | None:
        return next((t for t in list(self.loops) if t >= moment), None)


# -- runs and workers ----------------------------------------------------------------------------


def db(fn, default=None):
    """``fn()`` on the database, or ``default`` while it is unreachable (the connection is reset)."""
    from django.db import DatabaseError, connection

    try:
        return fn()
    except DatabaseError:
        connection.close()
        return default


def runs_now(ids: list[int]) -> dict[int, dict]:
    from training.models import TrainingRun

    fields = ("pk", "state", "attempt", "heartbeat_at", "progress_step", "progress_total", "pid")
    rows = db(lambda: list(TrainingRun.objects.filter(pk__in=ids).values(*fields)), [])
    return {r["pk"]: r for r in rows}


class Worker:
    """A Celery worker in its own process group (on ``queues``; with ``beat``, the periodic sweeps)."""

    def __init__(self, work: Path, name: str, *, queues: str, concurrency: int, beat: bool):
        self.work, self.name, self.queues, self.concurrency, self.beat = work, name, queues, concurrency, beat
        self.log = work / f"worker-{name}.log"
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues]
        argv += ["--concurrency", str(concurrency), "--prefetch-multiplier", "1", "-l", "info"]
        argv += ["-n", f"bench-faults-{name}-{os.getpid()}@%h"]
        if beat:
            argv += ["--beat", "--schedule", str(work / f"beat-{name}")]
        env = {
            **os.environ,
            **SUPERVISION,
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "CELERY_TASK_ALWAYS_EAGER": "",
            "DEBUG": "",
        }
        with open(self.log, "w") as handle:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while " ready." not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the worker did not start; see {self.log}")
            time.sleep(0.3)

    def like_me(self, name: str) -> "Worker":
        return Worker(self.work, name, queues=self.queues, concurrency=self.concurrency, beat=self.beat)

    def kill(self) -> None:
        from tests.faults import kill_worker

        kill_worker(self.process)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class ProcessWatch:
    """Samples the training processes every second: how long two of one run were alive at once."""

    def __init__(self, artifact_root: Path):
        self.runs_dir = str(artifact_root / "runs") + "/"
        self.overlap_s: Counter = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="process-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        import psutil

        while not self.stop.wait(1.0):
            per_run: Counter = Counter()
            for process in psutil.process_iter(["pid", "ppid", "cmdline"]):
                cmd = process.info["cmdline"] or []
                if "training.ml" not in cmd or "--out" not in cmd:
                    continue
                with contextlib.suppress(psutil.Error):  # a child forked by a run's process is not another run
                    if "training.ml" in (psutil.Process(process.info["ppid"]).cmdline() or []):
                        continue
                out = cmd[cmd.index("--out") + 1] if cmd.index("--out") + 1 < len(cmd) else ""
                if out.startswith(self.runs_dir):
                    per_run[out[len(self.runs_dir) :].split("/")[0]] += 1
            for run, count in per_run.items():
                if count > 1:
                    self.overlap_s[int(run)] += 1


# -- faults --------------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    down_at: float
    up_at: float = 0.0
    until: float = 0.0  # the start of the next fault (or the end of the load)
    recovery: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def wait_for(predicate, timeout: float, every: float = 0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def first_times(checks: dict, timeout: float, every: float = 0.1) -> dict[str, float | None]:
    """Poll every check together until each has answered: the first time (epoch s) each one reported."""
    seen: dict[str, float | None] = dict.fromkeys(checks)
    deadline = time.time() + timeout
    while time.time() < deadline and None in seen.values():
        for name, check in checks.items():
            if seen[name] is None:
                seen[name] = check()
        time.sleep(every)
    return seen


def heartbeat_after(run_id: int, moment: float, *, attempt_above: int = 0):
    """A check: the run's heartbeat once it is newer than ``moment`` (and from a later attempt)."""

    def check() -> float | None:
        row = runs_now([run_id]).get(run_id)
        if row and row["heartbeat_at"] and row["attempt"] > attempt_above and row["heartbeat_at"].timestamp() > moment:
            return row["heartbeat_at"].timestamp()
        return None

    return check


def since(fault: Fault, seen: dict[str, float | None], start: float) -> None:
    fault.recovery.update({name: (t - start if t is not None else None) for name, t in seen.items()})


def fault_postgres(seconds: float, load: Load, run_id: int, timeout: float) -> Fault:
    from tests.faults import pg_outage

    fault = Fault(f"PostgreSQL down {seconds:g} s", time.time())
    say(f"stopping PostgreSQL for {seconds:g} s")
    with pg_outage(seconds) as outage:
        fault.down_at = time.time()  # stopped: every connection was just terminated
        say(f"PostgreSQL is down ({outage.server.data_dir})")
    fault.up_at = time.time()
    say(f"PostgreSQL is back (down {fault.up_at - fault.down_at:.1f} s)")
    checks = {
        "labeling": lambda: load.first_loop_after(fault.up_at),
        "run heartbeat": heartbeat_after(run_id, fault.up_at),
    }
    since(fault, first_times(checks, timeout), fault.up_at)
    row = runs_now([run_id]).get(run_id, {})
    fault.notes.append(f"run {run_id} then {row.get('state')} (attempt {row.get('attempt')})")
    return fault


def consuming(broker) -> float | None:
    """A check: a client (the worker) blocks in BRPOP on the queues, so it consumes again."""
    with contextlib.suppress(Exception):
        if any(c.get("cmd") in ("brpop", "bzpopmin") for c in broker.client_list()):
            return time.time()
    return None


def _run_ids(messages) -> list[int]:
    """The run ids of ``training.run_execute`` messages as kombu's Redis transport stores them."""
    ids = []
    for message in messages:
        with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
            headers = message["headers"]
            if headers.get("task") == "training.run_execute":
                ids += [int(n) for n in re.findall(r"\d+", headers.get("argsrepr", ""))[:1]]
    return sorted(ids)


def run_tasks(broker) -> tuple[list[int] | None, list[int] | None]:
    """(runs whose task waits in the gpu queue, runs whose task was delivered and is not yet acked)."""
    with contextlib.suppress(Exception):
        waiting = _run_ids(json.loads(m) for m in broker.lrange("gpu", 0, -1))
        delivered = _run_ids(json.loads(v)[0] for v in broker.hvals("unacked"))
        return waiting, delivered
    return None, None


def fault_redis(url: str, seconds: float, load: Load, run_ids: list[int], timeout: float) -> Fault:
    import redis

    from tests.faults import redis_outage

    broker = redis.Redis.from_url(url, socket_timeout=5)
    fault = Fault(f"Redis down {seconds:g} s", time.time())
    ours = set(run_ids)  # (messages of earlier benches' killed workers stay unacked until their timeout)
    waiting, unacked = (None if ids is None else [i for i in ids if i in ours] for ids in run_tasks(broker))
    fault.notes.append(f"before: runs {waiting} queued, {unacked} delivered (unacked)")
    say(f"shutting Redis down (saving) for {seconds:g} s; {fault.notes[-1]}")
    with redis_outage(seconds, url):
        fault.down_at = time.time()
    fault.up_at = time.time()
    after = tuple(None if ids is None else [i for i in ids if i in ours] for ids in run_tasks(broker))
    fault.notes.append(f"after:  runs {after[0]} queued, {after[1]} delivered (unacked)")
    lost = (set(waiting or []) | set(unacked or [])) - set(after[0] or []) - set(after[1] or [])
    if lost:
        fault.problems.append(f"Redis lost the tasks of runs {sorted(lost)} across the restart")
    say(f"Redis is back (down {fault.up_at - fault.down_at:.1f} s); {fault.notes[-1]}")
    checks = {"worker consuming": lambda: consuming(broker), "labeling": lambda: load.first_loop_after(fault.up_at)}
    since(fault, first_times(checks, timeout), fault.up_at)
    return fault


def fault_kill(worker: Worker, broker_url: str, run_ids: list[int], load: Load, timeout: float):
    """SIGKILL the worker's process group under a run that is training; start another worker."""
    import psutil
    import redis

    from training.models import RunEvent

    def running_with_progress():
        live = [r for r in runs_now(run_ids).values() if r["state"] == "running" and (r["progress_step"] or 0) > 0]
        return min(live, key=lambda r: r["pk"]) if live else None

    target = wait_for(running_with_progress, timeout)
    if target is None:
        fault = Fault("worker SIGKILL", time.time(), time.time())
        fault.notes.append("no run was training to kill the worker under; skipped")
        return fault, worker
    fault = Fault("worker SIGKILL", time.time())
    run_id, old_pid, old_attempt = target["pk"], target["pid"], target["attempt"]
    say(f"SIGKILL to the worker's process group (run {run_id} at step {target['progress_step']}, process {old_pid})")
    worker.kill()
    fault.up_at = time.time()  # for a kill, recovery counts from the kill itself
    replacement = worker.like_me(f"{worker.name}-2")

    def state_after_kill(to: str):
        def check() -> float | None:
            events = db(
                lambda: list(RunEvent.objects.filter(run_id=run_id, type="state").values_list("payload", "created_at")),
                [],
            )
            return next(
                (at.timestamp() for p, at in events if p.get("to") == to and at.timestamp() > fault.down_at), None
            )

        return check

    broker, backlog = redis.Redis.from_url(broker_url, socket_timeout=5), [0]
    requeued_check = state_after_kill("queued")

    def requeued() -> float | None:  # and how many sweep messages wait meanwhile for a worker process
        with contextlib.suppress(Exception):
            backlog[0] = max(backlog[0], broker.llen("default"))
        return requeued_check()

    checks = {
        "new worker ready": lambda: time.time() if " ready." in replacement.log.read_text(errors="replace") else None,
        "old process gone": lambda: time.time() if old_pid is None or not psutil.pid_exists(old_pid) else None,
        "run requeued": requeued,
        "run running again": state_after_kill("running"),
        "run heartbeat": heartbeat_after(run_id, fault.down_at, attempt_above=old_attempt),
        "labeling": lambda: load.first_loop_after(fault.up_at),
    }
    seen = first_times(checks, timeout)
    since(fault, seen, fault.down_at)
    gone, again, requeued = seen["old process gone"], seen["run running again"], seen["run requeued"]
    due = float(SUPERVISION["RANKFORGE_RUN_STALE_AFTER_S"]) + float(SUPERVISION["RANKFORGE_RUN_SWEEP_INTERVAL_S"])
    if requeued is not None and requeued - fault.down_at > due + 5:
        fault.notes.append(f"requeued {requeued - fault.down_at:.0f} s after the kill, not ~{due:g} s (stale + sweep)")
    if backlog[0] > 2:
        fault.notes.append(f"up to {backlog[0]} sweep messages waited in 'default': no worker process was free")
    if gone is None:
        fault.notes.append(f"run {run_id}'s old process {old_pid} was still alive {timeout:g} s after the kill")
    if again is not None and (gone is None or gone > again):
        overlap = (gone or time.time()) - again
        fault.notes.append(f"TWO processes of run {run_id} alive at once for {overlap:.1f} s")
    return fault, replacement


# -- checks --------------------------------------------------------------------------------------


START_RE = re.compile(r"started process (\d+)")
ATTEMPT_RE = re.compile(r"attempt (\d+)")


def run_report(run_ids: list[int], deadline_passed: set[int], overlap_s: Counter) -> tuple[list[dict], list[str]]:
    from models_registry.models import ModelVersion
    from training.models import TERMINAL_STATES, RunEvent, TrainingRun

    rows, problems = [], []
    for run in TrainingRun.objects.filter(pk__in=run_ids).order_by("pk"):
        starts: Counter = Counter()
        for payload in RunEvent.objects.filter(run=run, type="log").values_list("payload", flat=True):
            message = str(payload.get("message", ""))
            if payload.get("stream") == "worker" and START_RE.search(message):
                match = ATTEMPT_RE.search(message)
                starts[int(match.group(1)) if match else 1] += 1
        versions = ModelVersion.objects.filter(source_run_id=run.pk).count()
        outputs = len(((run.outputs or {}).get("result") or {}).get("outputs") or [])
        row = {
            "run": run.pk,
            "state": run.state,
            "attempts": run.attempt,
            "starts": sum(starts.values()),
            "twice": sum(1 for n in starts.values() if n > 1),
            "overlap_s": overlap_s.get(run.pk, 0),
            "versions": versions,
            "expected": outputs if run.state == "succeeded" else 0,
            "seconds": (run.finished_at - run.created_at).total_seconds() if run.finished_at else None,
            "error": (run.error or "").strip().splitlines()[:1],
        }
        rows.append(row)
        if run.state not in TERMINAL_STATES or run.pk in deadline_passed:
            problems.append(f"run {run.pk} stuck: {run.state} at the deadline")
        elif run.state != "succeeded":
            problems.append(f"run {run.pk} {run.state}: {row['error'][0] if row['error'] else '(no error)'}")
        if row["twice"]:
            problems.append(f"run {run.pk}: {row['twice']} attempt(s) started by two supervisors")
        if row["overlap_s"]:
            problems.append(f"run {run.pk}: two training processes alive at once for ~{row['overlap_s']} s")
        if versions > row["expected"]:
            problems.append(f"run {run.pk}: {versions} registered versions for {row['expected']} outputs")
    return rows, problems


def labeling_report(project, load: Load) -> tuple[dict, list[str]]:
    from django.db.models import Count

    from bench.labeling_load import check_invariants
    from labeling.models import Comparison, Ranking

    accepted_ids = {rid for answers in load.accepted.values() for _, rid in answers}
    stored = dict(Ranking.objects.filter(comparison__project=project).values_list("id", "assignment_id"))
    lost = sum(1 for a, answers in load.accepted.items() if any(stored.get(rid, -1) != a for _, rid in answers))
    doubled_client = sum(
        1
        for answers in load.accepted.values()
        if len({rid for _, rid in answers}) > 1 or [s for s, _ in answers].count(201) > 1
    )
    rankings = Ranking.objects.filter(comparison__project=project)
    twice_labeler = rankings.values("comparison", "labeler").annotate(n=Count("id")).filter(n__gt=1).count()
    twice_assignment = (
        rankings.exclude(assignment=None).values("assignment").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    above_n = (
        Comparison.objects.filter(project=project).annotate(n=Count("rankings")).filter(n__gt=project.overlap).count()
    )
    counts = {
        "submits accepted (leases)": len(load.accepted),
        "rankings stored": len(stored),
        "lost: accepted, not stored": lost,
        "doubled: two rankings for one lease": doubled_client + twice_assignment,
        "doubled: a labeler twice on a comparison": twice_labeler,
        "comparisons above N rankings": above_n,
    }
    problems = [f"labeling: {k} = {v}" for k, v in counts.items() if k.startswith(("lost", "doubled", "comp")) and v]
    # The project's own consistency checks (label_count and the rest) from the labeling benchmark.
    problems += [f"labeling: {p}" for p in check_invariants(project, project.overlap, sorted(accepted_ids))]
    return counts, sorted(set(problems))


def fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def print_tables(faults: list[Fault], load: Load, run_rows: list[dict], labeling: dict, problems: list[str]) -> None:
    print()
    print(
        f"{'fault':<21} {'down->up at':>13} {'5xx during/after':>16} {'conn err':>9}  "
        "recovery: s after the server is back (the kill)"
    )
    for f in faults:
        during, after = load.errors_between(f.down_at, f.up_at), load.errors_between(f.up_at, f.until)
        recovery = ", ".join(f"{k} {'never' if v is None else f'{v:.1f}'}" for k, v in f.recovery.items())
        lines = [
            *textwrap.wrap(recovery, 64),
            *f.notes,
            f"failed answers during: {load.statuses_between(f.down_at, f.up_at)}",
        ]
        window = f"{f.down_at - T0:.0f}->{f.up_at - T0:.0f} s"
        print(f"{f.name:<21} {window:>13} {during[0]:>7}/{after[0]:<8} {during[1] + after[1]:>9}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<21} {'':>13} {'':>16} {'':>9}  {line}")
    print()
    print(
        f"{'run':>5} {'state':<10} {'attempts':>8} {'starts':>6} {'twice':>5} {'overlap s':>9} "
        f"{'versions':>8} {'queued->end s':>13}"
    )
    for r in run_rows:
        wall = f"{r['seconds']:.0f}" if r["seconds"] is not None else "-"
        print(
            f"{r['run']:>5} {r['state']:<10} {r['attempts']:>8} {r['starts']:>6} {r['twice']:>5} {r['overlap_s']:>9} "
            f"{r['versions']:>4}/{r['expected']:<3} {wall:>13}"
        )
    print()
    stuck = sum(1 for p in problems if " stuck:" in p)
    failed = sum(1 for r in run_rows if r["state"] in ("failed", "cancelled"))
    twice = sum(1 for r in run_rows if r["twice"] or r["overlap_s"] or r["versions"] > r["expected"])
    after_5xx = sum(load.errors_between(f.up_at, f.until)[0] for f in faults)
    summary = {
        "runs stuck": stuck,
        "runs failed": failed,
        "runs executed twice": twice,
        **labeling,
        "web 5xx after a server was back": after_5xx,
    }
    for key, value in summary.items():
        print(f"{key:<44} {value:>7}")
    print(f"{'labeling loops / requests':<44} {len(load.loops):>7} / {len(load.requests)}")
    print()
    print("RESULT:", "OK (nothing lost, doubled or stuck)" if not problems else "FAILED")
    for p in problems:
        print("  -", p)


# -- main ----------------------------------------------------------------------------------------


def slice_sample(source: Path, target: Path, pairs: int) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, encoding="utf-8") as handle:
        target.write_text("".join(line for _, line in zip(range(pairs), handle, strict=False)))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-restart", action="store_true", help="yes, stop and start these servers")
    parser.add_argument("--pg-down", type=float, default=15.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--redis-down", type=float, default=10.0, help="seconds Redis stays down")
    parser.add_argument("--clients", type=int, default=8, help="labelers (closed loop)")
    parser.add_argument("--think", type=float, default=0.25, help="seconds a labeler waits between loops")
    parser.add_argument("--comparisons", type=int, default=4000)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument(
        "--layout",
        choices=("procfile", "single"),
        default="procfile",
        help="procfile: a gpu worker, and a default worker with beat (as platform/Procfile and docker-compose.yml); "
        "single: one worker on default,gpu with beat",
    )
    parser.add_argument("--concurrency", type=int, default=None, help="the gpu worker's processes (procfile: 1)")
    parser.add_argument("--pairs", type=int, default=200, help="HH sample rows for the runs")
    parser.add_argument("--epochs", type=float, default=3.0, help="of the main run")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--save-steps", type=int, default=10, help="the main run's checkpoints (to resume from)")
    parser.add_argument("--extra-runs", type=int, default=3, help="short runs queued before the Redis restart")
    parser.add_argument("--extra-steps", type=int, default=3, help="training steps of each extra run")
    parser.add_argument("--warm-steps", type=int, default=2, help="main run's steps before the first fault")
    parser.add_argument("--recovery-timeout", type=float, default=90.0, help="seconds to wait for each recovery")
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds after the last fault for runs to end")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "faults")
    args = parser.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    database, broker = environment_or_exit(args)

    # Importing the labeling benchmark sets Django up (settings from the environment checked above).
    from django.core.management import call_command

    from bench.labeling_load import free_port, seed, start_server
    from bench.reward_model import DATA, MINILM, Settings, prepare_pairs
    from training.models import TERMINAL_STATES
    from training.services import runs

    say(f"database {urlparse(database).hostname}:{urlparse(database).port}, broker {broker}; migrating")
    call_command("migrate", verbosity=0)

    sample = slice_sample(DATA, args.work / "hh-slice.jsonl", args.pairs)
    pairs_dir = args.work / "pairs"
    prepared = prepare_pairs(pairs_dir, data=sample)
    settings = Settings(
        model_path=str(MINILM),
        epochs=args.epochs,
        max_length=args.max_length,
        threads=1,
        learning_rate=3e-5,
        batch_size=8,
        eval_batch_size=16,
        warmup_ratio=0.1,
        seed=0,
        save_steps=args.save_steps,
    )
    config = settings.kind_config(pairs_dir)
    project, tokens = seed(comparisons=args.comparisons, labelers=args.clients, k=4, overlap=OVERLAP)
    say(f"pairs {prepared['pairs']}; project {project.id}: {args.comparisons} comparisons, {args.clients} labelers")

    port = free_port()
    server_log = open(args.work / "gunicorn.log", "w")  # noqa: SIM115 -- the server's stderr, closed at the end
    saved = os.dup(2)
    os.dup2(server_log.fileno(), 2)  # the server inherits it: its tracebacks go to the log, not here
    try:
        server = start_server(port, args.web_workers, args.web_threads)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if args.layout == "single":
        workers = [Worker(args.work, "1", queues="default,gpu", concurrency=args.concurrency or 2, beat=True)]
    else:
        workers = [
            Worker(args.work, "gpu", queues="gpu", concurrency=args.concurrency or 1, beat=False),
            Worker(args.work, "default", queues="default", concurrency=1, beat=True),
        ]
    worker = workers[0]  # the one killed
    load = Load(f"http://127.0.0.1:{port}", project.id, tokens, args.think)
    watch = ProcessWatch(Path(os.environ["ARTIFACT_ROOT"]))
    faults: list[Fault] = []
    run_ids: list[int] = []
    late: set[int] = set()
    try:
        for w in workers:
            w.wait_ready()
        load_thread = load.start()
        load_started = time.time()
        main_run = runs.run_create(kind="reward_model", config=config, created_by=project.created_by, project=project)
        run_ids.append(main_run.pk)
        say(f"gunicorn on {port}, worker ready, {args.clients} labelers; run {main_run.pk} queued ({args.epochs:g} ep)")
        warm = wait_for(
            lambda: (r := runs_now([main_run.pk]).get(main_run.pk)) and (r["progress_step"] or 0) >= args.warm_steps,
            300,
        )
        if not warm:
            raise SystemExit(f"run {main_run.pk} did not start training within 300 s; see {worker.log}")
        faults.append(fault_postgres(args.pg_down, load, main_run.pk, args.recovery_timeout))

        extra = {**config, "max_steps": args.extra_steps, "save_steps": 0}
        for _ in range(args.extra_runs):
            run_ids.append(
                runs.run_create(kind="reward_model", config=extra, created_by=project.created_by, project=project).pk
            )
        say(f"queued runs {run_ids[1:]} ({args.extra_steps} steps each)")
        time.sleep(3)  # a free worker process takes one; the others wait in Redis
        faults.append(fault_redis(broker, args.redis_down, load, run_ids, args.recovery_timeout))

        fault, worker = fault_kill(worker, broker, run_ids, load, args.recovery_timeout)
        workers[0] = worker
        faults.append(fault)
        for before, after in itertools.pairwise(faults):
            before.until = after.down_at

        say(f"waiting up to {args.deadline:g} s for runs {run_ids} to end")
        wait_for(
            lambda: (rows := runs_now(run_ids)) and all(r["state"] in TERMINAL_STATES for r in rows.values()),
            args.deadline,
            every=1.0,
        )
        late = {pk for pk, r in runs_now(run_ids).items() if r["state"] not in TERMINAL_STATES}
        time.sleep(2)  # a last stretch of labeling with every server up
    finally:
        load.stop.set()
        watch.stop.set()
        for w in workers:
            w.stop()
        server.terminate()
        server.wait(timeout=30)
        server_log.close()
    load_thread.join(timeout=35)
    faults[-1].until = time.time()
    say(f"load ran {time.time() - load_started:.0f} s; {len(load.loops)} loops, {load.exhausted} labelers ran out")

    run_rows, run_problems = run_report(run_ids, late, watch.overlap_s)
    labeling, labeling_problems = labeling_report(project, load)
    problems = run_problems + labeling_problems
    for f in faults:
        problems += f.problems
        after = load.errors_between(f.up_at, f.until)[0]
        if after:
            problems.append(f"web: {after} answers 5xx after {f.name} was over")
        problems += [
            f"{f.name}: no recovery ({k}) within {args.recovery_timeout:g} s"
            for k, v in f.recovery.items()
            if v is None
        ]
    if load.exhausted_at is not None and load.exhausted_at < faults[-1].up_at:
        problems.append("labelers ran out of comparisons before the last fault: raise --comparisons")
    if load.refused:
        print(f"refused requests (4xx, first 5 of {len(load.refused)}):", *load.refused[:5], sep="\n  ")
    print_tables(faults, load, run_rows, labeling, problems)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
