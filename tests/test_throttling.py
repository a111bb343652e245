"""Guessing is slowed: failed sign-ins per account and per address, and key submissions, are counted in
a sliding window (a fixed window let 20 key submissions through in 4.6 s across its boundary)."""

import pytest
from django.urls import reverse

from accounts.forms import FAILED_LOGINS_PER_ADDRESS, FAILED_LOGINS_PER_USER
from hokusai_portal.ratelimit import Limited, SlidingWindow
from onboarding import services
from onboarding.models import ApiKey
from tests.conftest import PASSWORD

KEY = "hk_test_Abcdefghijklmnopqrstuvwxyz012345"


def sign_in(client, username, password, address="203.0.113.7"):
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_wrong_passwords_lock_the_account_even_against_the_right_one(client, alice, bob):
    """Seen: 30 wrong passwords in a row each got 200, then the right one signed in."""
    for attempt in range(FAILED_LOGINS_PER_USER.limit):
        response = sign_in(client, "alice", f"wrong-{attempt}")
        assert response.status_code == 200 and "Please enter a correct" in response.content.decode()
    refused = sign_in(client, "alice", PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Case does not dodge it, and another account from another address is not affected.
    assert sign_in(client, "ALICE", PASSWORD).status_code == 429
    assert sign_in(client, "bob", PASSWORD, address="198.51.100.1").status_code == 302


def test_one_address_guessing_across_accounts_is_stopped(client, db):
    for attempt in range(FAILED_LOGINS_PER_ADDRESS.limit):
        assert sign_in(client, f"user{attempt}@example.com", "guess").status_code == 200
    assert sign_in(client, "someone-else@example.com", "guess").status_code == 429
    assert sign_in(client, "someone-else@example.com", "guess", address="192.0.2.9").status_code == 200


def test_a_success_clears_the_accounts_failures(client, alice):
    for attempt in range(FAILED_LOGINS_PER_USER.limit - 1):
        sign_in(client, "alice", f"wrong-{attempt}")
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for attempt in range(FAILED_LOGINS_PER_USER.limit - 1):
        assert sign_in(client, "alice", f"wrong-{attempt}").status_code == 200  # a fresh allowance


def test_key_submissions_across_a_window_boundary_count_together(alice):
    """10 just before a boundary and 10 just after: the second ten are refused."""
    window = services.KEY_SUBMISSIONS
    boundary = 1_000_000 * window.window  # a multiple of the window: a fixed window's edge
    for second in range(window.limit):
        window.check("alice", now=boundary - 5 + second * 0.1)
        window.hit("alice", now=boundary - 5 + second * 0.1)
    with pytest.raises(Limited) as refused:
        window.check("alice", now=boundary + 1)
    # The previous window's ten fade as the window slides: one more is allowed once a tenth has gone.
    assert 0.05 * window.window < refused.value.retry_after < 0.15 * window.window
    window.check("alice", now=boundary + 1 + refused.value.retry_after)


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_the_window_allows_exactly_the_limit_and_names_a_wait_that_works(db, limit):
    window = SlidingWindow(f"probe-{limit}", limit=limit, window=60)
    now = 6_000_000.0
    for n in range(limit):
        window.check("k", now=now + n)
        window.hit("k", now=now + n)
    with pytest.raises(Limited) as refused:
        window.check("k", now=now + limit)
    window.check("k", now=now + limit + refused.value.retry_after)  # the wait it named is enough
    with pytest.raises(Limited):
        window.check("k", now=now + limit + refused.value.retry_after - 2)  # and not much more than needed


def test_the_key_page_says_when_to_come_back(client, alice):
    client.force_login(alice)
    for _ in range(services.KEY_SUBMISSIONS_PER_WINDOW):
        client.post(reverse("onboarding:key"), {"api_key": "nonsense"})
    response = client.post(reverse("onboarding:key"), {"api_key": KEY})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many key submissions (10 in 10 minutes). Try again in" in response.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()


def test_behind_a_proxy_each_client_is_counted_apart(client, db, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    proxy = "10.0.0.5"
    for attempt in range(FAILED_LOGINS_PER_ADDRESS.limit):
        client.post(
            reverse("accounts:login"),
            {"username": f"u{attempt}", "password": "x"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"6.6.6.{attempt}, 203.0.113.66",
        )
    blocked = client.post(
        reverse("accounts:login"),
        {"username": "v", "password": "x"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="203.0.113.66",
    )
    assert blocked.status_code == 429  # the client's forged left-hand entries did not spread its count
    other = client.post(
        reverse("accounts:login"),
        {"username": "v", "password": "x"},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.20",
    )
    assert other.status_code == 200  # another client behind the same proxy is not blocked
