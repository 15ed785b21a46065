from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    ADMIN = "admin"
    REVIEWER = "reviewer"
    LABELER = "labeler"


class Split(models.TextChoices):
    TRAIN = "train"
    EVAL = "eval"
    TEST = "test"


class LabelSource(models.TextChoices):
    HUMAN = "human"
    AI = "ai"
    IMPORTED = "imported"


class ProjectKind(models.TextChoices):
    PREFERENCE = "preference"
    # Made by a side-by-side evaluation (SideBySideEval): K = 2, its comparisons pair two versions' answers.
    EVALUATION = "evaluation"


class Project(models.Model):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ProjectKind.choices, default=ProjectKind.PREFERENCE)
    instructions = models.TextField(blank=True, help_text="Markdown shown to labelers.")
    completions_per_prompt = models.PositiveSmallIntegerField(default=2, help_text="K, 2..9.")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Distinct labelers per comparison.")
    lease_seconds = models.PositiveIntegerField(default=900)
    gold_rate = models.FloatField(default=0.0, help_text="Share of `next` answers drawn from gold items.")
    rank_per_criterion = models.BooleanField(default=False)
    ai_spot_check_rate = models.FloatField(
        default=0.1, help_text="Share of AI-labeled comparisons that stay in the human queue, for audit."
    )
    prompt_template = models.ForeignKey(
        "PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    generation_config = models.JSONField(default=dict, blank=True)
    generation_model = models.ForeignKey(
        "models_registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The registered model version that generates this project's completions.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(completions_per_prompt__gte=2, completions_per_prompt__lte=9), name="project_k_2_to_9"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=10), name="project_lease_at_least_10s"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="project_gold_rate_0_1"),
            models.CheckConstraint(
                condition=Q(ai_spot_check_rate__gte=0, ai_spot_check_rate__lte=1), name="project_ai_spot_check_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]


class AlignmentCriterion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="criteria")
    name = models.CharField(max_length=64)
    instructions = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="criterion_unique_name")]


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    source_filename = models.CharField(max_length=255, blank=True)
    fields = models.JSONField(default=list, help_text="Field names every row carries.")
    row_count = models.PositiveIntegerField(default=0)
    split_counts = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class PromptRow(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="rows")
    index = models.PositiveIntegerField(help_text="0-based position in the imported file.")
    data = models.JSONField()
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)

    class Meta:
        ordering = ["dataset_id", "index"]
        constraints = [models.UniqueConstraint(fields=["dataset", "index"], name="promptrow_unique_index")]


class PromptTemplate(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="templates")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="templates")
    name = models.CharField(max_length=200)
    text = models.TextField(help_text="The prompt, with {field} placeholders.")
    example_text = models.TextField(blank=True, help_text="How each few-shot example renders; defaults to `text`.")
    examples = models.JSONField(default=list, blank=True, help_text="Few-shot examples: a list of field dicts.")
    example_separator = models.CharField(max_length=64, default="\n\n\n", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="template_unique_name")]


class Comparison(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    prompt_row = models.ForeignKey(PromptRow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField()
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    is_gold = models.BooleanField(default=False)
    gold = models.JSONField(null=True, blank=True, help_text="The known order: {ranks: {completion_id: rank}, failed}")
    # Human rankings submitted; changed only while this row is locked (assignment services).
    label_count = models.PositiveIntegerField(default=0)
    # False once an AI labeled it and it was not picked for a human spot check: humans are not served it.
    human_queue = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "is_gold", "label_count", "id"], name="comparison_queue")]


class Completion(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="completions")
    position = models.PositiveSmallIntegerField()
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    generation_params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["comparison_id", "position"]
        constraints = [models.UniqueConstraint(fields=["comparison", "position"], name="completion_unique_position")]


class AssignmentState(models.TextChoices):
    LEASED = "leased"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    # The labeler left the project while holding the lease: it takes no ranking and frees its slot.
    REVOKED = "revoked"


