from django.urls import path

from labeling.apis import projects

P = "projects/<int:project_id>/"

urlpatterns = [
    path("users/", projects.UserListCreateApi.as_view(), name="users"),
    path("me/", projects.MeApi.as_view(), name="me"),
    path("projects/", projects.ProjectListCreateApi.as_view(), name="projects"),
    path(P, projects.ProjectDetailApi.as_view(), name="project-detail"),
    path(P + "members/", projects.MemberListCreateApi.as_view(), name="project-members"),
    path(P + "members/<int:membership_id>/", projects.MemberDetailApi.as_view(), name="project-member-detail"),
    path(P + "criteria/", projects.CriterionListCreateApi.as_view(), name="project-criteria"),
    path(P + "criteria/<int:criterion_id>/", projects.CriterionDetailApi.as_view(), name="project-criterion-detail"),
]
