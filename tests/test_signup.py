from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.roles import Role, roles_of


def test_it_creates_a_developer_and_signs_them_in(client, db):
    response = client.post(
        reverse("accounts:signup"), {"email": "Dev@Example.com", "password": "a-long-unusual-passphrase"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("onboarding:index")
    user = get_user_model().objects.get(username="dev@example.com")
    assert roles_of(user) == {Role.DEVELOPER}
    assert client.get(reverse("onboarding:history")).status_code == 200


def test_weak_password_is_refused_and_nothing_is_saved(client, db):
    response = client.post(reverse("accounts:signup"), {"email": "dev@example.com", "password": "password"})
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert not get_user_model().objects.exists()


def test_duplicate_email_is_refused(client, alice):
    alice.username = "alice@example.com"
    alice.save()
    response = client.post(
        reverse("accounts:signup"), {"email": "ALICE@example.com", "password": "a-long-unusual-passphrase"}
    )
    assert "already exists" in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_bad_email_gets_a_message_not_a_500(client, db):
    response = client.post(reverse("accounts:signup"), {"email": "not an email", "password": "x"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
