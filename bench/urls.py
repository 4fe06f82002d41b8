"""Every production URL, plus the bare endpoint the webhook is compared with."""
from django.urls import include, path

from .views import BareIngestView

urlpatterns = [
    path("bench/bare/", BareIngestView.as_view(), name="bench-bare"),
    path("", include("hitl_project.urls")),
]

handler404 = "bridge.views.not_found"
handler500 = "bridge.views.server_error"
