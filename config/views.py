"""The web UI's entry page: the built frontend's index.html for every non-API path (client routing);
and a JSON 404 for a path under /api/ that names no route (every API error is ``{"detail"}``)."""

from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from django.views.defaults import page_not_found

NOT_BUILT = """<!doctype html><title>RankForge</title>
<h1>RankForge</h1><p>The web UI is not built yet: <code>./dev run</code> builds it.</p>
<p><a href="/api/docs/">API docs</a> &middot; <a href="/admin/">Admin</a></p>"""


@lru_cache(maxsize=1)
def _index_html() -> str | None:
    for path in (settings.BASE_DIR / "frontend" / "dist" / "index.html", settings.STATIC_ROOT / "index.html"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


@require_safe
def frontend_index(request):
    html = _index_html() if not settings.DEBUG else (_index_html.cache_clear() or _index_html())
    return HttpResponse(html or NOT_BUILT, content_type="text/html; charset=utf-8")


def not_found(request, exception):
    """handler404: under /api/, a JSON error like every other API error (a path that matches no route,
    e.g. ``/api/models/-1/``); elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API route matches {request.path!r}."}, status=404)
    return page_not_found(request, exception)
