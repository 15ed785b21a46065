from django.urls import path

from models_registry import apis

M = "models/<int:model_id>/"
V = M + "versions/<int:version>/"

urlpatterns = [
    path("models/", apis.ModelListCreateApi.as_view(), name="models"),
    path("models/import/", apis.ModelImportApi.as_view(), name="models-import"),
    path(M, apis.ModelDetailApi.as_view(), name="model-detail"),
    path(M + "versions/", apis.ModelVersionListApi.as_view(), name="model-versions"),
    path(V, apis.ModelVersionDetailApi.as_view(), name="model-version-detail"),
    path(V + "download/", apis.ModelVersionDownloadApi.as_view(), name="model-version-download"),
    path(M + "aliases/", apis.ModelAliasListApi.as_view(), name="model-aliases"),
    path(M + "alias-history/", apis.ModelAliasHistoryApi.as_view(), name="model-alias-history"),
    path(M + "aliases/<slug:alias>/", apis.ModelAliasDetailApi.as_view(), name="model-alias-detail"),
]
