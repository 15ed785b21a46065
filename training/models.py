"""Training runs: a row per job with a state machine, and its append-only event log (DESIGN.md, Jobs
and workers). State changes only through ``training.services.runs.run_transition``."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from contracts import events


class RunKind(models.TextChoices):
    GENERATE = "generate"
    SFT = "sft"
    REWARD_MODEL = "reward_model"
    RLHF = "rlhf"
    DPO = "dpo"
    CAI_REVISE = "cai_revise"
    AI_FEEDBACK = "ai_feedback"
    EVALUATE = "evaluate"


class RunState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
LIVE_STATES = frozenset({RunState.RUNNING, RunState.CANCELLING})  # a worker holds the run


class TrainingRun(models.Model):
    kind = models.CharField(max_length=32, choices=RunKind.choices)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    config = models.JSONField(help_text="The kind's config, validated and with defaults filled in.")
    inputs = models.JSONField(default=dict, blank=True, help_text="What the run reads: dataset, prompts, ...")
    outputs = models.JSONField(default=dict, blank=True, help_text="What it produced: artifacts, counts.")
    project = models.ForeignKey(
        "labeling.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    progress_step = models.PositiveIntegerField(null=True, blank=True)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why it failed, in words a person can act on.")
    worker_host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True, help_text="The run's process (group leader).")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Re-enqueue bookkeeping for the sweep (a lost message leaves a run queued forever otherwise).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueue_count = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(
        default=1, help_text="1 for the first start; +1 each time the sweep requeues it to resume after a lost worker."
    )
    last_seq = models.PositiveIntegerField(default=0, help_text="Seq of the newest event.")
    round = models.ForeignKey(
        "Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs", help_text="The loop's round."
    )
    sweep = models.ForeignKey(
        "Sweep",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The sweep this run is a trial of.",
    )
    sweep_trial = models.PositiveIntegerField(
        null=True, blank=True, help_text="The trial's number in its sweep's study (0, 1, ...)."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["state", "heartbeat_at"], name="run_state_heartbeat"),
            models.Index(fields=["project", "kind", "state"], name="run_project_kind_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress_total__isnull=True)
                | Q(progress_step__isnull=True)
                | Q(progress_step__lte=models.F("progress_total")),
                name="run_progress_within_total",
            ),
            # One run per trial: an advance that is retried after a crash finds the trial's run.
            models.UniqueConstraint(
                fields=["sweep", "sweep_trial"], condition=Q(sweep__isnull=False), name="run_once_per_sweep_trial"
            ),
            models.CheckConstraint(
                condition=Q(sweep__isnull=True) | Q(sweep_trial__isnull=False), name="run_sweep_names_its_trial"
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.kind}, {self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class RunEventType(models.TextChoices):
    STATE = "state"  # written by the state machine: {"from", "to", "error"?}
    # The rest: what a run's process writes (contracts.events).
    PROGRESS = events.PROGRESS
    METRIC = events.METRIC
    LOG = events.LOG  # the run's log events, non-JSON stdout and stderr lines: {"level", "message", "stream"?}
    ARTIFACT = events.ARTIFACT
    CHECKPOINT = events.CHECKPOINT
    ERROR = events.ERROR
    RESULT = events.RESULT


class RunEvent(models.Model):
    """Append-only. ``seq`` counts 1, 2, 3, ... per run with no gaps, so a poller sees every event."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=16, choices=RunEventType.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="runevent_unique_seq")]
        indexes = [models.Index(fields=["run", "type", "seq"], name="runevent_by_type")]

    def __str__(self) -> str:
        return f"run {self.run_id} #{self.seq} {self.type}"


