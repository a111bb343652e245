from django.urls import path

from . import views

app_name = "triage"
urlpatterns = [
    path("", views.index, name="index"),
    path("queue/", views.queue, name="queue"),
    path("new/", views.create, name="create"),
    path("import/", views.import_plan, name="import"),
    path("reports/", views.my_reports, name="my_reports"),
    path("findings/", views.findings, name="findings"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/transition/", views.transition, name="transition"),
    path("<int:pk>/awaiting/", views.awaiting, name="awaiting"),
    path("<int:pk>/comment/", views.comment, name="comment"),
    path("<int:pk>/export.md", views.export, name="export"),
    path("findings/<int:pk>/status/", views.finding_status, name="finding_status"),
    path("actions/<int:pk>/toggle/", views.action_toggle, name="action_toggle"),
    path("reports/<int:pk>/rerun/", views.rerun, name="rerun"),
    path("reports/from-check/<int:run_id>/", views.report_problem, name="report_problem"),
]
