"""Admin pages of the registry. Versions are immutable records of files on disk: the admin shows them
read-only (register through the API or the import command, never by hand), except their tags."""

from django import forms
from django.contrib import admin

from common.exceptions import ServiceError
from models_registry import models, services


class ModelVersionForm(forms.ModelForm):
    class Meta:
        model = models.ModelVersion
        fields = ("tags",)

    def clean_tags(self):
        try:
            return services.clean_tags(self.cleaned_data["tags"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


class VersionInline(admin.TabularInline):
    model = models.ModelVersion
    fk_name = "model"
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("version", "format", "is_adapter", "merged", "size_bytes", "tags", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class AliasInline(admin.TabularInline):
    model = models.ModelAlias
    extra = 0
    can_delete = False
    fields = ("name", "version", "updated_by", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "task", "project", "shared", "created_by", "created_at")
    list_filter = ("task", "shared")
    search_fields = ("name", "description")
    # The project comes from the run that made the model; moving it would move its readers.
    readonly_fields = ("created_by", "created_at", "project")
    inlines = [AliasInline, VersionInline]


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    form = ModelVersionForm
    list_display = ("id", "model", "version", "format", "is_adapter", "merged", "size_bytes", "created_at")
    list_filter = ("format", "is_adapter", "merged", "model__task")
    search_fields = ("model__name", "config_hash", "tags")
    list_select_related = ("model",)
    readonly_fields = (
        "model",
        "version",
        "artifact_path",
        "format",
        "base_version",
        "is_adapter",
        "merged",
        "tokenizer",
        "size_bytes",
        "config_hash",
        "source_run_id",
        "source_role",
        "project",
        "source_snapshot_id",
        "metrics",
        "created_by",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    """Read-only: moving an alias goes through alias_set, which writes the history."""

    list_display = ("model", "name", "version", "updated_by", "updated_at")
    list_filter = ("name",)
    list_select_related = ("model", "version", "updated_by")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.ModelAliasEvent)
class ModelAliasEventAdmin(admin.ModelAdmin):
    list_display = ("id", "model", "alias", "action", "from_version", "to_version", "actor", "created_at")
    list_filter = ("action", "alias")
    list_select_related = ("model", "from_version", "to_version", "actor")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