class Assignment(models.Model):
    """A lease of one comparison to one labeler. Live while leased and not past ``expires_at``."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    state = models.CharField(max_length=16, choices=AssignmentState.choices, default=AssignmentState.LEASED)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["comparison", "labeler"], name="assignment_once_per_labeler")]
        indexes = [
            models.Index(fields=["labeler", "project", "state", "expires_at"], name="assignment_live_by_labeler"),
            models.Index(fields=["comparison", "state", "expires_at"], name="assignment_live_by_comparison"),
        ]


class Ranking(models.Model):
    """One submit: an order of the K completions per criterion (or one overall order).

    ``orders`` is a list of ``{"criterion": id | null, "ranks": {completion_id: rank}, "failed": [id]}``.
    An AI ranking's order also carries ``"ai": {principle, probability, constitution, run, pairs}``.
    """

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="rankings")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rankings")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="ranking"
    )
    source = models.CharField(max_length=16, choices=LabelSource.choices, default=LabelSource.HUMAN)
    orders = models.JSONField()
    comment = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["comparison", "labeler"], name="ranking_once_per_labeler")]


class SnapshotStatus(models.TextChoices):
    PENDING = "pending"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class PreferenceSnapshot(models.Model):
    """An immutable, versioned export of preference pairs. Training runs point here, never at live rows."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    version = models.PositiveIntegerField()
    options = models.JSONField()
    status = models.CharField(max_length=16, choices=SnapshotStatus.choices, default=SnapshotStatus.PENDING)
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="Folder under ARTIFACT_ROOT.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker began building it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="snapshot_unique_version")]


class Constitution(models.Model):
    """One version of a project's constitution: versions are never edited, a save adds the next one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="constitutions")
    version = models.PositiveIntegerField()
    principles = models.JSONField(help_text="[{key, name, critique_request, revision_request, choice_question}]")
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="constitution_unique_version")]

    def __str__(self) -> str:
        return f"{self.project_id} constitution v{self.version}"


class SideBySideEval(models.Model):
    """A human side-by-side evaluation of two or more model versions on the same prompts.

    Its ``project`` (kind ``evaluation``) holds a copy of the chosen prompt rows and is labeled like
    any project; every comparison in it pairs two entries' answers to one row (``SideBySidePair``).
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="side_by_side")
    source_project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="+")
    split = models.CharField(max_length=8, blank=True)
    seed = models.BigIntegerField(help_text="Seeds the answers' positions in each pair.")
    results = models.JSONField(default=dict, blank=True, help_text="The results as last published.")
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class SideBySideEntry(models.Model):
    """One model version in an evaluation, with the generate run that answers its prompts."""

    evaluation = models.ForeignKey(SideBySideEval, on_delete=models.CASCADE, related_name="entries")
    version = models.ForeignKey("models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=200, help_text="'model vN': shown to reviewers, never to labelers.")
    position = models.PositiveSmallIntegerField()
    run_id = models.PositiveBigIntegerField(null=True, blank=True, help_text="Its generate run.")

    class Meta:
        ordering = ["evaluation_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "version"], name="sxs_entry_unique_version"),
            models.UniqueConstraint(fields=["evaluation", "position"], name="sxs_entry_unique_position"),
        ]


class SideBySideSample(models.Model):
    """An entry's answer to one prompt row, kept until its pairs are made (and after, for audit)."""

    entry = models.ForeignKey(SideBySideEntry, on_delete=models.CASCADE, related_name="samples")
    prompt_row = models.ForeignKey(PromptRow, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    generation_params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["entry_id", "prompt_row_id"]
        constraints = [models.UniqueConstraint(fields=["entry", "prompt_row"], name="sxs_sample_once_per_row")]


class SideBySidePair(models.Model):
    """The comparison of entries ``a`` and ``b`` (a before b in the evaluation) on one row.

    ``a_position`` is where a's answer sits (0 or 1), drawn from the evaluation's seed, so the
    position never follows the order of the entries."""

    evaluation = models.ForeignKey(SideBySideEval, on_delete=models.CASCADE, related_name="pairs")
    prompt_row = models.ForeignKey(PromptRow, on_delete=models.CASCADE, related_name="+")
    entry_a = models.ForeignKey(SideBySideEntry, on_delete=models.CASCADE, related_name="+")
    entry_b = models.ForeignKey(SideBySideEntry, on_delete=models.CASCADE, related_name="+")
    a_position = models.PositiveSmallIntegerField()
    comparison = models.OneToOneField(Comparison, on_delete=models.CASCADE, related_name="side_by_side_pair")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "prompt_row", "entry_a", "entry_b"], name="sxs_pair_once"),
            models.CheckConstraint(condition=Q(a_position__in=[0, 1]), name="sxs_pair_position_0_1"),
        ]