class CritiqueRevision(models.Model):
    """One prompt of a ``cai_revise`` run: the first answer and each round's principle, critique and
    revision, kept so people can read what the constitution did (and what the SFT set learns)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="critique_revisions")
    prompt_id = models.CharField(max_length=200)
    prompt = models.TextField()
    initial = models.TextField()
    rounds = models.JSONField(help_text="[{principle, critique_request, critique, revision_request, revision}]")
    final = models.TextField()
    # ",harm,honesty," for a cheap "used this principle" filter on every database.
    principles = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "prompt_id"], name="critique_revision_once")]

    def __str__(self) -> str:
        return f"run {self.run_id} prompt {self.prompt_id}"


class Round(models.Model):
    """One step of the loop: generate with ``base_version`` -> label -> snapshot -> train -> evaluate
    -> register. The runs started for it point here (``TrainingRun.round``); the side-by-side
    evaluations made for it are linked; the rest (snapshots, versions) is read off its runs."""

    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField(help_text="1, 2, ... per project.")
    base_version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+", help_text="Generates its data."
    )
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    generation_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    evaluations = models.ManyToManyField("labeling.SideBySideEval", blank=True, related_name="+")
    # The reward-hacking guard: the previous round's RLHF samples put back to labelers in this round.
    guard = models.JSONField(default=dict, blank=True, help_text="{run, comparisons: [ids], best, worst}")
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="round_unique_number")]

    def __str__(self) -> str:
        return f"project {self.project_id} round {self.number}"


class SweepState(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # spelled as a run's


class SweepDirection(models.TextChoices):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class SweepSampler(models.TextChoices):
    TPE = "tpe"
    RANDOM = "random"


class SweepPruner(models.TextChoices):
    MEDIAN = "median"
    NONE = "none"


class Sweep(models.Model):
    """A hyperparameter search over one run kind: each trial is an ordinary run of that kind (``runs``)
    whose config is ``config`` with the trial's values of the ``search_space`` fields. Optuna's study
    (``study_name``, in this database) holds the trials' parameters, values and intermediate values;
    ``training.services.sweeps.sweep_advance`` keeps the two in step (DESIGN.md: sweeps, issue 16)."""

    project = models.ForeignKey(
        "labeling.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="sweeps"
    )
    kind = models.CharField(max_length=32, choices=RunKind.choices)
    config = models.JSONField(default=dict, blank=True, help_text="Every trial's config, before its parameters.")
    inputs = models.JSONField(default=dict, blank=True, help_text="Every trial's inputs, as a run takes them.")
    search_space = models.JSONField(help_text="Config field -> {type: choice|int|float, ...}.")
    metric = models.CharField(max_length=100, help_text="The result metric the trials are ranked by.")
    direction = models.CharField(max_length=8, choices=SweepDirection.choices)
    budget = models.PositiveIntegerField(help_text="How many trials in all.")
    parallelism = models.PositiveIntegerField(help_text="How many trials run at once at most.")
    sampler = models.CharField(max_length=8, choices=SweepSampler.choices, default=SweepSampler.TPE)
    seed = models.PositiveBigIntegerField(null=True, blank=True)
    pruner = models.CharField(max_length=8, choices=SweepPruner.choices, default=SweepPruner.MEDIAN)
    alias = models.CharField(max_length=64, help_text="Set on the best trial's model version when the sweep ends.")
    state = models.CharField(max_length=16, choices=SweepState.choices, default=SweepState.RUNNING)
    study_name = models.CharField(max_length=100, unique=True, help_text="The Optuna study in this database.")
    best_trial = models.PositiveIntegerField(null=True, blank=True)
    best_value = models.FloatField(null=True, blank=True)
    best_run = models.ForeignKey(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The best trial's run.",
    )
    best_version = models.ForeignKey(
        "models_registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The best trial's model version, aliased when the sweep succeeded.",
    )
    error = models.TextField(blank=True, help_text="Why it failed, or what went wrong at its end.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["state"], name="sweep_state")]
        constraints = [
            models.CheckConstraint(condition=Q(budget__gte=1), name="sweep_budget_positive"),
            models.CheckConstraint(
                condition=Q(parallelism__gte=1) & Q(parallelism__lte=models.F("budget")),
                name="sweep_parallelism_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return f"sweep {self.pk} ({self.kind}, {self.state})"
