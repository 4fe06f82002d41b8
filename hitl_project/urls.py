from django.contrib import admin
from django.urls import include, path

from bridge.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("django_prometheus.urls")),
    path("api/v1/", include("bridge.api.urls")),
    path("webhooks/", include("bridge.webhooks.urls")),
    path("", include("dashboard.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "bridge.views.not_found"
handler500 = "bridge.views.server_error"
