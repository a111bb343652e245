from django.contrib import admin
from django.urls import include, path

from dashboard import views as dashboard_views

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/", include("accounts.urls")),
    path("onboarding/", include("onboarding.urls")),
    path("triage/", include("triage.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("api/status", dashboard_views.api_status, name="api_status"),
    path("", include("status.urls")),
    path("notifications/", include("notifications.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("admin/", admin.site.urls),
]

handler500 = "hokusai_portal.views.server_error"
