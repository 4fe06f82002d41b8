"""The browsable API docs, self-contained: Swagger UI's files come from the
drf-spectacular-sidecar package through our own URL, so the page needs no CDN and no static
files setup (it works with DEBUG off and before `collectstatic`). Without the package installed
it falls back to drf-spectacular's default (a CDN)."""
import importlib.util
from functools import lru_cache
from pathlib import Path

from django.http import FileResponse, Http404
from django.urls import reverse
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularSwaggerView

ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


@lru_cache(maxsize=1)
def swagger_dist() -> Path | None:
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
    return folder if folder.is_dir() else None


class SwaggerDocsView(SpectacularSwaggerView):
    authentication_classes: list = []
    permission_classes: list = []

    @staticmethod
    def _swagger_ui_resource(filename):
        if swagger_dist() is None:
            return SpectacularSwaggerView._swagger_ui_resource(filename)
        return reverse("api-docs-asset", args=[filename])

    @staticmethod
    def _swagger_ui_favicon():
        if swagger_dist() is None:
            return SpectacularSwaggerView._swagger_ui_favicon()
        return reverse("api-docs-asset", args=["favicon-32x32.png"])


@require_GET
def docs_asset(request, name):
    folder = swagger_dist()
    if folder is None or name not in ASSETS:
        raise Http404
    response = FileResponse(open(folder / name, "rb"), content_type=ASSETS[name])
    response["Cache-Control"] = "public, max-age=86400"
    return response
