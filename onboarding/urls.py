from django.urls import path

from . import views

app_name = "onboarding"
urlpatterns = [
    path("", views.index, name="index"),
    path("key/", views.key, name="key"),
    path("key/forget/", views.key_forget, name="key_forget"),
    path("key/organization/", views.organization_key, name="organization_key"),
    path("key/organization/forget/", views.organization_key_forget, name="organization_key_forget"),
    path("connectivity/", views.connectivity, name="connectivity"),
    path("checks/", views.history, name="history"),
    path("checks/<int:run_id>/", views.check_run, name="check_run"),
    path("checks/<int:run_id>/retry/", views.check_run_retry, name="check_run_retry"),
    path("registration/", views.registration, name="registration"),
    path("registration/runs/", views.run_picker, name="run_picker"),
    path("done/", views.done, name="done"),
    path("registrations/<int:registration_id>/", views.registered_version, name="registered_version"),
    path("environment/", views.environment, name="environment"),
    path("environment/<int:report_id>/", views.environment_report, name="environment_report"),
    path("doctor/hokusai_doctor.py", views.doctor_script, name="doctor_script"),
]
