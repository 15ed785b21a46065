from django.urls import path

from labeling.apis import ai_audit, auth, comparisons, constitutions, imports, labeling, projects
from labeling.apis import datasets as dataset_apis
from labeling.apis import snapshots as snapshot_apis
from labeling.apis import templates as template_apis
from labeling.apis.stats import ProjectStatsApi
from labeling.apis.stats_timeline import ProjectStatsTimelineApi

P = "projects/<int:project_id>/"

urlpatterns = [
    # First: every labeler's every task resolves these, and URLs are matched in order.
    path(P + "next/", labeling.NextApi.as_view(), name="project-next"),
    path("assignments/<int:assignment_id>/ranking/", labeling.RankingSubmitApi.as_view(), name="assignment-ranking"),
    path("auth/csrf/", auth.CsrfApi.as_view(), name="auth-csrf"),
    path("auth/session/", auth.SessionApi.as_view(), name="auth-session"),
    path("auth/password/", auth.PasswordChangeApi.as_view(), name="auth-password"),
    path(P + "rankings/", comparisons.RankingListApi.as_view(), name="project-rankings"),
    path("users/", projects.UserListCreateApi.as_view(), name="users"),
    path("users/<int:user_id>/token/", auth.UserTokenApi.as_view(), name="user-token"),
    path("me/", projects.MeApi.as_view(), name="me"),
    path("projects/", projects.ProjectListCreateApi.as_view(), name="projects"),
    path(P, projects.ProjectDetailApi.as_view(), name="project-detail"),
    path(P + "members/", projects.MemberListCreateApi.as_view(), name="project-members"),
    path(P + "members/<int:membership_id>/", projects.MemberDetailApi.as_view(), name="project-member-detail"),
    path(P + "criteria/", projects.CriterionListCreateApi.as_view(), name="project-criteria"),
    path(P + "criteria/<int:criterion_id>/", projects.CriterionDetailApi.as_view(), name="project-criterion-detail"),
    path(P + "comparisons/", comparisons.ComparisonListImportApi.as_view(), name="project-comparisons"),
    path(P + "preferences/", comparisons.PreferenceImportApi.as_view(), name="project-preferences"),
    path(P + "imports/", imports.ExternalImportApi.as_view(), name="project-imports"),
    path("assignments/<int:assignment_id>/skip/", labeling.SkipApi.as_view(), name="assignment-skip"),
    path(P + "stats/", ProjectStatsApi.as_view(), name="project-stats"),
    path(P + "stats/timeline/", ProjectStatsTimelineApi.as_view(), name="project-stats-timeline"),
    path(P + "stats/ai-audit/", ai_audit.AiAuditApi.as_view(), name="project-ai-audit"),
    path(P + "stats/ai-audit/disagreements/", ai_audit.AiDisagreementsApi.as_view(), name="project-ai-disagreements"),
    path(P + "constitutions/", constitutions.ConstitutionListCreateApi.as_view(), name="project-constitutions"),
    path(
        P + "constitutions/default/",
        constitutions.DefaultConstitutionApi.as_view(),
        name="project-constitution-default",
    ),
    path(
        P + "constitutions/<int:version>/",
        constitutions.ConstitutionDetailApi.as_view(),
        name="project-constitution-detail",
    ),
    path(P + "datasets/", dataset_apis.DatasetListCreateApi.as_view(), name="project-datasets"),
    path(P + "datasets/<int:dataset_id>/", dataset_apis.DatasetDetailApi.as_view(), name="project-dataset-detail"),
    path(P + "datasets/<int:dataset_id>/rows/", dataset_apis.DatasetRowsApi.as_view(), name="project-dataset-rows"),
    path(P + "templates/", template_apis.TemplateListCreateApi.as_view(), name="project-templates"),
    path(P + "templates/<int:template_id>/", template_apis.TemplateDetailApi.as_view(), name="project-template-detail"),
    path(
        P + "templates/<int:template_id>/preview/",
        template_apis.TemplatePreviewApi.as_view(),
        name="project-template-preview",
    ),
    path(P + "snapshots/", snapshot_apis.SnapshotListCreateApi.as_view(), name="project-snapshots"),
    path(P + "snapshots/<int:snapshot_id>/", snapshot_apis.SnapshotDetailApi.as_view(), name="project-snapshot-detail"),
    path(
        P + "snapshots/<int:snapshot_id>/download/",
        snapshot_apis.SnapshotDownloadApi.as_view(),
        name="project-snapshot-download",
    ),
]
