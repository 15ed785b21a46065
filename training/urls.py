from django.urls import path

from training import apis
from training import apis_rounds as rounds
from training import apis_side_by_side as sxs
from training import apis_sweeps as sweeps

urlpatterns = [
    path("runs/", apis.RunListCreateApi.as_view(), name="runs"),
    path("runs/kinds/", apis.RunKindsApi.as_view(), name="run-kinds"),
    path("runs/<int:run_id>/", apis.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<int:run_id>/events/", apis.RunEventsApi.as_view(), name="run-events"),
    path("runs/<int:run_id>/logs/", apis.RunLogsApi.as_view(), name="run-logs"),
    path("runs/<int:run_id>/metrics/", apis.RunMetricsApi.as_view(), name="run-metrics"),
    path("runs/<int:run_id>/revisions/", apis.RunRevisionsApi.as_view(), name="run-revisions"),
    path("runs/<int:run_id>/cancel/", apis.RunCancelApi.as_view(), name="run-cancel"),
    path("runs/<int:run_id>/guard/", rounds.RunGuardApi.as_view(), name="run-guard"),
    path("sweeps/", sweeps.SweepListCreateApi.as_view(), name="sweeps"),
    path("sweeps/kinds/", sweeps.SweepKindsApi.as_view(), name="sweep-kinds"),
    path("sweeps/<int:sweep_id>/", sweeps.SweepDetailApi.as_view(), name="sweep-detail"),
    path("sweeps/<int:sweep_id>/cancel/", sweeps.SweepCancelApi.as_view(), name="sweep-cancel"),
    path("projects/<int:project_id>/rounds/", rounds.ProjectRoundsApi.as_view(), name="project-rounds"),
    path("rounds/<int:round_id>/", rounds.RoundDetailApi.as_view(), name="round-detail"),
    path("projects/<int:project_id>/generate/", apis.ProjectGenerateApi.as_view(), name="project-generate"),
    path("projects/<int:project_id>/evaluations/", sxs.EvaluationCreateApi.as_view(), name="project-evaluations"),
    path("evaluations/", sxs.EvaluationListApi.as_view(), name="evaluations"),
    path("evaluations/<int:evaluation_id>/", sxs.EvaluationDetailApi.as_view(), name="evaluation-detail"),
    path("evaluations/<int:evaluation_id>/results/", sxs.EvaluationResultsApi.as_view(), name="evaluation-results"),
    path("evaluations/<int:evaluation_id>/publish/", sxs.EvaluationPublishApi.as_view(), name="evaluation-publish"),
]
