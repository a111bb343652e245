from django.contrib import admin
from django.urls import include, path

from accounts import views as accounts_views
from api.endpoints import api as api_v1
from dashboard import views as dashboard_views
from onboarding import views as onboarding_views
from operations import views as operations_views

from . import views

urlpatterns = [
    path("", accounts_views.home, name="home"),
    path("healthz", onboarding_views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),  # email, password, MFA, sessions, SSO (django-allauth)
    path("organization/", include("organizations.urls")),
    path("onboarding/", include("onboarding.urls")),
    path("triage/", include("triage.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("api/status", dashboard_views.api_status, name="api_status"),
    path("api/v1/", api_v1.urls),
    path("account/tokens/", include("api.urls")),
    path("", include("status.urls")),
    path("notifications/", include("notifications.urls")),
    path("webhooks/", include("webhooks.urls")),
    path("admin/", admin.site.urls),
    path("metrics", operations_views.metrics, name="metrics"),
]

handler500 = "hokusai_portal.views.server_error"
