from django.urls import path

from . import views

urlpatterns = [
    path("livechat/<uuid:integration_id>/", views.livechat_webhook, name="livechat-webhook"),
]
