from django.urls import path

from training import apis

urlpatterns = [
    path("runs/", apis.RunListCreateApi.as_view(), name="runs"),
    path("runs/kinds/", apis.RunKindsApi.as_view(), name="run-kinds"),
    path("runs/<int:run_id>/", apis.RunDetailApi.as_view(), name="run-detail"),
    path("runs/<int:run_id>/events/", apis.RunEventsApi.as_view(), name="run-events"),
    path("runs/<int:run_id>/logs/", apis.RunLogsApi.as_view(), name="run-logs"),
    path("runs/<int:run_id>/metrics/", apis.RunMetricsApi.as_view(), name="run-metrics"),
    path("runs/<int:run_id>/revisions/", apis.RunRevisionsApi.as_view(), name="run-revisions"),
    path("runs/<int:run_id>/cancel/", apis.RunCancelApi.as_view(), name="run-cancel"),
    path("projects/<int:project_id>/generate/", apis.ProjectGenerateApi.as_view(), name="project-generate"),
]
