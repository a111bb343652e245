from django.urls import path

from . import views

app_name = "status"
urlpatterns = [
    path("status/", views.page, name="page"),
    path("status.json", views.summary_json, name="json"),
    path("status/badge/<slug:slug>.svg", views.badge, name="badge"),
]
