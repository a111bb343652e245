"""Each role reaches its own pages and gets 403 elsewhere."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

PAGES = {"onboarding:history", "triage:index", "dashboard:index"}
ALLOWED = {
    "alice": {"onboarding:history"},
    "bob": {"onboarding:history", "triage:index", "dashboard:index"},
    "charlie": {"dashboard:index", "triage:index", "onboarding:history"},  # the lists the dashboard links to
    "mallory": set(),
}


@pytest.mark.parametrize("who", ["alice", "bob", "charlie", "outsider"])
def test_each_role_reaches_its_pages_and_gets_403_elsewhere(client, request, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    for page in PAGES:
        response = client.get(reverse(page))
        expected = 200 if page in ALLOWED[user.username] else 403
        assert response.status_code == expected, (user.username, page)


def test_anonymous_users_are_sent_to_sign_in(client, db):
    response = client.get(reverse("triage:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize(
    ("who", "landing"), [("alice", "onboarding:index"), ("bob", "triage:index"), ("charlie", "dashboard:index")]
)
def test_home_sends_each_role_to_its_page(client, request, who, landing):
    client.force_login(request.getfixturevalue(who))
    assert client.get("/")["Location"] == reverse(landing)


def test_navigation_shows_only_what_the_role_can_open(client, charlie):
    client.force_login(charlie)
    html = client.get(reverse("dashboard:index")).content.decode()
    assert reverse("dashboard:index") in html
    assert reverse("triage:queue") not in html  # support's queue
    assert reverse("onboarding:index") not in html


def test_sign_in_and_sign_out(client, alice):
    response = client.post(reverse("accounts:login"), {"login": "alice", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("onboarding:key")
    response = client.post(reverse("accounts:logout"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("accounts:login")
    assert client.get(reverse("onboarding:history")).status_code == 302  # signed out


def test_wrong_password_gets_a_clear_message(client, alice):
    response = client.post(reverse("accounts:login"), {"login": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "The username and/or password you specified are not correct." in response.content.decode()
