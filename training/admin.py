from django.contrib import admin

from training.models import RunEvent, Sweep, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Read-only: runs change state through the API and the workers, never by hand."""

    list_display = ("id", "kind", "state", "project", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "state")
    search_fields = ("error",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RunEvent)
class RunEventAdmin(admin.ModelAdmin):
    list_display = ("run", "seq", "type", "created_at")
    list_filter = ("type",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    """Read-only: sweeps start, advance and end through the API and the workers."""

    list_display = ("id", "kind", "state", "metric", "direction", "budget", "best_value", "project", "created_at")
    list_filter = ("kind", "state")
    search_fields = ("study_name", "error")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
