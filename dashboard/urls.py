"""The console's own pages. This URLconf is included before the admin's (hitl_project/urls.py),
so `admin/` here answers first: the console's home is the overview, not Django's model list
(which the overview links to, and the sidebar shows on every page)."""
from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.admin_view(views.overview), name="console-overview"),
]
