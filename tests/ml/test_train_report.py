"""The train-and-report flow of the Trainer-based kinds, on a fake kind (no model, no training): the
hooks' order, the metrics and outputs it reports, resuming, and a failing hook ending the run before
anything is saved, reported by the command line as the run's error."""

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from training.ml.events import EventWriter
from training.ml.train_report import Setup, TrainAndReport


class Parameter:
    def __init__(self, size: int, trainable: bool):
        self.size, self.requires_grad = size, trainable

    def numel(self) -> int:
        return self.size


class FakeModel:
    """Saves a file naming itself; merging gives the "merged" model."""

    def __init__(self, name: str = "adapted"):
        self.name = name

    def parameters(self):
        return [Parameter(10, True), Parameter(30, False)]

    def eval(self):
        return self

    def save_pretrained(self, folder: Path):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "weights").write_text(self.name)

    def merge_and_unload(self):
        return FakeModel("merged")


class FakeTokenizer:
    def save_pretrained(self, folder: Path):
        (Path(folder) / "tokenizer.json").write_text("{}")


class FakeTrainer:
    def __init__(self, calls: list):
        self.calls, self.model = calls, FakeModel()

    def train(self, resume_from_checkpoint=None):
        self.calls.append(("train", resume_from_checkpoint and Path(resume_from_checkpoint).name))
        return SimpleNamespace(training_loss=0.5, global_step=4)


class FakeKind(TrainAndReport):
    """Records each hook it is asked for; ``failing`` names one that raises."""

    task = "causal-lm"

    def __init__(self, *args, failing: str | None = None):
        super().__init__(*args)
        self.calls: list = []
        self.failing = failing

    def _called(self, hook: str):
        self.calls.append(hook)
        if hook == self.failing:
            raise ValueError(f"{hook} failed")

    def build(self, device, dtype):
        self._called("build")
        return Setup(FakeTrainer(self.calls), FakeTokenizer(), {"train_rows": 8, "train_tokens": 80})

    def evaluate_before(self, setup):
        self._called("evaluate_before")
        return {"eval_loss_before": 2.0}

    def train_loss(self, setup, result, checkpoint):
        self._called("train_loss")
        return 0.25

    def kind_metrics(self, result, train_seconds):
        self._called("kind_metrics")
        return {"beta": 0.1}

    def evaluate(self, setup, steps):
        self._called("evaluate")
        return {"eval_loss": 1.0, "eval_steps_seen": steps}

    def merges_adapter(self):
        self._called("merges_adapter")
        return super().merges_adapter()


def config(**overrides) -> SimpleNamespace:
    fields = {"peft_method": "lora", "merge_adapter": True, "learning_rate": 1e-3, "model_path": "m"}
    return SimpleNamespace(torch_threads=None, seed=0, device="cpu", dtype="float32", **{**fields, **overrides})


def run_kind(out: Path, settings: SimpleNamespace | None = None) -> tuple[FakeKind, list[dict], dict]:
    """The fake kind's run: the kind (its calls), its events and its result."""
    stream = io.StringIO()
    kind = FakeKind(settings or config(), out, EventWriter(stream))
    result = kind.run()
    return kind, [json.loads(line) for line in stream.getvalue().splitlines()], result


def test_the_hooks_run_in_order_and_the_run_reports_metrics_and_outputs(tmp_path):
    kind, events, result = run_kind(tmp_path / "out")
    assert kind.calls == [
        "build",
        "evaluate_before",
        ("train", None),
        "train_loss",
        "kind_metrics",
        "evaluate",
        "merges_adapter",
    ]
    metrics = result["metrics"]
    assert list(metrics) == [
        "train_loss",
        "steps",
        "train_rows",
        "train_tokens",
        "train_seconds",
        "trainable_params",
        "total_params",
        "peft_method",
        "learning_rate",
        "beta",
        "eval_loss_before",
        "eval_loss",
        "eval_steps_seen",
    ]
    assert metrics["train_loss"] == 0.25 and metrics["steps"] == 4 and metrics["eval_steps_seen"] == 4
    assert (metrics["trainable_params"], metrics["total_params"], metrics["peft_method"]) == (10, 40, "lora")
    assert result["outputs"] == [
        {"dir": "adapter", "task": "causal-lm", "role": "adapter", "peft_method": "lora"},
        {"dir": "model", "task": "causal-lm", "role": "merged"},
    ]
    assert (tmp_path / "out" / "adapter" / "weights").read_text() == "adapted"
    assert (tmp_path / "out" / "model" / "weights").read_text() == "merged"
    assert (tmp_path / "out" / "model" / "tokenizer.json").exists()
    logs = [e["message"] for e in events if e["type"] == "log"]
    assert logs == [
        "lora: 10 trainable parameters of 40 (25.000%)",
        f"saved adapter, model in {tmp_path / 'out'}",
    ]


def test_full_fine_tuning_saves_the_model_only_and_what_an_earlier_attempt_left_goes(tmp_path):
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "stale.bin").write_text("from an earlier attempt")
    _, _, result = run_kind(out, config(peft_method="none"))
    assert result["outputs"] == [{"dir": "model", "task": "causal-lm", "role": "full"}]
    assert result["metrics"]["peft_method"] == "full"
    assert sorted(p.name for p in (out / "model").iterdir()) == ["tokenizer.json", "weights"]
    assert not (out / "adapter").exists()


def test_a_soft_prompt_or_merge_adapter_off_saves_the_adapter_only(tmp_path):
    for name, overrides in [("prompt", {"peft_method": "prompt_tuning"}), ("unmerged", {"merge_adapter": False})]:
        _, _, result = run_kind(tmp_path / name, config(**overrides))
        assert [o["role"] for o in result["outputs"]] == ["adapter"]
        assert not (tmp_path / name / "model").exists()


def test_a_resumed_run_skips_the_evaluation_before_training(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text("{}")
    kind, events, result = run_kind(out)
    assert "evaluate_before" not in kind.calls and ("train", "checkpoint-3") in kind.calls
    assert result["metrics"]["resumed_from"] == "checkpoint-3" and "eval_loss_before" not in result["metrics"]
    assert any(e.get("message", "").startswith("resuming from checkpoint-3") for e in events)


@pytest.mark.parametrize("hook", ["build", "evaluate_before", "train_loss", "evaluate"])
def test_a_failing_hook_ends_the_run_before_anything_is_saved(tmp_path, hook):
    stream = io.StringIO()
    kind = FakeKind(config(), tmp_path / "out", EventWriter(stream), failing=hook)
    with pytest.raises(ValueError, match=f"^{hook} failed$"):  # as raised: the command line reports it
        kind.run()
    assert kind.calls[-1] == hook
    assert not (tmp_path / "out" / "adapter").exists() and not (tmp_path / "out" / "model").exists()
    assert not any(e.get("message", "").startswith("saved") for e in map(json.loads, stream.getvalue().splitlines()))


def test_the_command_line_reports_a_failing_hook_as_the_runs_error(tmp_path, monkeypatch, capsys):
    from training.ml import cli, sft

    def failing_build(self, device, dtype):
        raise ValueError("train.jsonl, row 1, field 'completion': expected a string")

    monkeypatch.setattr(sft.SFTRun, "build", failing_build)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # main() would install its SIGTERM handler here
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_path": str(tmp_path / "model"), "train_file": "train.jsonl"}))
    code = cli.main(["sft", "--config", str(path), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "error"
    assert events[-1]["message"] == "ValueError: train.jsonl, row 1, field 'completion': expected a string"
    assert "Traceback" in err and not (tmp_path / "out" / "model").exists()
