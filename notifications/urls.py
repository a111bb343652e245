from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("follow/<int:pk>/", views.follow, name="follow"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("outbox/", views.outbox, name="outbox"),
]
