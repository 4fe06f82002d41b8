"""Console pages that are not one model's: the overview, which is the console's home page."""
from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse

from . import scoping, selectors

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30


def overview(request):
    """Per tenant: handoffs per day, open sessions, median time to first agent reply, transfer
    rate, failed callbacks. `?tenant=<slug>` shows one tenant, `?days=7|30|90` the period."""
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    if days not in PERIODS:
        days = DEFAULT_PERIOD
    all_tenants = list(scoping.visible_tenants(request).only("id", "name", "slug"))
    tenants = all_tenants
    selected = request.GET.get("tenant") or ""
    if selected:
        tenants = [t for t in all_tenants if t.slug == selected]
        if not tenants:
            raise Http404("No such tenant.")
    context = {
        **admin.site.each_context(request),
        "title": "Overview",
        "overviews": selectors.overview(tenants=tenants, days=days),
        "all_tenants": all_tenants,
        "selected": selected,
        "days": days,
        "periods": PERIODS,
        "roles": scoping.roles(request),
        "is_superuser": scoping.is_superuser(request),
        "app_list": admin.site.get_app_list(request),
    }
    return TemplateResponse(request, "dashboard/overview.html", context)
