from django.urls import path

from . import views

app_name = "webhooks"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:pk>/", views.endpoint, name="endpoint"),
    path("<int:pk>/action/", views.endpoint_action, name="endpoint_action"),
    path("<int:pk>/redeliver/", views.redeliver_range, name="redeliver_range"),
    path("deliveries/<int:pk>/redeliver/", views.redeliver_one, name="redeliver_one"),
]
