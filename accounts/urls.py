from allauth.account import views as allauth_views
from django.urls import path

from . import views

# The portal's names for allauth's sign-in, sign-out and sign-up (the same views as account_login etc.).
app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", allauth_views.LogoutView.as_view(), name="logout"),
    path("signup/", allauth_views.SignupView.as_view(), name="signup"),
    path("settings/", views.account_settings, name="settings"),
    path("settings/data.json", views.data_export, name="data_export"),
    path("settings/delete/", views.account_delete, name="delete"),
]
