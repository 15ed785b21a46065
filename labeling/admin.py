from django.contrib import admin

from labeling import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    autocomplete_fields = ["user"]


class CriterionInline(admin.TabularInline):
    model = models.AlignmentCriterion
    extra = 0


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "completions_per_prompt", "overlap", "gold_rate", "rank_per_criterion", "created_at")
    search_fields = ("name",)
    inlines = [MembershipInline, CriterionInline]


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "name", "row_count", "created_at")
    list_filter = ("project",)


@admin.register(models.PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "name", "dataset")
    list_filter = ("project",)


class CompletionInline(admin.TabularInline):
    model = models.Completion
    extra = 0


@admin.register(models.Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "split", "is_gold", "label_count", "created_at")
    list_filter = ("project", "split", "is_gold")
    inlines = [CompletionInline]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "comparison", "labeler", "state", "expires_at")
    list_filter = ("project", "state")
    raw_id_fields = ("comparison",)


@admin.register(models.Ranking)
class RankingAdmin(admin.ModelAdmin):
    list_display = ("id", "comparison", "labeler", "source", "created_at")
    list_filter = ("source", "comparison__project")
    raw_id_fields = ("comparison", "assignment")


@admin.register(models.PreferenceSnapshot)
class PreferenceSnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "version", "status", "created_at", "finished_at")
    list_filter = ("project", "status")
