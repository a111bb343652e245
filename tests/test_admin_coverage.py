"""Every model of the project's apps has an admin, and its change list opens (generated from the app
registry: a new model without an admin, or an admin whose list columns or filters break, fails here)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.services import totp_enrol

PROJECT_APPS = ("accounts", "onboarding", "triage", "dashboard", "status", "notifications", "webhooks", "api")


def project_models():
    return [model for config in apps.get_app_configs() if config.name in PROJECT_APPS for model in config.get_models()]


def test_every_model_has_an_admin():
    missing = [model._meta.label for model in project_models() if model not in admin.site._registry]
    assert missing == []


@pytest.mark.django_db
def test_every_change_list_opens(alice):
    from tests.conftest import objects_owned_by

    objects_owned_by(alice)  # a row of most kinds, so columns and filters render with data
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "a long enough passphrase")
    totp_enrol(user=superuser)  # administrators need a second factor (accounts.middleware)
    client = Client()
    client.force_login(superuser)
    for model in project_models():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert client.get(url).status_code == 200, url
