"""The model registry: registered models, their immutable versions (artifacts + lineage) and moving aliases.

This app stays light: it never imports ``training``, ``labeling`` nor torch. Runs and preference
snapshots are referred to by plain integer ids (``source_run_id``, ``source_snapshot_id``); the
project a model belongs to is a foreign key declared by name (``"labeling.Project"``), so the
registry can scope reads by project membership without importing labeling.

Scope: a model (and each of its versions) belongs to the project whose run made it, or to no
project (imports, platform-level runs). Members of the project read it; a platform admin may mark
a model ``shared``, and then every signed-in user reads it (the pip base models are shared). A
model with no project that is not shared is seen by platform admins only: nothing is public unless
a platform admin said so.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
ALIAS_RE = r"^[a-z][a-z0-9_-]{0,63}$"

model_name_validator = RegexValidator(
    NAME_RE,
    "Use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it names a folder).",
)
alias_name_validator = RegexValidator(
    ALIAS_RE, "Use 1-64 lowercase letters, digits, '_' or '-', starting with a letter (e.g. production)."
)


class Task(models.TextChoices):
    CAUSAL_LM = "causal-lm"
    SEQ2SEQ = "seq2seq"
    REWARD_MODEL = "reward-model"
    CLASSIFIER = "classifier"


class ArtifactFormat(models.TextChoices):
    HF_FOLDER = "hf-folder"
    GGUF = "gguf"
    PEFT_ADAPTER = "peft-adapter"


class RegisteredModel(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[model_name_validator])
    task = models.CharField(max_length=16, choices=Task.choices)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A deleted project leaves its models unscoped (platform admins only), never public.
    project = models.ForeignKey(
        "labeling.Project",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The project whose members read this model; empty for imports and platform-level runs.",
    )
    shared = models.BooleanField(
        default=False, help_text="Every signed-in user reads it (set by a platform admin: base models)."
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            # Names become folders: two names that differ only by case must not share one.
            models.UniqueConstraint(Lower("name"), name="registeredmodel_unique_name_ci"),
            models.CheckConstraint(condition=Q(task__in=Task.values), name="registeredmodel_task_known"),
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One immutable artifact of a model. Only ``tags`` change after registration."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(help_text="1, 2, ... per model, in registration order.")
    artifact_path = models.CharField(
        max_length=300, help_text="Folder relative to ARTIFACT_ROOT, e.g. models/<name>/<version>."
    )
    format = models.CharField(max_length=16, choices=ArtifactFormat.choices)
    base_version = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derived_versions",
        help_text="The version this one was trained or converted from (lineage).",
    )
    is_adapter = models.BooleanField(default=False, help_text="The folder holds PEFT adapter weights only.")
    merged = models.BooleanField(default=False, help_text="Full weights made by merging an adapter into its base.")
    tokenizer = models.CharField(
        max_length=300, blank=True, help_text="Where the tokenizer is: this artifact's folder, a hub id or a path."
    )
    size_bytes = models.PositiveBigIntegerField(default=0)
    config_hash = models.CharField(
        max_length=64, db_index=True, help_text="sha256 of the saved model/adapter config and tokenizer config."
    )
    source_run_id = models.PositiveBigIntegerField(null=True, blank=True, help_text="The training run that made it.")
    source_role = models.CharField(
        max_length=16,
        blank=True,
        help_text="Which of the run's outputs it is (adapter, full, merged): with source_run_id, registered once.",
    )
    project = models.ForeignKey(
        "labeling.Project",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The project of the run that made it (its model's project for new versions).",
    )
    source_snapshot_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The preference snapshot it was trained on."
    )
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="modelversion_unique_number"),
            models.UniqueConstraint(fields=["artifact_path"], name="modelversion_unique_artifact"),
            models.CheckConstraint(condition=Q(version__gte=1), name="modelversion_number_positive"),
            models.CheckConstraint(condition=Q(format__in=ArtifactFormat.values), name="modelversion_format_known"),
            models.CheckConstraint(
                condition=Q(is_adapter=False, format__in=["hf-folder", "gguf"])
                | Q(is_adapter=True, format="peft-adapter"),
                name="modelversion_adapter_iff_peft",
            ),
            models.CheckConstraint(condition=~Q(is_adapter=True, merged=True), name="modelversion_adapter_not_merged"),
            # A resumed run's second finish() finds its versions instead of registering them again.
            models.UniqueConstraint(
                fields=["source_run_id", "source_role"],
                condition=Q(source_run_id__isnull=False) & ~Q(source_role=""),
                name="modelversion_once_per_run_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


class ModelAlias(models.Model):
    """A name (``production``, ``candidate``) that points at one version of the model and can move."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64, validators=[alias_name_validator])
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="modelalias_unique_name")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.name}"


class AliasAction(models.TextChoices):
    SET = "set"
    REMOVE = "remove"


class ModelAliasEvent(models.Model):
    """Append-only history of alias moves: who pointed which alias from where to where, and when."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.CharField(max_length=64)
    action = models.CharField(max_length=8, choices=AliasAction.choices)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action="set", to_version__isnull=False) | Q(action="remove", to_version__isnull=True),
                name="modelaliasevent_target_matches_action",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id}@{self.alias} {self.action}"
