from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from . import docs, schema, views  # noqa: F401 (schema registers the API-key scheme)

urlpatterns = [
    path("integration", views.CurrentIntegrationView.as_view(), name="api-integration"),
    path("users", views.UsersView.as_view(), name="api-users"),
    path("sessions", views.SessionsView.as_view(), name="api-sessions"),
    path("sessions/<uuid:session_id>", views.SessionDetailView.as_view(), name="api-session"),
    path("sessions/<uuid:session_id>/messages", views.SessionMessagesView.as_view(), name="api-session-messages"),
    path("sessions/<uuid:session_id>/stop", views.SessionStopView.as_view(), name="api-session-stop"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path("docs/", docs.SwaggerDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("docs/assets/<str:name>", docs.docs_asset, name="api-docs-asset"),
]
