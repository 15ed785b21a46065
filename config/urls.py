from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.views import frontend_index
from labeling.apis.auth import TokenApi

handler404 = "config.views.not_found"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenApi.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("labeling.urls")),
    path("api/", include("models_registry.urls")),
    path("api/", include("training.urls")),
    re_path(r"^(?!api/|admin/|static/).*$", frontend_index, name="frontend"),
]
